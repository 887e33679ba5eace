// The typed PKCS#11 surface (src/p11) against a real SoftHSM token.
import { createRequire } from 'node:module';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ATTRIBUTE_KINDS,
  CKA,
  CKF_INITIALIZE,
  CKF_MECHANISM,
  CKF_SESSION,
  CKF_SLOT,
  CKF_TOKEN,
  CKK,
  CKM,
  CKO,
  CKR,
  CKS,
  CKU,
  Module,
  Pkcs11Error,
  ckaName,
  ckmName,
  ckrName,
  decodeAttribute,
  encodeAttribute,
  encodeTemplate,
  type AttributeRead,
  type Session,
  type Slot,
  type Template,
} from '../src/p11/index.js';
import { NATIVE } from '../src/p11/native.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const require = createRequire(import.meta.url);
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

let token: TestToken;
let module: Module;
let slot: Slot;
let session: Session;

function ecTemplates(opts: { token?: boolean; label?: string; id?: Buffer } = {}): [Template, Template] {
  const common: Template = [
    { type: CKA.TOKEN, value: opts.token ?? false },
    ...(opts.label !== undefined ? [{ type: CKA.LABEL, value: opts.label }] : []),
    ...(opts.id ? [{ type: CKA.ID, value: opts.id }] : []),
  ];
  return [
    [
      ...common,
      { type: CKA.EC_PARAMS, value: P256 },
      { type: CKA.PRIVATE, value: false },
      { type: CKA.VERIFY, value: true },
      { type: CKA.ENCRYPT, value: false },
      { type: CKA.WRAP, value: false },
      { type: CKA.DERIVE, value: false },
    ],
    [
      ...common,
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: false },
      { type: CKA.SIGN, value: true },
      { type: CKA.DECRYPT, value: false },
      { type: CKA.UNWRAP, value: false },
      { type: CKA.DERIVE, value: false },
    ],
  ];
}

function value(reads: AttributeRead[], type: number): unknown {
  const read = reads.find((r) => r.type === type);
  if (!read || !('value' in read)) throw new Error(`${ckaName(type)} not read: ${JSON.stringify(read)}`);
  return read.value;
}

beforeAll(async () => {
  token = makeToken('p11-test');
  module = await Module.load(token.module);
  const found = await module.findSlotByTokenLabel(token.label);
  if (!found) throw new Error('test token not found');
  slot = found;
  session = await slot.openSession();
  await session.login(token.userPin);
});

afterAll(async () => {
  await module?.close();
  token?.cleanup();
});

