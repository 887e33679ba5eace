// An exclusive lock between kmu11 processes sharing one home: a lockfile that appears
// atomically (written to a temp file, then link()ed into place, which fails if the lock
// exists) holding "pid host time start" (start: the process's start time, Linux). A lock whose
// process is gone (same host; a pid reused by a later process, this one included, counts as
// gone) or that is older than `staleMs` is broken; anything else is waited for, up to `timeoutMs`.
//
// kmu11's one lock between processes: token.lock (SoftHSM's token file: shared turns for its
// readers, a sole turn for each writer), keygen-<ID hash>.lock (ID check + generation),
// handles.lock (the handle store's journal). It names its holder's host, so a home shared
// between hosts is still locked by a holder elsewhere until the lock grows old, and its file
// is what users see when it blocks; a holder killed with -9 on this host is seen gone at once.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupError } from '../kmu/errors.js';
import { createFileAtomic, errno, FILE_MODE } from './fsutil.js';
import { pidAlive, processAlive, startTime } from './proc.js';

export interface LockOptions {
  /**
   * Give up after this long (default 30 s) waiting for another process; in this process only
   * when given (the turn has not moved for this long), else a caller waits its turn.
   */
  timeoutMs?: number;
  /** A lock older than this is taken to be abandoned (default 120 s; kmu11 holds it for well under a second). */
  staleMs?: number;
}

/** The lock around reads and rewrites of SoftHSM's token.object (tokenAccess.ts tokenFileTurn). */
export const TOKEN_LOCK = 'token.lock';

/**
 * The generation lock of one key ID (beside the token, in the home): two generations with the
 * same -id take turns for the ID check and the creation; different IDs never wait for each other.
 */
export function keygenLockName(id: Buffer): string {
  return `keygen-${createHash('sha256').update(id).digest('hex').slice(0, 16)}.lock`;
}

interface Holder {
  pid: number;
  host: string;
  time: number;
  /** startTime() of the holder ('' when its writer had none: not Linux, or an older kmu11). */
  start: string;
}

/** LockOptions' defaults. */
const TIMEOUT_MS = 30_000;
const STALE_MS = 120_000;

const START = startTime(process.pid);
/** What a lock file or a shared turn's mark holds: "pid host time start". */
const holderLine = (): string => `${process.pid} ${hostname()} ${Date.now()}${START ? ` ${START}` : ''}\n`;

function parseHolder(text: string): Holder | undefined {
  const [pid, host, time, start] = text.trim().split(/\s+/);
  const n = Number(pid);
  if (!Number.isSafeInteger(n) || n <= 0 || !host) return undefined;
  return { pid: n, host, time: Number(time) || 0, start: start ?? '' };
}

/**
 * Left behind: older than `staleMs`, or its process gone (this host). With a start time, a pid
 * now running another process is gone too, even this process's own pid (a container restarted
 * after kill -9 often runs kmu11 under the same pid and host name again).
 */
function abandoned(holder: Holder, mtimeMs: number, staleMs: number): boolean {
  if (Date.now() - mtimeMs > staleMs) return true;
  if (holder.host !== hostname()) return false;
  if (holder.start) return !processAlive(holder.pid, holder.start);
  return holder.pid !== process.pid && !pidAlive(holder.pid);
}

/**
 * Break an abandoned lock. Renaming first means that of two processes breaking the same lock
 * only one removes it; if what we renamed turns out not to be the stale holder's (it was
 * replaced in between), it is put back.
 */
async function breakStale(lockPath: string, stale: Holder): Promise<void> {
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  const moved = parseHolder(await fs.readFile(aside, 'utf8').catch(() => ''));
  if (moved && (moved.pid !== stale.pid || moved.host !== stale.host || moved.time !== stale.time)) {
    await fs.link(aside, lockPath).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}

// Callers in this process take turns before the file, so only one of them polls it: many
// concurrent callers (library sessions) do not starve each other. The callers ahead are live
// operations of this process, and each ends (returns or throws), so a caller waits for its turn
// as long as it takes, however many are queued (a 32 × 30 soak queues hundreds for minutes).
// The one wait that would never end, a call nested in the holder's own operation, is known from
// the async context (`held`) and refused at once. An explicit `timeoutMs` is still honoured in
// the process: the caller gives up when the turn has not moved for that long. Waits for another
// process (withFileLock) always have their timeout and dead-holder check.
interface Turns {
  tail: Promise<unknown>;
  moved: number;
}
const turns = new Map<string, Turns>();
/** The lock paths the running async context holds (withLock runs `fn` inside it). */
const held = new AsyncLocalStorage<ReadonlySet<string>>();

/** Run `fn` holding the lock at `lockPath`; the lock is released however `fn` ends. */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const outer = held.getStore();
  if (outer?.has(lockPath) && opts.timeoutMs === undefined)
    throw new SetupError(`${lockPath} is already held by this same operation (a nested call would wait for itself)`);
  const t = turns.get(lockPath) ?? { tail: Promise.resolve(), moved: Date.now() };
  turns.set(lockPath, t);
  const before = t.tail;
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  t.tail = before.then(() => mine);
  try {
    await waitTurn(lockPath, before, t, opts.timeoutMs);
    return await held.run(new Set([...(outer ?? []), lockPath]), () => withFileLock(lockPath, fn, opts));
  } finally {
    t.moved = Date.now();
    release();
    const tail = t.tail;
    void tail.then(() => {
      if (turns.get(lockPath) === t && t.tail === tail) turns.delete(lockPath);
    });
  }
}

