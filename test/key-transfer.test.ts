// The commands of issue 13 part 1 (genSymKey, genRSAKeyPair, wrapKey, unWrapKey, exSymKey,
// imSymKey, importPubKey, exportPrivateKey, importPrivateKey, aesWrapUnwrap, findSingleKey,
// getCert, getCaviumPrivKey, IsValidKeyHandlefile, extract/insertMaskedObject, genPBEKey):
// their pages' examples, and what they export or import checked by openssl / node:crypto /
// pkcs11-tool, never by kmu11 itself.
//
// Page lines kmu11 consciously differs from (each test names which of these it skips):
//  - wrapKey "Wrapped Key written to file … length 307": the length is of kmu11's own header
//    (CloudHSM's header is its private format), so the number differs.
//  - genSymKey "-u 4,5" / "-m_value 2 -u 6 -attest", genRSAKeyPair "-u 4 -m_value 2", imSymKey
//    "-attest": run as the pages show them, with the CUs 3–6 they name made first (the embedded
//    token's users) and -attest pinning the token on first use.
//  - getCert: no PKCS#11 token has partition certificates: refused (0x04), nothing written.
//  - imSymKey/getAttribute "-a 355" dump line and the getAttribute dumps: getAttribute's format
//    is the output-profile work's (scripts), not compared here.
import { createCipheriv, createDecipheriv, createHash, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { normalize, pageExamples, type PageExample } from './helpers/pages.js';
import { embeddedToken, keyCount, pkcs11Tool, type TokenRef } from './helpers/oracle.js';

const page = (name: string) => pageExamples(`cloudhsm-docs/key_mgmt_util-${name}.md`);
let h: ReturnType<typeof makeHome>;
let token: TokenRef;
const file = (name: string) => join(h.home, name);

const run = (...words: string[]) => kmu11(['singlecmd', ...LOGIN, ...words], { env: h.env, cwd: h.home });
/** The lines after loginHSM's own (which end with its cluster status). */
const after = (stdout: string) => stdout.split('\n').slice(stdout.split('\n').findIndex((l) => l.startsWith('Node id')) + 1);
/** normalize, with the handles these pages print inside lines masked too. */
const masked = (lines: string[]) => normalize(lines).map((l) => l.replace(/(Handle: )\d+/, '$1H').replace(/(invalid key handle: )\d+/, '$1H'));
const fromLine = (stdout: string, prefix: string) => stdout.split('\n').slice(stdout.split('\n').findIndex((l) => l.startsWith(prefix)));
const handleOf = (stdout: string) => Number(/Handle: (\d+)/.exec(stdout)?.[1]);
/** The page's command with its handles replaced by ours, in order of the flags given. */
const cmd = (e: PageExample, subs: Record<string, string | number> = {}) =>
  e.command
    .trim()
    .split(/\s+/)
    .map((w, i, all) => (i > 0 && all[i - 1]! in subs ? String(subs[all[i - 1]!]) : w));
/** Runs a page example (with substitutions) and compares its lines with the page's. */
function replay(e: PageExample, subs: Record<string, string | number> = {}) {
  const r = run(...cmd(e, subs));
  expect(r.status, r.stderr).toBe(0);
  expect(masked(after(r.stdout))).toEqual(masked(e.output));
  return r;
}
const kcv = (handle: number) => {
  const r = run('getAttribute', '-o', String(handle), '-a', '371');
  expect(r.status, r.stderr).toBe(0);
  return /0x[0-9a-f]{6}/.exec(r.stdout.split('OBJ_ATTR_KCV')[1] ?? '')![0];
};
const unwrapRfc3394 = (key: Buffer, blob: Buffer, pad: boolean) => {
  const d = createDecipheriv(`id-aes${key.length * 8}-wrap${pad ? '-pad' : ''}`, key, Buffer.from(pad ? 'a65959a6' : 'a6a6a6a6a6a6a6a6', 'hex'));
  return Buffer.concat([d.update(blob), d.final()]);
};

let aes: number; // the wrapping key, imported from aesKey so openssl knows its value
let aesKey: Buffer;
let des3: number;

beforeAll(() => {
  h = makeHome();
  expect(kmu11(['singlecmd', ...LOGIN], { env: h.env }).status).toBe(0);
  for (const name of ['user3', 'user4', 'user5', 'user6']) {
    const u = kmu11(['users', 'create', 'CU', name], { env: h.env, input: 'password\nuser-pass-1\nuser-pass-1\n' });
    expect(u.status, u.stderr).toBe(0);
  }
  token = embeddedToken(h.env);
  // A known AES-256 wrapping key: made on the token by genSymKey, exported with exSymKey under
  // itself, and the value checked against openssl below.
  const g = run('genSymKey', '-t', '31', '-s', '32', '-l', 'wrapper');
  expect(g.status, g.stderr).toBe(0);
  aes = handleOf(g.stdout);
  const e = run('exSymKey', '-k', String(aes), '-w', String(aes), '-out', 'wrapper.key');
  expect(e.status, e.stderr).toBe(0);
  aesKey = readFileSync(file('wrapper.key'));
  // The genSymKey page's shared 3DES key, as the page makes it (shared with users 4 and 5).
  const d = run('genSymKey', '-t', '21', '-s', '24', '-l', '3DES_shared', '-id', 'IT-02', '-u', '4,5');
  expect(d.status, d.stderr).toBe(0);
  des3 = handleOf(d.stdout);
});
afterAll(() => h.cleanup());

describe('genSymKey and genRSAKeyPair', () => {
  it("replays genSymKey's examples; what the token lacks (RC4) or the page forbids is refused with nothing made", () => {
    const [aes256, sess, quick, quorum, shared] = page('genSymKey');
    replay(aes256!);
    expect(run(...cmd(sess!)).status).toBe(0);
    // The page shows no output for this one, only a shell loop around it.
    expect(run(...cmd(quick!)).status).toBe(0);
    // (The shared example is the 3DES key made before the tests, with its -id IT-02.)
    expect(shared!.command).toContain('-id IT-02 -u 4,5');
    const q = run(...cmd(quorum!));
    expect(q.status, q.stderr).toBe(0);
    expect(q.stdout).toMatch(/Cfm3GenerateSymmetricKey returned: 0x00/);
    const before = keyCount(token);
    const rc4 = run('genSymKey', '-t', '18', '-s', '16', '-l', 'rc4');
    expect(rc4.stdout).toMatch(/Cfm3GenerateSymmetricKey returned: 0x05/);
    expect(rc4.stderr).toMatch(/cannot make RC4 keys: it does not offer CKM_RC4_KEY_GEN/);
    for (const bad of [['-t', '31', '-s', '20'], ['-t', '21', '-s', '16'], ['-t', '16', '-s', '3584'], ['-t', '17', '-s', '16']]) {
      const r = run('genSymKey', ...bad, '-l', 'bad');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/^Error: /m);
    }
    const dup = run('genSymKey', '-t', '31', '-s', '16', '-l', 'dup', '-id', 'IT-02');
    expect(dup.stdout).toMatch(/returned: 0x07/);
    expect(keyCount(token)).toBe(before);
  });

  it('makes the 3DES key of the page with explicit attributes, and a key openssl agrees on', () => {
    const r = run('getAttribute', '-o', String(des3), '-a', '512');
    for (const [name, value] of [
      ['CLASS', '0x04'], ['KEY_TYPE', '0x15'], ['TOKEN', '0x01'], ['PRIVATE', '0x01'], ['ENCRYPT', '0x01'], ['DECRYPT', '0x01'],
      ['WRAP', '0x00'], ['UNWRAP', '0x00'], ['SIGN', '0x00'], ['VERIFY', '0x00'], ['LOCAL', '0x01'], ['SENSITIVE', '0x01'],
      ['EXTRACTABLE', '0x01'], ['LABEL', '3DES_shared'], ['ID', 'IT-02'], ['VALUE_LEN', '0x00000018'],
    ])
      expect(r.stdout).toContain(`OBJ_ATTR_${name}\n${value}\n`);
    // The wrapping key's KCV is CloudHSM's (AES-ECB of a zero block), computed here by openssl's AES.
    const c = createCipheriv('aes-256-ecb', aesKey, null).setAutoPadding(false);
    expect(kcv(aes)).toBe('0x' + c.update(Buffer.alloc(16)).subarray(0, 3).toString('hex'));
  });

  it("replays genRSAKeyPair's example; the pair signs (pkcs11-tool) and openssl verifies with the exported public key", () => {
    const [made] = page('genRSAKeyPair');
    const sharedEx = page('genRSAKeyPair').find((e) => e.command.includes('-m_value'));
    const r = run(...cmd(made!), '-id', 'rsa-1');
    expect(r.status, r.stderr).toBe(0);
    expect(masked(after(r.stdout))).toEqual(masked(made!.output.filter((l) => !l.includes('Node id 1'))).map((l) => l.replace('Cluster Status:', 'Cluster Error Status').replace(/status: 0x00000000/, 'and err state 0x00000000')));
    const { pub } = pairHandles(r.stdout);
    expect(run('exportPubKey', '-k', String(pub), '-out', 'rsa.pem').status).toBe(0);
    expect(execFileSync('openssl', ['pkey', '-pubin', '-in', file('rsa.pem'), '-noout', '-text'], { encoding: 'utf8' })).toMatch(/Public-Key: \(2048 bit\)[\s\S]*Exponent: 65537/);
    writeFileSync(file('msg'), 'signed by the HSM');
    pkcs11Tool(token, ['--sign', '-m', 'SHA256-RSA-PKCS', '--id', Buffer.from('rsa-1').toString('hex'), '-i', file('msg'), '-o', file('msg.sig')]);
    expect(execFileSync('openssl', ['dgst', '-sha256', '-verify', file('rsa.pem'), '-signature', file('msg.sig'), file('msg')], { encoding: 'utf8' })).toMatch(/Verified OK/);
    const q = run(...cmd(sharedEx!));
    expect(q.status, q.stderr).toBe(0);
    expect(q.stdout).toMatch(/returned: 0x00/);
    for (const bad of [['-m', '1024', '-e', '65537'], ['-m', '2048', '-e', '65536'], ['-m', '2048', '-e', '3']]) {
      const b = run('genRSAKeyPair', ...bad, '-l', 'bad');
      expect(b.status).not.toBe(0);
      expect(b.stderr).toMatch(/^Error: /m);
    }
  });
});

