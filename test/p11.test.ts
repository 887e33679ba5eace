import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CKA, CKK, CKM, CKO, CKR, Module, Pkcs11Error, type Session, type Slot } from '../src/p11/index.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

let token: TestToken;
let module: Module;
let slot: Slot;
let session: Session;

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

describe('smoke', () => {
  it('generates, reads, signs, verifies and destroys an EC pair', async () => {
    const { publicKey, privateKey } = await session.generateKeyPair(
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [
        { type: CKA.EC_PARAMS, value: P256 },
        { type: CKA.TOKEN, value: false },
        { type: CKA.VERIFY, value: true },
        { type: CKA.LABEL, value: 'smoke' },
      ],
      [
        { type: CKA.TOKEN, value: false },
        { type: CKA.SIGN, value: true },
        { type: CKA.SENSITIVE, value: true },
      ],
    );
    const attrs = await session.getAttributes(privateKey, [CKA.CLASS, CKA.KEY_TYPE, CKA.SIGN, CKA.VALUE]);
    expect(attrs).toEqual([
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY },
      { type: CKA.KEY_TYPE, value: CKK.EC },
      { type: CKA.SIGN, value: true },
      { type: CKA.VALUE, unavailable: 'sensitive' },
    ]);
    const data = Buffer.alloc(32, 7);
    const sig = await session.sign({ mechanism: CKM.ECDSA }, privateKey, data);
    expect(await session.verify({ mechanism: CKM.ECDSA }, publicKey, data, sig)).toBe(true);
    sig[5] ^= 1;
    expect(await session.verify({ mechanism: CKM.ECDSA }, publicKey, data, sig)).toBe(false);
    await session.destroyObject([publicKey, privateKey]);
    expect(await session.find([{ type: CKA.LABEL, value: 'smoke' }])).toEqual([]);
  });

  it('rejects a wrong PIN with a Pkcs11Error', async () => {
    const s = await slot.openSession();
    const err = await s.login('wrong-pin', 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err).toMatchObject({ fn: 'C_Login' });
    expect([CKR.PIN_INCORRECT, CKR.USER_ANOTHER_ALREADY_LOGGED_IN]).toContain((err as Pkcs11Error).code);
    await s.close();
  });
});
