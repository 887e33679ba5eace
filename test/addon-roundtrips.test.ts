// How many PKCS#11 calls the addon makes for attribute reads (on a networked HSM each is a
// round trip): counted by the fault module in front of SoftHSM, each case in its own process
// (the module writes its counts at C_Finalize). Values are checked against the two-call reads.
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
let runs = 0;

beforeAll(() => {
  faultModule();
  token = makeToken('roundtrips');
  dir = mkdtempSync(join(tmpdir(), 'kmu11-roundtrips-'));
});
afterAll(() => {
  token?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const hex = (reads: Array<{ type: number; value?: Buffer; unavailable?: string }>) =>
  reads.map((r) => ({ type: r.type, ...(r.value ? { value: Buffer.from(r.value).toString('hex') } : { unavailable: r.unavailable }) }));

/**
 * Runs `body` with `m`, a logged-in session `s`, `P256` and `gen(label)` (an EC session pair);
 * the calls `body` itself makes are counted: the set-up's are subtracted.
 */
function counted(body: string, fault: FaultOptions = {}): { result: any; calls: Record<string, number>; stderr: string } {
  const counts = join(dir, `counts-${++runs}`);
  const script = `
    const addon = require(${JSON.stringify(ADDON)});
    const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
    const hex = ${hex.toString()};
    (async () => {
      const m = new addon.Module(process.env.MODULE);
      await m.C_Initialize();
      const [slot] = await m.C_GetSlotList(true);
      const s = await m.C_OpenSession(slot, 6);
      await m.C_Login(s, 1, ${JSON.stringify(token.userPin)});
      const gen = (label, reads) => m.C_GenerateKeyPair(s, { mechanism: 0x1040 },
        [{ type: 0x180, value: P256 }, { type: 0x3, value: Buffer.from(label) }],
        [{ type: 0x3, value: Buffer.from(label) }, { type: 0x103, value: Buffer.from([1]) }, { type: 0x108, value: Buffer.from([1]) }],
        ...(reads ?? []));
      let out;
      try { out = { ok: await (async () => { ${body} })() }; }
      catch (e) { out = { error: { code: e?.code, fn: e?.fn, message: e?.message } }; }
      await m.C_Finalize();
      console.log('RESULT ' + JSON.stringify(out));
    })().catch((e) => { console.log('SETUP ' + e); process.exitCode = 3; });
  `;
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...token.env, MODULE: faultModule(), ...faultEnv({ module: token.module, counts, ...fault }) },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return { result: line ? JSON.parse(line.slice(7)) : undefined, calls: readFaultCounts(counts), stderr: r.stderr + r.stdout };
}

const CLASS = 0x0, LABEL = 0x3, VALUE = 0x11, KEY_TYPE = 0x100, SIGN = 0x108, EC_PARAMS = 0x180, EC_POINT = 0x181;

describe('attribute reads without a size query', () => {
  it('one C_GetAttributeValue when every value fits its guessed buffer, with the values a two-call read gives', () => {
    const o = counted(`const p = await gen('fits');
      return hex(await m.C_GetAttributeValue(s, p.publicKey, [${CLASS}, ${LABEL}, ${EC_PARAMS}, ${EC_POINT}, ${KEY_TYPE}]));`);
    expect(o.result?.ok, o.stderr).toBeDefined();
    expect(o.calls.C_GetAttributeValue).toBe(1);
    const [cls, label, params, point, kt] = o.result.ok;
    expect(cls.value).toBe('0200000000000000');
    expect(Buffer.from(label.value, 'hex').toString()).toBe('fits');
    expect(params.value).toBe('06082a8648ce3d030107');
    expect(point.value).toMatch(/^044104[0-9a-f]{128}$/); // DER OCTET STRING of an uncompressed P-256 point
    expect(kt.value).toBe('0300000000000000');
  });

  it('a single sensitive or invalid attribute is explained by the same call', () => {
    const o = counted(`const p = await gen('one');
      return [hex(await m.C_GetAttributeValue(s, p.privateKey, [${CLASS}, ${VALUE}, ${SIGN}])),
              hex(await m.C_GetAttributeValue(s, p.privateKey, [${CLASS}, ${EC_POINT}]))];`);
    expect(o.result?.ok, o.stderr).toEqual([
      [{ type: CLASS, value: '0300000000000000' }, { type: VALUE, unavailable: 'sensitive' }, { type: SIGN, value: '01' }],
      [{ type: CLASS, value: '0300000000000000' }, { type: EC_POINT, unavailable: 'invalid' }],
    ]);
    expect(o.calls.C_GetAttributeValue).toBe(2);
  });

  it('a value longer than its guess is read whole by a size query and fetch of that attribute alone', () => {
    const long = 'L'.repeat(3000);
    const o = counted(`const p = await gen(${JSON.stringify(long)});
      return hex(await m.C_GetAttributeValue(s, p.publicKey, [${CLASS}, ${LABEL}]));`);
    expect(o.result?.ok, o.stderr).toEqual([
      { type: CLASS, value: '0200000000000000' },
      { type: LABEL, value: Buffer.from(long).toString('hex') },
    ]);
    expect(o.calls.C_GetAttributeValue).toBe(3);
  });
});

describe('C_GenerateKeyPair with reads', () => {
  it('returns the handles and both halves\' attributes from one job, as separate reads give them', () => {
    const o = counted(`const p = await gen('pair', [[${CLASS}, ${EC_POINT}, ${LABEL}], [${CLASS}, ${VALUE}, ${EC_PARAMS}]]);
      const again = [hex(await m.C_GetAttributeValue(s, p.publicKey, [${CLASS}, ${EC_POINT}, ${LABEL}])),
                     hex(await m.C_GetAttributeValue(s, p.privateKey, [${CLASS}, ${VALUE}, ${EC_PARAMS}]))];
      return { keys: [typeof p.publicKey, typeof p.privateKey], reads: [hex(p.publicAttributes), hex(p.privateAttributes)], again };`);
    expect(o.result?.ok, o.stderr).toBeDefined();
    expect(o.result.ok.keys).toEqual(['number', 'number']);
    expect(o.result.ok.reads).toEqual(o.result.ok.again);
    expect(o.result.ok.reads[1][1]).toEqual({ type: VALUE, unavailable: 'sensitive' });
    expect(o.calls.C_GenerateKeyPair).toBe(1);
    expect(o.calls.C_GetAttributeValue).toBe(4); // 2 in the job, 2 for the comparison
  });

  it('a read that fails leaves the pair to the caller: both handles and the read\'s CK_RV, nothing destroyed', () => {
    const o = counted(
      `const p = await gen('failed', [[${CLASS}], [${CLASS}]]);
      const label = [{ type: ${LABEL}, value: Buffer.from('failed') }];
      const made = (await m.findObjects(s, label)).sort((a, b) => a - b);
      await m.C_DestroyObject(s, [p.publicKey, p.privateKey]);
      return { keys: Object.keys(p), readError: p.readError, same: made.join() === [p.publicKey, p.privateKey].sort((a, b) => a - b).join(),
               left: (await m.findObjects(s, label)).length };`,
      { fail: [['C_GetAttributeValue', 2, 'CKR_DEVICE_ERROR']] },
    );
    expect(o.result?.ok, o.stderr).toEqual({ keys: ['publicKey', 'privateKey', 'readError'], readError: 0x30, same: true, left: 0 });
    expect(o.calls.C_GetAttributeValue).toBe(2);
    expect(o.calls.C_DestroyObject).toBe(2); // the caller's, after the job
  });

  it('through Session: readError is the read\'s Pkcs11Error, and the caller\'s rollback works', () => {
    const counts = join(dir, `counts-${++runs}`);
    const code = `
      const { Module, Pkcs11Error, CKA, CKM } = await import(${JSON.stringify(resolve(import.meta.dirname, '../dist/p11/index.js'))});
      const mod = await Module.load(process.env.MODULE);
      const [slot] = await mod.getSlots();
      const s = await slot.openSession();
      await s.login(${JSON.stringify(token.userPin)});
      const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
      const label = [{ type: CKA.LABEL, value: 'via-session' }];
      const r = await s.generateKeyPairAndRead({ mechanism: CKM.EC_KEY_PAIR_GEN },
        [{ type: CKA.TOKEN, value: true }, ...label, { type: CKA.EC_PARAMS, value: P256 }],
        [{ type: CKA.TOKEN, value: true }, ...label, { type: CKA.SIGN, value: true }],
        { publicKey: [CKA.CLASS, CKA.EC_POINT], privateKey: [CKA.CLASS] });
      const e = r.readError;
      const found = (await s.find(label)).length;
      await s.destroyObject([r.publicKey, r.privateKey]);
      console.log(JSON.stringify({ isError: e instanceof Pkcs11Error, code: e?.code, fn: e?.fn, attrs: r.publicAttributes ?? null,
        found, left: (await s.find(label)).length }));
      await mod.close();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...token.env, MODULE: faultModule(), ...faultEnv({ module: token.module, counts, fail: [['C_GetAttributeValue', 1, 'CKR_DEVICE_ERROR']] }) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ isError: true, code: 0x30, fn: 'C_GetAttributeValue', attrs: null, found: 2, left: 0 });
  });

  it('read lists must be arrays of attribute types', () => {
    const o = counted(`await gen('bad', [[${CLASS}], 'x']);`);
    expect(o.result?.error?.message, o.stderr).toMatch(/privateRead must be an array/);
  });
});
