// The native addon on its own (build/Release/kmu11_pkcs11.node), against a
// real SoftHSM token, with pkcs11js (an independent binding) as the oracle.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeToken, notPkcs11Library, type TestToken } from './helpers/softhsm.js';

const require = createRequire(import.meta.url);

type Attr = { type: number; value: Buffer };
interface NativeModule {
  readonly path: string;
  readonly isOpen: boolean;
  [fn: string]: any;
}
interface Addon {
  Module: new (path: string) => NativeModule;
  setErrorFactory(f: unknown): void;
}

const addon = require('../build/Release/kmu11_pkcs11.node') as Addon;

// PKCS#11 v2.40 numbers, spelled out so this file depends on nothing but the addon.
const CKA = {
  CLASS: 0x0, TOKEN: 0x1, PRIVATE: 0x2, LABEL: 0x3, VALUE: 0x11, KEY_TYPE: 0x100, ID: 0x102,
  SENSITIVE: 0x103, ENCRYPT: 0x104, DECRYPT: 0x105, WRAP: 0x106, UNWRAP: 0x107, SIGN: 0x108,
  VERIFY: 0x10a, DERIVE: 0x10c, PRIME: 0x130, SUBPRIME: 0x131, BASE: 0x132, PRIME_BITS: 0x133,
  VALUE_LEN: 0x161, EXTRACTABLE: 0x162, LOCAL: 0x163, NEVER_EXTRACTABLE: 0x164,
  ALWAYS_SENSITIVE: 0x165, KEY_GEN_MECHANISM: 0x166, EC_PARAMS: 0x180, EC_POINT: 0x181,
};
const CKM = { EC_KEY_PAIR_GEN: 0x1040, ECDSA: 0x1041, DSA_PARAMETER_GEN: 0x2000, AES_KEY_GEN: 0x1080, SHA256: 0x250 };
const CKO = { PUBLIC_KEY: 2, PRIVATE_KEY: 3, SECRET_KEY: 4, DOMAIN_PARAMETERS: 6 };
const CKR = {
  ATTRIBUTE_TYPE_INVALID: 0x12, KEY_HANDLE_INVALID: 0x60, MECHANISM_INVALID: 0x70, OBJECT_HANDLE_INVALID: 0x82,
  PIN_INCORRECT: 0xa0, SIGNATURE_INVALID: 0xc0, TEMPLATE_INCOMPLETE: 0xd0, CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
};
const CKF_RW_SERIAL = 0x6;
// The addon takes attribute values encoded (src/p11/attributes.ts does it for kmu11): CK_BBOOL,
// CK_ULONG (8 bytes, little-endian), UTF-8.
const T = Buffer.from([1]);
const F = Buffer.from([0]);
const bool = (b: boolean) => (b ? T : F);
const ulong = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const hexUlong = (n: number) => ulong(n).toString('hex');
const CKU_USER = 1;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

let token: TestToken;
let mod: NativeModule;
let slot: number;
let session: number;

function ecTemplates(opts: { token: boolean; id?: Buffer; label?: string }) {
  const common: Attr[] = [
    { type: CKA.TOKEN, value: bool(opts.token) },
    ...(opts.id ? [{ type: CKA.ID, value: opts.id }] : []),
    ...(opts.label !== undefined ? [{ type: CKA.LABEL, value: utf8(opts.label) }] : []),
  ];
  const pub: Attr[] = [
    ...common,
    { type: CKA.EC_PARAMS, value: P256 },
    { type: CKA.PRIVATE, value: F },
    { type: CKA.VERIFY, value: T },
    { type: CKA.ENCRYPT, value: F },
    { type: CKA.WRAP, value: F },
    { type: CKA.DERIVE, value: F },
  ];
  const priv: Attr[] = [
    ...common,
    { type: CKA.PRIVATE, value: T },
    { type: CKA.SENSITIVE, value: T },
    { type: CKA.EXTRACTABLE, value: F },
    { type: CKA.SIGN, value: T },
    { type: CKA.DECRYPT, value: F },
    { type: CKA.UNWRAP, value: F },
    { type: CKA.DERIVE, value: F },
  ];
  return { pub, priv };
}

function valueOf(reads: Array<{ type: number; value?: Buffer; unavailable?: string }>, type: number): Buffer {
  const read = reads.find((r) => r.type === type);
  if (!read?.value) throw new Error(`attribute 0x${type.toString(16)} not read: ${JSON.stringify(read)}`);
  return read.value;
}

beforeAll(async () => {
  token = makeToken('addon-test');
  mod = new addon.Module(token.module);
  await mod.C_Initialize();
  const slots: number[] = await mod.C_GetSlotList(true);
  for (const s of slots) {
    if ((await mod.C_GetTokenInfo(s)).label === token.label) slot = s;
  }
  session = await mod.C_OpenSession(slot, CKF_RW_SERIAL);
  await mod.C_Login(session, CKU_USER, token.userPin);
});

