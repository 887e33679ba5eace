// Every PKCS#11 call a changing command makes, failed in turn (issue 10 item 5): kmu11 over the
// fault-injecting module (generic backend, SoftHSM behind it), through the library API in one
// process. For each command the calls of one clean run are counted; then each call k of each
// function F is failed with CKR_DEVICE_ERROR → the command fails with a KmuError (or succeeds,
// when kmu11 tolerates that call's failure), the token's objects are exactly as before
// (pkcs11-tool on SoftHSM directly), findKey lists exactly what it listed before, and the next
// command works. Commands swept: genECCKeyPair (with -id, so the ID check's search is swept
// too), genDSAKeyPair, genRSAKeyPair, genSymKey, imSymKey, importPubKey, importPrivateKey,
// unWrapKey, insertMaskedObject, setAttribute (session → token) and deleteKey. genECCKeyPair, setAttribute and deleteKey fail every call;
// the others, in CI, the first and the last call of each function they call (which covers
// every function and the ends of each run of calls) — every call under KMU11_LONG=1.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Kmu, KmuError } from '../src/index.js';
import { faultEnv, faultModule, faultsOf, readFaultCounts, writeFaultControl } from './helpers/faultmod.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const FULL = process.env.KMU11_LONG === '1';

let token: TestToken;
let dir: string;
let kmu: Kmu;
const control = () => join(dir, 'control');
const countsFile = () => join(dir, 'counts');