describe('constants', () => {
  it('agree with pkcs11js for every name both define', () => {
    const pkcs11js = require('pkcs11js') as Record<string, unknown>;
    const tables: Array<[string, Record<string, number>]> = [
      ['CKA', CKA], ['CKO', CKO], ['CKK', CKK], ['CKM', CKM], ['CKR', CKR], ['CKU', CKU], ['CKS', CKS],
      // One CKF_ table per structure; pkcs11js has one flat CKF_ namespace.
      ['CKF', CKF_SLOT], ['CKF', CKF_TOKEN], ['CKF', CKF_SESSION], ['CKF', CKF_MECHANISM], ['CKF', CKF_INITIALIZE],
    ];
    let compared = 0;
    for (const [prefix, table] of tables) {
      for (const [name, v] of Object.entries(pkcs11js)) {
        if (!name.startsWith(`${prefix}_`) || typeof v !== 'number') continue;
        const ours = table[name.slice(prefix.length + 1)];
        if (ours === undefined) continue;
        expect([name, ours]).toEqual([name, v]);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(500);
  });

  it('are frozen', () => {
    expect(Object.isFrozen(CKA)).toBe(true);
    expect(() => {
      (CKM as Record<string, number>).EC_KEY_PAIR_GEN = 1;
    }).toThrow(TypeError);
  });

  it('name codes, attributes and mechanisms', () => {
    expect(ckrName(CKR.PIN_INCORRECT)).toBe('CKR_PIN_INCORRECT');
    expect(ckrName(0x80000001)).toBe('CKR_VENDOR_DEFINED');
    expect(ckrName(0x999)).toBe('CKR_0x999');
    expect(ckaName(CKA.EC_PARAMS)).toBe('CKA_EC_PARAMS');
    expect(ckaName(0x80000010)).toBe('CKA_VENDOR_DEFINED+0x10');
    expect(ckmName(CKM.EC_KEY_PAIR_GEN)).toBe('CKM_EC_KEY_PAIR_GEN');
    expect(ckmName(CKM.DSA_PARAMETER_GEN)).toBe('CKM_DSA_PARAMETER_GEN');
    expect(ckmName(0x7777)).toBe('CKM_0x7777');
  });
});

describe('attribute table and encoding', () => {
  it('covers every standard attribute', () => {
    for (const [name, type] of Object.entries(CKA)) {
      if (name === 'VENDOR_DEFINED') continue;
      expect([name, ATTRIBUTE_KINDS.has(type)]).toEqual([name, true]);
    }
  });

  it('encodes by the attribute table, refusing a value of the wrong kind for its attribute', () => {
    expect(encodeAttribute(CKA.TOKEN, true)).toEqual(Buffer.from([1]));
    expect(encodeAttribute(CKA.TOKEN, false)).toEqual(Buffer.from([0]));
    expect(encodeAttribute(CKA.CLASS, CKO.PRIVATE_KEY)).toEqual(Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]));
    expect(encodeAttribute(CKA.MODULUS_BITS, 2 ** 40 + 1)).toEqual(Buffer.from([1, 0, 0, 0, 0, 1, 0, 0]));
    expect(encodeAttribute(CKA.LABEL, 'ключ')).toEqual(Buffer.from('ключ', 'utf8'));
    const raw = Buffer.from([9, 8]);
    const copy = encodeAttribute(CKA.ID, raw);
    expect(copy).toEqual(raw);
    expect(copy).not.toBe(raw);
    expect(() => encodeAttribute(CKA.CLASS, -1)).toThrow(TypeError);
    expect(() => encodeAttribute(CKA.CLASS, 1.5)).toThrow(TypeError);
    expect(() => encodeAttribute(CKA.CLASS, {} as unknown as number)).toThrow(TypeError);
    // The value's JS type no longer decides its bytes: a number for CKA_LABEL is refused (it
    // used to reach the token as 8 bytes), as is a string for a CK_BBOOL or a bad date.
    expect(() => encodeAttribute(CKA.LABEL, 7)).toThrow('CKA_LABEL takes a string (UTF-8) or a Buffer, not a number');
    expect(() => encodeAttribute(CKA.TOKEN, 'true')).toThrow('CKA_TOKEN takes a boolean (CK_BBOOL), not a string');
    expect(() => encodeAttribute(CKA.VALUE_LEN, true)).toThrow(/CKA_VALUE_LEN takes a non-negative safe integer/);
    expect(() => encodeAttribute(CKA.START_DATE, '2025-01-31')).toThrow(/CKA_START_DATE takes a 'YYYYMMDD'/);
    expect(encodeAttribute(CKA.START_DATE, '20250131')).toEqual(Buffer.from('20250131'));
    expect(encodeAttribute(CKA.ID, 'k1')).toEqual(Buffer.from('k1'));
    // Vendor attributes the table does not know take raw bytes.
    expect(encodeAttribute(0x80000001, Buffer.from([1]))).toEqual(Buffer.from([1]));
    expect(() => encodeAttribute(0x80000001, true)).toThrow(TypeError);
    expect(encodeTemplate([{ type: CKA.TOKEN, value: false }, { type: CKA.LABEL, value: 'x' }])).toEqual([
      { type: CKA.TOKEN, value: Buffer.from([0]) },
      { type: CKA.LABEL, value: Buffer.from('x') },
    ]);
    expect(() => encodeTemplate([{ type: CKA.LABEL, value: 1 }], 'publicTemplate')).toThrow('CKA_LABEL takes');
  });

  it('sends the table-encoded bytes to the token (read back raw through the addon)', async () => {
    const h = await session.generateKey({ mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: false },
      { type: CKA.VALUE_LEN, value: 16 },
      { type: CKA.LABEL, value: 'kind' },
    ]);
    const raw = await module[NATIVE].C_GetAttributeValue(session.handle, h, [CKA.LABEL, CKA.VALUE_LEN]);
    expect(raw).toEqual([
      { type: CKA.LABEL, value: Buffer.from('kind') },
      { type: CKA.VALUE_LEN, value: Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]) },
    ]);
    await expect(session.setAttributes(h, [{ type: CKA.LABEL, value: 5 }])).rejects.toThrow('CKA_LABEL takes');
    expect(await session.getAttributes(h, [CKA.LABEL])).toEqual([{ type: CKA.LABEL, value: 'kind' }]);
    await session.destroyObject(h);
  });

  it('decodes by the attribute table', () => {
    expect(decodeAttribute(CKA.SIGN, Buffer.from([1]))).toBe(true);
    expect(decodeAttribute(CKA.SIGN, Buffer.from([0]))).toBe(false);
    expect(decodeAttribute(CKA.KEY_TYPE, Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]))).toBe(CKK.EC);
    expect(decodeAttribute(CKA.MODULUS_BITS, Buffer.from([1, 0, 0, 0, 0, 1, 0, 0]))).toBe(2 ** 40 + 1);
    expect(decodeAttribute(CKA.LABEL, Buffer.from('ключ'))).toBe('ключ');
    expect(decodeAttribute(CKA.START_DATE, Buffer.from('20250131'))).toBe('20250131');
    expect(decodeAttribute(CKA.START_DATE, Buffer.alloc(0))).toBe('');
    expect(decodeAttribute(CKA.EC_PARAMS, P256)).toEqual(P256);
    expect(decodeAttribute(0x80000001, Buffer.from([1]))).toEqual(Buffer.from([1]));
    // CK_UNAVAILABLE_INFORMATION does not fit a JS number: the bytes come back.
    const unavailable = Buffer.alloc(8, 0xff);
    expect(decodeAttribute(CKA.KEY_GEN_MECHANISM, unavailable)).toEqual(unavailable);
    for (const [type, kind] of ATTRIBUTE_KINDS) {
      const sample = { bool: true, ulong: 42, string: 'x', bytes: Buffer.from([1, 2]), date: '20240101' }[kind];
      expect(decodeAttribute(type, encodeAttribute(type, sample))).toEqual(sample);
    }
  });
});

