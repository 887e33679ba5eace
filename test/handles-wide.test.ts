// PKCS#11 handles are opaque CK_ULONGs: a module may use all 64 bits (tpm2-pkcs11's session
// handles are above 2^53). The fault module shows SoftHSM's handles as real + 0x7A00…0000, so
// every session and object handle here is one a JS number cannot hold; they must round-trip
// whole through the addon, the p11 layer and the CLI.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CKA, CKM, CKO, CKR, Module, Pkcs11Error, type Session, type Template } from '../src/p11/index.js';
import { kmu11, pairHandles } from './helpers/cli.js';
import { faultEnv, faultModule } from './helpers/faultmod.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const FIRST_ID = 2 ** 52; // the addon's ids for handles it cannot give as themselves
let token: TestToken;
let lib: string;
let dir: string;

beforeAll(() => {
  lib = faultModule();
  token = makeToken('wide');
  dir = mkdtempSync(join(tmpdir(), 'kmu11-wide-'));
});
afterAll(() => {
  token?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** pkcs11-tool straight on SoftHSM: the token's objects as the oracle sees them. */
const listObjects = () =>
  execFileSync('pkcs11-tool', ['--module', token.module, '--login', '--pin', token.userPin, '--list-objects'], {
    env: token.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });

describe('the p11 layer over a module whose handles exceed 2^53', () => {
  let mod: Module;
  let session: Session;

  beforeAll(async () => {
    process.env.P11FAULT_HANDLES = 'high';
    mod = await Module.load(lib);
    const [slot] = await mod.getSlots();
    session = await slot!.openSession();
  });
  afterAll(async () => {
    await mod?.close();
    delete process.env.P11FAULT_HANDLES;
  });

  it('gives the session and the objects small stable ids that reach the module whole', async () => {
    expect(session.handle).toBeGreaterThanOrEqual(FIRST_ID);
    expect(Number.isSafeInteger(session.handle)).toBe(true);
    await session.login(token.userPin);
    const pub: Template = [
      { type: CKA.TOKEN, value: true },
      { type: CKA.LABEL, value: 'wide' },
      { type: CKA.EC_PARAMS, value: P256 },
      { type: CKA.VERIFY, value: true },
    ];
    const priv: Template = [
      { type: CKA.TOKEN, value: true },
      { type: CKA.LABEL, value: 'wide' },
      { type: CKA.SIGN, value: true },
    ];
    const pair = await session.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
    expect(pair.publicKey).toBeGreaterThanOrEqual(FIRST_ID);
    expect(pair.privateKey).toBeGreaterThanOrEqual(FIRST_ID);
    // The same object found again has the same id.
    const found = await session.find([{ type: CKA.LABEL, value: 'wide' }]);
    expect(found.sort()).toEqual([pair.publicKey, pair.privateKey].sort());
    const [cls] = await session.getAttributes(pair.privateKey, [CKA.CLASS]);
    expect(cls).toMatchObject({ type: CKA.CLASS, value: CKO.PRIVATE_KEY });
    const data = Buffer.alloc(32, 7);
    const sig = await session.sign({ mechanism: CKM.ECDSA }, pair.privateKey, data);
    expect(await session.verify({ mechanism: CKM.ECDSA }, pair.publicKey, data, sig)).toBe(true);
    expect(listObjects()).toContain('label:      wide');

    await session.destroyObject([pair.publicKey, pair.privateKey]);
    expect(listObjects()).not.toContain('label:      wide');
    // A destroyed object's id names nothing, not some other object.
    const err = await session.getAttributes(pair.privateKey, [CKA.CLASS]).catch((e) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err.code).toBe(CKR.OBJECT_HANDLE_INVALID);
    // An id never given out is an invalid handle too.
    const never = await session.getAttributes(FIRST_ID + 123456, [CKA.CLASS]).catch((e) => e);
    expect(never.code).toBe(CKR.OBJECT_HANDLE_INVALID);
  });

  it('forgets a closed session: its id is then an invalid session handle', async () => {
    const [slot] = await mod.getSlots();
    const other = await slot!.openSession();
    expect(other.handle).not.toBe(session.handle);
    await other.close();
    const err = await other.login(token.userPin).catch((e) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err.code).toBe(CKR.SESSION_HANDLE_INVALID);
  });
});

describe('the CLI (generic backend) over that module', () => {
  it('makes, finds, reads and deletes a key pair', () => {
    const env = {
      ...faultEnv({ module: token.module, highHandles: true }),
      SOFTHSM2_CONF: token.conf,
      KMU11_MODULE: lib,
      KMU11_TOKEN: token.label,
      KMU11_HOME: join(dir, 'home'),
      KMU11_CONFIG: '',
    };
    const login = ['loginHSM', '-u', 'CU', '-s', 'user', '-p', token.userPin];
    const gen = kmu11(['singlecmd', ...login, 'genECCKeyPair', '-i', '2', '-l', 'widecli'], { env });
    expect(gen.status, gen.stdout + gen.stderr).toBe(0);
    const { pub, priv } = pairHandles(gen.stdout);
    const find = kmu11(['singlecmd', ...login, 'findKey', '-l', 'widecli'], { env });
    expect(find.status, find.stderr).toBe(0);
    expect(find.stdout).toContain(`${pub}, ${priv}`);
    const attr = kmu11(['singlecmd', ...login, 'getAttribute', '-o', String(priv), '-a', '0'], { env });
    expect(attr.status, attr.stderr).toBe(0);
    expect(attr.stdout).toMatch(/OBJ_ATTR_CLASS\s+0x0*3\b/);
    const del = kmu11(['singlecmd', ...login, 'deleteKey', '-k', String(priv), 'deleteKey', '-k', String(pub)], { env });
    expect(del.status, del.stdout + del.stderr).toBe(0);
    expect(listObjects()).not.toContain('widecli');
  });
});
