// A generation whose rollback itself fails (the pair was made, reading it failed, and destroying
// it failed too — a networked HSM gone for a moment): the command fails, and its announced
// generation stays open, so the next kmu11 process rolls the pair back and says so. Before, the
// generation was settled anyway and the next listing gave the two leftovers handles that were
// never printed. Over the fault-injecting module (generic backend, SoftHSM behind it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kmu11 } from './helpers/cli.js';
import { faultEnv, faultModule } from './helpers/faultmod.js';
import { keyCount } from './helpers/oracle.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

let t: TestToken;
let home: string;
beforeAll(() => {
  t = makeToken('rollback', { setProcessEnv: false });
  home = mkdtempSync(join(tmpdir(), 'kmu11-rollback-'));
});
afterAll(() => {
  t.cleanup();
  rmSync(home, { recursive: true, force: true });
});

it('a pair the failed command could not destroy is rolled back by the next process, never adopted', () => {
  const env = (fail: Parameters<typeof faultEnv>[0]['fail'] = []) => ({
    SOFTHSM2_CONF: t.conf,
    KMU11_MODULE: faultModule(),
    KMU11_TOKEN: t.label,
    KMU11_HOME: home,
    KMU11_CONFIG: '',
    P11FAULT_FAIL: '',
    ...faultEnv({ module: t.module, fail }),
  });
  const login = ['loginHSM', '-u', 'CU', '-s', 'anyone', '-p', t.userPin];
  const tokenRef = { module: t.module, conf: t.conf, pin: t.userPin, label: t.label, env: { ...process.env, SOFTHSM2_CONF: t.conf } };
  const failed = kmu11(['singlecmd', ...login, 'genECCKeyPair', '-i', '2', '-l', 'stuck', '-id', 'stuck'], {
    env: env([
      ['C_GetAttributeValue', '*', 'CKR_DEVICE_ERROR'],
      ['C_DestroyObject', '*', 'CKR_DEVICE_ERROR'],
    ]),
  });
  expect(failed.status, failed.stdout + failed.stderr).not.toBe(0);
  expect(failed.stdout).not.toMatch(/key handle:/);
  // The pair is still there: the module refused to destroy it.
  expect(keyCount(tokenRef)).toBe(2);
  const next = kmu11(['--json', 'singlecmd', ...login, 'findKey'], { env: env() });
  expect(next.status, next.stderr).toBe(0);
  const [, find] = next.stdout.trim().split('\n').map((l) => JSON.parse(l));
  expect(find.result.handles).toEqual([]);
  expect(find.warnings.join('\n')).toMatch(/killed while making keys labelled "stuck"|labelled "stuck".*destroyed/);
  expect(keyCount(tokenRef)).toBe(0);
});