describe('module, slots and tokens', () => {
  it('describes the library, the slot and the token', async () => {
    const info = await module.getInfo();
    expect(info).toMatchObject({ cryptokiVersion: { major: 2, minor: 40 }, manufacturerID: 'SoftHSM' });
    expect(module.path).toBe(token.module);
    expect(slot.module).toBe(module);
    const slotInfo = await slot.getInfo();
    expect(slotInfo.flags & CKF_SLOT.TOKEN_PRESENT).toBe(CKF_SLOT.TOKEN_PRESENT);
    const tokenInfo = await slot.getTokenInfo();
    expect(tokenInfo).toMatchObject({ label: 'p11-test', manufacturerID: 'SoftHSM project', model: 'SoftHSM v2' });
    expect(tokenInfo.flags & CKF_TOKEN.USER_PIN_INITIALIZED).toBe(CKF_TOKEN.USER_PIN_INITIALIZED);
    expect(tokenInfo.serialNumber).toMatch(/^\S+$/);
    const mechanisms = await slot.getMechanisms();
    expect(mechanisms).toEqual(expect.arrayContaining([CKM.EC_KEY_PAIR_GEN, CKM.DSA_PARAMETER_GEN, CKM.ECDSA]));
    const dsa = await slot.getMechanismInfo(CKM.DSA_PARAMETER_GEN);
    expect(dsa.flags & CKF_MECHANISM.GENERATE).toBe(CKF_MECHANISM.GENERATE);
  });

  it('lists slots with and without tokens, finds by label', async () => {
    const withToken = (await module.getSlots()).map((s) => s.id);
    const all = (await module.getSlots(false)).map((s) => s.id);
    expect(withToken).toContain(slot.id);
    expect(all).toEqual(expect.arrayContaining(withToken));
    // SoftHSM keeps one slot free: its token is present but not initialized.
    const flags = await Promise.all((await module.getSlots(false)).map(async (s) => (await s.getTokenInfo()).flags));
    expect(flags.filter((f) => !(f & CKF_TOKEN.TOKEN_INITIALIZED))).toHaveLength(1);
    expect((await module.findSlotByTokenLabel('p11-test'))?.id).toBe(slot.id);
    expect(await module.findSlotByTokenLabel('no such token')).toBeUndefined();
    await expect(module.getSlots('yes' as unknown as boolean)).rejects.toThrow('tokenPresent must be a boolean');
  });

  it('initializes a token and its user PIN; a wrong PIN is CKR_PIN_INCORRECT from C_Login', async () => {
    const slots = await module.getSlots(false);
    let free: Slot | undefined;
    for (const s of slots) {
      const info = await s.getTokenInfo().catch(() => undefined);
      if (info && !(info.flags & CKF_TOKEN.TOKEN_INITIALIZED)) free = s;
    }
    if (!free) throw new Error('SoftHSM offers no free slot');
    await free.initToken('so-pin-1', 'second token');
    const second = await module.findSlotByTokenLabel('second token');
    expect(second).toBeDefined();
    const so = await second!.openSession();
    await so.login('so-pin-1', CKU.SO);
    await so.initPin('user-pin-2');
    await so.logout();
    const err = await so.login('wrong-pin').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({
      name: 'Pkcs11Error',
      code: CKR.PIN_INCORRECT,
      ckr: 'CKR_PIN_INCORRECT',
      fn: 'C_Login',
      message: 'C_Login failed: CKR_PIN_INCORRECT (0xa0)',
    });
    await so.login('user-pin-2');
    expect((await so.generateRandom(4)).length).toBe(4);
    await so.close();
  });
});

