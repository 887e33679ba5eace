// CloudHSM's user model on the embedded token, through the CLI as operators use it: users made
// with `kmu11 users`, keys shared with -u and shareKey, access enforced on every command, keys
// of unknown owner (made by pkcs11-tool), sign/verify checked by openssl, wrong-password counts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmu11, makeHome, pairHandles, type Run } from './helpers/cli.js';
import { embeddedToken, pkcs11Tool } from './helpers/oracle.js';
import { normalize, pageBlocks, pageExamples } from './helpers/pages.js';
import { formatText } from '../src/cli/text.js';
import { formatCmuUsers } from '../src/cli/usersText.js';
import type { UserListEntry } from '../src/backend/backend.js';

let h: ReturnType<typeof makeHome>;
let dir: string;
const PW: Record<string, string> = { crypto_user: 'password', alice: 'alice-pass-1', bob: 'bob-pass-22', carol: 'carol-pass-3' };
const A = 3;
const B = 4;
const C = 5;

const file = (name: string) => join(dir, name);

/** `singlecmd loginHSM … <commands>` as `user`. */
function as(user: string, ...commands: string[][]): Run {
  return kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', user, '-p', PW[user]!, ...commands.flat()], { env: h.env, cwd: dir });
}

/** The return code each command printed, in order ("… returned: 0x00 …" lines, login's first). */
const codes = (r: Run) => [...r.stdout.matchAll(/returned:? (0x[0-9a-f]{2})/g)].map((m) => m[1]);

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function findKey(user: string, ...flags: string[]): number[] {
  const r = as(user, ['findKey', ...flags]);
  expect(r.status, r.stderr).toBe(0);
  // kmu 3.x's "Handles of matching keys:<TAB>h, h" (the default), or the pages' bare line.
  const line = r.stdout
    .split('\n')
    .map((l) => l.replace(/^Handles of matching keys:\t/, ''))
    .find((l) => /^\d+(, \d+)*$/.test(l));
  return line ? line.split(', ').map(Number) : [];
}

