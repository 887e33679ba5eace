// The p11 ObjectLock (src/p11/objectLock.ts), the fix for the several-Kmu soak failure: SoftHSM
// 2.6 reads an object file another thread is writing, and the written object goes invalid
// (C_GenerateKeyPair → CKR_GENERAL_ERROR). Its order rules, the backend turning it on for
// SoftHSM, and token generations racing finds on four sessions of one process without a failure
// (that race alone rarely hits the bug without the lock: test/soak.test.ts at 4 × 5 × 2 did,
// in 3 of 6 runs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadModule } from '../src/backend/tokenAccess.js';
import { CKA, CKK, CKM, CKO, CKU, type Module } from '../src/p11/index.js';
import { OBJECT_LOCK } from '../src/p11/module.js';
import { makesTokenObject, ObjectLock } from '../src/p11/objectLock.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

/** A call that finishes when `release` is called, recording start and end in `log`. */
function gate(log: string[], name: string): { call: () => Promise<string>; release: () => void } {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return {
    call: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
      return name;
    },
    release: () => release(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ObjectLock', () => {
  it('reads run together, a write alone, in arrival order', async () => {
    const lock = new ObjectLock();
    lock.enabled = true;
    const log: string[] = [];
    const [r1, r2, w, r3] = [gate(log, 'r1'), gate(log, 'r2'), gate(log, 'w'), gate(log, 'r3')];
    const all = [lock.run(false, r1.call), lock.run(false, r2.call), lock.run(true, w.call), lock.run(false, r3.call)];
    await tick();
    // Both reads started; the write waits for them, and the read after it waits for the write.
    expect(log).toEqual(['start r1', 'start r2']);
    r1.release();
    await tick();
    expect(log).toEqual(['start r1', 'start r2', 'end r1']);
    r2.release();
    await tick();
    expect(log.slice(3)).toEqual(['end r2', 'start w']);
    r3.release(); // released early: still must not start before the write ends
    await tick();
    expect(log).not.toContain('start r3');
    w.release();
    expect(await Promise.all(all)).toEqual(['r1', 'r2', 'w', 'r3']);
    expect(log.slice(5)).toEqual(['end w', 'start r3', 'end r3']);
  });

  it('a failing call releases the lock; off, calls are not ordered at all', async () => {
    const lock = new ObjectLock();
    lock.enabled = true;
    await expect(lock.run(true, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(
      lock.run(true, () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(await lock.run(true, async () => 'next')).toBe('next');
    const off = new ObjectLock();
    const log: string[] = [];
    const [a, b] = [gate(log, 'a'), gate(log, 'b')];
    const both = [off.run(true, a.call), off.run(true, b.call)];
    await tick();
    expect(log).toEqual(['start a', 'start b']);
    a.release();
    b.release();
    await Promise.all(both);
  });

  it('a template makes a token object when CKA_TOKEN is true', () => {
    const t = (v: number) => [{ type: CKA.TOKEN, value: Buffer.from([v]) }];
    expect(makesTokenObject(t(1))).toBe(true);
    expect(makesTokenObject(t(0), [])).toBe(false);
    expect(makesTokenObject([{ type: CKA.LABEL, value: Buffer.from('x') }], t(1))).toBe(true);
  });
});

describe('SoftHSM 2.6 through the backend', () => {
  let token: TestToken;
  let module: Module;
  beforeAll(async () => {
    token = makeToken('objlock');
    module = await loadModule(token.module);
  });
  afterAll(async () => {
    await module?.close();
    token?.cleanup();
  });

  it('the backend turns the lock on; token generations racing finds on 4 sessions all succeed', async () => {
    expect(module[OBJECT_LOCK].enabled).toBe(true);
    const slot = (await module.findSlotByTokenLabel('objlock'))!;
    const sessions = await Promise.all([0, 1, 2, 3].map(() => slot.openSession({ rw: true })));
    await sessions[0]!.login(token.userPin, CKU.USER);
    const made: number[] = [];
    await Promise.all(
      sessions.map(async (s, i) => {
        for (let k = 0; k < 12; k++) {
          const label = `race-${i}-${k}`;
          if (i % 2 === 0) {
            const common = [
              { type: CKA.TOKEN, value: true },
              { type: CKA.LABEL, value: label },
              { type: CKA.KEY_TYPE, value: CKK.EC },
            ];
            const pair = await s.generateKeyPair(
              { mechanism: CKM.EC_KEY_PAIR_GEN },
              [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, ...common, { type: CKA.EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
              [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, ...common, { type: CKA.SIGN, value: true }],
            );
            made.push(pair.publicKey, pair.privateKey);
            await s.setAttributes(pair.privateKey, [{ type: CKA.ID, value: Buffer.from(label) }]);
          } else {
            // Every find refreshes every token object: what read half-written files before.
            for (const h of await s.find([{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }])) await s.getAttributes(h, [CKA.LABEL]);
          }
        }
      }),
    );
    expect(made).toHaveLength(48);
    expect(await sessions[1]!.find([{ type: CKA.KEY_TYPE, value: CKK.EC }])).toHaveLength(48);
    await sessions[0]!.destroyObject(made);
    expect(await sessions[1]!.find()).toEqual([]);
  });
});
