import { KmuError, UsageError } from '../kmu/errors.js';
import { sizesText, symKeyType, validSize, type SymKeyType } from '../kmu/keyTypes.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { wrapMechanism } from '../kmu/wrapMechanisms.js';
import { ok, type Command } from './types.js';
import { createAfterChecks, validateKeyPairOptions, type KeyPairOptions } from './lib/keygen.js';
import { made, secretTemplate, type MadeKey } from './lib/newKey.js';
import { hostWrap, readAesKeyFile, requireAes, resolveKey, unwrapWith } from './lib/transfer.js';
import { readInput } from './lib/files.js';

export interface ImSymKeyOptions extends KeyPairOptions {
  file: string;
  wrapping: number;
  type: SymKeyType;
  wk?: string;
}

/** The page: only 3DES (21) and AES (31) keys are imported. */
function importType(text: string, flag: string): SymKeyType {
  if (text !== '21' && text !== '31') throw new UsageError(`${flag} takes a key type: 21 (DES3) or 31 (AES); not '${text}'`);
  return symKeyType(Number(text))!;
}

export const imSymKey: Command<ImSymKeyOptions, MadeKey> = {
  name: 'imSymKey',
  description: 'Imports a Symmetric key',
  op: 'Cfm3UnWrapKey',
  needsLogin: true,
  syntax: `imSymKey -h

imSymKey -f <key-file>
         -w <wrapping-key-handle>
         -t <key-type>
         -l <label>
         [-id <key-ID>]
         [-sess]
         [-wk <wrapping-key-file> ]
         [-attest]
         [-min_srv <minimum-number-of-servers>]
         [-timeout <number-of-seconds> ]
         [-u <user-ids>]`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<key-file>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key-handle>' },
    { flag: '-t', key: 'type', parse: importType, required: true, metavar: '<key-type>' },
    { flag: '-l', key: 'label', parse: v.label, required: true, metavar: '<label>' },
    { flag: '-id', key: 'id', parse: v.keyId, metavar: '<key-ID>' },
    { flag: '-sess', key: 'sess' },
    { flag: '-wk', key: 'wk', parse: v.text('file path'), metavar: '<wrapping-key-file>' },
    { flag: '-attest', key: 'attest' },
    { flag: '-min_srv', key: 'minSrv', parse: v.integer(1, 32), metavar: '<minimum-number-of-servers>' },
    { flag: '-timeout', key: 'timeout', parse: v.integer(0, 86_400), metavar: '<number-of-seconds>' },
    { flag: '-u', key: 'users', parse: v.userIds, metavar: '<user-ids>' },
  ],
  validate: validateKeyPairOptions,
  async run(ctx, o) {
    const plain = readInput(o.file, '-f');
    if (!validSize(o.type, plain.length))
      throw new KmuError(RC.INVALID_INPUT, { detail: `-f ${o.file} holds ${plain.length} bytes; a ${o.type.name} key is ${sizesText(o.type)} bytes` });
    const fileKey = o.wk !== undefined ? readAesKeyFile(o.wk) : undefined;
    const key = await createAfterChecks(ctx, o, async () => {
      const wrapping = await resolveKey(ctx, o.wrapping);
      requireAes(wrapping);
      // Cfm3WrapHostKey (under -w, or the -wk file's key), then Cfm3UnWrapKey under -w: a -wk
      // key that is not -w's fails the unwrap's integrity check and nothing is made.
      const blob = await hostWrap(ctx, wrapping.object, plain, fileKey);
      const template = secretTemplate(o, o.type);
      return made(ctx, o, template, () => unwrapWith(ctx, wrapMechanism(4)!, wrapping.object, blob, template));
    });
    return ok(imSymKey, key);
  },
};
