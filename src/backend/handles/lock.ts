// The allocation lock between kmu11 processes sharing one handle store.
//
// On Linux it is an abstract-namespace Unix socket ("\0kmu11-handles-<dev:ino of the store
// directory>"): bind() succeeds for exactly one process at a time and the kernel releases the
// name when that process exits, however it exits (kill -9 included), so there is no stale
// lock to detect or break. Elsewhere (or if the socket cannot be made) it falls back to an
// O_EXCL lock file holding "pid starttime", broken when that process is gone.
//
// The store never depends on the lock alone for correctness of what is already written: a
// handle number is claimed by the first record that names it (journal.ts), so even two
// writers that both believed they held the lock could not give one number to two keys.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errno } from '../fsutil.js';
import { processAlive, startTime } from '../proc.js';

export type Release = () => Promise<void>;

const turns = new Map<string, Promise<void>>();

export class DirLock {
  private socketName?: string;
  private socketBroken = false;

  constructor(
    private readonly dir: string,
    private readonly timeoutMs = 30_000,
    opts: { fileOnly?: boolean } = {},
  ) {
    this.socketBroken = opts.fileOnly === true;
  }

  private async name(): Promise<string> {
    if (!this.socketName) {
      const st = await fs.stat(this.dir);
      const id = createHash('sha256').update(`${st.dev}:${st.ino}`).digest('hex').slice(0, 40);
      this.socketName = `\0kmu11-handles-${id}`;
    }
    return this.socketName;
  }

  /**
   * Stores in this process on the same directory (one per library session) take turns before
   * the lock, so only one of them polls it: many sessions neither starve each other past the
   * timeout nor spin on the socket.
   */
  async acquire(): Promise<Release> {
    const key = resolve(this.dir);
    const before = turns.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = before.then(() => new Promise<void>((r) => (done = r)));
    turns.set(key, mine);
    await before;
    const finish = () => {
      done();
      if (turns.get(key) === mine) turns.delete(key);
    };
    try {
      const release = await this.acquireLock();
      return async () => {
        try {
          await release();
        } finally {
          finish();
        }
      };
    } catch (e) {
      finish();
      throw e;
    }
  }

  private async acquireLock(): Promise<Release> {
    const deadline = Date.now() + this.timeoutMs;
    let delay = 1;
    for (;;) {
      const release = process.platform === 'linux' && !this.socketBroken ? await this.trySocket() : await this.tryFile();
      if (release) return release;
      if (Date.now() > deadline) throw new Error(`kmu11: timed out waiting for the handle-store lock of ${this.dir}`);
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 20);
    }
  }

  private async trySocket(): Promise<Release | undefined> {
    const name = await this.name();
    const server = net.createServer();
    const outcome = await new Promise<'ok' | 'busy' | 'broken'>((resolve) => {
      server.once('error', (e) => resolve(errno(e) === 'EADDRINUSE' ? 'busy' : 'broken'));
      server.listen(name, () => resolve('ok'));
    });
    if (outcome === 'busy') return undefined;
    if (outcome === 'broken') {
      this.socketBroken = true;
      return this.tryFile();
    }
    server.unref();
    server.on('connection', (c) => c.destroy());
    let released = false;
    return () =>
      new Promise<void>((resolve) => {
        if (released) return resolve();
        released = true;
        server.close(() => resolve());
      });
  }

  private async tryFile(): Promise<Release | undefined> {
    const path = join(this.dir, 'handles.lock');
    const me = `${process.pid} ${startTime(process.pid)} ${randomBytes(6).toString('hex')}\n`;
    try {
      await fs.writeFile(path, me, { flag: 'wx', mode: 0o600 });
      return async () => {
        const now = await fs.readFile(path, 'utf8').catch(() => '');
        if (now === me) await fs.rm(path, { force: true });
      };
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
    }
    const text = await fs.readFile(path, 'utf8').catch(() => '');
    const [pid, start] = text.trim().split(/\s+/);
    const n = Number(pid);
    if (text !== '' && (!Number.isSafeInteger(n) || n <= 0 || !processAlive(n, start ?? ''))) {
      // Move it aside first: of two processes breaking the same stale lock, one wins the rename.
      const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
      await fs.rename(path, aside).catch(() => undefined);
      const moved = await fs.readFile(aside, 'utf8').catch(() => undefined);
      if (moved !== undefined && moved !== text) await fs.link(aside, path).catch(() => undefined);
      await fs.rm(aside, { force: true });
    }
    return undefined;
  }
}
