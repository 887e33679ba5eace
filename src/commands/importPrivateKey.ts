import { createPrivateKey, type KeyObject } from 'node:crypto';
import { CKA, CKK, CKO, type Template } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { wrapMechanism } from '../kmu/wrapMechanisms.js';
import { ok, type Command } from './types.js';
import { createAfterChecks, validateKeyPairOptions, type KeyPairOptions } from './lib/keygen.js';
import { identity, made, type MadeKey } from './lib/newKey.js';
import { hostWrap, readAesKeyFile, requireAes, resolveKey, unwrapWith } from './lib/transfer.js';
import { readInput } from './lib/files.js';

export interface ImportPrivateKeyOptions extends KeyPairOptions {
  file: string;
  wrapping: number;
  wk?: string;
}

const KEY_TYPES: Record<string, number> = { rsa: CKK.RSA, ec: CKK.EC, dsa: CKK.DSA };

/** A PEM private key (PKCS#8, PKCS#1 or SEC1) as PKCS#8 DER. */
function readPrivateKey(file: string): { key: KeyObject; der: Buffer } {
  const text = readInput(file, '-f');
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (e) {
    throw new KmuError(RC.INVALID_INPUT, { detail: `-f ${file}: not a PEM private key (${(e as Error).message})` });
  }
  return { key, der: key.export({ type: 'pkcs8', format: 'der' }) };
}

export const importPrivateKey: Command<ImportPrivateKeyOptions, MadeKey & { berLength: number; keyType: string }> = {
  name: 'importPrivateKey',
  description: 'Imports RSA/DSA/EC private key',
  op: 'Cfm3UnWrapKey',
  needsLogin: true,
  syntax: `importPrivateKey -h

importPrivateKey -l <label>
                 -f <key-file>
                 -w <wrapping-key-handle>
                 [-sess]
                 [-id <key-id>]
                 [-m_value <0...8>]
                 [min_srv <minimum-number-of-servers>]
                 [-timeout <number-of-seconds>]
                 [-u <user-ids>]
                 [-wk <wrapping-key-file>]
                 [-attest]`,
  flags: [
    { flag: '-l', key: 'label', parse: v.label, required: true, metavar: '<label>' },
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<key-file>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key-handle>' },
    { flag: '-sess', key: 'sess' },
    { flag: '-id', key: 'id', parse: v.keyId, metavar: '<key-id>' },
    { flag: '-m_value', key: 'mValue', parse: v.integer(0, 8), metavar: '<0...8>' },
    { flag: '-min_srv', key: 'minSrv', parse: v.integer(1, 32), metavar: '<minimum-number-of-servers>' },
    { flag: '-timeout', key: 'timeout', parse: v.integer(0, 86_400), metavar: '<number-of-seconds>' },
    { flag: '-u', key: 'users', parse: v.userIds, metavar: '<user-ids>' },
    { flag: '-wk', key: 'wk', parse: v.text('file path'), metavar: '<wrapping-key-file>' },
    { flag: '-attest', key: 'attest' },
  ],
  validate: validateKeyPairOptions,
  async run(ctx, o) {
    const { key, der } = readPrivateKey(o.file);
    const kt = KEY_TYPES[key.asymmetricKeyType ?? ''];
    if (kt === undefined)
      throw new KmuError(RC.NOT_SUPPORTED, { detail: `-f ${o.file}: a ${key.asymmetricKeyType} key; kmu imports RSA, EC and DSA private keys` });
    const fileKey = o.wk !== undefined ? readAesKeyFile(o.wk) : undefined;
    const rsa = kt === CKK.RSA;
    const template: Template = [
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY },
      { type: CKA.KEY_TYPE, value: kt },
      ...identity(o),
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: true },
      { type: CKA.SIGN, value: true },
      { type: CKA.SIGN_RECOVER, value: false },
      { type: CKA.DECRYPT, value: rsa },
      { type: CKA.UNWRAP, value: rsa },
      { type: CKA.DERIVE, value: false },
    ];
    const made_ = await createAfterChecks(ctx, o, async () => {
      const wrapping = await resolveKey(ctx, o.wrapping);
      requireAes(wrapping);
      const blob = await hostWrap(ctx, wrapping.object, der, fileKey);
      return made(ctx, o, template, () => unwrapWith(ctx, wrapMechanism(4)!, wrapping.object, blob, template));
    });
    return ok(importPrivateKey, { ...made_, berLength: der.length, keyType: key.asymmetricKeyType! });
  },
};
