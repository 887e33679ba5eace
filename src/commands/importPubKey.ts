import { createPublicKey, type KeyObject } from 'node:crypto';
import { CKA, CKK, CKO, tlv, type Template } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { findCurve, oidToDer } from '../kmu/curves.js';
import { dsaFromSpki } from '../kmu/der.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { createAfterChecks, validateKeyPairOptions, type KeyPairOptions } from './lib/keygen.js';
import { identity, made, type MadeKey } from './lib/newKey.js';
import { readInput } from './lib/files.js';

/** The key's own public attributes, from its JWK. */
function keyAttributes(key: KeyObject, file: string): { kt: number; attrs: Template } {
  if (key.asymmetricKeyType === 'dsa') {
    const { p, q, g, y } = dsaFromSpki(key.export({ type: 'spki', format: 'der' }));
    return { kt: CKK.DSA, attrs: [{ type: CKA.PRIME, value: p }, { type: CKA.SUBPRIME, value: q }, { type: CKA.BASE, value: g }, { type: CKA.VALUE, value: y }] };
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec')
    throw new KmuError(RC.NOT_SUPPORTED, { detail: `-f ${file}: a ${key.asymmetricKeyType} public key; kmu imports RSA, DSA and EC public keys` });
  const jwk = key.export({ format: 'jwk' });
  const b = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
  if (jwk.kty === 'RSA') return { kt: CKK.RSA, attrs: [{ type: CKA.MODULUS, value: b(jwk.n) }, { type: CKA.PUBLIC_EXPONENT, value: b(jwk.e) }] };
  if (jwk.kty === 'EC') {
    const curve = findCurve(jwk.crv ?? '');
    if (!curve) throw new KmuError(RC.NOT_SUPPORTED, { detail: `-f ${file}: curve ${jwk.crv} is not one kmu knows` });
    const point = Buffer.concat([Buffer.from([0x04]), b(jwk.x), b(jwk.y)]);
    return { kt: CKK.EC, attrs: [{ type: CKA.EC_PARAMS, value: oidToDer(curve.oid) }, { type: CKA.EC_POINT, value: tlv(0x04, point) }] };
  }
  throw new KmuError(RC.NOT_SUPPORTED, { detail: `-f ${file}: a ${jwk.kty} public key kmu11 cannot import` });
}

export const importPubKey: Command<KeyPairOptions & { file: string }, MadeKey> = {
  name: 'importPubKey',
  description: 'Imports RSA/DSA/EC Public key',
  op: 'Cfm3CreatePublicKey',
  needsLogin: true,
  syntax: `importPubKey -h

importPubKey -l <label>
             -f <key-file>
             [-sess]
             [-id <key-id>]
             [min_srv <minimum-number-of-servers>]
             [-timeout <number-of-seconds>]`,
  flags: [
    { flag: '-l', key: 'label', parse: v.label, required: true, metavar: '<label>' },
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<key-file>' },
    { flag: '-sess', key: 'sess' },
    { flag: '-id', key: 'id', parse: v.keyId, metavar: '<key-id>' },
    { flag: '-min_srv', key: 'minSrv', parse: v.integer(1, 32), metavar: '<minimum-number-of-servers>' },
    { flag: '-timeout', key: 'timeout', parse: v.integer(0, 86_400), metavar: '<number-of-seconds>' },
  ],
  validate: validateKeyPairOptions,
  async run(ctx, o) {
    let key: KeyObject;
    try {
      key = createPublicKey(readInput(o.file, '-f'));
    } catch (e) {
      if (e instanceof KmuError) throw e;
      throw new KmuError(RC.INVALID_INPUT, { detail: `-f ${o.file}: not a PEM public key (${(e as Error).message})` });
    }
    const { kt, attrs } = keyAttributes(key, o.file);
    const rsa = kt === CKK.RSA;
    const template: Template = [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY },
      { type: CKA.KEY_TYPE, value: kt },
      ...identity(o),
      { type: CKA.PRIVATE, value: false },
      { type: CKA.VERIFY, value: true },
      { type: CKA.VERIFY_RECOVER, value: false },
      { type: CKA.ENCRYPT, value: rsa },
      { type: CKA.WRAP, value: rsa },
      { type: CKA.DERIVE, value: false },
      ...attrs,
    ];
    const created = await createAfterChecks(ctx, o, () => made(ctx, o, template, () => ctx.backend.session.createObject(template)));
    return ok(importPubKey, created);
  },
};
