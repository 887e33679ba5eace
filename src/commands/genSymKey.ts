import { CKA } from '../p11/index.js';
import { UsageError } from '../kmu/errors.js';
import { SYM_KEY_TYPES, sizesText, symKeyType, validSize, type SymKeyType } from '../kmu/keyTypes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { KEY_PAIR_FLAGS, KEY_PAIR_PARALLEL, createAfterChecks, validateKeyPairOptions, type KeyPairOptions } from './lib/keygen.js';
import { requireMechanisms } from './lib/mechanisms.js';
import { made, secretTemplate, type MadeKey } from './lib/newKey.js';

export interface GenSymKeyOptions extends KeyPairOptions {
  type: SymKeyType;
  size: number;
}

export type GenSymKeyData = MadeKey & { type: string; size: number };

function keyType(text: string, flag: string): SymKeyType {
  const t = /^[0-9]+$/.test(text) ? symKeyType(Number(text)) : undefined;
  if (!t) throw new UsageError(`${flag} takes a key type: ${SYM_KEY_TYPES.map((k) => `${k.id} (${k.name})`).join(', ')}; not '${text}'`);
  return t;
}

export const genSymKey: Command<GenSymKeyOptions, GenSymKeyData> = {
  name: 'genSymKey',
  description: 'Generates a Symmetric keys',
  op: 'Cfm3GenerateSymmetricKey',
  needsLogin: true,
  parallel: KEY_PAIR_PARALLEL,
  syntax: `genSymKey -h

genSymKey -t <key-type>
          -s <key-size>
          -l <label>
          [-id <key-ID>]
          [-min_srv <minimum-number-of-servers>]
          [-m_value <0..8>]
          [-nex]
          [-sess]
          [-timeout <number-of-seconds> ]
          [-u <user-ids>]
          [-attest]`,
  flags: [
    { flag: '-t', key: 'type', parse: keyType, required: true, metavar: '<key-type>' },
    { flag: '-s', key: 'size', parse: v.integer(1, 3583), required: true, metavar: '<key-size>' },
    ...KEY_PAIR_FLAGS,
  ],
  validate(o) {
    if (!validSize(o.type, o.size)) throw new UsageError(`-s: a ${o.type.name} key is ${sizesText(o.type)} bytes, not ${o.size}`);
    validateKeyPairOptions(o);
  },
  async run(ctx, o) {
    const key = await createAfterChecks(ctx, o, async () => {
      // RC4 and any type the token lacks: refused before anything is made.
      await requireMechanisms(ctx.backend, `this token cannot make ${o.type.name} keys`, [o.type.gen]);
      // DES3 and AES keys have their size in the mechanism or key type; SoftHSM takes CKA_VALUE_LEN for AES and generic keys.
      const template = [...secretTemplate(o, o.type), ...(Array.isArray(o.type.sizes) && o.type.sizes.length === 1 ? [] : [{ type: CKA.VALUE_LEN, value: o.size }])];
      return made(ctx, o, template, () => ctx.backend.session.generateKey({ mechanism: o.type.gen }, template));
    });
    return ok(genSymKey, { ...key, type: o.type.name, size: o.size });
  },
};