describe('keys', () => {
  it('generates an EC P-256 pair and reads it back decoded and raw', async () => {
    const id = Buffer.from('p11-ec');
    const [pub, priv] = ecTemplates({ token: true, label: 'signer', id });
    const { publicKey, privateKey } = await session.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
    const privReads = await session.getAttributes(privateKey, [
      CKA.CLASS,
      CKA.KEY_TYPE,
      CKA.TOKEN,
      CKA.PRIVATE,
      CKA.SENSITIVE,
      CKA.EXTRACTABLE,
      CKA.NEVER_EXTRACTABLE,
      CKA.SIGN,
      CKA.DECRYPT,
      CKA.LABEL,
      CKA.ID,
      CKA.KEY_GEN_MECHANISM,
      CKA.VALUE,
      CKA.MODULUS,
    ]);
    expect(privReads).toEqual([
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY },
      { type: CKA.KEY_TYPE, value: CKK.EC },
      { type: CKA.TOKEN, value: true },
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: false },
      { type: CKA.NEVER_EXTRACTABLE, value: true },
      { type: CKA.SIGN, value: true },
      { type: CKA.DECRYPT, value: false },
      { type: CKA.LABEL, value: 'signer' },
      { type: CKA.ID, value: id },
      { type: CKA.KEY_GEN_MECHANISM, value: CKM.EC_KEY_PAIR_GEN },
      { type: CKA.VALUE, unavailable: 'sensitive' },
      { type: CKA.MODULUS, unavailable: 'invalid' },
    ]);
    const pubReads = await session.getAttributes(publicKey, [CKA.TOKEN, CKA.CLASS, CKA.EC_PARAMS, CKA.EC_POINT]);
    expect(pubReads.slice(0, 3)).toEqual([
      { type: CKA.TOKEN, value: true },
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY },
      { type: CKA.EC_PARAMS, value: P256 },
    ]);
    expect((value(pubReads, CKA.EC_POINT) as Buffer).length).toBe(67);

    const data = Buffer.alloc(32, 1);
    const signature = await session.sign({ mechanism: CKM.ECDSA }, privateKey, data);
    expect(await session.verify({ mechanism: CKM.ECDSA }, publicKey, data, signature)).toBe(true);
    expect(await session.verify({ mechanism: CKM.ECDSA }, publicKey, Buffer.alloc(32, 2), signature)).toBe(false);
    expect(await session.verify({ mechanism: CKM.ECDSA }, publicKey, data, signature.subarray(0, 10))).toBe(false);
    // Failures other than a bad signature still throw.
    const wrongKey = await session.verify({ mechanism: CKM.ECDSA }, privateKey, data, signature).catch((e) => e);
    expect(wrongKey).toBeInstanceOf(Pkcs11Error);
    expect((wrongKey as Pkcs11Error).fn).toBe('C_VerifyInit');

    expect(await session.find([{ type: CKA.ID, value: id }])).toHaveLength(2);
    await session.destroyObject([publicKey, privateKey]);
    expect(await session.find([{ type: CKA.ID, value: id }])).toEqual([]);
  });

  it('generates a pair and reads both halves in one job, decoded as getAttributes decodes them', async () => {
    const [pub, priv] = ecTemplates({ token: false, label: 'together' });
    const read = { publicKey: [CKA.CLASS, CKA.LABEL, CKA.EC_POINT], privateKey: [CKA.CLASS, CKA.SIGN, CKA.VALUE, CKA.EC_POINT] };
    const r = await session.generateKeyPairAndRead({ mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv, read);
    expect(r.publicAttributes).toEqual(await session.getAttributes(r.publicKey, read.publicKey));
    expect(r.privateAttributes).toEqual([
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY },
      { type: CKA.SIGN, value: true },
      { type: CKA.VALUE, unavailable: 'sensitive' },
      { type: CKA.EC_POINT, unavailable: 'invalid' },
    ]);
    expect(r.publicAttributes[1]).toEqual({ type: CKA.LABEL, value: 'together' });
    await session.destroyObject([r.publicKey, r.privateKey]);
    // A template the attribute table refuses is a rejection, nothing generated.
    const bad = await session
      .generateKeyPairAndRead({ mechanism: CKM.EC_KEY_PAIR_GEN }, [{ type: CKA.LABEL, value: 5 }], priv, read)
      .catch((e) => e);
    expect(bad).toBeInstanceOf(TypeError);
  });

  it('generates DSA-2048 domain parameters, then a DSA pair from them', async () => {
    const params = await session.generateKey({ mechanism: CKM.DSA_PARAMETER_GEN }, [
      { type: CKA.TOKEN, value: false },
      { type: CKA.PRIME_BITS, value: 2048 },
    ]);
    const reads = await session.getAttributes(params, [CKA.CLASS, CKA.KEY_TYPE, CKA.PRIME, CKA.SUBPRIME, CKA.BASE]);
    expect(value(reads, CKA.CLASS)).toBe(CKO.DOMAIN_PARAMETERS);
    expect(value(reads, CKA.KEY_TYPE)).toBe(CKK.DSA);
    const prime = value(reads, CKA.PRIME) as Buffer;
    expect(prime.length).toBe(256);
    const pair = await session.generateKeyPair(
      { mechanism: CKM.DSA_KEY_PAIR_GEN },
      [
        { type: CKA.TOKEN, value: false },
        { type: CKA.VERIFY, value: true },
        { type: CKA.PRIME, value: prime },
        { type: CKA.SUBPRIME, value: value(reads, CKA.SUBPRIME) as Buffer },
        { type: CKA.BASE, value: value(reads, CKA.BASE) as Buffer },
      ],
      [
        { type: CKA.TOKEN, value: false },
        { type: CKA.SIGN, value: true },
        { type: CKA.SENSITIVE, value: true },
      ],
    );
    const digest = Buffer.alloc(32, 3);
    const signature = await session.sign({ mechanism: CKM.DSA }, pair.privateKey, digest);
    expect(signature.length).toBe(64);
    expect(await session.verify({ mechanism: CKM.DSA }, pair.publicKey, digest, signature)).toBe(true);
    await session.destroyObject([pair.publicKey, pair.privateKey, params]);
  });

  it('copies, relabels, wraps and destroys', async () => {
    const kek = await session.generateKey({ mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: false },
      { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.WRAP, value: true },
      { type: CKA.LABEL, value: 'kek' },
    ]);
    const key = await session.generateKey({ mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: false },
      { type: CKA.VALUE_LEN, value: 16 },
      { type: CKA.EXTRACTABLE, value: true },
      { type: CKA.LABEL, value: 'data key' },
    ]);
    const copy = await session.copyObject(key, [{ type: CKA.LABEL, value: 'copied' }]);
    await session.setAttributes(key, [{ type: CKA.LABEL, value: 'renamed' }]);
    const labels = await Promise.all(
      [key, copy].map(async (h) => value(await session.getAttributes(h, [CKA.LABEL]), CKA.LABEL)),
    );
    expect(labels).toEqual(['renamed', 'copied']);
    const wrapped = await session.wrapKey({ mechanism: CKM.AES_KEY_WRAP }, kek, key);
    expect(wrapped.length).toBe(24);
    const random = await session.generateRandom(64);
    expect(random.length).toBe(64);
    await session.destroyObject(copy);
    await session.destroyObject([kek, key]);
    expect(await session.find([{ type: CKA.LABEL, value: 'renamed' }])).toEqual([]);
  });

  it('destroys its own session objects on the loop thread (SoftHSM is in-process), everything else on a lane', async () => {
    // A call handed to a lane settles only after the loop polls again, never within the
    // microtasks of the turn that made it; a call run here is settled before it returns.
    const settlesAtOnce = async (p: Promise<unknown>) => {
      let settled = false;
      const done = p.then(() => (settled = true));
      for (let i = 0; i < 20; i++) await null;
      const atOnce = settled;
      await done;
      return atOnce;
    };
    expect(module.inProcess).toBe(true);
    const s = await slot.openSession();
    const mine = await s.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ecTemplates({ label: 'inline' }));
    expect(await settlesAtOnce(s.destroyObject([mine.publicKey, mine.privateKey]))).toBe(true);
    expect(await s.find([{ type: CKA.LABEL, value: 'inline' }])).toEqual([]);
    // Token objects, and session objects this Session did not make, go to a lane.
    const tok = await s.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ecTemplates({ token: true, label: 'lane' }));
    expect(await settlesAtOnce(s.destroyObject([tok.publicKey, tok.privateKey]))).toBe(false);
    const other = await session.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ecTemplates({ label: 'other' }));
    expect(await settlesAtOnce(s.destroyObject(other.publicKey))).toBe(false);
    // With a call of the same session still in flight, it waits its turn on the lane, in order.
    const next = await s.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, ...ecTemplates({ label: 'queued' }));
    const reading = s.getAttributes(next.publicKey, [CKA.LABEL]);
    const destroying = s.destroyObject([next.publicKey, next.privateKey]);
    expect(await settlesAtOnce(destroying)).toBe(false);
    expect(value(await reading, CKA.LABEL)).toBe('queued');
    // A failure run here rejects as from a lane: the handle is no longer valid.
    const again = await s.generateKey({ mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.TOKEN, value: false }, { type: CKA.VALUE_LEN, value: 16 }]);
    await s.destroyObject(again);
    await expect(session.destroyObject(again)).rejects.toMatchObject({ code: CKR.OBJECT_HANDLE_INVALID, fn: 'C_DestroyObject' });
    await session.destroyObject(other.privateKey);
    await s.close();
  });
});

