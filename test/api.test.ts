// The library API: the same commands with typed options, in-process on the embedded token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kmu, KmuError, UsageError, RC } from '../src/index.js';

let dir: string;
let kmu: Kmu;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-api-'));
  kmu = await Kmu.open({ home: join(dir, 'home') });
});
afterAll(async () => {
  await kmu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Kmu', () => {
  it('refuses key commands before loginHSM with 0xa3', async () => {
    const e = await kmu.genECCKeyPair({ curve: 2, label: 'x' }).catch((x) => x);
    expect(e).toBeInstanceOf(KmuError);
    expect(e.code).toBe(RC.NOT_LOGGED_IN);
  });

  it('logs in and generates, finds and reads back a pair', async () => {
    await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
    const pair = await kmu.genECCKeyPair({ curve: 'P-384', label: 'api signer', id: 'api-1', nex: true });
    expect(pair.publicKey).toBeGreaterThan(0);
    expect(pair.privateKey).not.toBe(pair.publicKey);
    expect(pair.curve.nid).toBe('NID_secp384r1');
    expect(pair.privateTemplate).toMatchObject({ CKA_EXTRACTABLE: false, CKA_SIGN: true, CKA_SENSITIVE: true, CKA_ID: Buffer.from('api-1').toString('hex') });
    expect(await kmu.findKey({ id: 'api-1' })).toEqual([pair.publicKey, pair.privateKey].sort((a, b) => a - b));
    const attrs = await kmu.getAttribute({ handle: pair.privateKey, attribute: 512 });
    const get = (n: string) => attrs.attributes.find((a) => a.name === n)?.value;
    expect(get('OBJ_ATTR_EXTRACTABLE')).toBe('0x00');
    expect(get('OBJ_ATTR_LABEL')).toBe('api signer');
    expect(get('OBJ_ATTR_MODULUS_BITS')).toBe('0x00000180');
    // Both halves share the KCV: the public key's SHA-1.
    const pubKcv = (await kmu.getAttribute({ handle: pair.publicKey, attribute: 371 })).attributes[0]!.value;
    expect(get('OBJ_ATTR_KCV')).toBe(pubKcv);
    expect(await kmu.findKey({ kcv: pubKcv })).toEqual([pair.publicKey, pair.privateKey].sort((a, b) => a - b));
  });

  it('makes DSA pairs with 2048-bit domain parameters and leaves no parameter object', async () => {
    const before = await kmu.findKey();
    const pair = await kmu.genDSAKeyPair({ label: 'api dsa' });
    const after = await kmu.findKey();
    expect(after.length).toBe(before.length + 2);
    const len = (await kmu.getAttribute({ handle: pair.publicKey, attribute: 353 })).attributes[0]!.value;
    expect(len).toBe('0x00000100');
  });

  it('validates typed options with the flag rules', async () => {
    await expect(kmu.genECCKeyPair({ curve: 16, label: 'x' })).rejects.toBeInstanceOf(UsageError);
    await expect(kmu.genECCKeyPair({ curve: 2, label: 'x', timeout: 3 })).rejects.toThrow(/-timeout is valid only together with -min_srv/);
    await expect(kmu.run('genECCKeyPair', { curve: 2, label: 'x', colour: 'red' })).rejects.toThrow(/has no option 'colour'/);
    const dup = await kmu.genECCKeyPair({ curve: 2, label: 'x', id: 'api-1' }).catch((e) => e);
    expect(dup).toBeInstanceOf(KmuError);
    expect(dup.code).toBe(RC.KEY_ID_EXISTS);
  });

  it('keeps session pairs for its own life only', async () => {
    const pair = await kmu.genECCKeyPair({ curve: 2, label: 'temp', sess: true });
    expect(await kmu.findKey({ sess: 1 })).toEqual(expect.arrayContaining([pair.publicKey, pair.privateKey]));
    const persistent = await kmu.findKey({ sess: 0 });
    expect(persistent).not.toContain(pair.publicKey);
    expect(persistent).not.toContain(pair.privateKey);
  });
});
