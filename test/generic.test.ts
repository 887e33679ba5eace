// kmu's language on any PKCS#11 token: a SoftHSM token made by softhsm2-util, reached with
// KMU11_MODULE / KMU11_TOKEN, logged in with the token's user PIN.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmu11, pairHandles } from './helpers/cli.js';
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

  it('names the token in kmu11 info', () => {
    const info = JSON.parse(kmu11(['--json', 'info'], { env }).stdout);
    expect(info.backend).toBe('generic');
    expect(info.token.label).toBe('generic-test');
    expect(info.modulePath).toBe(t.module);
  });
});
