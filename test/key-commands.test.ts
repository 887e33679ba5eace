// The key commands around generation (getKeyInfo, setAttribute, deleteKey, exportPubKey,
// listAttributes, findKey), their reference pages' examples, and a script of separate
// singlecmd runs acting on exactly the keys whose handles were printed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { normalize, pageExamples } from './helpers/pages.js';
import { embeddedToken, objectCount, objectsWithId, pkcs11Tool, type TokenRef } from './helpers/oracle.js';
import { openShell } from './helpers/shell.js';

const page = (name: string) => pageExamples(`cloudhsm-docs/key_mgmt_util-${name}.md`);
let h: ReturnType<typeof makeHome>;
let token: TokenRef;

const run = (...words: string[]) => kmu11(['singlecmd', ...LOGIN, ...words], { env: h.env, cwd: h.home });
/** The lines after loginHSM's own (which end with its cluster status). */
const after = (stdout: string) => stdout.split('\n').slice(stdout.split('\n').findIndex((l) => l.startsWith('Node id')) + 1);

beforeAll(() => {
  h = makeHome();
  // These tests compare with the pages' transcripts: the pages profile (the default is kmu 3.x's).
  h.env.KMU11_PROFILE = 'pages';
  // The first use creates the home (the later runs work in it, for their -out files).
  expect(kmu11(['singlecmd', ...LOGIN], { env: h.env }).status).toBe(0);
  token = embeddedToken(h.env);
});
afterAll(() => h.cleanup());