describe('wrapKey and unWrapKey', () => {
  it('wraps with -m 4/5/6; openssl / node:crypto unwrap the -noheader blobs to the key exSymKey exports', () => {
    const e = page('wrapKey')[0]!;
    const r = run(...cmd(e, { '-k': des3, '-w': aes }));
    expect(r.status, r.stderr).toBe(0);
    // The page's length is of CloudHSM's header (see the top of this file).
    const lengthLine = (l: string) => l.replace(/length \d+$/, 'length N');
    expect(masked(after(r.stdout)).map(lengthLine)).toEqual(masked(e.output).map(lengthLine));
    expect(r.stdout).toContain(`length ${readFileSync(file('3DES-encrypted.key')).length}`);
    expect(run('exSymKey', '-k', String(des3), '-w', String(aes), '-out', '3DES.plain').status).toBe(0);
    const plain = readFileSync(file('3DES.plain'));
    expect(plain.length).toBe(24);
    const m = run(
      ...['wrapKey', '-k', String(des3), '-w', String(aes), '-out', 'w4', '-m', '4', '-noheader'],
      ...['wrapKey', '-k', String(des3), '-w', String(aes), '-out', 'w5', '-m', '5', '-noheader'],
      ...['wrapKey', '-k', String(des3), '-w', String(aes), '-out', 'w6', '-m', '6', '-noheader'],
    );
    expect(m.status, m.stderr).toBe(0);
    // -m 4: RFC 3394 over the key padded PKCS#5-style (24 bytes -> 32 -> 40), checked with openssl enc.
    const w4 = readFileSync(file('w4'));
    expect(w4.length).toBe(40);
    const viaOpenssl = execFileSync('openssl', ['enc', '-d', '-id-aes256-wrap', '-K', aesKey.toString('hex'), '-iv', 'A6A6A6A6A6A6A6A6', '-in', file('w4')]);
    expect(viaOpenssl).toEqual(Buffer.concat([plain, Buffer.alloc(8, 8)]));
    expect(unwrapRfc3394(aesKey, readFileSync(file('w5')), false)).toEqual(plain);
    expect(unwrapRfc3394(aesKey, readFileSync(file('w6')), true)).toEqual(plain);
  });

  it('wraps under an RSA public key (-m 8 OAEP, -m 12 PKCS#1): openssl decrypts with the exported private key; unWrapKey takes it back', () => {
    const g = run('genRSAKeyPair', '-m', '2048', '-e', '65537', '-l', 'rsa-wrap');
    const { pub, priv } = pairHandles(g.stdout);
    const r = run(
      ...['wrapKey', '-k', String(des3), '-w', String(pub), '-m', '8', '-t', '2', '-noheader', '-out', 'oaep.bin'],
      ...['wrapKey', '-k', String(des3), '-w', String(pub), '-m', '12', '-noheader', '-out', 'pkcs.bin'],
      ...['wrapKey', '-k', String(des3), '-w', String(pub), '-m', '8', '-out', 'oaep.hdr'],
      ...['exportPrivateKey', '-k', String(priv), '-w', String(aes), '-out', 'rsa-wrap.pem'],
      ...['exSymKey', '-k', String(des3), '-w', String(aes), '-out', 'des3.plain'],
    );
    expect(r.status, r.stderr).toBe(0);
    const plain = readFileSync(file('des3.plain'));
    const decrypt = (f: string, ...opts: string[]) =>
      execFileSync('openssl', ['pkeyutl', '-decrypt', '-inkey', file('rsa-wrap.pem'), '-in', file(f), ...opts.flatMap((o) => ['-pkeyopt', o])]);
    expect(decrypt('oaep.bin', 'rsa_padding_mode:oaep', 'rsa_oaep_md:sha1')).toEqual(plain);
    expect(decrypt('pkcs.bin')).toEqual(plain);
    const u = run('unWrapKey', '-f', 'oaep.hdr', '-w', String(priv), '-m', '8', '-l', 'from-rsa', '-sess', 'getAttribute', '-o', String(des3), '-a', '371');
    expect(u.status, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/Key Unwrapped\.  Key Handle: \d+/);
    // An AES key cannot take an RSA mechanism, nor the public key unwrap: refused before the token is asked.
    expect(run('wrapKey', '-k', String(des3), '-w', String(aes), '-m', '8', '-out', 'no').stderr).toMatch(/not an RSA public key/);
    expect(run('unWrapKey', '-f', 'oaep.hdr', '-w', String(pub), '-m', '8').stderr).toMatch(/not an RSA private key/);
  });

  it("replays unWrapKey's examples: the header round trip and a blob openssl wrapped, both the same key material", () => {
    const [withHeader, noHeader] = page('unwrapKey');
    const r = replay(withHeader!, { '-f': '3DES-encrypted.key', '-w': aes });
    const back = handleOf(r.stdout);
    expect(kcv(back)).toBe(kcv(des3));
    // A 3DES key wrapped outside kmu11 (openssl, RFC 3394 over the PKCS#5-padded key), as the page's second example.
    const key = randomBytes(24);
    const c = createCipheriv('id-aes256-wrap', aesKey, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
    writeFileSync(file('3DES.key'), Buffer.concat([c.update(Buffer.concat([key, Buffer.alloc(8, 8)])), c.final()]));
    const n = replay(noHeader!, { '-w': aes });
    const imported = handleOf(n.stdout);
    expect(run('exSymKey', '-k', String(imported), '-w', String(aes), '-out', 'check.key').status).toBe(0);
    expect(readFileSync(file('check.key'))).toEqual(key);
  });

  it('leaves nothing behind when an unwrap fails, and refuses what cannot be wrapped', () => {
    const nex = handleOf(run('genSymKey', '-t', '31', '-s', '16', '-l', 'nex', '-nex').stdout);
    const w = run('wrapKey', '-k', String(nex), '-w', String(aes), '-out', 'x', '-m', '4');
    expect(w.status).not.toBe(0);
    expect(w.stderr).toMatch(/not extractable/);
    expect(existsSync(file('x'))).toBe(false);
    const before = keyCount(token);
    writeFileSync(file('garbage'), randomBytes(40));
    const g = run('unWrapKey', '-f', 'garbage', '-w', String(aes), '-m', '4', '-noheader', '-l', 'x', '-kc', '4', '-kt', '31');
    expect(g.status).not.toBe(0);
    expect(g.stderr).toMatch(/integrity check failed/);
    for (const bad of [['-m', '9'], ['-m', '10'], ['-m', '4', '-noheader', '-l', 'x', '-kc', '4'], ['-m', '4', '-noheader', '-l', 'x', '-kc', '3', '-kt', '31'], ['-m', '5', '-t', '3']]) {
      const b = run('unWrapKey', '-f', 'garbage', '-w', String(aes), ...bad);
      expect(b.status).not.toBe(0);
      expect(b.stderr).toMatch(/^Error: /m);
    }
    expect(keyCount(token)).toBe(before);
  });

  it('unwraps a -noheader private key with the -l label and -id given, and the usage its type has', () => {
    const { priv } = pairHandles(run('genECCKeyPair', '-i', '2', '-l', 'nh-source').stdout);
    const w = run('wrapKey', '-k', String(priv), '-w', String(aes), '-out', 'nh.bin', '-m', '6', '-noheader');
    expect(w.status, w.stderr).toBe(0);
    const u = run('unWrapKey', '-f', 'nh.bin', '-w', String(aes), '-m', '6', '-noheader', '-l', 'nh-copy', '-id', 'nh1', '-kc', '3', '-kt', '3');
    expect(u.status, u.stderr).toBe(0);
    const copy = handleOf(u.stdout);
    const found = run('findKey', '-l', 'nh-copy', '-id', 'nh1', '-c', '3');
    expect(found.stdout).toMatch(new RegExp(`Handles of matching keys:\\t${copy}\\n`));
    const sign = run('getAttribute', '-o', String(copy), '-a', '264');
    expect(sign.stdout).toMatch(/OBJ_ATTR_SIGN\n0x01/);
  });
});

describe('exSymKey, imSymKey and aesWrapUnwrap', () => {
  it("replays exSymKey's and imSymKey's examples, with -wk both ways, and refuses a -wk key that is not -w's", () => {
    const ex = page('exSymKey');
    replay(ex[0]!, { '-k': des3, '-w': aes });
    const imported = page('imSymKey');
    writeFileSync(file('aes256.key'), aesKey);
    const i = replay(imported[0]!, { '-w': aes });
    expect(kcv(handleOf(i.stdout))).toBe(kcv(aes));
    expect(run('getAttribute', '-o', String(handleOf(i.stdout)), '-a', '355').stdout).toMatch(/OBJ_ATTR_LOCAL\n0x0+\n/);
    // exSymKey -wk: wrapped under the token key, unwrapped with the file's copy of it.
    const external = ex.find((e) => e.command.includes('-wk'))!;
    writeFileSync(file('aes256-forImport.key'), aesKey);
    replay(external, { '-k': des3, '-w': aes });
    expect(readFileSync(file('aes192_H21.key'))).toEqual(readFileSync(file('3DES.plain')));
    // imSymKey -wk: wrapped with the file's key, unwrapped under -w.
    writeFileSync(file('other.key'), randomBytes(32));
    const before = keyCount(token);
    const wrong = run('imSymKey', '-f', '3DES.plain', '-w', String(aes), '-t', '21', '-l', 'x', '-wk', 'other.key');
    expect(wrong.status).not.toBe(0);
    const wrongEx = run('exSymKey', '-k', String(des3), '-w', String(aes), '-out', 'never.key', '-wk', 'other.key');
    expect(wrongEx.status).not.toBe(0);
    expect(existsSync(file('never.key'))).toBe(false);
    expect(keyCount(token)).toBe(before);
    const right = run('imSymKey', '-f', '3DES.plain', '-w', String(aes), '-t', '21', '-l', 'wk', '-wk', 'aes256-forImport.key', '-sess');
    expect(right.status, right.stderr).toBe(0);
    writeFileSync(file('short.key'), randomBytes(20));
    expect(run('imSymKey', '-f', 'short.key', '-w', String(aes), '-t', '31', '-l', 'x').status).not.toBe(0);
    // Two imported keys alike in all but key material keep their own handles in later processes.
    const twins = [randomBytes(16), randomBytes(16)];
    twins.forEach((k, i) => writeFileSync(file(`twin${i}`), k));
    const t = run('imSymKey', '-f', 'twin0', '-w', String(aes), '-t', '31', '-l', 'twin', 'imSymKey', '-f', 'twin1', '-w', String(aes), '-t', '31', '-l', 'twin');
    const handles = [...t.stdout.matchAll(/Key Handle: (\d+)/g)].map((m) => Number(m[1]));
    expect(handles).toHaveLength(2);
    handles.forEach((handle, i) => {
      const c = createCipheriv('aes-128-ecb', twins[i]!, null).setAutoPadding(false);
      expect(kcv(handle)).toBe('0x' + c.update(Buffer.alloc(16)).subarray(0, 3).toString('hex'));
    });
    // The session-key example uses -attest: the token's pins pass.
    writeFileSync(file('3des192.key'), randomBytes(24));
    const att = run(...cmd(imported.find((e) => e.command.includes('-attest'))!, { '-w': aes }));
    expect(att.status, att.stderr).toBe(0);
    expect(att.stdout).toMatch(/returned: 0x00/);
  });

  it("replays aesWrapUnwrap's examples; the wrap is RFC 3394 of the PKCS#5-padded data as openssl computes it", () => {
    const [wrap, unwrap] = page('aesWrapUnwrap');
    writeFileSync(file('3DES.key'), readFileSync(file('3DES.plain')));
    const w = run(...cmd(wrap!, { '-w': aes }));
    expect(w.status, w.stderr).toBe(0);
    const dataLines = (lines: string[]) => lines.map((l) => (/^([0-9A-F]{2} ?){1,8}$/.test(l.trim()) ? 'XX' : l));
    expect(dataLines(masked(after(w.stdout)))).toEqual(dataLines(masked(wrap!.output)));
    const blob = readFileSync(file('3DES.key.wrapped'));
    const c = createCipheriv('id-aes256-wrap', aesKey, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
    expect(blob).toEqual(Buffer.concat([c.update(Buffer.concat([readFileSync(file('3DES.key')), Buffer.alloc(8, 8)])), c.final()]));
    expect(w.stdout).toContain(blob.subarray(0, 8).toString('hex').toUpperCase().match(/../g)!.join(' '));
    const u = run(...cmd(unwrap!, { '-w': aes }));
    expect(dataLines(masked(after(u.stdout)))).toEqual(dataLines(masked(unwrap!.output)));
    expect(readFileSync(file('3DES.key.unwrapped'))).toEqual(readFileSync(file('3DES.key')));
    // A failed unwrap leaves the output file empty, as the page says.
    const f = run('aesWrapUnwrap', '-m', '0', '-f', '3DES.key', '-w', String(aes), '-out', 'bad.out');
    expect(f.status).not.toBe(0);
    expect(readFileSync(file('bad.out')).length).toBe(0);
  });
});

describe('public and private key import and export', () => {
  it('importPubKey (the page): an imported RSA public key verifies what openssl signed, an EC one too', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(file('public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const e = page('importPubKey')[0]!;
    const r = replay(e);
    writeFileSync(file('data'), 'verified on the token');
    writeFileSync(file('data.sig'), cryptoSign('sha256', Buffer.from('verified on the token'), privateKey));
    expect(run('importPubKey', '-l', 'rsa-pub', '-f', 'public.pem', '-id', 'pub-rsa').status).toBe(0);
    const ok = pkcs11Tool(token, ['--verify', '-m', 'SHA256-RSA-PKCS', '--id', Buffer.from('pub-rsa').toString('hex'), '-i', file('data'), '--signature-file', file('data.sig')]);
    expect(ok).toMatch(/Signature is valid/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    writeFileSync(file('ec.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
    const i = run('importPubKey', '-l', 'ec-pub', '-f', 'ec.pem');
    expect(i.stdout).toMatch(/Public Key Handle: \d+/);
    const ecHandle = handleOf(i.stdout);
    expect(run('exportPubKey', '-k', String(ecHandle), '-out', 'ec-back.pem').status).toBe(0);
    expect(createPublicKey(readFileSync(file('ec-back.pem'))).export({ type: 'spki', format: 'der' })).toEqual(ec.publicKey.export({ type: 'spki', format: 'der' }));
    expect(handleOf(r.stdout)).toBeGreaterThan(0);
    // DSA: exported again, it is the same key openssl made.
    execFileSync('openssl', ['genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', file('dsa.param')], { stdio: 'ignore' });
    execFileSync('openssl', ['genpkey', '-paramfile', file('dsa.param'), '-out', file('dsa.key')], { stdio: 'ignore' });
    execFileSync('openssl', ['pkey', '-in', file('dsa.key'), '-pubout', '-out', file('dsa.pub')], { stdio: 'ignore' });
    const d = run('importPubKey', '-l', 'dsa-pub', '-f', 'dsa.pub');
    expect(d.status, d.stderr).toBe(0);
    expect(run('exportPubKey', '-k', String(handleOf(d.stdout)), '-out', 'dsa-back.pem').status).toBe(0);
    expect(readFileSync(file('dsa-back.pem'), 'utf8')).toBe(readFileSync(file('dsa.pub'), 'utf8'));
  });

  it('importPrivateKey (the page): the imported key signs on the token and openssl verifies; exportPrivateKey gives openssl the same key back', () => {
    execFileSync('openssl', ['genrsa', '-out', file('rsa2048.key'), '2048'], { stdio: 'ignore' });
    const e = page('importPrivateKey')[0]!;
    const r = run(...cmd(e, { '-w': aes }), '-id', 'imp-rsa');
    expect(r.status, r.stderr).toBe(0);
    const ber = (l: string) => l.replace(/length is \d+/, 'length is N');
    expect(masked(fromLine(r.stdout, 'BER')).map(ber)).toEqual(
      masked(e.output.filter((l) => !/Node id [12]/.test(l))).map(ber),
    );
    writeFileSync(file('msg'), 'signed with an imported key');
    pkcs11Tool(token, ['--sign', '-m', 'SHA256-RSA-PKCS', '--id', Buffer.from('imp-rsa').toString('hex'), '-i', file('msg'), '-o', file('imp.sig')]);
    execFileSync('openssl', ['rsa', '-in', file('rsa2048.key'), '-pubout', '-out', file('imp.pub')], { stdio: 'ignore' });
    expect(execFileSync('openssl', ['dgst', '-sha256', '-verify', file('imp.pub'), '-signature', file('imp.sig'), file('msg')], { encoding: 'utf8' })).toMatch(/Verified OK/);
    const x = page('exportPrivateKey')[0]!;
    replay(x, { '-k': handleOf(r.stdout), '-w': aes });
    const pkey = (f: string) => execFileSync('openssl', ['pkey', '-in', f], { encoding: 'utf8' });
    expect(pkey(file('exportKey.pem'))).toBe(pkey(file('rsa2048.key')));
    // An EC key too, and a bad file is refused with nothing made.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(file('ec.key'), ec.privateKey.export({ type: 'sec1', format: 'pem' }));
    const i = run('importPrivateKey', '-f', 'ec.key', '-l', 'ec-imported', '-w', String(aes), '-id', 'imp-ec');
    expect(i.status, i.stderr).toBe(0);
    const digest = createHash('sha256').update('ec').digest();
    writeFileSync(file('ec.digest'), digest);
    pkcs11Tool(token, ['--sign', '-m', 'ECDSA', '--id', Buffer.from('imp-ec').toString('hex'), '-i', file('ec.digest'), '-o', file('ec.sig'), '--signature-format', 'openssl']);
    writeFileSync(file('ec.pub'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', file('ec.pub'), '-in', file('ec.digest'), '-sigfile', file('ec.sig')], { encoding: 'utf8' })).toMatch(/Signature Verified Successfully/);
    const before = keyCount(token);
    expect(run('importPrivateKey', '-f', 'msg', '-l', 'bad', '-w', String(aes)).status).not.toBe(0);
    expect(run('importPrivateKey', '-f', 'ec.key', '-l', 'bad', '-w', String(aes), '-wk', 'other.key').status).not.toBe(0);
    expect(keyCount(token)).toBe(before);
  });

  it("getCaviumPrivKey and IsValidKeyHandlefile replay their pages; the fake PEM carries the real public key", () => {
    const g = run('genRSAKeyPair', '-m', '2048', '-e', '65537', '-l', 'tls');
    const { priv } = pairHandles(g.stdout);
    replay(page('getCaviumPrivKey')[0]!, { '-k': priv });
    const [real, fake] = page('IsValidKeyHandlefile');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('privateKey.pem')], { stdio: 'ignore' });
    replay(real!);
    cpSync(file('cavKey.pem'), file('caviumKey.pem'));
    const f = replay(fake!);
    expect(f.stdout).toContain(`invalid key handle: ${priv}`);
    expect(execFileSync('openssl', ['rsa', '-in', file('cavKey.pem'), '-noout', '-modulus'], { encoding: 'utf8' })).toContain('Modulus=');
    expect(run('IsValidKeyHandlefile', '-f', 'msg').status).not.toBe(0);
  });
});

describe('findSingleKey, getCert, genPBEKey', () => {
  it('findSingleKey replays its page and fails for an unknown handle; getCert and genPBEKey are refused with nothing made', () => {
    replay(page('findSingleKey')[0]!, { '-k': des3 });
    expect(run('findSingleKey', '-k', '999999').stdout).toMatch(/returned: 0xa8/);
    const before = keyCount(token);
    const c = run(...cmd(page('getCert')[0]!));
    expect(c.status).not.toBe(0);
    expect(c.stdout).toMatch(/Cfm3GetCert\(\) returned 4 :HSM Error/);
    expect(existsSync(file('userRoot.crt'))).toBe(false);
    const p = run('genPBEKey', '-l', 'pbe', '-p', 'S3cretPassw0rd', '-s', 'salt', '-i', '1000');
    expect(p.stdout).toMatch(/Cfm3GeneratePBEKey returned: 0xb3/);
    expect(p.stdout + p.stderr).not.toContain('S3cretPassw0rd');
    expect(keyCount(token)).toBe(before);
  });

  it('help lists every command of the pages this part adds', () => {
    const r = kmu11(['singlecmd', 'help'], { env: h.env });
    for (const c of ['genRSAKeyPair', 'genSymKey', 'genPBEKey', 'wrapKey', 'unWrapKey', 'exSymKey', 'imSymKey', 'importPubKey', 'exportPrivateKey', 'importPrivateKey', 'aesWrapUnwrap', 'findSingleKey', 'getCert', 'IsValidKeyHandlefile', 'getCaviumPrivKey', 'extractMaskedObject', 'insertMaskedObject'])
      expect(r.stdout).toMatch(new RegExp(`^   ${c} `, 'm'));
  });
});

describe('masked objects', () => {
  it('move between a home and its clone (sharing the masking key), keep owner and attributes, and go nowhere else', () => {
    // The masking key is made on first use; the clone is taken after, as a cluster from a backup.
    const first = run('extractMaskedObject', '-o', String(des3), '-out', 'first.masked');
    expect(first.status, first.stderr).toBe(0);
    const clone = makeHome();
    const stranger = makeHome();
    try {
      cpSync(h.home, clone.home, { recursive: true });
      const conf = join(clone.home, 'softhsm2.conf');
      writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^directories\.tokendir = .*$/m, `directories.tokendir = ${join(clone.home, 'tokens')}`));
      const k = run('genSymKey', '-t', '31', '-s', '24', '-l', 'moving', '-id', 'moving-1', '-nex');
      const moving = handleOf(k.stdout);
      const k2 = run('genSymKey', '-t', '31', '-s', '24', '-l', 'moving', '-id', 'moving-2');
      const extractable = handleOf(k2.stdout);
      // A non-extractable key cannot leave a PKCS#11 token even masked: refused, said why.
      const nex = run('extractMaskedObject', '-o', String(moving), '-out', 'nex.masked');
      expect(nex.status).not.toBe(0);
      expect(nex.stderr).toMatch(/not extractable/);
      const e = page('extractMaskedObject')[0]!;
      replay(e, { '-o': extractable });
      cpSync(file('maskedObj'), join(clone.home, 'maskedObj'));
      cpSync(file('maskedObj'), join(h.home, '..', 'maskedObj'));
      const inClone = (...w: string[]) => kmu11(['singlecmd', ...LOGIN, ...w], { env: clone.env, cwd: clone.home });
      const i = page('insertMaskedObject')[0]!;
      const r = inClone(...cmd(i));
      expect(r.status, r.stderr).toBe(0);
      expect(masked(after(r.stdout))).toEqual(masked(i.output));
      const inserted = handleOf(r.stdout);
      const attr = inClone('getAttribute', '-o', String(inserted), '-a', '512', 'getKeyInfo', '-k', String(inserted));
      expect(/OBJ_ATTR_KCV\n(0x[0-9a-f]+)/.exec(attr.stdout)![1]).toBe(kcv(extractable));
      expect(attr.stdout).toContain('OBJ_ATTR_LABEL\nmoving\n');
      expect(attr.stdout).toContain('OBJ_ATTR_ID\nmoving-2\n');
      expect(attr.stdout).toMatch(/Owned by user 2/);
      // Again into the same clone: the ID is taken now; a tampered file and a stranger token refuse it.
      expect(inClone(...cmd(i)).stdout).toMatch(/returned: 0x07/);
      const tampered = readFileSync(join(clone.home, 'maskedObj'));
      tampered[30] ^= 1;
      writeFileSync(join(clone.home, 'tampered'), tampered);
      expect(inClone('insertMaskedObject', '-f', 'tampered').stderr).toMatch(/another masking key|altered|not a masked object/);
      expect(kmu11(['singlecmd', ...LOGIN], { env: stranger.env }).status).toBe(0);
      cpSync(file('maskedObj'), join(stranger.home, 'maskedObj'));
      const s = kmu11(['singlecmd', ...LOGIN, 'insertMaskedObject', '-f', 'maskedObj'], { env: stranger.env, cwd: stranger.home });
      expect(s.status).not.toBe(0);
      expect(s.stderr).toMatch(/no masking key/);
      // The masking key is nobody's: findKey shows it to no user.
      const list = run('findKey', '-l', 'kmu11 masking key');
      expect(list.stdout).toMatch(/Total number of keys present:? 0/);
    } finally {
      clone.cleanup();
      stranger.cleanup();
    }
  });
});
