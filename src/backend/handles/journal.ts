// The handle store on disk: one append-only journal, handles.log, in the store directory.
//
// Each line is "<check> <json>\n", check = first 16 hex digits of SHA-256 of the json. A line
// whose check fails (a write torn by a crash) or that has no newline yet (being written by
// another process, or torn at the end) is not a record. Whoever appends next (always under
// the lock) first ends a torn tail with "\n", so the fragment stays an invalid line forever
// and never glues onto the next record.
//
// Entries (by their version-1 names; see LONG for what version 2 writes):
//           snap {v, next}                   first line: where numbering continues
//           add  {h, cls, fam, tok, sid?, hint, label, id, fp?, pm?, partner?, owner, shared, mValue, ts}
//           del  {h}                         tombstone: the key was deleted
//           rep  {h, cls, fam, tok, sid?, hint, label, id, fp?, pm?}   the key is now another object
//           meta {h, owner, shared, mValue}
//           hint {h, hint, label, id}        label/id changed
//           fp   {h, fp, pm?}                public value learned for sure
//           intent {g, sid, label, id, owner, shared, mValue, ts}  a generation is about to start
//           done {g}                         that generation's outcome was printed (or rolled back)
// "add" entries of a generation carry its g. An intent without "done" whose process is gone
// was killed part way: the next process finishes it or rolls it back (store.ts recover()).
// Earlier versions skip intent/done lines and the g field (they apply only what they know).
// The first "add" of a number claims it; a later "add" of the same number is ignored, so a
// number can never name two keys, whatever the lock did. Numbers are never reused: `next`
// only grows, and a compacted journal starts with a snap entry that carries it.
//
// Durability: an append is one write() of whole lines under the lock; the caller then waits,
// outside the lock, for an fdatasync that began after its write (sync(); appends made while one
// is in flight share the next: group commit) before it prints anything. Releasing the lock
// before the fdatasync exposes nothing new: readers refresh without the lock anyway, and the
// later appends of anyone are synced with the whole file, so nothing after an entry is ever
// durable without it. Compaction writes a new file, fsyncs it, renames it over handles.log and
// fsyncs the directory (which makes what the old file held durable); other processes notice
// the new inode and reread.
import { createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../fsutil.js';
import { processAlive, startTime } from '../proc.js';

export interface KeyMeta {
  owner: number;
  shared: number[];
  mValue: number;
}

export interface Rec {
  h: number;
  cls: number;
  fam: string;
  tok: boolean;
  /** Session objects: the process instance that made them (see sessionInstance()). */
  sid?: string;
  hint: string;
  /** CKA_LABEL and CKA_ID (hex) when recorded: resolve() looks there first. */
  label?: string;
  id?: string;
  fp?: string;
  /** Public value (hex) of a private key whose key material is known. */
  pm?: string;
  partner?: number;
  meta: KeyMeta;
  /** When it was added (ms since epoch). */
  ts: number;
  /** Order of its add entry in the journal (grows; reset when the journal is reread). */
  seq: number;
  dead: boolean;
  /** The generation (intent) that made it. */
  g?: string;
}

/** A generation announced before it starts: what it will make, and who makes it. */
export interface Intent {
  g: string;
  sid: string;
  label: string;
  /** CKA_ID, hex. */
  id: string;
  meta: KeyMeta;
  ts: number;
}

export type Entry =
  | { t: 'snap'; v: number; next: number; ts: number }
  | ({ t: 'add'; h: number; cls: number; fam: string; tok: boolean; sid?: string; hint: string; label?: string; id?: string; fp?: string; pm?: string; partner?: number; g?: string; ts: number } & KeyMeta)
  | ({ t: 'intent'; g: string; sid: string; label: string; id: string; ts: number } & KeyMeta)
  | { t: 'done'; g: string }
  | { t: 'del'; h: number; ts: number }
  | { t: 'rep'; h: number; cls: number; fam: string; tok: boolean; sid?: string; hint: string; label?: string; id?: string; fp?: string; pm?: string; ts: number }
  | ({ t: 'meta'; h: number } & KeyMeta)
  | { t: 'hint'; h: number; hint: string; label?: string; id?: string }
  | { t: 'fp'; h: number; fp: string; pm?: string };

const check = (json: string) => createHash('sha256').update(json).digest('hex').slice(0, 16);

// Version 2 writes fields by their names; version 1 (kmu11 before it) wrote two-letter ones.
// Both are read. (A version-1 process does not read version-2 lines: one version per home.)
const LONG: Readonly<Record<string, string>> = {
  h: 'handle', cls: 'class', fam: 'family', tok: 'token', sid: 'session', fp: 'fingerprint', pm: 'publicValue', g: 'generation',
};
const SHORT: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(LONG).map(([s, l]) => [l, s]));
/** A plain loop: a first read of a long journal renames every field of every line. */
function rename(o: object, names: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in o) out[names[k] ?? k] = (o as Record<string, unknown>)[k];
  return out;
}