describe('reference page examples', () => {
  it('listAttributes prints the page exactly', () => {
    const e = page('listAttributes')[0]!;
    const r = kmu11(['singlecmd', 'listAttributes'], { env: h.env });
    expect(r.status).toBe(0);
    expect(normalize(r.stdout.split('\n'))).toEqual(normalize(e.output));
  });

  it('deleteKey deletes a key, and an unknown handle fails as the page shows', () => {
    const g = run('genECCKeyPair', '-i', '2', '-l', 'to delete', '-id', 'del-1');
    const { pub } = pairHandles(g.stdout);
    const [ok, bad] = page('deleteKey');
    const r = run(...ok!.command.replace('6', String(pub)).split(' '));
    expect(r.status, r.stderr).toBe(0);
    expect(normalize(after(r.stdout))).toEqual(normalize(ok!.output));
    const f = run(...bad!.command.split(' '));
    expect(f.status).not.toBe(0);
    expect(normalize(after(f.stdout))).toEqual(normalize(bad!.output));
    // Exactly the public half is gone; the private half is still there.
    expect(objectsWithId(token, 'del-1')).toEqual(['Private Key Object']);
  });

  it('exportPubKey writes a PEM that openssl reads and that verifies the private key\'s signature', () => {
    const g = run('genECCKeyPair', '-i', '14', '-l', 'exported', '-id', 'exp-1');
    const { pub } = pairHandles(g.stdout);
    const e = page('exportPubKey')[0]!;
    const r = run(...e.command.replace('10', String(pub)).split(' '));
    expect(r.status, r.stderr).toBe(0);
    expect(normalize(after(r.stdout))).toEqual(normalize(e.output));
    const pem = join(h.home, 'public.pem');
    expect(execFileSync('openssl', ['pkey', '-pubin', '-in', pem, '-noout', '-text'], { encoding: 'utf8' })).toMatch(/NIST CURVE: P-384/);
    const digest = join(h.home, 'digest');
    const sig = join(h.home, 'sig');
    writeFileSync(digest, createHash('sha384').update('exported').digest());
    pkcs11Tool(token, ['--sign', '-m', 'ECDSA', '--id', Buffer.from('exp-1').toString('hex'), '-i', digest, '-o', sig, '--signature-format', 'openssl']);
    expect(execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pem, '-in', digest, '-sigfile', sig], { encoding: 'utf8' })).toMatch(
      /Signature Verified Successfully/,
    );
  });

  it('exportPubKey exports DSA public keys too', () => {
    const g = run('genDSAKeyPair', '-m', '2048', '-l', 'dsa export');
    const { pub } = pairHandles(g.stdout);
    const r = run('exportPubKey', '-k', String(pub), '-out', 'dsa.pem');
    expect(r.status, r.stderr).toBe(0);
    const text = execFileSync('openssl', ['pkey', '-pubin', '-in', join(h.home, 'dsa.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/Public-Key: \(2048 bit\)/);
    for (const part of ['pub:', 'P:', 'Q:', 'G:']) expect(text).toContain(part);
  });

  it('getKeyInfo names the creating user as owner', () => {
    const g = run('genECCKeyPair', '-i', '2', '-l', 'owned');
    const { pub, priv } = pairHandles(g.stdout);
    for (const k of [pub, priv]) {
      const r = run('getKeyInfo', '-k', String(k));
      expect(r.status, r.stderr).toBe(0);
      expect(normalize(after(r.stdout))).toEqual(['Cfm3GetKey returned: 0x00 : HSM Return: SUCCESS', '', 'Owned by user 2']);
    }
  });

  it('setAttribute turns a session key into a persistent one, keeping its handle (the page\'s flow, in the shell)', async () => {
    const e = page('setAttribute');
    const setEx = e.find((x) => x.command.startsWith('setAttribute'))!;
    const [sessOne, sessNone, sessZero] = e.filter((x) => x.command.startsWith('findKey'));
    const sh = await openShell(h.env);
    await sh.send(LOGIN.join(' '));
    // The page makes its session key with genSymKey; an EC session pair stands in for it.
    const { pub, priv } = pairHandles((await sh.send('genECCKeyPair -i 2 -l tmpEC -sess')).join('\n'));
    const one = await sh.send('findKey -sess 1');
    // The page's one session key is our pair of two.
    expect(normalize(one)).toEqual(
      normalize(sessOne!.output).map((l) => (l === 'H' ? 'H, H' : l.replace('present 1', 'present 2').replace('0::0', '0::1'))),
    );
    // Typed without -v, the shell asks for the value as the page shows.
    const set = await sh.send(`setAttribute -o ${priv} -a 1`, 'Enter the boolean attribute value (0 or 1):');
    // The typed answer ends the question's line (the page shows "...(0 or 1):1").
    const setAnswer = (await sh.send('1')).slice(1);
    expect(normalize([...set, ...setAnswer].filter((l) => !l.includes('Enter the boolean')))).toEqual(
      normalize(setEx.output.filter((l) => !l.includes('Enter the boolean'))),
    );
    expect(normalize(await sh.send(`setAttribute -o ${pub} -a 1 -v 1`))).toEqual(
      normalize(setEx.output.slice(setEx.output.findIndex((l) => l.includes('Cfm3SetAttribute')) - 1)),
    );
    expect(normalize(await sh.send('findKey -sess 1'))).toEqual(normalize(sessNone!.output));
    const zero = await sh.send('findKey -sess 0');
    expect(normalize(zero).slice(0, 2)).toEqual(normalize(sessZero!.output).slice(0, 2).map((l) => l.replace(/\d+$/, String(zero.join('').match(/present (\d+)/)![1]))));
    expect(zero.join('\n')).toMatch(new RegExp(`\\b${priv}\\b`));
    expect(await sh.exit()).toBe(0);
    // A later process finds the converted pair under the same handles.
    const later = run('findKey', '-l', 'tmpEC', '-sess', '0');
    expect(later.stdout).toMatch(new RegExp(`\n${Math.min(pub, priv)}, ${Math.max(pub, priv)}\n`));
  });
});

describe('separate singlecmd runs act on exactly the printed handles', () => {
  it('generate, getAttribute, exportPubKey, deleteKey: each by the handle an earlier process printed', () => {
    const keys = ['a', 'b', 'c'].map((id) => ({ id: `s-${id}`, ...pairHandles(run('genECCKeyPair', '-i', '2', '-l', 'same label', '-id', `s-${id}`).stdout) }));
    for (const k of keys) {
      const g = run('getAttribute', '-o', String(k.priv), '-a', '258');
      expect(g.stdout).toMatch(new RegExp(`OBJ_ATTR_ID\n${k.id}\n`));
      const x = run('exportPubKey', '-k', String(k.pub), '-out', `${k.id}.pem`);
      expect(x.status, x.stderr).toBe(0);
      // The exported key is this pair's: pkcs11-tool's copy of the public key by its ID matches.
      const der = join(h.home, `${k.id}.der`);
      pkcs11Tool(token, ['--read-object', '--type', 'pubkey', '--id', Buffer.from(k.id).toString('hex'), '-o', der]);
      const fromTool = execFileSync('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', der], { encoding: 'utf8' });
      expect(readFileSync(join(h.home, `${k.id}.pem`), 'utf8')).toBe(fromTool);
    }
    const before = objectCount(token);
    const d = run('deleteKey', '-k', String(keys[1]!.priv));
    expect(d.status, d.stderr).toBe(0);
    expect(objectCount(token)).toBe(before - 1);
    expect(objectsWithId(token, 's-b')).toEqual(['Public Key Object']);
    for (const id of ['s-a', 's-c']) expect(objectsWithId(token, id).sort()).toEqual(['Private Key Object', 'Public Key Object']);
    // The deleted handle stays dead.
    expect(run('getAttribute', '-o', String(keys[1]!.priv), '-a', '512').stdout).toMatch(/returned: 0xa8/);
  });
});

