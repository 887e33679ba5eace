// The fault sweep (fault-sweep.test.ts) of user management on the embedded backend, through the
// CLI as operators run it: `kmu11 users delete` and `kmu11 users claim`, the two `users` verbs
// that open the token (create, passwd and register-key change users.json only). Each child
// kmu11 loads SoftHSM through the fault module (KMU11_SOFTHSM_MODULE); every PKCS#11 call of a
// clean run is failed in turn with CKR_DEVICE_ERROR → status 1 and one kmu-style `Error:` line
// (`kmu11: …` when the token cannot be opened; no stack), users.json, the handle store's journal and the token's objects byte for byte as
// before, and the same command run again works. A call whose failure kmu11 tolerates must still
// give the right result (the user gone and unshared; the key claimed).
// This process opens the same home on SoftHSM directly (a Kmu that owns and shares the key).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { embeddedPaths } from '../src/backend/embedded.js';
import { createUser, deleteUser } from '../src/backend/userAdmin.js';
import { updateUsers } from '../src/backend/users.js';
import { Kmu } from '../src/index.js';
import { CLI, type Run } from './helpers/cli.js';
import { faultEnv, faultModule, faultsOf, readFaultCounts, writeFaultControl } from './helpers/faultmod.js';
import { softhsmModule } from './helpers/softhsm.js';

let dir: string;
let home: string;
let kmu: Kmu;
let env: NodeJS.ProcessEnv;
const control = () => join(dir, 'control');
const countsFile = () => join(dir, 'counts');

