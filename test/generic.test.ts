// kmu's language on any PKCS#11 token: a SoftHSM token made by softhsm2-util, reached with
// KMU11_MODULE / KMU11_TOKEN, logged in with the token's user PIN.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLock } from '../src/backend/lock.js';
import { cleanEnv, runChild } from './helpers/child.js';
import { kmu11, pairHandles, startKmu11 } from './helpers/cli.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';
import { objectsWithId } from './helpers/oracle.js';

let t: TestToken;
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  t = makeToken('generic-test', { setProcessEnv: false });
  home = mkdtempSync(join(tmpdir(), 'kmu11-generic-home-'));
  env = { SOFTHSM2_CONF: t.conf, KMU11_MODULE: t.module, KMU11_TOKEN: t.label, KMU11_HOME: home, KMU11_CONFIG: '' };
});
afterAll(() => {
  t.cleanup();
  rmSync(home, { recursive: true, force: true });
});

const login = () => ['loginHSM', '-u', 'CU', '-s', 'anyone', '-p', t.userPin];
const tokenRef = () => ({ module: t.module, conf: t.conf, pin: t.userPin, label: t.label, env: { ...process.env, SOFTHSM2_CONF: t.conf } });

describe('generic backend', () => {
  it('logs in with the token user PIN and refuses a wrong one', () => {
    expect(kmu11(['singlecmd', ...login()], { env }).status).toBe(0);
    const bad = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'anyone', '-p', 'wrong-pin'], { env });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/Cfm3LoginHSM returned: 0xa5/);
  });

  it('generates on the named token and keeps handles across processes', () => {
    const g = kmu11(['singlecmd', ...login(), 'genECCKeyPair', '-i', 'secp384r1', '-l', 'generic key', '-id', 'g1'], { env });
    expect(g.status, g.stderr).toBe(0);
    const { pub, priv } = pairHandles(g.stdout);
    expect(objectsWithId(tokenRef(), 'g1').sort()).toEqual(['Private Key Object', 'Public Key Object']);
    const later = kmu11(['--json', 'singlecmd', ...login(), 'getAttribute', '-o', String(priv), '-a', '3'], { env });
    expect(JSON.parse(later.stdout.trim().split('\n')[1]!).result.attributes[0].value).toBe('generic key');
    const find = kmu11(['singlecmd', ...login(), 'findKey', '-id', 'g1'], { env });
    expect(find.stdout).toContain(`${Math.min(pub, priv)}, ${Math.max(pub, priv)}`);
  });

  it('logs in to a SoftHSM module one kmu11 process at a time (token.lock in the home)', async () => {
    const run = startKmu11(['singlecmd', ...login()], { env });
    await withLock(join(home, 'token.lock'), async () => {
      await new Promise((r) => setTimeout(r, 1500));
      expect(run.exited()).toBe(false);
    });
    expect((await run.done).status).toBe(0);
  });

  it('opens and logs in while another process logs in and out (C_Initialize reads the token.object C_Login rewrites)', async () => {
    // Without token.lock around SoftHSM's C_Initialize an opener saw "no initialized token" (or a
    // C_Login saying the user PIN is not initialized) in 6 of 6 runs of this test. The openers load
    // SoftHSM under another file name: nothing but its library info says what it is.
    const renamed = join(home, 'libvendor-pkcs11.so');
    copyFileSync(t.module, renamed);
    const startAt = Date.now() + 1500;
    const body = `
      while (Date.now() < input.startAt) await new Promise((r) => setTimeout(r, 1));
      const config = { home: input.home, module: input.role === 'login' ? input.module : input.renamed, token: input.label };
      let n = 0;
      const errors = [];
      const end = Date.now() + 3000;
      if (input.role === 'login') {
        const b = await kmu.openBackend(config);
        try {
          for (; Date.now() < end; n++) {
            await b.login('CU', 'anyone', input.pin);
            await b.logout();
          }
        } finally {
          await b.close();
        }
      } else {
        for (; Date.now() < end; n++) {
          let b;
          try {
            b = await kmu.openBackend(config);
            await b.login('CU', 'anyone', input.pin);
          } catch (e) {
            errors.push(e.message);
          } finally {
            await b?.close();
          }
        }
      }
      return { n, errors };`;
    const input = { home, module: t.module, renamed, label: t.label, pin: t.userPin, startAt };
    const childEnv = cleanEnv({ SOFTHSM2_CONF: t.conf });
    const [logins, ...opens] = await Promise.all(
      ['login', 'open', 'open'].map((role) => runChild(body, { ...input, role }, childEnv)),
    );
    expect(logins.error).toBeUndefined();
    expect(logins.n).toBeGreaterThan(10);
    for (const o of opens) {
      expect(o.errors).toEqual([]);
      expect(o.n).toBeGreaterThan(10);
    }
  });

  it('has no user model: -u, -m_value, shareKey, quorum, listUsers and user management refused, naming the flag, nothing made', () => {
    const before = objectsWithId(tokenRef(), 'gu').length;
    const cases: Array<[string[], RegExp]> = [
      [['genECCKeyPair', '-i', '2', '-l', 'x', '-id', 'gu', '-u', '3'], /-u \(sharing the key with other users\) is not available on the generic backend/],
      [['genDSAKeyPair', '-m', '2048', '-l', 'x', '-id', 'gu', '-m_value', '1'], /-m_value \(quorum authentication\) is not available on the generic backend/],
      [['shareKey', '-k', '262145', '-u', '3', '-share', '1'], /shareKey \(sharing keys with other users\) is not available on the generic backend/],
      [['getToken', '-k', '262145', '-o', 'sign', '-out', join(home, 't')], /getToken \(quorum authentication\) is not available on the generic backend/],
      [['approveToken', '-f', join(home, 't'), '-s', join(home, 's')], /approveToken \(quorum authentication\) is not available on the generic backend/],
      [['listUsers'], /listUsers: the generic backend cannot see the token's users/],
    ];
    for (const [cmd, why] of cases) {
      const r = kmu11(['singlecmd', ...login(), ...cmd], { env });
      expect(r.status, cmd.join(' ')).toBe(1);
      expect(r.stderr).toMatch(why);
      expect(r.stdout).toMatch(/returned:? 0x0d/);
    }
    expect(objectsWithId(tokenRef(), 'gu').length).toBe(before);
    const u = kmu11(['users', 'list'], { env });
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/users manages the embedded token's users; the generic backend has no kmu11 user model/);
  });

  it('names the token in kmu11 info', () => {
    const info = JSON.parse(kmu11(['--json', 'info'], { env }).stdout);
    expect(info.backend).toBe('generic');
    expect(info.token.label).toBe('generic-test');
    expect(info.modulePath).toBe(t.module);
  });
});