afterAll(async () => {
  if (mod?.isOpen) await mod.C_Finalize();
  token?.cleanup();
});

describe('loading', () => {
  it('reports a dlopen failure with the path and dlerror()', async () => {
    const m = new addon.Module('/etc/hostname');
    const err = await m.C_Initialize().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain("'/etc/hostname'");
    expect(err.message).toMatch(/invalid ELF header|file too short|cannot/);
    expect(m.isOpen).toBe(false);
  });

  it('reports a missing file with its path and dlerror()', async () => {
    const err = await new addon.Module('/nonexistent/libnothing.so').C_Initialize().catch((e: Error) => e);
    expect(err.message).toContain("'/nonexistent/libnothing.so'");
    expect(err.message).toContain('cannot open shared object file');
  });

  it('reports a shared library that is not a PKCS#11 module', async () => {
    const lib = notPkcs11Library();
    const err = await new addon.Module(lib).C_Initialize().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(`'${lib}': no C_GetFunctionList`);
  });

  it('exposes module, slot and token information with padding trimmed', async () => {
    const info = await mod.C_GetInfo();
    expect(info.cryptokiVersion).toEqual({ major: 2, minor: 40 });
    expect(info.manufacturerID).toBe('SoftHSM');
    const tokenInfo = await mod.C_GetTokenInfo(slot);
    expect(tokenInfo.label).toBe('addon-test');
    expect(tokenInfo.model).toBe('SoftHSM v2');
    expect(tokenInfo.flags & 0x400).toBe(0x400); // CKF_TOKEN_INITIALIZED
    const slotInfo = await mod.C_GetSlotInfo(slot);
    expect(slotInfo.slotDescription).not.toMatch(/ $/);
    const mechs: number[] = await mod.C_GetMechanismList(slot);
    expect(mechs).toContain(CKM.EC_KEY_PAIR_GEN);
    const ecInfo = await mod.C_GetMechanismInfo(slot, CKM.EC_KEY_PAIR_GEN);
    expect(ecInfo.minKeySize).toBeGreaterThan(0);
    expect(ecInfo.flags & 0x10000).toBe(0x10000); // CKF_GENERATE_KEY_PAIR
  });

  it('shares one initialization between two handles on the same library; closing one keeps the other working', async () => {
    const second = new addon.Module(token.module);
    await second.C_Initialize(); // no CKR_CRYPTOKI_ALREADY_INITIALIZED: the record is shared
    expect(second.isOpen).toBe(true);
    // Sessions and login are the library's, so the second handle sees them.
    expect(await second.findObjects(session, [])).toBeInstanceOf(Array);
    await second.C_Finalize();
    expect(second.isOpen).toBe(false);
    // The first handle still works: C_Finalize was not called on the library.
    const random: Buffer = await mod.C_GenerateRandom(session, 8);
    expect(random.length).toBe(8);
    expect(await mod.C_GetInfo()).toHaveProperty('manufacturerID', 'SoftHSM');
    // The closed handle refuses calls without reaching the module.
    const err = await second.C_GetInfo().catch((e: any) => e);
    expect(err).toMatchObject({ code: CKR.CRYPTOKI_NOT_INITIALIZED, fn: 'C_GetInfo' });
  });

  it('refuses a second C_Initialize on the same handle', async () => {
    const err = await mod.C_Initialize().catch((e: any) => e);
    expect(err).toMatchObject({ code: CKR.CRYPTOKI_ALREADY_INITIALIZED, fn: 'C_Initialize' });
  });
});

