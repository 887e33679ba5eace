// The lock rules the 32 × 30 soak needs (src/backend/lock.ts): hundreds of library calls queued
// in one process for the same lock wait their turn as long as the holders ahead take (they are
// live operations of this process: each ends), where a 30 s "turn has not moved" limit failed
// the soak with "keygen.lock is held by process <its own pid>"; a nested acquisition (the
// holder's own operation asking again) fails at once instead of waiting for itself; and the
// generation lock is per key ID, so generations with different IDs never wait for each other.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { keygenLockName, withLock } from '../src/backend/lock.js';
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