describe('a token that cannot make EC keys', () => {
  it('refuses genECCKeyPair before generating (SoftHSM itself would still make it), and listECCCurveIds shows no curve', () => {
    const t2 = makeToken('no-ec', { setProcessEnv: false });
    // SoftHSM's own switch: this slot offers RSA and DSA only (2.6.1 takes a list to allow).
    const allowed = 'CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_RSA_PKCS,CKM_DSA_PARAMETER_GEN,CKM_DSA_KEY_PAIR_GEN,CKM_DSA';
    writeFileSync(t2.conf, readFileSync(t2.conf, 'utf8').replace('slots.mechanisms = ALL', `slots.mechanisms = ${allowed}`));
    const env2 = { ...env, SOFTHSM2_CONF: t2.conf, KMU11_MODULE: t2.module, KMU11_TOKEN: t2.label };
    try {
      const r = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'x', '-p', t2.userPin, 'genECCKeyPair', '-i', '2', '-l', 'nope'], { env: env2 });
      expect(r.status).not.toBe(0);
      expect(r.stdout).toMatch(/Cfm3GenerateKeyPair returned: 0x05 : HSM Error: Mechanism or curve not supported by this token/);
      expect(r.stderr).toMatch(/^Error: this token cannot make keys on NID_X9_62_prime256v1 \(id 2\): it does not offer CKM_EC_KEY_PAIR_GEN; listECCCurveIds shows the curves it can$/m);
      const j = kmu11(['--json', 'singlecmd', 'loginHSM', '-u', 'CU', '-s', 'x', '-p', t2.userPin, 'genECCKeyPair', '-i', '2', '-l', 'nope', 'listECCCurveIds'], { env: env2 });
      const [, gen] = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(gen.code).toBe('0x05');
      expect(gen.error.detail).toMatch(/does not offer CKM_EC_KEY_PAIR_GEN/);
      const list = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'x', '-p', t2.userPin, 'listECCCurveIds'], { env: env2 });
      expect(list.stdout).toMatch(/This token supports no ECC curve/);
      const objects = execFileSync('pkcs11-tool', ['--module', t2.module, '--token-label', t2.label, '--login', '--pin', t2.userPin, '-O'], {
        env: { ...process.env, SOFTHSM2_CONF: t2.conf },
        encoding: 'utf8',
      });
      expect(objects).not.toMatch(/Key Object/);
    } finally {
      t2.cleanup();
    }
  });
});
