// wrapKey / unWrapKey with AES-GCM (-m 10 AES_GCM, -m 11 CLOUDHSM_AES_GCM) and RSA_AES (-m 7) on
// the embedded SoftHSM token (which wraps with neither: kmu11 builds them from the token's
// AES-GCM encryption, RSA-OAEP and AES key wrap): blobs node:crypto decrypts with the wrapping
// key's value, -aad, -iv_file and -tag_size taking effect both ways, bad blobs refused with
// nothing made.
import { constants, createCipheriv, createDecipheriv, createPrivateKey, privateDecrypt, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome } from './helpers/cli.js';
import { embeddedToken, keyCount, type TokenRef } from './helpers/oracle.js';

let h: ReturnType<typeof makeHome>;
let token: TokenRef;
const file = (name: string) => join(h.home, name);
const run = (...words: string[]) => kmu11(['singlecmd', ...LOGIN, ...words], { env: h.env, cwd: h.home });
const handleOf = (stdout: string) => Number(/Handle: (\d+)/.exec(stdout)?.[1]);
const ok = (r: ReturnType<typeof run>) => {
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return r;
};
/** A key's value, exported by exSymKey under the wrapping key (itself checked in key-transfer.test.ts). */
const valueOf = (key: number, name: string) => {
  ok(run('exSymKey', '-k', String(key), '-w', String(aes), '-out', name));
  return readFileSync(file(name));
};
const gcmDecrypt = (key: Buffer, iv: Buffer, blob: Buffer, tag: number, aad?: Buffer) => {
  const d = createDecipheriv(`aes-${key.length * 8}-gcm`, key, iv, { authTagLength: tag });
  if (aad) d.setAAD(aad);
  d.setAuthTag(blob.subarray(blob.length - tag));
  return Buffer.concat([d.update(blob.subarray(0, blob.length - tag)), d.final()]);
};

let aes: number;
let aesKey: Buffer;
let target: number;
let targetKey: Buffer;

beforeAll(() => {
  h = makeHome();
  ok(kmu11(['singlecmd', ...LOGIN], { env: h.env })); // makes the home, the directory the commands run in
  aes = handleOf(ok(run('genSymKey', '-t', '31', '-s', '32', '-l', 'gcm-wrapper')).stdout);
  token = embeddedToken(h.env);
  aesKey = valueOf(aes, 'wrapper.key');
  target = handleOf(ok(run('genSymKey', '-t', '31', '-s', '16', '-l', 'gcm-target')).stdout);
  targetKey = valueOf(target, 'target.key');
});
afterAll(() => h.cleanup());

