// The addon never takes its host down: hostile JavaScript values (throwing getters, accessor
// elements, Proxies), a module that reports absurd lengths, and a Module garbage-collected
// while initialised. Each case runs in its own Node process, so an abort or a segfault fails
// the test instead of killing vitest; each aborted or segfaulted before the addon checked
// every Node-API status.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { faultEnv, faultModule, readFaultCounts, type FaultOptions } from './helpers/faultmod.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const ADDON = resolve(import.meta.dirname, '../build/Release/kmu11_pkcs11.node');
let token: TestToken;
let dir: string;

beforeAll(() => {
  faultModule();
  token = makeToken('hostile');
  dir = mkdtempSync(join(tmpdir(), 'kmu11-hostile-'));
});
afterAll(() => {
  token?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  status: number | null;
  signal: string | null;
  /** What the body returned, or the error it threw ({ name, message, code }). */
  result: any;
  stderr: string;
}

/**
 * Runs `body` in a fresh Node process with `m` (an initialised addon Module), `s` (a logged-in
 * session), `P256`, and `gc`; its return value (or the error thrown) comes back as JSON.
 */
function inChild(body: string, opts: { module?: string; fault?: FaultOptions } = {}): Outcome {
  const script = `
    const addon = require(${JSON.stringify(ADDON)});
    const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
    (async () => {
      let m = new addon.Module(process.env.MODULE);
      await m.C_Initialize();
      const [slot] = await m.C_GetSlotList(true);
      const s = await m.C_OpenSession(slot, 6);
      await m.C_Login(s, 1, ${JSON.stringify(token.userPin)});
      const run = async () => { ${body} };
      let out;
      try { out = { ok: await run() }; }
      catch (e) { out = { error: { name: e?.name, message: e?.message, code: e?.code } }; }
      console.log('RESULT ' + JSON.stringify(out));
    })().catch((e) => { console.log('SETUP ' + e); process.exitCode = 3; });
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], {
    env: { ...token.env, MODULE: opts.module ?? token.module, ...faultEnv(opts.fault ?? {}) },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return { status: r.status, signal: r.signal, result: line ? JSON.parse(line.slice(7)) : undefined, stderr: r.stderr + r.stdout };
}

function expectTypeError(o: Outcome, mentions: RegExp) {
  expect(o.signal, o.stderr).toBeNull();
  expect(o.status, o.stderr).toBe(0);
  expect(o.result?.error?.name, o.stderr).toBe('TypeError');
  expect(o.result.error.message).toMatch(mentions);
}

const gen = (pub: string, priv = '[]') =>
  `return await m.C_GenerateKeyPair(s, { mechanism: 0x1040 }, ${pub}, ${priv});`;

describe('hostile values are TypeErrors naming the argument', () => {
  it('a template item whose getter throws', () => {
    const o = inChild(gen(`[{ type: 0x180, value: P256 }, { get type() { throw new Error('boom'); }, value: Buffer.from([1]) }]`));
    expectTypeError(o, /publicTemplate\[1\]\.type/);
  });

  it('a template value whose getter throws', () => {
    const o = inChild(gen(`[{ type: 0x180, get value() { throw new Error('boom'); } }]`));
    expectTypeError(o, /publicTemplate\[0\]\.value/);
  });

  it('an array element that is an accessor (throwing, and returning a value)', () => {
    const throwing = inChild(`
      const t = [{ type: 0x180, value: P256 }];
      Object.defineProperty(t, 1, { get() { throw new Error('boom'); }, enumerable: true });
      ${gen('t')}`);
    expectTypeError(throwing, /publicTemplate\[1\]/);
    const returning = inChild(`
      const t = [{ type: 0x180, value: P256 }];
      Object.defineProperty(t, 1, { get() { return { type: 0x10a, value: Buffer.from([1]) }; }, enumerable: true });
      const pair = await m.C_GenerateKeyPair(s, { mechanism: 0x1040 }, t, [{ type: 0x108, value: Buffer.from([1]) }]);
      return typeof pair.publicKey;`);
    expect(returning.status, returning.stderr).toBe(0);
    expect(returning.result).toEqual({ ok: 'number' });
  });

  it('a Proxy as the mechanism (throwing traps, and a transparent one)', () => {
    const throwing = inChild(gen(`[{ type: 0x180, value: P256 }]`).replace(
      '{ mechanism: 0x1040 }',
      `new Proxy({}, { get() { throw new Error('trap'); } })`,
    ));
    expectTypeError(throwing, /mechanism\.mechanism/);
    const transparent = inChild(`
      const pair = await m.C_GenerateKeyPair(s, new Proxy({ mechanism: 0x1040 }, {}), [{ type: 0x180, value: P256 }], []);
      return typeof pair.privateKey;`);
    expect(transparent.result, transparent.stderr).toEqual({ ok: 'number' });
  });

  it('a Proxy as a template, as a Buffer, and as a handle list', () => {
    expectTypeError(inChild(gen(`new Proxy([], { get() { throw new Error('trap'); } })`)), /publicTemplate/);
    expectTypeError(
      inChild(gen(`[{ type: 0x180, value: new Proxy(P256, { get() { throw new Error('trap'); } }) }]`)),
      /publicTemplate\[0\]\.value/,
    );
    const list = inChild(`
      const l = [1];
      Object.defineProperty(l, 0, { get() { throw new Error('boom'); } });
      return await m.C_DestroyObject(s, l);`);
    expectTypeError(list, /object\[0\]/);
  });
});

describe('a module reporting absurd lengths', () => {
  const fault = (fn: string): FaultOptions => ({ module: token.module, hugeLen: [[fn, '*']] });

  it('an attribute 2^62 bytes long is a PKCS#11 error, not an allocation', () => {
    // A label longer than the addon's first guess at a buffer: the size query follows, and lies.
    const o = inChild(
      `const pair = await m.C_GenerateKeyPair(s, { mechanism: 0x1040 }, [{ type: 0x180, value: P256 }, { type: 0x3, value: Buffer.alloc(300, 0x61) }], []);
       return await m.C_GetAttributeValue(s, pair.publicKey, [0x3]);`,
      { module: faultModule(), fault: fault('C_GetAttributeValue') },
    );
    expect(o.signal, o.stderr).toBeNull();
    expect(o.status, o.stderr).toBe(0);
    expect(o.result.error).toMatchObject({ code: 0x5 });
  });

  it('a slot list of 2^62 entries, and a signature of 2^62 bytes', () => {
    // C_GetSlotList is faulted from its first call: the set-up's own listing fails cleanly.
    const slots = inChild(`return 1;`, { module: faultModule(), fault: fault('C_GetSlotList') });
    expect(slots.signal, slots.stderr).toBeNull();
    expect(slots.stderr).toMatch(/SETUP .*C_GetSlotList/);
    const sign = inChild(
      `const pair = await m.C_GenerateKeyPair(s, { mechanism: 0x1040 }, [{ type: 0x180, value: P256 }], [{ type: 0x108, value: Buffer.from([1]) }]);
       return await m.sign(s, { mechanism: 0x1041 }, pair.privateKey, Buffer.alloc(32));`,
      { module: faultModule(), fault: fault('C_Sign') },
    );
    expect(sign.signal, sign.stderr).toBeNull();
    expect(sign.result.error).toMatchObject({ code: 0x5 });
  });
});

describe('a Module garbage-collected while initialised', () => {
  it('is finalized, not unmapped while initialised, and the library loads again', () => {
    const counts = join(dir, 'gc-counts');
    const o = inChild(
      `let collected = false;
       const registry = new FinalizationRegistry(() => { collected = true; });
       registry.register(m, 0);
       m = null;
       for (let i = 0; i < 20 && !collected; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
       await new Promise((r) => setTimeout(r, 50));
       const afterGc = require('node:fs').readFileSync(${JSON.stringify(counts)}, 'utf8');
       const again = new addon.Module(process.env.MODULE);
       await again.C_Initialize();
       const [slot] = await again.C_GetSlotList(true);
       await again.C_OpenSession(slot, 6);
       await again.C_Finalize();
       return { collected, afterGc };`,
      { module: faultModule(), fault: { module: token.module, counts } },
    );
    expect(o.signal, o.stderr).toBeNull();
    expect(o.status, o.stderr).toBe(0);
    expect(o.result.ok.collected, o.stderr).toBe(true);
    // The collected Module's library was finalized (the fault module wrote its counts then).
    expect(o.result.ok.afterGc).toMatch(/^C_Finalize 1$/m);
    // ...and the second Module initialised and finalized it afresh.
    const c = readFaultCounts(counts);
    expect(c.C_Initialize).toBe(1);
    expect(c.C_Finalize).toBe(1);
  });
});