describe('sessions', () => {
  it('a closed session refuses work; close is idempotent', async () => {
    const s = await slot.openSession({ rw: false });
    await s.close();
    await s.close();
    const err = await s.generateRandom(4).catch((e) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect((err as Pkcs11Error).ckr).toBe('CKR_SESSION_HANDLE_INVALID');
  });

  it('a read-only session cannot create token objects', async () => {
    const ro = await slot.openSession({ rw: false });
    const [pub, priv] = ecTemplates({ token: true });
    const err = await ro.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv).catch((e) => e);
    expect(err).toMatchObject({ ckr: 'CKR_SESSION_READ_ONLY', fn: 'C_GenerateKeyPair' });
    await ro.close();
  });
});

describe('loading twice', () => {
  it('shares one initialization; closing one Module keeps the other working; close is idempotent', async () => {
    const again = await Module.load(token.module);
    expect(again).not.toBe(module);
    const s = await (await again.findSlotByTokenLabel(token.label))!.openSession();
    // Login state belongs to the library, shared by both Modules.
    const [pub, priv] = ecTemplates({ label: 'twice' });
    const pair = await s.generateKeyPair({ mechanism: CKM.EC_KEY_PAIR_GEN }, pub, priv);
    await again.close();
    await again.close();
    // again's sessions were closed with it …
    expect(await s.generateRandom(1).catch((e) => e)).toBeInstanceOf(Pkcs11Error);
    // … and its Module refuses further calls, while the first Module still works.
    expect(await again.getInfo().catch((e) => e)).toMatchObject({ ckr: 'CKR_CRYPTOKI_NOT_INITIALIZED' });
    expect(await module.getInfo()).toMatchObject({ manufacturerID: 'SoftHSM' });
    expect(await session.find([{ type: CKA.LABEL, value: 'twice' }])).toEqual([]); // session objects went with s
    expect(pair.publicKey).toBeGreaterThan(0);
  });

  it('finalizes with the last user and loads again afterwards', async () => {
    const a = await Module.load(token.module);
    const sa = await (await a.findSlotByTokenLabel(token.label))!.openSession();
    await module.close();
    expect((await sa.generateRandom(2)).length).toBe(2); // a still holds the library
    await a.close(); // last user: C_Finalize and dlclose
    expect(await sa.generateRandom(2).catch((e) => e)).toMatchObject({ ckr: 'CKR_CRYPTOKI_NOT_INITIALIZED' });
    module = await Module.load(token.module);
    slot = (await module.findSlotByTokenLabel(token.label))!;
    session = await slot.openSession();
    await session.login(token.userPin); // a fresh initialization: logged out again
    expect((await session.generateRandom(2)).length).toBe(2);
  });
});

