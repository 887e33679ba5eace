// The fault-injecting PKCS#11 module (test/fixtures/faultmod) itself: it forwards to SoftHSM,
// counts calls, fails the k-th call of a function with the chosen CK_RV, crashes on demand,
// delays, and takes new faults from a control file in the middle of a process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CKA, CKM, CKR, Module, Pkcs11Error, type Session, type Template } from '../src/p11/index.js';
import { faultEnv, faultModule, readFaultCounts, writeFaultControl, type FaultOptions } from './helpers/faultmod.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const REPO = join(import.meta.dirname, '..');
let token: TestToken;
let dir: string;
let lib: string;

beforeAll(() => {
  lib = faultModule();
  token = makeToken('faultmod');
  dir = mkdtempSync(join(tmpdir(), 'kmu11-fault-'));
});
afterAll(() => {
  token?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function tool(args: string[], opts: FaultOptions = {}) {
  const r = spawnSync('pkcs11-tool', ['--module', lib, ...args], {
    env: { ...token.env, ...faultEnv(opts) },
    encoding: 'utf8',
  });
  return { status: r.status, signal: r.signal, out: r.stdout + r.stderr };
}

const login = ['--login', '--pin', '87654321'];

describe('through pkcs11-tool', () => {
  it('forwards every call and counts them per function', () => {
    const counts = join(dir, 'counts-gen');
    const r = tool([...login, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'fwd'], { counts });
    expect(r.status, r.out).toBe(0);
    const c = readFaultCounts(counts);
    expect(c.C_GenerateKeyPair).toBe(1);
    expect(c.C_Login).toBe(1);
    expect(c.C_Initialize).toBe(1);
    expect(c.C_Finalize).toBe(1);
    expect(tool(['--list-objects', '--type', 'privkey', ...login]).out).toContain('label:      fwd');
  });

  it('fails the k-th call of a function with the CK_RV named, without reaching the token', () => {
    const before = tool([...login, '--list-objects']).out;
    const r = tool([...login, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'never'], {
      fail: [['C_GenerateKeyPair', 1, 'CKR_DEVICE_ERROR']],
    });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/C_GenerateKeyPair failed: rv = CKR_DEVICE_ERROR \(0x30\)/);
    expect(tool([...login, '--list-objects']).out).toBe(before);
    // A code given in hex.
    const hex = tool([...login, '--list-objects'], { fail: [['C_Login', 1, '0xa0']] });
    expect(hex.out).toMatch(/CKR_PIN_INCORRECT/);
  });

  it('crashes the process on the chosen call', () => {
    const r = tool([...login, '--list-objects'], { crash: [['C_Login', 1]] });
    expect(r.signal).toBe('SIGABRT');
    expect(r.out).toContain('libp11fault: crashing in C_Login call 1');
  });

  it('with a delay and high handles, still forwards correctly', () => {
    const r = tool([...login, '--list-objects', '--type', 'privkey'], { delayUs: 1000, highHandles: true });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('label:      fwd');
  });
});

describe('remote mode (the benchmark\'s networked-HSM stand-in)', () => {
  it('names itself, not SoftHSM, in C_GetInfo and C_GetTokenInfo', () => {
    const plain = tool(['-I']);
    expect(plain.out).toMatch(/Manufacturer\s+SoftHSM/);
    const remote = tool(['-I'], { remote: true });
    expect(remote.status, remote.out).toBe(0);
    expect(remote.out).toMatch(/Manufacturer\s+kmu11 networked-HSM stand-in/);
    expect(remote.out).not.toMatch(/SoftHSM/);
    expect(tool(['-L'], { remote: true }).out).toMatch(/manufacturer\s*:\s*kmu11 networked-HSM stand-in[\s\S]*model\s*:\s*remote/);
  });

  it('so kmu11 leaves its SoftHSM object lock off, and the module orders the writes itself', () => {
    // loadModule turns the ObjectLock on for SoftHSM 2.6 only; through the remote mode it stays
    // off, and 24 token pairs made 8 at a time all land whole (SoftHSM's race would lose some).
    const code = `
      const { loadModule } = await import(${JSON.stringify(join(REPO, 'dist/backend/tokenAccess.js'))});
      const { OBJECT_LOCK } = await import(${JSON.stringify(join(REPO, 'dist/p11/module.js'))});
      const { CKA, CKM } = await import(${JSON.stringify(join(REPO, 'dist/p11/index.js'))});
      const mod = await loadModule(process.env.LIB);
      const [slot] = await mod.getSlots();
      const s = await slot.openSession();
      await s.login('87654321');
      const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
      const make = async (w, i) => {
        for (let k = 0; k < 3; k++) await s.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN },
          [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: 'rm' + w + '-' + k }, { type: CKA.EC_PARAMS, value: P256 }],
          [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: 'rm' + w + '-' + k }, { type: CKA.SIGN, value: true }]);
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => make(w)));
      console.log(JSON.stringify({ lock: mod[OBJECT_LOCK].enabled }));
      await mod.close();`;
    const run = (remote: boolean) =>
      spawnSync(process.execPath, ['--input-type=module', '-e', code], {
        env: { ...token.env, ...faultEnv({ remote }), LIB: lib },
        encoding: 'utf8',
      });
    const r = run(true);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ lock: false });
    const list = tool([...login, '--list-objects', '--type', 'privkey']).out;
    expect(list.match(/label:\s+rm\d-\d/g)?.length).toBe(24);
    // The same module without the remote mode is SoftHSM to kmu11: the lock is on.
    const p = spawnSync(process.execPath, ['--input-type=module', '-e', code.replace(/const make[\s\S]*?await Promise.all\([^;]*;/, '')], {
      env: { ...token.env, LIB: lib },
      encoding: 'utf8',
    });
    expect(p.status, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toEqual({ lock: true });
  });
});

describe('in process, through a control file', () => {
  let mod: Module;
  let session: Session;
  const control = () => join(dir, 'control');
  const counts = () => join(dir, 'counts-live');

  const ec = (label: string): [Template, Template] => [
    [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: label }, { type: CKA.EC_PARAMS, value: P256 }],
    [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: label }, { type: CKA.SIGN, value: true }],
  ];

  beforeAll(async () => {
    writeFaultControl(control(), {});
    Object.assign(process.env, faultEnv({ control: control(), counts: counts() }));
    mod = await Module.load(lib);
    const [slot] = await mod.getSlots();
    session = await slot!.openSession();
    await session.login(token.userPin);
  });
  afterAll(async () => {
    await mod?.close();
    delete process.env.P11FAULT_CONTROL;
    delete process.env.P11FAULT_COUNTS;
  });

  it('applies faults written while the module is loaded, counting from the change', async () => {
    const before = await session.find([{ type: CKA.TOKEN, value: true }]);
    writeFaultControl(control(), { fail: [['C_GenerateKeyPair', 2, 'CKR_DEVICE_MEMORY']] });
    const first = await session.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ec('one'));
    const err = await session.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ec('two')).catch((e) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err.code).toBe(CKR.DEVICE_MEMORY);
    expect(err.fn).toBe('C_GenerateKeyPair');
    expect(readFaultCounts(counts()).C_GenerateKeyPair).toBe(2);
    // The third call passes, and the token holds exactly the two pairs that succeeded.
    const third = await session.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ec('three'));
    const after = await session.find([{ type: CKA.TOKEN, value: true }]);
    expect(after.filter((h) => !before.includes(h)).sort()).toEqual(
      [first.publicKey, first.privateKey, third.publicKey, third.privateKey].sort(),
    );
    // An empty control file clears the faults.
    writeFaultControl(control(), {});
    await session.destroyObject([first.publicKey, first.privateKey, third.publicKey, third.privateKey]);
    expect(await session.find([{ type: CKA.TOKEN, value: true }])).toEqual(before);
    expect(readFaultCounts(counts()).C_DestroyObject).toBe(4);
  });
});