describe('errors', () => {
  it('carry code and fn (src/p11 names the code), with a message', async () => {
    const s = await mod.C_OpenSession(slot, CKF_RW_SERIAL);
    // The application is already logged in as user; a wrong SO PIN is refused first.
    const wrong = await mod.C_Login(s, 0, 'not-the-pin').catch((e: any) => e);
    expect(wrong).toBeInstanceOf(Error);
    expect(wrong.fn).toBe('C_Login');
    expect(typeof wrong.code).toBe('number');
    expect(wrong.ckr).toBeUndefined();
    expect(wrong.message).toBe(`C_Login failed: CK_RV 0x${wrong.code.toString(16)}`);
    await mod.C_CloseSession(s);
  });

  it('names CKR_PIN_INCORRECT for a wrong user PIN', async () => {
    const other = makeToken('addon-pin', { setProcessEnv: false });
    try {
      // Same process, same library: use a token in a child process instead so
      // this process's login state is untouched.
      const out = execFileSync(
        process.execPath,
        [
          '-e',
          `const a=require(${JSON.stringify(require.resolve('../build/Release/kmu11_pkcs11.node'))});
           (async()=>{const m=new a.Module(${JSON.stringify(other.module)});await m.C_Initialize();
           const [s0]=await m.C_GetSlotList(true);const s=await m.C_OpenSession(s0,6);
           try{await m.C_Login(s,1,'00000000');console.log('no error')}catch(e){console.log(JSON.stringify({code:e.code,fn:e.fn,message:e.message}))}
           await m.C_Finalize();})()`,
        ],
        { env: other.env, encoding: 'utf8' },
      );
      expect(JSON.parse(out)).toEqual({
        code: CKR.PIN_INCORRECT,
        fn: 'C_Login',
        message: 'C_Login failed: CK_RV 0xa0',
      });
    } finally {
      other.cleanup();
    }
  });

  it('names the function that failed inside a composite call', async () => {
    const badKey = await mod.sign(session, { mechanism: CKM.ECDSA }, 0x7fffffff, Buffer.alloc(32)).catch((e: any) => e);
    expect(badKey.fn).toBe('C_SignInit');
    expect([CKR.KEY_HANDLE_INVALID, CKR.OBJECT_HANDLE_INVALID]).toContain(badKey.code);
    const badMech = await mod
      .C_GenerateKeyPair(session, { mechanism: 0x80001234 }, [], [])
      .catch((e: any) => e);
    expect(badMech).toMatchObject({ code: CKR.MECHANISM_INVALID, fn: 'C_GenerateKeyPair' });
    const incomplete = await mod
      .C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, [], [])
      .catch((e: any) => e);
    expect(incomplete).toMatchObject({ code: CKR.TEMPLATE_INCOMPLETE });
  });

  it('builds them with the registered factory (code, fn)', async () => {
    addon.setErrorFactory((code: number, fn: string) => Object.assign(new RangeError(`made ${fn}`), { code, fn }));
    try {
      const err = await mod.C_GetAttributeValue(session, 0x7ffffff1, [CKA.LABEL]).catch((e: any) => e);
      expect(err).toBeInstanceOf(RangeError);
      expect(err).toMatchObject({ message: 'made C_GetAttributeValue', code: CKR.OBJECT_HANDLE_INVALID });
    } finally {
      addon.setErrorFactory(null);
    }
  });
});

