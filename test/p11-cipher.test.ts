// The p11 calls the key-transfer commands added (C_CreateObject, C_UnwrapKey, single-part
// encrypt/decrypt) against a real SoftHSM token, checked by node:crypto.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO, Module, Pkcs11Error, type Session, type Template } from '../src/p11/index.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

let token: TestToken;
let module: Module;
let session: Session;

const aesTemplate = (value: Buffer, extra: Template = []): Template => [
  { type: CKA.CLASS, value: CKO.SECRET_KEY },
  { type: CKA.KEY_TYPE, value: CKK.AES },
  { type: CKA.TOKEN, value: false },
  { type: CKA.SENSITIVE, value: true },
  { type: CKA.ENCRYPT, value: true },
  { type: CKA.DECRYPT, value: true },
  { type: CKA.WRAP, value: true },
  { type: CKA.UNWRAP, value: true },
  { type: CKA.VALUE, value },
  ...extra,
];

beforeAll(async () => {
  token = makeToken('p11-cipher');
  module = await Module.load(token.module);
  const slot = await module.findSlotByTokenLabel(token.label);
  if (!slot) throw new Error('test token not found');
  session = await slot.openSession();
  await session.login(token.userPin);
});
afterAll(async () => {
  await module?.close();
  token?.cleanup();
});

describe('createObject, encrypt/decrypt, unwrapKey', () => {
  it('creates a key from its value; AES-ECB on the token matches node:crypto both ways', async () => {
    const value = randomBytes(32);
    const key = await session.createObject(aesTemplate(value));
    const block = randomBytes(32);
    const c = createCipheriv('aes-256-ecb', value, null).setAutoPadding(false);
    const expected = Buffer.concat([c.update(block), c.final()]);
    expect(await session.encrypt({ mechanism: CKM.AES_ECB }, key, block)).toEqual(expected);
    expect(await session.decrypt({ mechanism: CKM.AES_ECB }, key, expected)).toEqual(block);
    await session.destroyObject(key);
  });

  it('unwraps what node:crypto wrapped (RFC 5649) into a key with the template given, and wraps it back', async () => {
    const kek = randomBytes(32);
    const wrapping = await session.createObject(aesTemplate(kek));
    const secret = randomBytes(24);
    const w = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
    const blob = Buffer.concat([w.update(secret), w.final()]);
    const key = await session.unwrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, wrapping, blob, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY },
      { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET },
      { type: CKA.TOKEN, value: false },
      { type: CKA.LABEL, value: 'unwrapped' },
      { type: CKA.EXTRACTABLE, value: true },
    ]);
    const [label] = await session.getAttributes(key, [CKA.LABEL]);
    expect(label).toMatchObject({ value: 'unwrapped' });
    const again = await session.wrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, wrapping, key);
    const d = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
    expect(Buffer.concat([d.update(again), d.final()])).toEqual(secret);
    // A damaged blob is the module's error, as a Pkcs11Error, and makes nothing.
    const before = (await session.find()).length;
    blob[3]! ^= 1;
    const err = await session.unwrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, wrapping, blob, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY },
      { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET },
      { type: CKA.TOKEN, value: false },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect((await session.find()).length).toBe(before);
  });

  it('rejects bad arguments before reaching the module', async () => {
    await expect(session.encrypt({ mechanism: CKM.AES_ECB }, 1, 'text' as unknown as Buffer)).rejects.toThrow(TypeError);
    await expect(session.createObject('x' as unknown as Template)).rejects.toThrow(TypeError);
  });
});

describe('structured mechanism parameters (CK_GCM_PARAMS, CK_RSA_AES_KEY_WRAP_PARAMS)', () => {
  it('AES-GCM on the token with an IV, AAD and a 96-bit tag: node:crypto decrypts, and the token decrypts back', async () => {
    const value = randomBytes(32);
    const key = await session.createObject(aesTemplate(value));
    const iv = randomBytes(12);
    const aad = Buffer.from('header');
    const plain = randomBytes(40);
    const mech = { mechanism: CKM.AES_GCM, parameter: { type: 'gcm' as const, iv, aad, tagBits: 96 } };
    const out = await session.encrypt(mech, key, plain);
    expect(out).toHaveLength(40 + 12);
    const d = createDecipheriv('aes-256-gcm', value, iv, { authTagLength: 12 });
    d.setAAD(aad);
    d.setAuthTag(out.subarray(40));
    expect(Buffer.concat([d.update(out.subarray(0, 40)), d.final()])).toEqual(plain);
    expect(await session.decrypt(mech, key, out)).toEqual(plain);
    // Another AAD: the module's tag check fails.
    await expect(session.decrypt({ ...mech, parameter: { ...mech.parameter, aad: Buffer.from('other') } }, key, out)).rejects.toBeInstanceOf(Pkcs11Error);
    await session.destroyObject(key);
  });

  it("SoftHSM 2.6 refuses GCM and RSA-AES in C_WrapKey (CKR_MECHANISM_INVALID): kmu11's -m 10/11 encrypt on the token instead, -m 7 is refused", async () => {
    const wrapping = await session.createObject(aesTemplate(randomBytes(32)));
    const key = await session.createObject(aesTemplate(randomBytes(16), [{ type: CKA.EXTRACTABLE, value: true }]));
    const gcm = { mechanism: CKM.AES_GCM, parameter: { type: 'gcm' as const, iv: randomBytes(12), tagBits: 128 } };
    await expect(session.wrapKey(gcm, wrapping, key)).rejects.toMatchObject({ code: 0x70 });
    const rsaAes = { mechanism: CKM.RSA_AES_KEY_WRAP, parameter: { type: 'rsaAes' as const, aesKeyBits: 256, hashAlg: CKM.SHA_1, mgf: 1 } };
    await expect(session.wrapKey(rsaAes, wrapping, key)).rejects.toMatchObject({ code: 0x70 });
  });

  it('rejects malformed structured parameters before reaching the module', async () => {
    const bad: unknown[] = [
      { type: 'ccm', iv: Buffer.alloc(12), tagBits: 128 },
      { type: 'gcm', iv: 'not bytes', tagBits: 128 },
      { type: 'gcm', iv: Buffer.alloc(12), tagBits: -1 },
      { type: 'gcm', iv: Buffer.alloc(12) },
      { type: 'rsaAes', aesKeyBits: 256, mgf: 1 },
      { iv: Buffer.alloc(12) },
      new Proxy({}, { get: () => { throw new Error('trap'); } }),
    ];
    for (const parameter of bad)
      await expect(session.encrypt({ mechanism: CKM.AES_GCM, parameter } as never, 1, Buffer.alloc(16))).rejects.toThrow(TypeError);
  });
});