/** The token's objects as pkcs11-tool sees them straight on SoftHSM. */
function tokenObjects(): string {
  const paths = embeddedPaths(home);
  return execFileSync('pkcs11-tool', ['--module', softhsmModule(), '--login', '--pin', readFileSync(paths.userPin, 'utf8').trim(), '--list-objects'], {
    env: { ...process.env, SOFTHSM2_CONF: paths.softhsmConf },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

/** What a failed command must leave exactly as it was. */
function state(): { users: string; journal: string; objects: string } {
  const paths = embeddedPaths(home);
  return { users: readFileSync(paths.users, 'utf8'), journal: readFileSync(join(home, 'handles.log'), 'utf8'), objects: tokenObjects() };
}

/** `kmu11 users …` with the CO's password on stdin; asynchronous, so that this process's own
 * handle store lets go of handles.lock meanwhile. */
function users(args: string[]): Promise<Run> {
  const c = spawn(process.execPath, [CLI, 'users', ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  c.stdin.end('password\n');
  return new Promise((resolve, reject) => {
    c.on('error', reject);
    c.on('close', (status) => resolve({ stdout, stderr, status }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-sweep-users-'));
  home = join(dir, 'home');
  writeFaultControl(control(), {});
  kmu = await Kmu.open({ home });
  await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
  env = {
    KMU11_HOME: home,
    KMU11_MODULE: '',
    KMU11_TOKEN: '',
    KMU11_CONFIG: '',
    SOFTHSM2_CONF: '',
    KMU11_SOFTHSM_MODULE: faultModule(),
    ...faultEnv({ module: softhsmModule(), control: control(), counts: countsFile() }),
  };
});
afterAll(async () => {
  await kmu?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Counts the calls of `run()` (a clean run, whose outcome `check` verifies), then fails each in
 * turn. `arrange` makes the state the command starts from, again after every run that changed it.
 */
async function sweep(
  name: string,
  arrange: () => Promise<void>,
  run: () => Promise<Run>,
  check: () => Promise<void>,
): Promise<{ faults: number; failed: number }> {
  await arrange();
  writeFaultControl(control(), {});
  const clean = await run();
  expect(clean.status, clean.stderr).toBe(0);
  const counts = readFaultCounts(countsFile());
  await check();
  const faults = faultsOf(counts);
  expect(faults.length).toBeGreaterThan(0);
  let failed = 0;
  for (const [fn, k] of faults) {
    await arrange();
    const before = state();
    writeFaultControl(control(), { fail: [[fn, k, 'CKR_DEVICE_ERROR']] });
    const r = await run();
    writeFaultControl(control(), {});
    const where = `${name}: ${fn} call ${k}`;
    if (r.status !== 0) {
      failed++;
      // 1: the command's error (kmu's `Error: …`); 2: kmu11 could not open the token (`kmu11: …`).
      expect([1, 2], `${where}: ${r.status}`).toContain(r.status);
      expect(r.stderr, where).toMatch(/^(Error|kmu11): [^\n]+\n$/);
      expect(r.stderr, where).not.toMatch(/internal error|\n\s+at /);
      expect(state(), where).toEqual(before);
      const again = await run();
      expect(again.status, `${where}, then again: ${again.stderr}`).toBe(0);
    }
    await check();
  }
  console.log(`fault sweep (users): ${name} ${JSON.stringify({ calls: counts, faults: faults.length, failed })}`);
  return { faults: faults.length, failed };
}

it('users delete: every PKCS#11 call failed in turn; the user and the keys shared with it as before', async () => {
  const pair = await kmu.genECCKeyPair({ curve: 2, label: 'sweep-users' });
  const paths = embeddedPaths(home);
  let n = 0;
  let user = { name: '', id: 0 };
  const sharing = async () => (await kmu.getKeyInfo({ handle: pair.privateKey })).shared;
  // A user to delete, with the key shared with it (again after each deletion).
  const arrange = async () => {
    if (user.name && (await kmu.listUsers()).users.some((u) => u.name === user.name)) return;
    const u = await createUser(paths, 'admin', 'password', 'CU', `gone${++n}`, 'userpassword');
    user = { name: u.name, id: u.id };
    await kmu.shareKey({ handle: pair.privateKey, users: [u.id], share: 1 });
    expect(await sharing()).toContain(u.id);
  };
  const check = async () => {
    expect((await kmu.listUsers()).users.map((u) => u.name)).not.toContain(user.name);
    expect(await sharing()).not.toContain(user.id);
  };
  const r = await sweep('users delete', arrange, () => users(['delete', user.name]), check);
  expect(r.failed).toBeGreaterThan(0);
  for (const h of [pair.privateKey, pair.publicKey]) await kmu.deleteKey({ handle: h });
}, 120_000);

it('users claim: every PKCS#11 call failed in turn; the key\'s owner as before', async () => {
  const paths = embeddedPaths(home);
  const bob = await createUser(paths, 'admin', 'password', 'CU', 'claimer', 'userpassword');
  const pin = readFileSync(paths.userPin, 'utf8').trim();
  // The claimer sees the key either way (every CU may use a key of unknown owner).
  const as = await Kmu.open({ home });
  await as.loginHSM({ user: 'claimer', password: 'userpassword' });
  const owner = async () => (await as.getKeyInfo({ handle: key })).owner;
  let n = 0;
  let key = 0;
  // A key of unknown owner (made by pkcs11-tool), again after each claim.
  const arrange = async () => {
    if (key && (await owner()) === 0) return;
    const label = `foreign${++n}`;
    execFileSync('pkcs11-tool', ['--module', softhsmModule(), '--login', '--pin', pin, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', label, '--id', `f${n}`.padEnd(4, '0')], {
      env: { ...process.env, SOFTHSM2_CONF: paths.softhsmConf },
      stdio: 'ignore',
    });
    const found = await kmu.findKey({ label });
    expect(found).toHaveLength(2);
    key = Math.max(...found);
    expect(await owner()).toBe(0);
  };
  const check = async () => expect(await owner()).toBe(bob.id);
  try {
    const r = await sweep('users claim', arrange, () => users(['claim', String(key), String(bob.id)]), check);
    expect(r.failed).toBeGreaterThan(0);
  } finally {
    await as.close();
  }
}, 120_000);

it('users delete writes users.json last: when that fails (the other officers deleted meanwhile), the keys\' sharing is put back', async () => {
  // The last test here: it leaves officer_b the home's only officer.
  const paths = embeddedPaths(home);
  await createUser(paths, 'admin', 'password', 'CO', 'officer_a', 'userpassword');
  await createUser(paths, 'admin', 'password', 'CO', 'officer_b', 'userpassword');
  const shared = new Set([101, 102]);
  const order: string[] = [];
  let left = '';
  const keys = {
    owned: async () => [],
    unshare: async () => {
      order.push('unshare');
      shared.clear();
      // Meanwhile another kmu11 deletes the other officers: officer_b is now the last.
      await updateUsers(paths.users, paths.lock, (f) => void (f.users = f.users.filter((u) => u.type !== 'CO' || u.name === 'officer_b')));
      left = readFileSync(paths.users, 'utf8');
      return async () => {
        order.push('reshare');
        shared.add(101).add(102);
      };
    },
  };
  const e = await deleteUser(paths, 'officer_a', 'userpassword', 'officer_b', keys).catch((x: unknown) => x);
  expect((e as Error).message).toMatch(/officer_b is the last crypto officer/);
  expect(order).toEqual(['unshare', 'reshare']);
  expect([...shared].sort()).toEqual([101, 102]);
  expect(readFileSync(paths.users, 'utf8')).toBe(left);
  expect(left).toContain('"officer_b"');
});
