// Quorum (M of N) on a 2-of-3 key: refusals that name the missing approvals, approvals signed
// by openssl with the keys users registered, and the ways an approval must fail: forged, from
// a user outside the quorum, replayed from another token, reused, for another operation,
// tampered with, presented by someone else, or expired (a clock the test moves, in-process).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmu11, makeHome, pairHandles, type Run } from './helpers/cli.js';
import { CommandRunner } from '../src/kmu11.js';
import { KmuError } from '../src/kmu/errors.js';

let h: ReturnType<typeof makeHome>;
let dir: string;
const PW: Record<string, string> = { crypto_user: 'password', alice: 'alice-pass-1', bob: 'bob-pass-22', carol: 'carol-pass-3' };
let key: { pub: number; priv: number };

function as(user: string, ...commands: string[][]): Run {
  return kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', user, '-p', PW[user]!, ...commands.flat()], { env: h.env, cwd: dir });
}
const codes = (r: Run) => [...r.stdout.matchAll(/returned:? (0x[0-9a-f]{2})/g)].map((m) => m[1]);
const errors = (r: Run) => r.stderr.split('\n').filter((l) => l.startsWith('Error:'));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
/** `who` approves a token file: a signature with the key they registered, made by openssl. */
const approve = (who: string, token: string, out: string) => openssl('dgst', '-sha256', '-sign', `${who}.key`, '-out', out, token);