describe('AES-GCM wrapping', () => {
  it('-m 10 -noheader: the IV goes to -iv_file, -aad and -tag_size are used; node:crypto decrypts the key, and unWrapKey takes it back', () => {
    const aad = Buffer.from('kmu11 aad');
    writeFileSync(file('aad.bin'), aad);
    const w = ok(run('wrapKey', '-k', String(target), '-w', String(aes), '-out', 'gcm10.bin', '-m', '10', '-noheader', '-iv_file', 'iv.bin', '-aad', 'aad.bin', '-tag_size', '12'));
    expect(w.stdout).toMatch(/Cfm2WrapKey returned: 0x00/);
    const iv = readFileSync(file('iv.bin'));
    const blob = readFileSync(file('gcm10.bin'));
    expect(iv).toHaveLength(12);
    expect(blob).toHaveLength(16 + 12);
    expect(gcmDecrypt(aesKey, iv, blob, 12, aad)).toEqual(targetKey);
    // The AAD and the tag size take effect: without them the tag does not verify.
    expect(() => gcmDecrypt(aesKey, iv, blob, 12)).toThrow();
    expect(() => gcmDecrypt(aesKey, iv, blob, 16, aad)).toThrow();

    const u = ok(run('unWrapKey', '-f', 'gcm10.bin', '-w', String(aes), '-m', '10', '-noheader', '-iv_file', 'iv.bin', '-aad', 'aad.bin', '-tag_size', '12', '-l', 'back10', '-kc', '4', '-kt', '31'));
    expect(valueOf(handleOf(u.stdout), 'back10.key')).toEqual(targetKey);

    // Wrong AAD, wrong tag size, a changed blob: refused, nothing made.
    const before = keyCount(token);
    writeFileSync(file('other.bin'), Buffer.from('other aad'));
    const flipped = Buffer.from(blob);
    flipped[0]! ^= 1;
    writeFileSync(file('flipped.bin'), flipped);
    for (const bad of [
      ['-f', 'gcm10.bin', '-aad', 'other.bin', '-tag_size', '12'],
      ['-f', 'gcm10.bin', '-aad', 'aad.bin', '-tag_size', '16'],
      ['-f', 'flipped.bin', '-aad', 'aad.bin', '-tag_size', '12'],
    ]) {
      const b = run('unWrapKey', ...bad, '-w', String(aes), '-m', '10', '-noheader', '-iv_file', 'iv.bin', '-l', 'bad', '-kc', '4', '-kt', '31');
      expect(b.status, b.stdout).not.toBe(0);
      expect(b.stderr).toMatch(/GCM tag does not verify/);
    }
    expect(keyCount(token)).toBe(before);
  });

  it('-m 10 and -m 11 without -iv_file: the IV leads the blob (CloudHSM\'s layout for 11); header round trips keep the key', () => {
    for (const m of ['10', '11']) {
      ok(run('wrapKey', '-k', String(target), '-w', String(aes), '-out', `raw${m}.bin`, '-m', m, '-noheader'));
      const raw = readFileSync(file(`raw${m}.bin`));
      expect(raw).toHaveLength(12 + 16 + 16);
      expect(gcmDecrypt(aesKey, raw.subarray(0, 12), raw.subarray(12), 16)).toEqual(targetKey);
      ok(run('wrapKey', '-k', String(target), '-w', String(aes), '-out', `hdr${m}.key`, '-m', m));
      const u = ok(run('unWrapKey', '-f', `hdr${m}.key`, '-w', String(aes), '-m', m, '-l', `header-back${m}`));
      expect(valueOf(handleOf(u.stdout), `header-back${m}.key`)).toEqual(targetKey);
    }
    // Two wraps of one key use two IVs.
    expect(readFileSync(file('raw10.bin')).subarray(0, 12)).not.toEqual(readFileSync(file('raw11.bin')).subarray(0, 12));
  });

  it('unwraps a blob node:crypto made', () => {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', aesKey, iv);
    const blob = Buffer.concat([iv, c.update(key), c.final(), c.getAuthTag()]);
    writeFileSync(file('node.bin'), blob);
    const u = ok(run('unWrapKey', '-f', 'node.bin', '-w', String(aes), '-m', '11', '-noheader', '-l', 'from-node', '-kc', '4', '-kt', '31'));
    expect(valueOf(handleOf(u.stdout), 'from-node.key')).toEqual(key);
  });

  it("the pages' flag rules: -iv_file only with -noheader for 10, -aad only for GCM; refused with nothing made or written", () => {
    const before = keyCount(token);
    const r = run('wrapKey', '-k', String(target), '-w', String(aes), '-out', 'no.bin', '-m', '11', '-noheader', '-iv_file', 'iv2.bin');
    expect(r.status).not.toBe(0);
    expect(run('wrapKey', '-k', String(target), '-w', String(aes), '-out', 'no.bin', '-m', '4', '-aad', 'aad.bin').status).not.toBe(0);
    expect(existsSync(file('no.bin'))).toBe(false);
    expect(existsSync(file('iv2.bin'))).toBe(false);
    expect(keyCount(token)).toBe(before);
  });
});

describe('RSA_AES wrapping (-m 7)', () => {
  it('node:crypto takes the blob apart (RSA-OAEP of an AES key, then RFC 5649 under it); unWrapKey takes it back; a damaged blob makes nothing', () => {
    const pair = ok(run('genRSAKeyPair', '-m', '2048', '-e', '65537', '-l', 'rsa-aes'));
    const [, pub, priv] = /public key handle: (\d+)\s+private key handle: (\d+)/.exec(pair.stdout)!;
    ok(run('exportPrivateKey', '-k', priv!, '-w', String(aes), '-out', 'rsa-aes.pem'));
    const privateKey = createPrivateKey(readFileSync(file('rsa-aes.pem')));
    const before = keyCount(token);
    ok(run('wrapKey', '-k', String(target), '-w', pub!, '-out', 'rsaaes.bin', '-m', '7', '-noheader'));
    expect(keyCount(token)).toBe(before); // the AES key of the wrap is gone
    const blob = readFileSync(file('rsaaes.bin'));
    const kek = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, blob.subarray(0, 256));
    expect(kek).toHaveLength(32);
    const d = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
    expect(Buffer.concat([d.update(blob.subarray(256)), d.final()])).toEqual(targetKey);

    ok(run('wrapKey', '-k', String(target), '-w', pub!, '-out', 'rsaaes.key', '-m', '7'));
    const u = ok(run('unWrapKey', '-f', 'rsaaes.key', '-w', priv!, '-m', '7', '-l', 'rsa-aes-back'));
    expect(valueOf(handleOf(u.stdout), 'rsa-aes-back.key')).toEqual(targetKey);

    const after = keyCount(token);
    const flipped = Buffer.from(blob);
    flipped[blob.length - 3]! ^= 1; // in the RFC 5649 part
    writeFileSync(file('rsaaes-bad.bin'), flipped);
    const b = run('unWrapKey', '-f', 'rsaaes-bad.bin', '-w', priv!, '-m', '7', '-noheader', '-l', 'bad', '-kc', '4', '-kt', '31');
    expect(b.status).not.toBe(0);
    expect(b.stderr).toMatch(/^Error: /m);
    expect(keyCount(token)).toBe(after);
  });
});
