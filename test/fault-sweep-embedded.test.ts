// The fault sweep (fault-sweep.test.ts) on the embedded backend, for what only its user model
// has: shareKey. SoftHSM is loaded through the fault module (KMU11_SOFTHSM_MODULE); each
// PKCS#11 call shareKey makes is failed in turn → a KmuError, the key's owner and sharing
// (kmu11's handle store) and the token's objects as before, and the next shareKey works.
// (`kmu11 users delete` and `users claim`: fault-sweep-users.test.ts, through the CLI; create,
// passwd and register-key touch no token.) A separate file: the embedded backend needs SoftHSM loaded with
// its own configuration, which fault-sweep.test.ts's process has already loaded with another.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { embeddedPaths } from '../src/backend/embedded.js';
import { createUser } from '../src/backend/userAdmin.js';
import { Kmu, KmuError } from '../src/index.js';
import { faultEnv, faultModule, faultsOf, readFaultCounts, writeFaultControl } from './helpers/faultmod.js';
import { softhsmModule } from './helpers/softhsm.js';

let dir: string;
let kmu: Kmu;
const control = () => join(dir, 'control');
const countsFile = () => join(dir, 'counts');
const saved = { ...process.env };

/** The token's objects as pkcs11-tool sees them straight on SoftHSM. */
function tokenObjects(): string {
  const paths = embeddedPaths(join(dir, 'home'));
  return execFileSync('pkcs11-tool', ['--module', softhsmModule(), '--login', '--pin', readFileSync(paths.userPin, 'utf8').trim(), '--list-objects'], {
    env: { ...saved, SOFTHSM2_CONF: paths.softhsmConf },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-sweep-emb-'));
  writeFaultControl(control(), {});
  for (const k of ['KMU11_CONFIG', 'KMU11_MODULE', 'KMU11_TOKEN', 'SOFTHSM2_CONF']) delete process.env[k];
  Object.assign(process.env, faultEnv({ module: softhsmModule(), control: control(), counts: countsFile() }), {
    KMU11_SOFTHSM_MODULE: faultModule(),
  });
  const home = join(dir, 'home');
  kmu = await Kmu.open({ home });
  await createUser(embeddedPaths(home), 'admin', 'password', 'CU', 'bob', 'bobpassword');
  await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
});
afterAll(async () => {
  await kmu?.close();
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('shareKey: every PKCS#11 call failed in turn', async () => {
  const pair = await kmu.genECCKeyPair({ curve: 2, label: 'sweep-share' });
  const bob = (await kmu.listUsers()).users.find((u) => u.name === 'bob')!.id;
  const share = () => kmu.shareKey({ handle: pair.privateKey, users: [bob], share: 1 });
  const unshare = () => kmu.shareKey({ handle: pair.privateKey, users: [bob], share: 0 });
  // Warm, then count one clean share.
  await share();
  await unshare();
  writeFaultControl(control(), {});
  await share();
  const counts = readFaultCounts(countsFile());
  await unshare();
  const faults = faultsOf(counts);
  expect(faults.length).toBeGreaterThan(0);
  let failed = 0;
  for (const [fn, k] of faults) {
    const before = JSON.stringify(await kmu.getKeyInfo({ handle: pair.privateKey }));
    const listed = await kmu.findKey({ label: 'sweep-share' });
    const objects = tokenObjects();
    writeFaultControl(control(), { fail: [[fn, k, 'CKR_DEVICE_ERROR']] });
    let error: unknown;
    try {
      await share();
    } catch (e) {
      error = e;
    }
    writeFaultControl(control(), {});
    const where = `${fn} call ${k}`;
    if (error !== undefined) {
      failed++;
      expect(error, where).toBeInstanceOf(KmuError);
      expect(JSON.stringify(await kmu.getKeyInfo({ handle: pair.privateKey })), where).toBe(before);
      expect(await kmu.findKey({ label: 'sweep-share' }), where).toEqual(listed);
      expect(tokenObjects(), where).toBe(objects);
      await share();
    }
    await unshare();
  }
  console.log(`fault sweep (embedded): shareKey ${JSON.stringify({ calls: counts, faults: faults.length, failed })}`);
  expect(failed).toBeGreaterThan(0);
  for (const h of [pair.privateKey, pair.publicKey]) await kmu.deleteKey({ handle: h });
});