beforeAll(() => {
  h = makeHome();
  dir = mkdtempSync(join(tmpdir(), 'kmu11-quorum-'));
  for (const name of ['alice', 'bob', 'carol']) {
    const r = kmu11(['users', 'create', 'CU', name], { env: h.env, input: `password\n${PW[name]}\n${PW[name]}\n` });
    expect(r.status, r.stderr).toBe(0);
  }
  // Signing keys made outside the token: EC P-256, RSA 2048, EC P-384; and one nobody registered.
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'alice.key');
  openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'bob.key');
  openssl('ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'carol.key');
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'crypto_user.key');
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'mallory.key');
  for (const name of ['alice', 'bob', 'carol', 'crypto_user']) {
    openssl('pkey', '-in', `${name}.key`, '-pubout', '-out', `${name}.pub`);
    const r = kmu11(['users', 'register-key', name, join(dir, `${name}.pub`)], { env: h.env, input: `${PW[name]}\n` });
    expect(r.status, r.stderr).toBe(0);
  }
  const g = as('alice', ['genECCKeyPair', '-i', '2', '-l', 'quorum', '-m_value', '2', '-u', '4,5']);
  expect(g.status, g.stderr).toBe(0);
  key = pairHandles(g.stdout);
});
afterAll(() => {
  h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('a 2-of-3 key', () => {
  it('shows the registered keys in listUsers and the quorum in getKeyInfo', () => {
    const r = as('bob', ['listUsers'], ['getKeyInfo', '-k', String(key.priv)], ['getKeyInfo', '-k', String(key.pub)]);
    expect(r.stdout).toMatch(/^ +\d +3 +CU +alice +YES +0 +NO$/m);
    expect(r.stdout).toMatch(/^ +\d +1 +CO +admin +NO +0 +NO$/m);
    expect(r.stdout).toContain('         2 Users need to approve to use/manage this key');
    expect(r.stdout.match(/need to approve/g)).toHaveLength(1); // not on the public key
  });

  it('refuses sign, share and delete without approvals, naming how many are missing', () => {
    const r = as(
      'alice',
      ['sign', '-f', 'alice.pub', '-k', String(key.priv), '-m', '17', '-out', 's.sig'],
      ['shareKey', '-k', String(key.priv), '-u', '2', '-share', '1'],
      ['deleteKey', '-k', String(key.priv)],
    );
    expect(codes(r)).toEqual(['0x00', '0x0e', '0x0e', '0x0e']);
    expect(errors(r)).toEqual([
      `Error: key ${key.priv} needs 2 quorum approvals to sign; 2 missing (0 valid): getToken, then approveToken`,
      `Error: key ${key.priv} needs 2 quorum approvals to share; 2 missing (0 valid): getToken, then approveToken`,
      `Error: key ${key.priv} needs 2 quorum approvals to delete; 2 missing (0 valid): getToken, then approveToken`,
    ]);
  });

  it('allows one sign with two valid approvals, and refuses forged, outsider, reused and wrong-operation approvals', () => {
    const t = as('alice', ['getToken', '-k', String(key.priv), '-o', 'sign', '-out', 't1']);
    expect(codes(t)).toEqual(['0x00', '0x00']);
    expect(readFileSync(join(dir, 't1'), 'utf8')).toMatch(/^kmu11 quorum token v1\n/);
    approve('bob', 't1', 'b1.sig');
    approve('carol', 't1', 'c1.sig');
    approve('crypto_user', 't1', 'x1.sig');
    approve('mallory', 't1', 'm1.sig');
    const sign = ['sign', '-f', 'alice.pub', '-k', String(key.priv), '-m', '17', '-out', 'q.sig'];
    const r = as(
      'alice',
      ['approveToken', '-f', 't1', '-s', 'm1.sig'], // forged: no registered key verifies it
      ['approveToken', '-f', 't1', '-s', 'x1.sig'], // crypto_user registered a key but neither owns nor shares the key
      ['approveToken', '-f', 't1', '-s', 'b1.sig'],
      sign, // one approval: one missing
      ['deleteKey', '-k', String(key.priv)], // the approval was for sign
      ['approveToken', '-f', 't1', '-s', 'c1.sig'],
      sign,
      sign, // the token was used
      ['approveToken', '-f', 't1', '-s', 'b1.sig,c1.sig'], // replayed on a used token
    );
    expect(codes(r)).toEqual(['0x00', '0x0e', '0x0e', '0x00', '0x0e', '0x0e', '0x00', '0x00', '0x0e', '0x0e']);
    const e = errors(r);
    expect(e[0]).toMatch(/approval 1 does not verify against the registered key of any user who owns or shares key/);
    expect(e[1]).toMatch(/approval 1 does not verify/);
    expect(e[2]).toMatch(/needs 2 quorum approvals to sign; 1 missing \(1 valid\)/);
    expect(e[3]).toMatch(/needs 2 quorum approvals to delete; 2 missing/);
    expect(e[4]).toMatch(/needs 2 quorum approvals to sign; 2 missing/);
    expect(e[5]).toMatch(/was already used/);
    expect(r.stdout).toContain('Token approved by 1 of 2 user(s): 4');
    expect(r.stdout).toContain('Token approved by 2 of 2 user(s): 4, 5');
    // The one allowed signature is real.
    const ex = as('alice', ['exportPubKey', '-k', String(key.pub), '-out', 'quorum.pem']);
    expect(ex.status, ex.stderr).toBe(0);
    expect(openssl('dgst', '-sha256', '-verify', 'quorum.pem', '-signature', 'q.sig', 'alice.pub').toString()).toContain('Verified OK');
  });

  it('refuses approvals replayed from another token, a changed token file, and a token presented by someone else', () => {
    const t = as('alice', ['getToken', '-k', String(key.priv), '-o', 'share', '-out', 't2']);
    expect(codes(t)).toEqual(['0x00', '0x00']);
    writeFileSync(join(dir, 't2-changed'), readFileSync(join(dir, 't2'), 'utf8').replace('operation: share', 'operation: delete'));
    approve('alice', 't2', 'a2.sig'); // the requester may approve their own token
    approve('carol', 't2', 'c2.sig');
    const bob = as('bob', ['approveToken', '-f', 't2', '-s', 'a2.sig,c2.sig']);
    expect(codes(bob)).toEqual(['0x00', '0x0e']);
    expect(errors(bob)[0]).toMatch(/belongs to user 3/);
    const r = as(
      'alice',
      ['approveToken', '-f', 't2', '-s', 'b1.sig,c1.sig'], // signatures over t1
      ['approveToken', '-f', 't2-changed', '-s', 'a2.sig,c2.sig'],
      ['approveToken', '-f', 't2', '-s', 'a2.sig,c2.sig'],
      ['shareKey', '-k', String(key.priv), '-u', '2', '-share', '1'],
      ['getKeyInfo', '-k', String(key.priv)],
    );
    expect(codes(r)).toEqual(['0x00', '0x0e', '0x0e', '0x00', '0x00', '0x00']);
    expect(errors(r)[0]).toMatch(/approval 1 does not verify/);
    expect(errors(r)[1]).toMatch(/unknown quorum token \(or its file was changed\)/);
    expect(r.stdout).toMatch(/shared to following 3 user\(s\):\n\n\s+4\n\s+5\n\s+2\n/);
  });

  it('tokens expire ten minutes after they are made (a moved clock, in-process)', async () => {
    let now = Date.now();
    const session = new CommandRunner({ home: h.home, clock: () => now });
    try {
      await session.run('loginHSM', { userType: 'CU', user: 'alice', password: PW.alice });
      await session.run('getToken', { handle: key.priv, operation: 'delete', out: join(dir, 't3') });
      approve('bob', 't3', 'b3.sig');
      approve('carol', 't3', 'c3.sig');
      now += 10 * 60 * 1000 + 1;
      const late = await session.run('approveToken', { file: join(dir, 't3'), signatures: [join(dir, 'b3.sig'), join(dir, 'c3.sig')] }).catch((e) => e);
      expect(late).toBeInstanceOf(KmuError);
      expect(late.code).toBe(0x0e);
      expect(late.detail).toMatch(/expired/);

      // Approved in time, used too late.
      await session.run('getToken', { handle: key.priv, operation: 'delete', out: join(dir, 't4') });
      approve('bob', 't4', 'b4.sig');
      approve('carol', 't4', 'c4.sig');
      now += 9 * 60 * 1000;
      await session.run('approveToken', { file: join(dir, 't4'), signatures: [join(dir, 'b4.sig'), join(dir, 'c4.sig')] });
      now += 60 * 1000 + 1;
      const used = await session.run('deleteKey', { handle: key.priv }).catch((e) => e);
      expect(used).toBeInstanceOf(KmuError);
      expect(used.detail).toMatch(/2 missing/);

      await session.run('getToken', { handle: key.priv, operation: 'delete', out: join(dir, 't5') });
      approve('bob', 't5', 'b5.sig');
      approve('crypto_user', 't5', 'x5.sig'); // shared with user 2 since the share above
      await session.run('approveToken', { file: join(dir, 't5'), signatures: [join(dir, 'b5.sig'), join(dir, 'x5.sig')] });
      expect((await session.run('deleteKey', { handle: key.priv })).code).toBe(0);
    } finally {
      await session.close();
    }
  });
});