describe('a private key whose public half is gone', () => {
  // CloudHSM's private keys carry their public value; on SoftHSM kmu11 shows the one it recorded
  // when it made the pair, so deleting the public object (kmu11 or another tool) changes nothing.
  it.each([
    ['EC', ['genECCKeyPair', '-i', '2'], 'orphan-ec'],
    ['DSA', ['genDSAKeyPair', '-m', '2048'], 'orphan-dsa'],
  ])('%s: getAttribute shows the same KCV (and EC point), findKey -kcv still finds it', (_n, gen, id) => {
    const { pub, priv } = pairHandles(run(...gen, '-l', 'orphan', '-id', id).stdout);
    const attrs = (handle: number) => {
      const out = run('getAttribute', '-o', String(handle), '-a', '512').stdout;
      return Object.fromEntries([...out.matchAll(/^(OBJ_ATTR_\w+)\n(.*)$/gm)].map((m) => [m[1], m[2]]));
    };
    const before = attrs(priv);
    expect(before.OBJ_ATTR_KCV).toMatch(/^0x[0-9a-f]{6}$/);
    if (id === 'orphan-ec') expect(before.OBJ_ATTR_MODULUS).toMatch(/^04[0-9a-f]{128}$/);
    pkcs11Tool(token, ['--delete-object', '--type', 'pubkey', '--id', Buffer.from(id).toString('hex')]);
    expect(objectsWithId(token, id)).toEqual(['Private Key Object']);
    expect(run('getAttribute', '-o', String(pub), '-a', '512').stdout).toMatch(/returned: 0xa8/);
    expect(attrs(priv)).toEqual(before);
    const found = run('findKey', '-kcv', before.OBJ_ATTR_KCV!.slice(2));
    expect(found.stdout).toMatch(new RegExp(`\n${priv}\n`));
  });
});

describe('bad input for each key command', () => {
  const CASES: Array<[string, string[], RegExp, RegExp?]> = [
    ['getKeyInfo unknown handle', ['getKeyInfo', '-k', '987654'], /^Error: /, /Cfm3GetKey returned: 0xa8/],
    ['getKeyInfo without -k', ['getKeyInfo'], /^Error: getKeyInfo: -k <key-handle> is required/],
    ['deleteKey unknown handle', ['deleteKey', '-k', '987654'], /^Error: /, /Cfm3FindKey returned: 0xa8/],
    ['deleteKey handle not a number', ['deleteKey', '-k', 'x1'], /^Error: -k takes a key handle/],
    ['setAttribute unknown handle', ['setAttribute', '-o', '987654', '-a', '1', '-v', '1'], /^Error: /, /Cfm3SetAttribute returned: 0xa8/],
    ['setAttribute other attribute', ['setAttribute', '-o', '1', '-a', '3', '-v', '1'], /^Error: -a: setAttribute changes only OBJ_ATTR_TOKEN \(1\)/],
    ['setAttribute value of the wrong type', ['setAttribute', '-o', '1', '-a', '1', '-v', 'yes'], /^Error: -v: OBJ_ATTR_TOKEN is a boolean value/],
    ['setAttribute back to a session key', ['setAttribute', '-o', '1', '-a', '1', '-v', '0'], /^Error: -v: a persistent key cannot become a session key/],
    ['setAttribute without a value and no terminal', ['setAttribute', '-o', '1', '-a', '1'], /^Error: setAttribute needs -v 1/],
    ['exportPubKey unknown handle', ['exportPubKey', '-k', '987654', '-out', 'x.pem'], /^Error: /, /Cfm3ExportPubKey returned: 0xa8/],
    ['exportPubKey without -out', ['exportPubKey', '-k', '1'], /^Error: exportPubKey: -out <key-file> is required/],
    ['getAttribute attribute the key lacks', ['getAttribute', '-o', 'PUB', '-a', '290'], /^Error: key \d+ has no OBJ_ATTR_PUBLIC_EXPONENT/, /returned: 0xa9/],
    ['exportPubKey of a private key', ['exportPubKey', '-k', 'PRIV', '-out', 'p.pem'], /^Error: key \d+ is not a public key/, /returned: 0x02/],
    ['exportPubKey to an unwritable path', ['exportPubKey', '-k', 'PUB', '-out', '/nonexistent/dir/p.pem'], /^Error: cannot write \/nonexistent\/dir\/p.pem: ENOENT/, /returned: 0x08/],
    ['getAttribute to an unwritable path', ['getAttribute', '-o', 'PUB', '-a', '512', '-out', '/nonexistent/dir/a'], /^Error: cannot write/, /returned: 0x08/],
  ];
  let pair: { pub: number; priv: number };
  beforeAll(() => {
    pair = pairHandles(run('genECCKeyPair', '-i', '2', '-l', 'bad input target').stdout);
  });
  it.each(CASES)('%s', (_n, words, stderr, stdout) => {
    const before = objectCount(token);
    const r = run(...words.map((w) => w.replace('PUB', String(pair.pub)).replace('PRIV', String(pair.priv))));
    expect(r.status).not.toBe(0);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const errs = r.stderr.split('\n').filter((l) => l.startsWith('Error:'));
    expect(errs.length, r.stderr).toBe(1);
    expect(errs[0]).toMatch(stderr);
    if (stdout) expect(r.stdout).toMatch(stdout);
    expect(objectCount(token)).toBe(before);
  });
});