export function encode(entries: Entry[]): Buffer {
  const lines = entries.map((e) => {
    const j = JSON.stringify(rename(e, LONG));
    return `${check(j)} ${j}\n`;
  });
  return Buffer.from(lines.join(''), 'utf8');
}

export function decodeLine(line: string): Entry | undefined {
  if (line.indexOf(' ') !== 16) return undefined;
  const json = line.slice(17);
  if (check(json) !== line.slice(0, 16)) return undefined;
  try {
    const e = JSON.parse(json) as Entry;
    return e && typeof e === 'object' && typeof e.t === 'string' ? (rename(e, SHORT) as unknown as Entry) : undefined;
  } catch {
    return undefined;
  }
}

/** The record an "add" entry makes. */
export function recordOf(e: Extract<Entry, { t: 'add' }>, seq: number): Rec {
  return {
    h: e.h, cls: e.cls, fam: e.fam, tok: e.tok, sid: e.sid, hint: e.hint, label: e.label, id: e.id, fp: e.fp, pm: e.pm,
    partner: e.partner, meta: { owner: e.owner, shared: e.shared ?? [], mValue: e.mValue ?? 0 }, ts: e.ts, seq, dead: false, g: e.g,
  };
}

/** This process: its session objects (CKA_TOKEN=false) die with it. */
export const SESSION_INSTANCE = `${process.pid}-${startTime(process.pid)}-${randomBytes(4).toString('hex')}`;

/** "pid-starttime-random" of this process: session objects die with it. */
export function sessionAlive(sid: string): boolean {
  const [pid, start] = sid.split('-');
  const n = Number(pid);
  return Number.isSafeInteger(n) && n > 0 && processAlive(n, start ?? '');
}

export class Journal {
  readonly path: string;
  readonly records = new Map<number, Rec>();
  /** Generations announced and not yet done. */
  readonly intents = new Map<string, Intent>();
  private fh?: fs.FileHandle;
  private ino = -1;
  private pos = 0;
  /** The file's size when last refreshed (past `pos`: a line not yet whole, or torn). */
  private size = 0;
  private nextHandle: number;
  private seq = 0;
  /**
   * True while this process holds the lock (ledger.ts): nobody else appends or compacts, so the
   * journal, once reread, stays current until the lock is released.
   */
  get exclusive(): boolean {
    return this.held;
  }
  set exclusive(held: boolean) {
    this.held = held;
    this.current = false;
  }
  private held = false;
  private current = false;
  /** Appends made (numbered from 1), and how many of them a finished fdatasync covers. */
  private written = 0;
  private synced = 0;
  private syncing?: Promise<void>;
  /** Valid lines applied (for the compaction decision). */
  lines = 0;
  /** Bumped whenever anything in `records` changes. */
  version = 0;

  constructor(
    readonly dir: string,
    private readonly firstHandle: number,
  ) {
    this.path = join(dir, 'handles.log');
    this.nextHandle = firstHandle;
  }