describe('EC P-256 key pair', () => {
  it('is generated through the addon and read back by pkcs11js in another process', async () => {
    const id = Buffer.from('addon-ec-1');
    // Every usage and storage flag a half can carry, explicitly (token defaults
    // differ). SoftHSM rejects the other half's flags, checked below.
    const pubT: Attr[] = [
      { type: CKA.TOKEN, value: T },
      { type: CKA.PRIVATE, value: F },
      { type: CKA.VERIFY, value: T },
      { type: CKA.DERIVE, value: F },
      { type: CKA.ENCRYPT, value: F },
      { type: CKA.WRAP, value: F },
      { type: CKA.EC_PARAMS, value: P256 },
      { type: CKA.ID, value: id },
      { type: CKA.LABEL, value: utf8('addon ec') },
    ];
    const privT: Attr[] = [
      { type: CKA.TOKEN, value: T },
      { type: CKA.PRIVATE, value: T },
      { type: CKA.SENSITIVE, value: T },
      { type: CKA.EXTRACTABLE, value: F },
      { type: CKA.SIGN, value: T },
      { type: CKA.DERIVE, value: F },
      { type: CKA.DECRYPT, value: F },
      { type: CKA.UNWRAP, value: F },
      { type: CKA.ID, value: id },
      { type: CKA.LABEL, value: utf8('addon ec') },
    ];
    for (const type of [CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.SIGN, CKA.DECRYPT, CKA.UNWRAP]) {
      const err = await mod
        .C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, [...pubT, { type, value: F }], privT)
        .catch((e: any) => e);
      expect(err).toMatchObject({ code: CKR.ATTRIBUTE_TYPE_INVALID, fn: 'C_GenerateKeyPair' });
    }
    const onPrivate = await mod
      .C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, pubT, [...privT, { type: CKA.VERIFY, value: F }])
      .catch((e: any) => e);
    expect(onPrivate).toMatchObject({ code: CKR.ATTRIBUTE_TYPE_INVALID });

    const pair = await mod.C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, pubT, privT);
    expect(typeof pair.publicKey).toBe('number');
    expect(typeof pair.privateKey).toBe('number');

    // The oracle: pkcs11js in a child process, default-free init (CKF_OS_LOCKING_OK),
    // finding both halves by CKA_ID and reading one attribute per call.
    const script = `
      const pkcs11js = require(${JSON.stringify(require.resolve('pkcs11js'))});
      const p = new pkcs11js.PKCS11();
      p.load(${JSON.stringify(token.module)});
      p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === ${JSON.stringify(token.label)});
      const s = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p.C_Login(s, pkcs11js.CKU_USER, ${JSON.stringify(token.userPin)});
      const out = {};
      for (const cls of [pkcs11js.CKO_PUBLIC_KEY, pkcs11js.CKO_PRIVATE_KEY]) {
        p.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_ID, value: Buffer.from(${JSON.stringify(id.toString('hex'))}, 'hex') }, { type: pkcs11js.CKA_CLASS, value: cls }]);
        const found = p.C_FindObjects(s, 10);
        p.C_FindObjectsFinal(s);
        const attrs = {};
        for (const [name, type] of Object.entries(${JSON.stringify(CKA)})) {
          try { attrs[name] = p.C_GetAttributeValue(s, found[0], [{ type }])[0].value.toString('hex'); }
          catch (e) { attrs[name] = e.message.split(':')[0]; }
        }
        out[cls === pkcs11js.CKO_PUBLIC_KEY ? 'public' : 'private'] = { count: found.length, attrs };
      }
      p.C_Logout(s); p.C_CloseSession(s); p.C_Finalize();
      console.log(JSON.stringify(out));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: token.env, encoding: 'utf8' }));
    expect(out.public.count).toBe(1);
    expect(out.private.count).toBe(1);
    expect(out.public.attrs).toMatchObject({
      CLASS: hexUlong(CKO.PUBLIC_KEY),
      KEY_TYPE: hexUlong(3),
      TOKEN: T.toString('hex'),
      PRIVATE: F.toString('hex'),
      LABEL: Buffer.from('addon ec').toString('hex'),
      ID: id.toString('hex'),
      VERIFY: T.toString('hex'),
      DERIVE: F.toString('hex'),
      ENCRYPT: F.toString('hex'),
      WRAP: F.toString('hex'),
      EC_PARAMS: P256.toString('hex'),
      LOCAL: T.toString('hex'),
      KEY_GEN_MECHANISM: hexUlong(CKM.EC_KEY_PAIR_GEN),
    });
    expect(out.public.attrs.EC_POINT).toMatch(/^044104[0-9a-f]{128}$/);
    expect(out.private.attrs).toMatchObject({
      CLASS: hexUlong(CKO.PRIVATE_KEY),
      KEY_TYPE: hexUlong(3),
      TOKEN: T.toString('hex'),
      PRIVATE: T.toString('hex'),
      SENSITIVE: T.toString('hex'),
      ALWAYS_SENSITIVE: T.toString('hex'),
      EXTRACTABLE: F.toString('hex'),
      NEVER_EXTRACTABLE: T.toString('hex'),
      SIGN: T.toString('hex'),
      DERIVE: F.toString('hex'),
      DECRYPT: F.toString('hex'),
      UNWRAP: F.toString('hex'),
      ID: id.toString('hex'),
      LABEL: Buffer.from('addon ec').toString('hex'),
      EC_PARAMS: P256.toString('hex'),
      VALUE: 'CKR_ATTRIBUTE_SENSITIVE',
    });

    // And the pair works: our signature verifies with our public key.
    const digest = Buffer.alloc(32, 0x5a);
    const signature: Buffer = await mod.sign(session, { mechanism: CKM.ECDSA }, pair.privateKey, digest);
    expect(signature.length).toBe(64);
    expect(await mod.verify(session, { mechanism: CKM.ECDSA }, pair.publicKey, digest, signature)).toBe(true);
    const tampered = Buffer.from(signature);
    tampered[0] ^= 0xff;
    const bad = await mod.verify(session, { mechanism: CKM.ECDSA }, pair.publicKey, digest, tampered).catch((e: any) => e);
    expect(bad).toMatchObject({ code: CKR.SIGNATURE_INVALID, fn: 'C_Verify' });

    await mod.C_DestroyObject(session, [pair.publicKey, pair.privateKey]);
  });
});

describe('C_GetAttributeValue', () => {
  it('returns the readable attributes of a sensitive private key and marks the rest', async () => {
    const { pub, priv } = ecTemplates({ token: false, label: 'sensitive' });
    const pair = await mod.C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
    const reads = await mod.C_GetAttributeValue(session, pair.privateKey, [
      CKA.CLASS,
      CKA.LABEL,
      CKA.VALUE,
      CKA.SENSITIVE,
      CKA.SIGN,
      CKA.EC_PARAMS,
    ]);
    expect(reads).toHaveLength(6);
    expect(reads[0]).toEqual({ type: CKA.CLASS, value: Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]) });
    expect(reads[1]).toEqual({ type: CKA.LABEL, value: Buffer.from('sensitive') });
    expect(reads[2]).toEqual({ type: CKA.VALUE, unavailable: 'sensitive' });
    expect(reads[3]).toEqual({ type: CKA.SENSITIVE, value: Buffer.from([1]) });
    expect(reads[4]).toEqual({ type: CKA.SIGN, value: Buffer.from([1]) });
    expect(reads[5]).toEqual({ type: CKA.EC_PARAMS, value: P256 });
    await mod.C_DestroyObject(session, [pair.publicKey, pair.privateKey]);
  });

  it('tells sensitive from invalid when both occur in one template', async () => {
    const { pub, priv } = ecTemplates({ token: false });
    const pair = await mod.C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
    const reads = await mod.C_GetAttributeValue(session, pair.privateKey, [0x80000001, CKA.VALUE, CKA.KEY_TYPE, CKA.PRIME]);
    expect(reads).toEqual([
      { type: 0x80000001, unavailable: 'invalid' },
      { type: CKA.VALUE, unavailable: 'sensitive' },
      { type: CKA.KEY_TYPE, value: Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]) },
      { type: CKA.PRIME, unavailable: 'invalid' },
    ]);
    // A single invalid attribute alone.
    expect(await mod.C_GetAttributeValue(session, pair.publicKey, [0x80000002])).toEqual([
      { type: 0x80000002, unavailable: 'invalid' },
    ]);
    expect(await mod.C_GetAttributeValue(session, pair.publicKey, [])).toEqual([]);
    await mod.C_DestroyObject(session, [pair.publicKey, pair.privateKey]);
  });

  it('still fails the whole call for errors that are not about one attribute', async () => {
    const err = await mod.C_GetAttributeValue(session, 0x7ffffff0, [CKA.CLASS]).catch((e: any) => e);
    expect(err).toMatchObject({ code: CKR.OBJECT_HANDLE_INVALID, fn: 'C_GetAttributeValue' });
  });
});

describe('objects', () => {
  it('finds every handle, copies, sets attributes and destroys an array in one call', async () => {
    const label = 'many-objects';
    const keys: number[] = [];
    for (let i = 0; i < 300; i++) {
      keys.push(
        await mod.C_GenerateKey(session, { mechanism: CKM.AES_KEY_GEN }, [
          { type: CKA.TOKEN, value: F },
          { type: CKA.VALUE_LEN, value: ulong(16) },
          { type: CKA.LABEL, value: utf8(label) },
        ]),
      );
    }
    // More than one C_FindObjects batch (256).
    const found: number[] = await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8(label) }]);
    expect(found.sort((a, b) => a - b)).toEqual([...keys].sort((a, b) => a - b));

    await mod.C_SetAttributeValue(session, keys[0], [{ type: CKA.LABEL, value: utf8('renamed') }]);
    const copy: number = await mod.C_CopyObject(session, keys[1], [{ type: CKA.LABEL, value: utf8('renamed') }]);
    expect(await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8('renamed') }])).toHaveLength(2);

    await mod.C_DestroyObject(session, [...keys, copy]);
    expect(await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8(label) }])).toEqual([]);
    expect(await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8('renamed') }])).toEqual([]);
  });

  it('destroys every handle of an array even when one fails, and reports the failure', async () => {
    const a = await mod.C_GenerateKey(session, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: F },
      { type: CKA.VALUE_LEN, value: ulong(16) },
      { type: CKA.LABEL, value: utf8('partial') },
    ]);
    const err = await mod.C_DestroyObject(session, [0x7ffffff1, a]).catch((e: any) => e);
    expect(err).toMatchObject({ code: CKR.OBJECT_HANDLE_INVALID, fn: 'C_DestroyObject' });
    expect(await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8('partial') }])).toEqual([]);
  });

  it('wraps a key and produces random bytes', async () => {
    const kek = await mod.C_GenerateKey(session, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: F },
      { type: CKA.VALUE_LEN, value: ulong(32) },
      { type: CKA.WRAP, value: T },
    ]);
    const key = await mod.C_GenerateKey(session, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: F },
      { type: CKA.VALUE_LEN, value: ulong(16) },
      { type: CKA.EXTRACTABLE, value: T },
    ]);
    const wrapped: Buffer = await mod.C_WrapKey(session, { mechanism: 0x2109 }, kek, key);
    expect(wrapped.length).toBe(24); // RFC 3394: 16 bytes + 8
    const random: Buffer = await mod.C_GenerateRandom(session, 33);
    expect(random.length).toBe(33);
    expect((await mod.C_GenerateRandom(session, 0)).length).toBe(0);
    await mod.C_DestroyObject(session, [kek, key]);
  });
});

describe('concurrency', () => {
  it('32 sessions × 30 EC generations in flight: no crash, exactly the expected objects', async () => {
    const label = 'parallel-ec';
    const sessions: number[] = [];
    for (let i = 0; i < 32; i++) sessions.push(await mod.C_OpenSession(slot, CKF_RW_SERIAL));
    const { pub, priv } = ecTemplates({ token: false, label });
    await Promise.all(
      sessions.map(async (s) => {
        for (let i = 0; i < 30; i++) {
          await mod.C_GenerateKeyPair(s, { mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
        }
      }),
    );
    const found: number[] = await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8(label) }]);
    expect(found).toHaveLength(32 * 30 * 2);
    expect(new Set(found).size).toBe(found.length);
    await mod.C_DestroyObject(session, found);
    await Promise.all(sessions.map((s) => mod.C_CloseSession(s)));
    expect(await mod.findObjects(session, [{ type: CKA.LABEL, value: utf8(label) }])).toEqual([]);
  });

  it('all calls in flight at once on different sessions (generate, find, read, sign, random)', async () => {
    const sessions: number[] = [];
    for (let i = 0; i < 16; i++) sessions.push(await mod.C_OpenSession(slot, CKF_RW_SERIAL));
    const { pub, priv } = ecTemplates({ token: false, label: 'mixed' });
    const results = await Promise.all(
      sessions.map(async (s, i) => {
        const pair = await mod.C_GenerateKeyPair(s, { mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
        const [sig, attrs, random, list] = await Promise.all([
          mod.sign(s, { mechanism: CKM.ECDSA }, pair.privateKey, Buffer.alloc(32, i)),
          mod.C_GetAttributeValue(sessions[(i + 1) % 16], pair.publicKey, [CKA.EC_POINT, CKA.LABEL]),
          mod.C_GenerateRandom(sessions[(i + 2) % 16], 16),
          mod.C_GetSlotList(true),
        ]);
        const ok = await mod.verify(s, { mechanism: CKM.ECDSA }, pair.publicKey, Buffer.alloc(32, i), sig);
        await mod.C_DestroyObject(s, [pair.publicKey, pair.privateKey]);
        return ok && valueOf(attrs, CKA.LABEL).toString() === 'mixed' && random.length === 16 && list.includes(slot);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    await Promise.all(sessions.map((s) => mod.C_CloseSession(s)));
  });

  it('keeps the event loop running during a DSA-2048 parameter generation', async () => {
    let immediates = 0;
    let timers = 0;
    let running = true;
    const spinImmediate = () => {
      immediates++;
      if (running) setImmediate(spinImmediate);
    };
    setImmediate(spinImmediate);
    const timer = setInterval(() => timers++, 1);
    const started = performance.now();
    const params = await mod.C_GenerateKey(session, { mechanism: CKM.DSA_PARAMETER_GEN }, [
      { type: CKA.TOKEN, value: F },
      { type: CKA.PRIME_BITS, value: ulong(2048) },
    ]);
    const elapsed = performance.now() - started;
    running = false;
    clearInterval(timer);
    const reads = await mod.C_GetAttributeValue(session, params, [CKA.CLASS, CKA.PRIME, CKA.SUBPRIME, CKA.BASE]);
    expect(valueOf(reads, CKA.CLASS).readUInt32LE(0)).toBe(CKO.DOMAIN_PARAMETERS);
    expect(valueOf(reads, CKA.PRIME).length).toBe(256);
    expect(valueOf(reads, CKA.SUBPRIME).length).toBe(32);
    // The loop ran all along: roughly one timer tick per millisecond (at least
    // a few dozen), and setImmediate many times over.
    expect(timers).toBeGreaterThan(Math.min(20, elapsed / 20));
    expect(immediates).toBeGreaterThan(100);
    await mod.C_DestroyObject(session, params);
  });
});

describe('where calls run', () => {
  const addonPath = require.resolve('../build/Release/kmu11_pkcs11.node');

  it('runs the calls of one session one at a time, in the order they were made', async () => {
    const s = await mod.C_OpenSession(slot, CKF_RW_SERIAL);
    const { pub, priv } = ecTemplates({ token: false, label: 'ordered' });
    const pair = await mod.C_GenerateKeyPair(s, { mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
    // Nothing awaited in between: a find started while another find is active on the same
    // session would get CKR_OPERATION_ACTIVE, and a read racing the destroy could still succeed.
    const finds = Array.from({ length: 8 }, () => mod.findObjects(s, [{ type: CKA.LABEL, value: utf8('ordered') }]));
    const destroyed = mod.C_DestroyObject(s, pair.publicKey);
    const readAfter = mod.C_GetAttributeValue(s, pair.publicKey, [CKA.LABEL]).catch((e: { code: number }) => e);
    for (const found of await Promise.all(finds)) expect([...found].sort()).toEqual([pair.publicKey, pair.privateKey].sort());
    await destroyed;
    expect(await readAfter).toMatchObject({ code: CKR.OBJECT_HANDLE_INVALID, fn: 'C_GetAttributeValue' });
    await mod.C_DestroyObject(s, pair.privateKey);
    await mod.C_CloseSession(s);
  });

  it('keeps a process alive while a call is in flight, and not after', () => {
    const script = `
      const addon = require(${JSON.stringify(addonPath)});
      const m = new addon.Module(${JSON.stringify(token.module)});
      m.C_Initialize().then(() => m.C_GetSlotList(true)).then((slots) => console.log('slots', slots.length));
      // no C_Finalize, no timers: the process ends once the calls are done`;
    const out = execFileSync(process.execPath, ['-e', script], { env: token.env, encoding: 'utf8', timeout: 20_000 });
    expect(out).toMatch(/^slots [1-9]/);
  });

  it('survives a worker thread that is terminated with calls in flight', async () => {
    const { Worker } = await import('node:worker_threads');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const addon = require(${JSON.stringify(addonPath)});
      const m = new addon.Module(${JSON.stringify(token.module)});
      (async () => {
        await m.C_Initialize();
        const slots = await m.C_GetSlotList(true);
        let slot;
        for (const s of slots) if ((await m.C_GetTokenInfo(s)).label === ${JSON.stringify(token.label)}) slot = s;
        const s = await m.C_OpenSession(slot, 6);
        for (let i = 0; i < 4; i++) {
          m.C_GenerateKey(s, { mechanism: 0x2000 }, [{ type: 0x1, value: Buffer.from([0]) }, { type: 0x133, value: Buffer.from([0, 8, 0, 0, 0, 0, 0, 0]) }]).catch(() => {});
        }
        parentPort.postMessage('busy');
      })();`;
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(code, { eval: true, env: token.env });
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      expect(await worker.terminate()).toBe(1);
    }
    // This thread's module is unaffected.
    expect((await mod.C_GenerateRandom(session, 8)).length).toBe(8);
  });
});

describe('memory', () => {
  it('frees templates and results (no growth over many calls with a 256 KiB attribute)', async () => {
    const big = Buffer.alloc(256 * 1024, 0xab);
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        // Rejected by the module after the template was copied: exercises the
        // copy-and-free path without creating objects.
        await mod
          .C_GenerateKey(session, { mechanism: CKM.AES_KEY_GEN, parameter: big }, [
            { type: CKA.TOKEN, value: F },
            { type: CKA.LABEL, value: big },
            { type: CKA.VALUE_LEN, value: ulong(16) },
          ])
          .then(
            (h: number) => mod.C_DestroyObject(session, h),
            () => undefined,
          );
      }
    };
    await run(50);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage().rss;
    await run(400);
    gc?.();
    const growth = (process.memoryUsage().rss - before) / 1024 / 1024;
    // 400 × (2 × 256 KiB) copied in total; a leak would show as ~200 MiB.
    expect(growth).toBeLessThan(40);
  });
});

describe('argument checking', () => {
  const m = () => mod;
  const s = () => session;
  const good = { mechanism: CKM.EC_KEY_PAIR_GEN };
  const cases: Array<[string, () => unknown]> = [
    ['Module(number)', () => new addon.Module(5 as unknown as string)],
    ['Module(empty)', () => new addon.Module('')],
    ['Module without new', () => (addon.Module as unknown as () => void)()],
    ['setErrorFactory(number)', () => addon.setErrorFactory(5)],
    ['C_GetSlotList(string)', () => m().C_GetSlotList('yes')],
    ['C_GetSlotInfo(-1)', () => m().C_GetSlotInfo(-1)],
    ['C_GetSlotInfo(1.5)', () => m().C_GetSlotInfo(1.5)],
    ['C_GetSlotInfo(2^53)', () => m().C_GetSlotInfo(2 ** 53)],
    ['C_GetTokenInfo(null)', () => m().C_GetTokenInfo(null)],
    ['C_GetMechanismList(string)', () => m().C_GetMechanismList('0')],
    ['C_GetMechanismInfo(slot, string)', () => m().C_GetMechanismInfo(slot, 'EC')],
    ['C_InitToken(slot, number, label)', () => m().C_InitToken(slot, 1234, 'x')],
    ['C_InitToken(slot, pin, long label)', () => m().C_InitToken(slot, '1234', 'x'.repeat(33))],
    ['C_InitPIN(session, object)', () => m().C_InitPIN(s(), {})],
    ['C_OpenSession(slot, string)', () => m().C_OpenSession(slot, 'rw')],
    ['C_CloseSession()', () => m().C_CloseSession()],
    ['C_Login(session, 1, number)', () => m().C_Login(s(), CKU_USER, 1234)],
    ['C_Login(session, string, pin)', () => m().C_Login(s(), 'user', '1234')],
    ['C_Logout(NaN)', () => m().C_Logout(NaN)],
    ['C_GenerateKeyPair(mechanism {})', () => m().C_GenerateKeyPair(s(), {}, [], [])],
    ['C_GenerateKeyPair(mechanism string)', () => m().C_GenerateKeyPair(s(), 'EC', [], [])],
    ['C_GenerateKeyPair(parameter string)', () => m().C_GenerateKeyPair(s(), { mechanism: 1, parameter: 'x' }, [], [])],
    ['C_GenerateKeyPair(template object)', () => m().C_GenerateKeyPair(s(), good, {}, [])],
    ['C_GenerateKeyPair(attr null)', () => m().C_GenerateKeyPair(s(), good, [null], [])],
    ['C_GenerateKeyPair(type string)', () => m().C_GenerateKeyPair(s(), good, [], [{ type: 'x', value: true }])],
    ['C_GenerateKeyPair(value object)', () => m().C_GenerateKeyPair(s(), good, [{ type: 1, value: {} }], [])],
    ['C_GenerateKeyPair(value undefined)', () => m().C_GenerateKeyPair(s(), good, [{ type: 1 }], [])],
    ['C_GenerateKeyPair(value -1)', () => m().C_GenerateKeyPair(s(), good, [{ type: 1, value: -1 }], [])],
    // Values arrive encoded: a boolean, number, string or null is no longer guessed at.
    ['C_GenerateKeyPair(value boolean)', () => m().C_GenerateKeyPair(s(), good, [{ type: 1, value: true }], [])],
    ['C_GenerateKeyPair(value number)', () => m().C_GenerateKeyPair(s(), good, [{ type: 0x161, value: 16 }], [])],
    ['C_GenerateKeyPair(value string)', () => m().C_GenerateKeyPair(s(), good, [{ type: 3, value: 'label' }], [])],
    ['C_GenerateKeyPair(value null)', () => m().C_GenerateKeyPair(s(), good, [{ type: 3, value: null }], [])],
    ['C_GenerateKeyPair(value Float64Array)', () =>
      m().C_GenerateKeyPair(s(), good, [{ type: 1, value: new Float64Array(2) }], [])],
    ['C_GenerateKey(template missing)', () => m().C_GenerateKey(s(), good)],
    ['findObjects(string)', () => m().findObjects(s(), 'all')],
    ['C_GetAttributeValue(types string)', () => m().C_GetAttributeValue(s(), 1, 'CKA_LABEL')],
    ['C_GetAttributeValue(types [string])', () => m().C_GetAttributeValue(s(), 1, [1, 'x'])],
    ['C_GetAttributeValue(object string)', () => m().C_GetAttributeValue(s(), '1', [1])],
    ['C_SetAttributeValue(template number)', () => m().C_SetAttributeValue(s(), 1, 3)],
    ['C_CopyObject(object -1)', () => m().C_CopyObject(s(), -1, [])],
    ['C_DestroyObject(string)', () => m().C_DestroyObject(s(), 'all')],
    ['C_DestroyObject([1, x])', () => m().C_DestroyObject(s(), [1, 'x'])],
    ['C_DestroyObject(1, here string)', () => m().C_DestroyObject(s(), 1, 'yes')],
    ['sign(data string)', () => m().sign(s(), { mechanism: CKM.ECDSA }, 1, 'data')],
    ['sign(key string)', () => m().sign(s(), { mechanism: CKM.ECDSA }, 'k', Buffer.alloc(1))],
    ['verify(signature number)', () => m().verify(s(), { mechanism: CKM.ECDSA }, 1, Buffer.alloc(1), 5)],
    ['C_WrapKey(wrapping key string)', () => m().C_WrapKey(s(), { mechanism: 1 }, 'k', 1)],
    ['C_GenerateRandom(-1)', () => m().C_GenerateRandom(s(), -1)],
    ['C_GenerateRandom(string)', () => m().C_GenerateRandom(s(), '16')],
  ];
  it.each(cases)('%s throws a TypeError', (_name, call) => {
    expect(call).toThrow(TypeError);
  });

  it('names the offending argument', () => {
    expect(() => mod.C_GenerateKeyPair(session, good, [{ type: 1, value: T }, { type: 2, value: {} }], [])).toThrow(
      "publicTemplate[1].value must be a Buffer (the attribute's encoded value)",
    );
    expect(() => mod.C_Login(session, CKU_USER, 5)).toThrow('pin must be a string or a Buffer');
  });

  it('the module still works after all of that', async () => {
    expect((await mod.C_GenerateRandom(session, 4)).length).toBe(4);
  });
});