beforeAll(() => {
  h = makeHome();
  dir = mkdtempSync(join(tmpdir(), 'kmu11-users-'));
  for (const name of ['alice', 'bob', 'carol']) {
    const r = kmu11(['users', 'create', 'CU', name], { env: h.env, input: `password\n${PW[name]}\n${PW[name]}\n` });
    expect(r.status, r.stderr).toBe(0);
  }
});
afterAll(() => {
  h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('kmu11 users (cloudhsm_mgmt_util)', () => {
  it('numbers users as CloudHSM and lists them in the pages\' tables', () => {
    const l = kmu11(['users', 'list'], { env: h.env });
    expect(l.status, l.stderr).toBe(0);
    expect(l.stdout).toContain('Number of users found:5');
    expect(l.stdout).toMatch(/^ +3 +CU +alice +NO +0 +NO$/m);
    const k = as('alice', ['listUsers']);
    expect(k.status, k.stderr).toBe(0);
    expect(k.stdout).toContain('        Number Of Users found 5');
    expect(k.stdout).toContain('        1                1      CO              admin                     NO               0               NO');
    expect(k.stdout).toContain('        5                5      CU              carol                     NO               0               NO');
    expect(k.stdout).toContain('Cfm3ListUsers returned: 0x00 : HSM Return: SUCCESS');
  });

  it('applies createUser\'s rules: CO only, name and password rules, names not case-sensitive; passwords never echoed', () => {
    const make = (args: string[], input: string) => kmu11(['users', 'create', ...args], { env: h.env, input });
    const asCu = kmu11(['users', 'create', 'CU', 'eve', '--co', 'alice'], { env: h.env, input: `${PW.alice}\neve-pass-1\neve-pass-1\n` });
    expect(asCu.status).toBe(1);
    expect(asCu.stderr).toMatch(/0xc6|crypto officer/);
    expect(make(['CU', 'bad-name'], 'password\nxxxxxxx1\nxxxxxxx1\n').stderr).toMatch(/letters, digits and underscore/);
    expect(make(['CU', 'a'.repeat(32)], 'password\nxxxxxxx1\nxxxxxxx1\n').stderr).toMatch(/1 to 31 characters/);
    expect(make(['CU', 'eve'], 'password\nshort\nshort\n').stderr).toMatch(/7 to 32 characters/);
    expect(make(['CU', 'ALICE'], 'password\nxxxxxxx1\nxxxxxxx1\n').stderr).toMatch(/already exists/);
    expect(make(['AU', 'eve'], 'password\nxxxxxxx1\nxxxxxxx1\n').stderr).toMatch(/user type must be/);
    const wrongCo = make(['CU', 'eve'], 'not-the-password\neve-pass-1\neve-pass-1\n');
    expect(wrongCo.status).toBe(1);
    for (const r of [asCu, wrongCo]) for (const secret of ['eve-pass-1', PW.alice!, 'not-the-password']) expect(r.stdout + r.stderr).not.toContain(secret);
    // None of it made a user; admin's wrong password was counted (and is reset by the next good one).
    const list = kmu11(['users', 'list'], { env: h.env }).stdout;
    expect(list).toContain('Number of users found:5');
    expect(list).toMatch(/^ +1 +CO +admin +NO +1 +NO$/m);
    expect(readFileSync(join(h.home, 'users.json'), 'utf8')).not.toContain(PW.alice);
    // A password never comes from the command line: one given there is a usage error that does not repeat it.
    const argv = kmu11(['users', 'create', 'CU', 'eve', 'eve-pass-1'], { env: h.env, input: 'password\n' });
    expect(argv.status).toBe(2);
    expect(argv.stdout + argv.stderr).not.toContain('eve-pass-1');
  });
});

describe('three crypto users: A shares one key with B, not the other', () => {
  let shared: { pub: number; priv: number };
  let own: { pub: number; priv: number };

  beforeAll(() => {
    const r = as('alice', ['genECCKeyPair', '-i', '2', '-l', 'shared', '-u', String(B)]);
    expect(r.status, r.stderr).toBe(0);
    shared = pairHandles(r.stdout);
    const s = as('alice', ['genECCKeyPair', '-i', '2', '-l', 'own']);
    expect(s.status, s.stderr).toBe(0);
    own = pairHandles(s.stdout);
  });

  it('refuses -u naming a user that does not exist, a CO, or the caller, with nothing created', () => {
    const before = findKey('alice');
    for (const [ids, code, why] of [
      ['9', '0x02', /user 9 does not exist/],
      ['1', '0xdb', /user 1 \(admin\) is CO/],
      [`${B},${A}`, '0x02', /must not include the current user|is the current user/],
    ] as const) {
      const r = as('alice', ['genECCKeyPair', '-i', '2', '-l', 'nope', '-u', ids]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(why);
      // The caller's own id is a usage error (one line, 0x02): the rest are the token's answers.
      if (!/current/.test(String(why))) expect(codes(r)[1]).toBe(code);
    }
    expect(findKey('alice')).toEqual(before);
  });

  it('B sees and signs with the shared key (openssl verifies), but cannot delete, share, change or export it', () => {
    const seen = findKey('bob');
    expect(seen).toEqual(expect.arrayContaining([shared.pub, shared.priv, own.pub]));
    expect(seen).not.toContain(own.priv);
    const info = as('bob', ['getKeyInfo', '-k', String(shared.priv)]);
    expect(info.stdout).toMatch(/Owned by user 3\n\n\s+also, shared to following 1 user\(s\):\n\n\s+4\n/);
    execFileSync('sh', ['-c', 'printf "pay 100 to carol" > msg'], { cwd: dir });
    const s = as('bob', ['sign', '-f', 'msg', '-k', String(shared.priv), '-m', '17', '-out', 'bob.sig']);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toContain('signature is written to file bob.sig');
    const e = as('alice', ['exportPubKey', '-k', String(shared.pub), '-out', 'shared.pem']);
    expect(e.status, e.stderr).toBe(0);
    expect(openssl(['dgst', '-sha256', '-verify', 'shared.pem', '-signature', 'bob.sig', 'msg'])).toContain('Verified OK');
    const v = as('bob', ['verify', '-f', 'msg', '-s', 'bob.sig', '-k', String(shared.pub), '-m', '17']);
    expect(v.stdout).toContain('Signature verification successful');

    const r = as(
      'bob',
      ['deleteKey', '-k', String(shared.priv)],
      ['shareKey', '-k', String(shared.priv), '-u', String(C), '-share', '1'],
      ['setAttribute', '-o', String(shared.priv), '-a', '1', '-v', '1'],
      ['exportPubKey', '-k', String(shared.pub), '-out', 'x.pem'],
    );
    expect(codes(r)).toEqual(['0x00', '0xc6', '0xc6', '0xc6', '0xc6']);
    expect(findKey('alice', '-l', 'shared')).toEqual([shared.pub, shared.priv].sort((a, b) => a - b));
  });

  it('C sees only the public keys; every attempt on the private ones answers as for a handle that does not exist', () => {
    const all = findKey('carol');
    expect(all).toEqual(expect.arrayContaining([shared.pub, own.pub]));
    expect(all).not.toContain(shared.priv);
    expect(all).not.toContain(own.priv);
    expect(findKey('carol', '-l', 'own')).toEqual([own.pub]);
    const attempts = (h: number) => [
      ['getAttribute', '-o', String(h), '-a', '512'],
      ['getKeyInfo', '-k', String(h)],
      ['sign', '-f', 'msg', '-k', String(h), '-m', '17', '-out', 'c.sig'],
      ['deleteKey', '-k', String(h)],
      ['setAttribute', '-o', String(h), '-a', '1', '-v', '1'],
      ['shareKey', '-k', String(h), '-u', String(C), '-share', '1'],
    ];
    const missing = 999_999;
    const ghost = as('carol', ...attempts(missing));
    for (const k of [shared.priv, own.priv]) {
      const r = as('carol', ...attempts(k));
      expect(codes(r)).toEqual(['0x00', '0xa8', '0xa8', '0xa8', '0xa8', '0xa8', '0xa8']);
      expect(r.stdout.split(String(k)).join('H')).toEqual(ghost.stdout.split(String(missing)).join('H'));
      expect(r.stderr.split(String(k)).join('H')).toEqual(ghost.stderr.split(String(missing)).join('H'));
    }
    // Public keys are everyone's to see and use.
    expect(codes(as('carol', ['getKeyInfo', '-k', String(own.pub)], ['verify', '-f', 'msg', '-s', 'bob.sig', '-k', String(shared.pub), '-m', '17']))).toEqual(['0x00', '0x00', '0x00']);
  });

  it('unsharing removes B\'s access at once; sharing gives it back (owner only)', () => {
    const u = as('alice', ['shareKey', '-k', String(shared.priv), '-u', String(B), '-share', '0'], ['getKeyInfo', '-k', String(shared.priv)]);
    expect(codes(u)).toEqual(['0x00', '0x00', '0x00']);
    expect(u.stdout).not.toContain('also, shared');
    expect(codes(as('bob', ['sign', '-f', 'msg', '-k', String(shared.priv), '-m', '17', '-out', 'b2.sig']))).toEqual(['0x00', '0xa8']);
    expect(findKey('bob')).not.toContain(shared.priv);
    const again = as('alice', ['shareKey', '-k', String(shared.priv), '-u', `${B},${C}`, '-share', '1'], ['getKeyInfo', '-k', String(shared.priv)]);
    expect(again.stdout).toMatch(/shared to following 2 user\(s\):\n\n\s+4\n\s+5/);
    expect(codes(as('carol', ['sign', '-f', 'msg', '-k', String(shared.priv), '-m', '17', '-out', 'c.sig']))).toEqual(['0x00', '0x00']);
    expect(codes(as('alice', ['shareKey', '-k', String(shared.pub), '-u', String(B), '-share', '1']))[1]).toBe('0x02');
  });

  it('a CU that owns keys cannot be deleted; one that owns none can, and leaves the keys shared with it', () => {
    const d = kmu11(['users', 'delete', 'alice'], { env: h.env, input: 'password\n' });
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(/owns \d+ key\(s\).*cannot be deleted/);
    const c = kmu11(['users', 'delete', 'carol'], { env: h.env, input: 'password\n' });
    expect(c.status, c.stderr).toBe(0);
    expect(as('alice', ['getKeyInfo', '-k', String(shared.priv)]).stdout).toMatch(/shared to following 1 user\(s\):\n\n\s+4\n/);
    const back = kmu11(['users', 'create', 'CU', 'carol'], { env: h.env, input: `password\n${PW.carol}\n${PW.carol}\n` });
    expect(back.stdout).toContain('has id 6'); // ids are never reused
  });
});

describe('keys of unknown owner (made by pkcs11-tool)', () => {
  it('are visible to and usable by every CU; only a CO-assigned owner may delete them', () => {
    const t = embeddedToken(h.env);
    pkcs11Tool(t, ['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'foreign', '--id', 'f0']);
    const [pub, priv] = findKey('bob', '-l', 'foreign');
    expect(findKey('alice', '-l', 'foreign')).toEqual([pub, priv]);
    expect(as('bob', ['getKeyInfo', '-k', String(priv!)]).stdout).toContain('Owned by user 0');
    expect(codes(as('bob', ['sign', '-f', 'msg', '-k', String(priv!), '-m', '17', '-out', 'f.sig']))).toEqual(['0x00', '0x00']);
    const del = as('bob', ['deleteKey', '-k', String(priv!)], ['shareKey', '-k', String(priv!), '-u', String(A), '-share', '1']);
    expect(codes(del)).toEqual(['0x00', '0xc6', '0xc6']);
    expect(del.stderr).toMatch(/owner is unknown.*kmu11 users claim/);

    const notCo = kmu11(['users', 'claim', String(priv!), String(B), '--co', 'bob'], { env: h.env, input: `${PW.bob}\n` });
    expect(notCo.status).toBe(1);
    const claim = kmu11(['users', 'claim', String(priv!), String(B)], { env: h.env, input: 'password\n' });
    expect(claim.status, claim.stderr).toBe(0);
    expect(codes(as('alice', ['deleteKey', '-k', String(priv!)]))).toEqual(['0x00', '0xa8']);
    expect(codes(as('bob', ['deleteKey', '-k', String(priv!)]))).toEqual(['0x00', '0x00']);
  });

  it('sign -m 1 and -m 6 with an RSA key verify with openssl; openssl\'s signatures verify with verify', () => {
    const t = embeddedToken(h.env);
    pkcs11Tool(t, ['--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa-foreign', '--id', 'a0']);
    const [pub, priv] = findKey('bob', '-l', 'rsa-foreign');
    const r = as('bob', ['sign', '-f', 'msg', '-k', String(priv!), '-m', '1', '-out', 'r1.sig'], ['sign', '-f', 'msg', '-k', String(priv!), '-m', '6', '-out', 'r6.sig'], ['exportPubKey', '-k', String(pub!), '-out', 'rsa.pem']);
    expect(codes(r), r.stderr).toEqual(['0x00', '0x00', '0x00', '0x00']);
    expect(openssl(['dgst', '-sha256', '-verify', 'rsa.pem', '-signature', 'r1.sig', 'msg'])).toContain('Verified OK');
    expect(openssl(['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-1', '-verify', 'rsa.pem', '-signature', 'r6.sig', 'msg'])).toContain('Verified OK');
    // openssl signs with its own EC key; its public half goes onto the token with pkcs11-tool.
    openssl(['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'o.key']);
    openssl(['pkey', '-in', 'o.key', '-pubout', '-outform', 'DER', '-out', 'o.pub.der']);
    openssl(['dgst', '-sha384', '-sign', 'o.key', '-out', 'o.sig', 'msg']);
    pkcs11Tool(t, ['--write-object', join(dir, 'o.pub.der'), '--type', 'pubkey', '--label', 'openssl-pub']);
    const [opub] = findKey('carol', '-l', 'openssl-pub');
    const v = as('carol', ['verify', '-f', 'msg', '-s', 'o.sig', '-k', String(opub!), '-m', '18']);
    expect(v.stdout).toContain('Signature verification successful');
    execFileSync('sh', ['-c', 'printf "pay 900 to carol" > msg2'], { cwd: dir });
    const bad = as('carol', ['verify', '-f', 'msg2', '-s', 'o.sig', '-k', String(opub!), '-m', '18']);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('Cfm3Verify returned: 0x1b\n\nCSP Error: ERR_BAD_PKCS_DATA');
  });
});

describe('wrong passwords', () => {
  it('are counted and shown by listUsers; the fifth locks the user until a CO resets the password', () => {
    const wrong = () => kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'carol', '-p', 'not-carols'], { env: h.env });
    for (let i = 0; i < 2; i++) expect(wrong().stdout).toContain('0xa5');
    expect(as('bob', ['listUsers']).stdout).toMatch(/^ {8}\d +6 +CU +carol +NO +2 +NO$/m);
    for (let i = 0; i < 3; i++) wrong();
    expect(kmu11(['users', 'list'], { env: h.env }).stdout).toMatch(/^ +6 +CU +carol +NO +5 +NO$/m);
    expect(as('carol', []).stdout).toContain('0xa6');
    const reset = kmu11(['users', 'passwd', '--reset', 'carol'], { env: h.env, input: `password\n${PW.carol}\n${PW.carol}\n` });
    expect(reset.status, reset.stderr).toBe(0);
    expect(as('carol', []).stdout).toContain('Cfm3LoginHSM returned: 0x00');
  });
});

describe('the pages\' tables and lines, from the pages\' own data', () => {
  it('listUsers (key_mgmt_util), sign and verify print their pages\' lines', () => {
    const page = pageExamples('cloudhsm-docs/key_mgmt_util-listUsers.md')[0]!;
    const rows = page.output.filter((l) => /^\s+\d+\s+\d+\s+\w+/.test(l));
    const users: UserListEntry[] = rows.map((l) => {
      const [, id, type, name, mofn, cnt, twoFA] = l.trim().split(/\s+/);
      return { id: Number(id), type: type as UserListEntry['type'], name: name!, mofnPubKey: mofn === 'YES', loginFailureCnt: Number(cnt), twoFA: twoFA === 'YES' };
    });
    const ours = formatText({ command: 'listUsers', op: 'Cfm3ListUsers', code: 0, warnings: [], data: { users } }).split('\n');
    // The page says "found 4" above its five rows; kmu11 counts the rows it prints.
    expect(ours).toEqual(page.output.map((l) => l.replace('found 4', 'found 5')));

    const sign = pageExamples('cloudhsm-docs/key_mgmt_util-sign.md')[0]!;
    const s = formatText({ command: 'sign', op: 'Cfm3Sign', code: 0, warnings: [], data: { file: 'signedFile' } }).split('\n');
    expect(normalize(s)).toEqual(normalize(sign.output));
    const [good, bad] = pageExamples('cloudhsm-docs/key_mgmt_util-verify.md');
    expect(formatText({ command: 'verify', op: 'Cfm3Verify', code: 0, warnings: [], data: {} }).split('\n')).toEqual(good!.output);
    expect(formatText({ command: 'verify', op: 'Cfm3Verify', code: 0x1b, warnings: [], data: {} }).split('\n')).toEqual(bad!.output);
  });

  it('kmu11 users list prints cloudhsm_mgmt_util listUsers\' table', () => {
    const block = pageBlocks('cloudhsm-docs/cloudhsm_mgmt_util-listUsers.md')[1]!.lines;
    const start = block.findIndex((l) => l.startsWith('Users on server 0'));
    const end = block.findIndex((l) => l.startsWith('Users on server 1'));
    const server0 = block.slice(start, end);
    const users: UserListEntry[] = server0.filter((l) => /^\s+\d+\s+\w+/.test(l)).map((l) => {
      const [id, type, name, mofn, cnt, twoFA] = l.trim().split(/\s+/);
      return { id: Number(id), type: type as UserListEntry['type'], name: name!, mofnPubKey: mofn === 'YES', loginFailureCnt: Number(cnt), twoFA: twoFA === 'YES' };
    });
    expect(formatCmuUsers(users).split('\n')).toEqual(server0.map((l) => l.replace('0(10.0.0.1)', '0(embedded)')));
  });
});