  get next(): number {
    return this.nextHandle;
  }

  /** True when the journal exists and has its first line. */
  async initialized(): Promise<boolean> {
    try {
      return (await fs.stat(this.path)).size > 0;
    } catch {
      return false;
    }
  }

  /** Create the journal (caller holds the lock). */
  async create(): Promise<void> {
    if (await this.initialized()) return;
    const fh = await fs.open(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o600);
    try {
      await fh.write(encode([{ t: 'snap', v: 2, next: this.firstHandle, ts: Date.now() }]));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsyncDir(this.dir);
  }

  private reset(): void {
    this.records.clear();
    this.intents.clear();
    this.pos = 0;
    this.seq = 0;
    this.lines = 0;
    this.nextHandle = this.firstHandle;
    this.version++;
  }

  /** Read what other processes appended (or the whole file, if it was replaced). */
  async refresh(): Promise<boolean> {
    if (this.exclusive && this.current) return false;
    const changed = await this.reread();
    this.current = this.exclusive;
    return changed;
  }

  private async reread(): Promise<boolean> {
    let st;
    try {
      st = await fs.stat(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    if (!this.fh || st.ino !== this.ino) {
      await this.fh?.close();
      this.fh = await fs.open(this.path, constants.O_RDWR | constants.O_APPEND);
      st = await this.fh.stat();
      this.ino = st.ino;
      this.reset();
    }
    // The size of the file just looked at: no other stat of the handle needed.
    const size = st.size;
    this.size = size;
    if (size <= this.pos) return false;
    const b = Buffer.alloc(size - this.pos);
    let got = 0;
    while (got < b.length) {
      const { bytesRead } = await this.fh.read(b, got, b.length - got, this.pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const end = b.subarray(0, got).lastIndexOf(0x0a);
    if (end < 0) return false;
    const text = b.subarray(0, end).toString('utf8');
    this.pos += end + 1;
    let changed = false;
    // A long journal (a first read: ~70 µs a line) gives the event loop a turn every 2 ms.
    let since = performance.now();
    for (const line of text.split('\n')) {
      const e = decodeLine(line);
      if (e && this.apply(e)) changed = true;
      if (performance.now() - since >= 2) {
        await new Promise((r) => setImmediate(r));
        since = performance.now();
      }
    }
    if (changed) this.version++;
    return changed;
  }

  private apply(e: Entry): boolean {
    this.lines++;
    switch (e.t) {
      case 'snap':
        if (Number.isSafeInteger(e.next) && e.next > this.nextHandle) this.nextHandle = e.next;
        return true;
      case 'intent':
        this.intents.set(e.g, { g: e.g, sid: e.sid, label: e.label, id: e.id, meta: { owner: e.owner, shared: e.shared ?? [], mValue: e.mValue ?? 0 }, ts: e.ts });
        return true;
      case 'done':
        return this.intents.delete(e.g);
      case 'add': {
        if (!Number.isSafeInteger(e.h) || e.h <= 0 || this.records.has(e.h)) return false;
        this.records.set(e.h, recordOf(e, ++this.seq));
        if (e.h >= this.nextHandle) this.nextHandle = e.h + 1;
        return true;
      }
      default: {
        const r = this.records.get(e.h);
        if (!r || r.dead) return false;
        if (e.t === 'del') r.dead = true;
        else if (e.t === 'rep') Object.assign(r, { cls: e.cls, fam: e.fam, tok: e.tok, sid: e.sid, hint: e.hint, label: e.label, id: e.id, fp: e.fp, pm: e.pm });
        else if (e.t === 'meta') r.meta = { owner: e.owner, shared: e.shared ?? [], mValue: e.mValue ?? 0 };
        else if (e.t === 'hint') Object.assign(r, { hint: e.hint, label: e.label, id: e.id });
        else if (e.t === 'fp') Object.assign(r, { fp: e.fp, pm: e.pm });
        else return false;
        return true;
      }
    }
  }

  /**
   * Append entries (the caller holds the lock): written, not yet durable. Returns the append's
   * number for sync(), 0 when there was nothing to write.
   */
  async append(entries: Entry[]): Promise<number> {
    if (entries.length === 0) return 0;
    await this.refresh();
    const fh = this.fh!;
    let data = encode(entries);
    // Bytes past the last whole line are a torn tail: ended with "\n" first (see the top).
    if (this.size > this.pos) data = Buffer.concat([Buffer.from('\n'), data]);
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await fh.write(data, off, data.length - off, null);
      off += bytesWritten;
    }
    const n = ++this.written;
    this.current = false; // read back: the check below is against what the file holds
    await this.refresh();
    // Each number claimed here must now be ours: first claim wins (see the top of the file).
    // Only a lock that failed to exclude could make us lose one; never hand out such a number.
    for (const e of entries) {
      if (e.t !== 'add') continue;
      const r = this.records.get(e.h);
      if (!r || r.ts !== e.ts || r.fam !== e.fam || r.hint !== e.hint || r.cls !== e.cls) {
        throw new Error(`kmu11: handle ${e.h} was claimed by another process at the same time (handle-store lock not effective?)`);
      }
    }
    return n;
  }

  /**
   * Returns once append number `n` is on disk (no lock needed): an fdatasync in flight that
   * began before that append is waited for, then one more covers every append made meanwhile.
   * (If a compaction replaced the file since, its fsync made the append durable already.)
   */
  async sync(n: number): Promise<void> {
    while (this.synced < n) {
      if (!this.syncing) {
        const upTo = this.written;
        this.syncing = this.fh!.datasync().then(
          () => { this.synced = Math.max(this.synced, upTo); this.syncing = undefined; },
          (e: unknown) => { this.syncing = undefined; throw e; },
        );
      }
      await this.syncing;
    }
  }

  /** Live records, including session records whose process is gone. */
  liveCount(): number {
    let n = 0;
    for (const r of this.records.values()) if (!r.dead) n++;
    return n;
  }

  /**
   * Rewrite the journal without tombstoned records and session records of processes that have
   * ended (the caller holds the lock). Numbering continues from `next`.
   */
  async compact(): Promise<void> {
    await this.refresh();
    const keep: Entry[] = [{ t: 'snap', v: 2, next: this.nextHandle, ts: Date.now() }];
    for (const i of this.intents.values()) keep.push({ t: 'intent', g: i.g, sid: i.sid, label: i.label, id: i.id, ...i.meta, ts: i.ts });
    for (const r of [...this.records.values()].sort((a, b) => a.seq - b.seq)) {
      if (r.dead) continue;
      if (r.sid && !sessionAlive(r.sid)) continue;
      keep.push({
        t: 'add', h: r.h, cls: r.cls, fam: r.fam, tok: r.tok, sid: r.sid, hint: r.hint, label: r.label, id: r.id, fp: r.fp, pm: r.pm,
        partner: r.partner, owner: r.meta.owner, shared: r.meta.shared, mValue: r.meta.mValue, ts: r.ts,
        ...(r.g && this.intents.has(r.g) ? { g: r.g } : {}),
      });
    }
    // Through .handles.log.tmp-<pid>-<random> (see removeTempFiles), fsynced, then renamed.
    await writeFileAtomic(this.path, encode(keep), 0o600);
    this.current = false;
    await this.refresh();
  }

  /** Leftovers of compactions that crashed before their rename (caller holds the lock). */
  async removeTempFiles(): Promise<void> {
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (name.startsWith('.handles.log.tmp-')) await fs.rm(join(this.dir, name), { force: true });
    }
  }

  async close(): Promise<void> {
    // Appends no caller waited for ("done") are made durable at a clean exit.
    if (this.fh && this.synced < this.written) await this.sync(this.written).catch(() => undefined);
    await this.fh?.close();
    this.fh = undefined;
    this.ino = -1;
  }
}
