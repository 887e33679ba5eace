// The lock rules the 32 × 30 soak needs (src/backend/lock.ts): hundreds of library calls queued
// in one process for the same lock wait their turn as long as the holders ahead take (they are
// live operations of this process: each ends), where a 30 s "turn has not moved" limit failed
// the soak with "keygen.lock is held by process <its own pid>"; a nested acquisition (the
// holder's own operation asking again) fails at once instead of waiting for itself; and the
// generation lock is per key ID, so generations with different IDs never wait for each other.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { keygenLockName, withLock, withSharedLock, withSoleLock } from '../src/backend/lock.js';
import { SetupError } from '../src/kmu/errors.js';
import { Kmu } from '../src/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-turns-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('turns in one process', () => {
  it('a waiter waits past 30 s for a holder of this process; a nested call fails at once; an explicit timeout is honoured', async () => {
    const lock = join(dir, 'a.lock');
    let release!: () => void;
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    let nested: unknown;
    const holder = withLock(lock, async () => {
      // The holder's own operation asking again would wait for itself: refused at once.
      nested = await withLock(lock, async () => 'never').catch((e: unknown) => e);
      holding();
      await new Promise<void>((r) => (release = r));
      return 'first';
    });
    await held;
    expect(nested).toBeInstanceOf(SetupError);
    expect((nested as Error).message).toBe(`${lock} is already held by this same operation (a nested call would wait for itself)`);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let waiter: Promise<string>;
    let patient: Promise<unknown>;
    try {
      waiter = withLock(lock, async () => 'second');
      patient = withLock(lock, async () => 'third', { timeoutMs: 60_000 }).catch((e: unknown) => e);
      const impatient = withLock(lock, async () => 'no', { timeoutMs: 10_000 }).catch((e: unknown) => e);
      // Two minutes pass with the turn held.
      await vi.advanceTimersByTimeAsync(30_000);
      expect(await impatient).toBeInstanceOf(SetupError);
      await vi.advanceTimersByTimeAsync(90_000);
      expect(await settled(waiter)).toBe(false);
      expect(await patient).toBeInstanceOf(SetupError);
    } finally {
      vi.useRealTimers();
    }
    release();
    expect(await holder).toBe('first');
    expect(await waiter).toBe('second');
  });

  it('hundreds of callers queued for one lock all get their turn, in order', async () => {
    const lock = join(dir, 'b.lock');
    const order: number[] = [];
    await Promise.all(Array.from({ length: 300 }, (_, i) => withLock(lock, async () => void order.push(i))));
    expect(order).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });
});

describe('shared and sole turns (token.lock: readers together, a writer alone)', () => {
  const gate = () => {
    let open!: () => void;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  };

  it('readers run together; a writer waits for them, and readers after it wait for the writer', async () => {
    const lock = join(dir, 's.lock');
    const [r1, r2, w] = [gate(), gate(), gate()];
    const inside = new Set<string>();
    const seen: string[] = [];
    const enter = (name: string, g: { p: Promise<void> }) => async () => {
      inside.add(name);
      seen.push(`${name} with ${[...inside].sort().join(',')}`);
      await g.p;
      inside.delete(name);
    };
    const readers = [withSharedLock(lock, enter('r1', r1)), withSharedLock(lock, enter('r2', r2))];
    await vi.waitFor(() => expect(inside.size).toBe(2));
    const writer = withSoleLock(lock, enter('w', w));
    await new Promise((r) => setTimeout(r, 100));
    const late = withSharedLock(lock, enter('r3', { p: Promise.resolve() }));
    await new Promise((r) => setTimeout(r, 100));
    expect(await settled(writer)).toBe(false);
    expect([...inside].sort()).toEqual(['r1', 'r2']);
    r1.open();
    r2.open();
    await Promise.all(readers);
    await vi.waitFor(() => expect(inside.has('w')).toBe(true));
    expect(await settled(late)).toBe(false);
    w.open();
    await Promise.all([writer, late]);
    expect(seen).toEqual(['r1 with r1', 'r2 with r1,r2', 'w with w', 'r3 with r3']);
    expect(readdirSync(dir).filter((n) => n.startsWith('s.lock'))).toEqual([]);
  });

  it('a reader of a process that is gone is not waited for; one of a live process is, up to the timeout', async () => {
    const lock = join(dir, 'd.lock');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(`${lock}.shared-${gone.stdout}-dead`, `${gone.stdout} ${hostname()} ${Date.now()}\n`);
    expect(await withSoleLock(lock, async () => 'alone', { timeoutMs: 2000 })).toBe('alone');
    expect(existsSync(`${lock}.shared-${gone.stdout}-dead`)).toBe(false);
    const live = spawn('sleep', ['30']);
    try {
      writeFileSync(`${lock}.shared-${live.pid}-live`, `${live.pid} ${hostname()} ${Date.now()}\n`);
      const r = await withSoleLock(lock, async () => 'no', { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(r).toBeInstanceOf(SetupError);
      expect((r as Error).message).toBe(`${lock} is shared by process ${live.pid} on ${hostname()}, still reading; if no kmu11 is running there, remove its d.lock.shared-* file`);
    } finally {
      live.kill('SIGKILL');
      await new Promise((r) => live.once('exit', r));
    }
    expect(await withSoleLock(lock, async () => 'after', { timeoutMs: 2000 })).toBe('after');
  });

  it('a reader inside its own sole turn just runs; a sole turn inside a shared one fails at once', async () => {
    const lock = join(dir, 'n.lock');
    expect(await withSoleLock(lock, () => withSharedLock(lock, async () => 'read'))).toBe('read');
    const nested = await withSharedLock(lock, () => withSoleLock(lock, async () => 'never')).catch((e: unknown) => e);
    expect(nested).toBeInstanceOf(SetupError);
    expect((nested as Error).message).toBe(`${lock} is shared by this same operation (a sole turn would wait for itself)`);
  });
});

describe('the generation lock is per key ID', () => {
  it('a generation with -id waits while another process holds that ID\'s lock, and one with another ID does not', async () => {
    const home = join(dir, 'home');
    const kmu = await Kmu.open({ home });
    try {
      await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
      expect(keygenLockName(Buffer.from('busy'))).not.toBe(keygenLockName(Buffer.from('free')));
      let release!: () => void;
      let holding!: () => void;
      const held = new Promise<void>((r) => (holding = r));
      // Held by another operation (here of this process: its turn, then the file).
      const other = withLock(join(home, keygenLockName(Buffer.from('busy'))), () => (holding(), new Promise<void>((r) => (release = r))));
      await held;
      const busy = kmu.genECCKeyPair({ curve: 2, label: 'busy', id: 'busy' });
      const free = await kmu.genECCKeyPair({ curve: 2, label: 'free', id: 'free' });
      expect(free.privateKey).toBeGreaterThan(0);
      expect(await settled(busy)).toBe(false);
      release();
      await other;
      const done = await busy;
      expect(done.privateKey).toBeGreaterThan(0);
      expect(await kmu.findKey({ id: 'busy' })).toHaveLength(2);
    } finally {
      await kmu.close();
    }
  });
});