describe('argument checking', () => {
  const good = { mechanism: CKM.EC_KEY_PAIR_GEN };
  const bad = 'nope' as unknown as number;
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['Module.load(number)', () => Module.load(5 as unknown as string)],
    ['module.getSlots(string)', () => module.getSlots('yes' as unknown as boolean)],
    ['module.findSlotByTokenLabel(number)', () => module.findSlotByTokenLabel(1 as unknown as string)],
    ['slot.getMechanismInfo(string)', () => slot.getMechanismInfo(bad)],
    ['slot.initToken(number, label)', () => slot.initToken(1 as unknown as string, 'x')],
    ['slot.openSession(rw string)', () => slot.openSession({ rw: 'yes' as unknown as boolean })],
    ['session.login(number)', () => session.login(1234 as unknown as string)],
    ['session.login(pin, string)', () => session.login('1234', bad)],
    ['session.initPin(object)', () => session.initPin({} as unknown as string)],
    ['session.generateKeyPair(bad mechanism)', () => session.generateKeyPair({} as typeof good, [], [])],
    ['session.generateKeyPair(bad template)', () =>
      session.generateKeyPair(good, [{ type: CKA.LABEL, value: undefined as unknown as string }], [])],
    ['session.generateKey(bad template)', () => session.generateKey(good, 'x' as unknown as Template)],
    ['session.find(bad template)', () => session.find([{ type: bad, value: 1 }])],
    ['session.getAttributes(bad object)', () => session.getAttributes(bad, [CKA.LABEL])],
    ['session.getAttributes(bad types)', () => session.getAttributes(1, [bad])],
    ['session.setAttributes(number for a label)', () => session.setAttributes(1, [{ type: CKA.LABEL, value: 1 }])],
    ['session.setAttributes(bad template)', () => session.setAttributes(1, null as unknown as Template)],
    ['session.copyObject(negative)', () => session.copyObject(-1, [])],
    ['session.destroyObject(bad array)', () => session.destroyObject([1, bad])],
    ['session.sign(bad data)', () => session.sign({ mechanism: CKM.ECDSA }, 1, 'data' as unknown as Buffer)],
    ['session.verify(bad signature)', () =>
      session.verify({ mechanism: CKM.ECDSA }, 1, Buffer.alloc(1), 'sig' as unknown as Buffer)],
    ['session.wrapKey(bad key)', () => session.wrapKey({ mechanism: CKM.AES_KEY_WRAP }, 1, 1.5)],
    ['session.generateRandom(negative)', () => session.generateRandom(-5)],
  ];
  it.each(calls)('%s rejects with a TypeError', async (_name, call) => {
    await expect(call()).rejects.toThrow(TypeError);
  });

  it('the session still works after all of that', async () => {
    expect((await session.generateRandom(3)).length).toBe(3);
  });
});