/**
 * The lock at `lockPath` until the returned release() is called: for a holder whose hold spans
 * several operations (the handle store keeps it for the turns queued behind the one that took it).
 */
export async function acquireLock(lockPath: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  let taken!: () => void;
  let release!: () => void;
  const got = new Promise<void>((r) => (taken = r));
  const held = withLock(lockPath, () => (taken(), new Promise<void>((r) => (release = r))), opts);
  await Promise.race([got, held]);
  return async () => (release(), await held.catch(() => undefined));
}

/**
 * Shared turns of the lock at `lockPath`: callers that only read what the lock guards run
 * together. Each leaves a mark (`<lockPath>.shared-<pid>-<random>`, "pid host time start") that it
 * places while it holds the lock for a moment; withSoleLock waits, holding the lock, until no
 * mark is left. A mark whose process is gone (this host) or older than `staleMs` is removed.
 */
export async function withSharedLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const outer = held.getStore();
  if (outer?.has(lockPath)) return fn(); // inside this operation's own sole turn
  const mark = `${lockPath}.shared-${process.pid}-${randomBytes(4).toString('hex')}`;
  await withLock(lockPath, () => createFileAtomic(mark, holderLine(), FILE_MODE, { durable: false }), opts);
  try {
    return await held.run(new Set([...(outer ?? []), `${lockPath} shared`]), fn);
  } finally {
    await fs.rm(mark, { force: true });
  }
}

/** The lock at `lockPath`, once every shared turn (withSharedLock) has ended: `fn` runs alone. */
export async function withSoleLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  if (held.getStore()?.has(`${lockPath} shared`))
    throw new SetupError(`${lockPath} is shared by this same operation (a sole turn would wait for itself)`);
  return withLock(lockPath, async () => (await sharersGone(lockPath, opts), fn()), opts);
}

async function sharersGone(lockPath: string, opts: LockOptions): Promise<void> {
  const [dir, prefix] = [dirname(lockPath), `${basename(lockPath)}.shared-`];
  const deadline = Date.now() + (opts.timeoutMs ?? TIMEOUT_MS);
  for (;;) {
    let reader: Holder | undefined;
    for (const name of await fs.readdir(dir)) {
      if (!name.startsWith(prefix)) continue;
      const path = join(dir, name);
      const [text, st] = await Promise.all([fs.readFile(path, 'utf8'), fs.stat(path)]).catch(() => ['', undefined] as const);
      if (!st) continue; // ended meanwhile
      const h = parseHolder(text);
      if (!h || abandoned(h, st.mtimeMs, opts.staleMs ?? STALE_MS)) await fs.rm(path, { force: true });
      else reader = h;
    }
    if (!reader) return;
    if (Date.now() > deadline) throw new SetupError(`${lockPath} is shared by process ${reader.pid} on ${reader.host}, still reading; if no kmu11 is running there, remove its ${prefix}* file`);
    await sleep(2 + Math.random() * 8);
  }
}

// Wakes when the turn comes (or, with a timeout, when the turn may have stalled), never
// polling: a Promise.race on `before` every 50 ms added a reaction to it each time, and
// hundreds of library calls queued for minutes grew the heap by gigabytes.
async function waitTurn(lockPath: string, before: Promise<unknown>, t: Turns, timeoutMs: number | undefined): Promise<void> {
  if (timeoutMs === undefined) {
    await before;
    return;
  }
  let done = false;
  let wake = () => {};
  void before.then(() => {
    done = true;
    wake();
  });
  await Promise.resolve();
  while (!done) {
    const idle = Date.now() - t.moved;
    if (idle > timeoutMs)
      throw new SetupError(`${lockPath} is held by process ${process.pid} on ${hostname()}; if no kmu11 is running there, remove the file`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs - idle + 1);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const staleMs = opts.staleMs ?? STALE_MS;
  const me = holderLine();
  const deadline = Date.now() + timeoutMs;
  let holder: Holder | undefined;
  for (;;) {
    if (await createFileAtomic(lockPath, me, FILE_MODE, { durable: false })) break;
    let text = '';
    let mtime = Date.now();
    try {
      text = await fs.readFile(lockPath, 'utf8');
      mtime = (await fs.stat(lockPath)).mtimeMs;
    } catch (e) {
      if (errno(e) === 'ENOENT') continue; // released between our attempts
      throw e;
    }
    holder = parseHolder(text);
    if (holder === undefined || abandoned(holder, mtime, staleMs)) {
      await breakStale(lockPath, holder ?? { pid: 0, host: '', time: 0, start: '' });
      continue;
    }
    if (Date.now() > deadline) {
      throw new SetupError(
        `${lockPath} is held by process ${holder.pid} on ${holder.host}; if no kmu11 is running there, remove the file`,
      );
    }
    await sleep(5 + Math.random() * 20);
  }
  try {
    return await fn();
  } finally {
    // Remove only our own lock (it may have been broken as stale and taken by another).
    const now = await fs.readFile(lockPath, 'utf8').catch(() => '');
    if (now === me) await fs.rm(lockPath, { force: true });
  }
}