/** The token's objects as pkcs11-tool sees them straight on SoftHSM (token objects). */
function tokenObjects(): string {
  return execFileSync('pkcs11-tool', ['--module', token.module, '--login', '--pin', token.userPin, '--list-objects'], {
    env: token.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

beforeAll(async () => {
  token = makeToken('sweep');
  dir = mkdtempSync(join(tmpdir(), 'kmu11-sweep-'));
  writeFaultControl(control(), {});
  delete process.env.KMU11_CONFIG;
  Object.assign(process.env, faultEnv({ module: token.module, control: control(), counts: countsFile() }));
  kmu = await Kmu.open({ module: faultModule(), token: token.label, home: join(dir, 'home') });
  await kmu.loginHSM({ user: 'user', password: token.userPin });
});
afterAll(async () => {
  await kmu?.close();
  for (const k of ['P11FAULT_MODULE', 'P11FAULT_CONTROL', 'P11FAULT_COUNTS']) delete process.env[k];
  token?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The calls `command` makes, per function, on a clean run (its result is returned for cleanup). */
async function countCalls(command: () => Promise<unknown>): Promise<[Record<string, number>, unknown]> {
  writeFaultControl(control(), {});
  const result = await command();
  return [readFaultCounts(countsFile()), result];
}

interface Sweep {
  /** Makes what the command needs (a key to delete…); runs without faults. */
  setup(): Promise<number[]>;
  command(handles: number[]): Promise<unknown>;
  /** Removes what a successful run made, and what setup made. */
  cleanup(handles: number[], result: unknown): Promise<void>;
  label: string;
  /** Fail only the first and last call of each function (unless KMU11_LONG=1). */
  sample?: boolean;
}

async function sweep(s: Sweep): Promise<{ calls: Record<string, number>; faults: number; failed: number; tolerated: number }> {
  let counts: Record<string, number> = {};
  // A first run warms what kmu11 caches (mechanism lists…); the second is counted.
  for (let i = 0; i < 2; i++) {
    const handles = await s.setup();
    const [c, result] = await countCalls(() => s.command(handles));
    await s.cleanup(handles, result);
    counts = c;
  }
  expect(Object.keys(counts).length).toBeGreaterThan(0);
  const faults = faultsOf(counts, (s.sample ?? false) && !FULL);
  let reachedFaults = 0;
  let failed = 0;
  let tolerated = 0;
  for (const [fn, k] of faults) {
    writeFaultControl(control(), {});
    const made = await s.setup();
    const before = tokenObjects();
    const listed = await kmu.findKey({ label: s.label });
    writeFaultControl(control(), { fail: [[fn, k, 'CKR_DEVICE_ERROR']] });
    let result: unknown;
    let error: unknown;
    try {
      result = await s.command(made);
    } catch (e) {
      error = e;
    }
    // Call k of fn really happened (and failed): what kmu11 caches can make a run shorter.
    const reached = (readFaultCounts(countsFile())[fn] ?? 0) >= k;
    if (reached) reachedFaults++;
    writeFaultControl(control(), {});
    const where = `${fn} call ${k}`;
    if (error !== undefined) {
      failed++;
      expect(reached, where).toBe(true);
      // A clear kmu error, and nothing changed on the token or in what kmu11 lists.
      expect(error, where).toBeInstanceOf(KmuError);
      expect((error as KmuError).message, where).not.toMatch(/\n\s+at /);
      expect(tokenObjects(), where).toBe(before);
      expect(await kmu.findKey({ label: s.label }), where).toEqual(listed);
    } else if (reached) {
      tolerated++;
    }
    // The next command works, and leaves the token as it found it.
    try {
      await s.cleanup(made, result);
    } catch (e) {
      throw new Error(`after ${where} (the command ${error === undefined ? 'succeeded' : 'failed'}), cleaning up: ${(e as Error).message}`, { cause: e });
    }
  }
  // Nearly every planned fault must have been reached, or the sweep proves little.
  expect(reachedFaults).toBeGreaterThanOrEqual(faults.length * 0.8);
  return { calls: counts, faults: reachedFaults, failed, tolerated };
}

describe('every PKCS#11 call of a changing command, failed in turn', () => {
  const report: Record<string, unknown> = {};
  afterAll(() => {
    console.log(`fault sweep: ${JSON.stringify(report)}`);
  });

  it('genECCKeyPair', async () => {
    const empty = tokenObjects();
    report.genECCKeyPair = await sweep({
      label: 'sweep-ec',
      setup: async () => [],
      command: () => kmu.genECCKeyPair({ curve: 2, label: 'sweep-ec', id: 'sweep-ec-id' }),
      cleanup: async (_h, r) => {
        const pair = r as { publicKey: number; privateKey: number } | undefined;
        if (pair) for (const k of [pair.privateKey, pair.publicKey]) await kmu.run('deleteKey', { handle: k });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('setAttribute (a session pair made persistent)', async () => {
    const empty = tokenObjects();
    report.setAttribute = await sweep({
      label: 'sweep-set',
      setup: async () => {
        const pair = await kmu.genECCKeyPair({ curve: 2, label: 'sweep-set', sess: true });
        return [pair.privateKey, pair.publicKey];
      },
      command: (h) => kmu.run('setAttribute', { handle: h[0], attribute: 1, value: 1 }),
      cleanup: async (h) => {
        for (const k of h) await kmu.run('deleteKey', { handle: k });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('deleteKey', async () => {
    const empty = tokenObjects();
    report.deleteKey = await sweep({
      label: 'sweep-del',
      setup: async () => {
        const pair = await kmu.genECCKeyPair({ curve: 2, label: 'sweep-del' });
        return [pair.privateKey, pair.publicKey];
      },
      command: (h) => kmu.run('deleteKey', { handle: h[0] }),
      cleanup: async (h, r) => {
        if (r === undefined) await kmu.run('deleteKey', { handle: h[0] });
        await kmu.run('deleteKey', { handle: h[1] });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  const deletePair = async (_h: number[], r: unknown) => {
    const pair = r as { publicKey: number; privateKey: number } | undefined;
    if (pair) for (const k of [pair.privateKey, pair.publicKey]) await kmu.run('deleteKey', { handle: k });
  };
  const deleteNew = async (_h: number[], r: unknown) => {
    const key = r as { handle: number } | undefined;
    if (key) await kmu.run('deleteKey', { handle: key.handle });
  };

  it('genRSAKeyPair', async () => {
    const empty = tokenObjects();
    report.genRSAKeyPair = await sweep({
      label: 'sweep-rsa',
      sample: true,
      setup: async () => [],
      command: () => kmu.genRSAKeyPair({ modulusBits: 2048, exponent: 65537, label: 'sweep-rsa', id: 'sweep-rsa-id' }),
      cleanup: deletePair,
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('genSymKey', async () => {
    const empty = tokenObjects();
    report.genSymKey = await sweep({
      label: 'sweep-sym',
      sample: true,
      setup: async () => [],
      command: () => kmu.genSymKey({ type: 31, size: 32, label: 'sweep-sym', id: 'sweep-sym-id' }),
      cleanup: deleteNew,
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('imSymKey (a plaintext AES key, under a wrapping key made first)', async () => {
    const empty = tokenObjects();
    const file = join(dir, 'aes.key');
    writeFileSync(file, Buffer.alloc(32, 7));
    report.imSymKey = await sweep({
      label: 'sweep-im',
      sample: true,
      setup: async () => [(await kmu.genSymKey({ type: 31, size: 32, label: 'sweep-imw' })).handle],
      command: (h) => kmu.imSymKey({ file, wrapping: h[0]!, type: 31, label: 'sweep-im' }),
      cleanup: async (h, r) => {
        await deleteNew(h, r);
        await kmu.run('deleteKey', { handle: h[0] });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('importPubKey (an EC public key in PEM)', async () => {
    const empty = tokenObjects();
    const file = join(dir, 'pub.pem');
    const key = execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    writeFileSync(file, execFileSync('openssl', ['pkey', '-pubout'], { input: key }));
    report.importPubKey = await sweep({
      label: 'sweep-pub',
      sample: true,
      setup: async () => [],
      command: () => kmu.importPubKey({ file, label: 'sweep-pub' }),
      cleanup: deleteNew,
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('importPrivateKey (an EC private key in PEM, carried in under an AES key)', async () => {
    const empty = tokenObjects();
    const file = join(dir, 'priv.pem');
    writeFileSync(file, execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']));
    report.importPrivateKey = await sweep({
      label: 'sweep-ipk',
      sample: true,
      setup: async () => [(await kmu.genSymKey({ type: 31, size: 32, label: 'sweep-ipw' })).handle],
      command: (h) => kmu.importPrivateKey({ file, wrapping: h[0]!, label: 'sweep-ipk' }),
      cleanup: async (h, r) => {
        await deleteNew(h, r);
        await kmu.run('deleteKey', { handle: h[0] });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('unWrapKey (an AES key wrapped with -m 4 under another)', async () => {
    const empty = tokenObjects();
    const file = join(dir, 'wrapped.key');
    report.unWrapKey = await sweep({
      label: 'sweep-uw',
      sample: true,
      setup: async () => {
        const wrapping = (await kmu.genSymKey({ type: 31, size: 32, label: 'sweep-uww' })).handle;
        const source = (await kmu.genSymKey({ type: 31, size: 16, label: 'sweep-uw' })).handle;
        await kmu.wrapKey({ key: source, wrapping, out: file, mechanism: 4 });
        return [wrapping, source];
      },
      command: (h) => kmu.unWrapKey({ file, wrapping: h[0]!, mechanism: 4 }),
      cleanup: async (h, r) => {
        await deleteNew(h, r);
        for (const k of h) await kmu.run('deleteKey', { handle: k });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('insertMaskedObject (a key extracted masked first)', async () => {
    const file = join(dir, 'masked.obj');
    // The token's masking key is made on first use and stays: the token counts from after it.
    const first = (await kmu.genSymKey({ type: 31, size: 32, label: 'sweep-mask' })).handle;
    await kmu.extractMaskedObject({ handle: first, out: file });
    await kmu.run('deleteKey', { handle: first });
    const empty = tokenObjects();
    report.insertMaskedObject = await sweep({
      label: 'sweep-mask',
      sample: true,
      setup: async () => {
        const key = (await kmu.genSymKey({ type: 31, size: 32, label: 'sweep-mask' })).handle;
        await kmu.extractMaskedObject({ handle: key, out: file });
        return [key];
      },
      command: () => kmu.insertMaskedObject({ file }),
      cleanup: async (h, r) => {
        await deleteNew(h, r);
        await kmu.run('deleteKey', { handle: h[0] });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });

  it('genDSAKeyPair', async () => {
    const empty = tokenObjects();
    report.genDSAKeyPair = await sweep({
      label: 'sweep-dsa',
      sample: true,
      setup: async () => [],
      command: () => kmu.genDSAKeyPair({ label: 'sweep-dsa' }),
      cleanup: async (_h, r) => {
        const pair = r as { publicKey: number; privateKey: number } | undefined;
        if (pair) for (const k of [pair.privateKey, pair.publicKey]) await kmu.run('deleteKey', { handle: k });
      },
    });
    expect(tokenObjects()).toBe(empty);
  });
});
