import { CKA, CKK, CKM, type Template } from '../p11/index.js';
import { UsageError } from '../kmu/errors.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import {
  KEY_PAIR_FLAGS,
  generatePair,
  createAfterChecks,
  pairTemplates,
  validateKeyPairOptions,
  KEY_PAIR_PARALLEL,
  type GeneratedPair,
  type KeyPairOptions,
  keyPairSyntax,
} from './lib/keygen.js';
import { requireMechanisms } from './lib/mechanisms.js';

export interface GenRSAKeyPairOptions extends KeyPairOptions {
  modulusBits: number;
  exponent: number;
}

export type GenRSAKeyPairData = GeneratedPair & { modulusBits: number; exponent: number };

/** The page: "The value must be an odd number greater than or equal to 65537". */
function exponent(text: string, flag: string): number {
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`${flag} takes the public exponent, an odd whole number of at least 65537, not '${text}'`);
  const e = Number(text);
  if (e < 65537 || e % 2 === 0) throw new UsageError(`${flag}: the public exponent must be odd and at least 65537, not ${text}`);
  return e;
}

function bigEndian(n: number): Buffer {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
}

/** An attribute's value replaced (RSA keys encrypt, wrap and decrypt besides signing). */
function set(t: Template, values: Record<number, boolean>): Template {
  return t.map((a) => (a.type in values ? { type: a.type, value: values[a.type]! } : a));
}

export const genRSAKeyPair: Command<GenRSAKeyPairOptions, GenRSAKeyPairData> = {
  name: 'genRSAKeyPair',
  description: 'Generates an RSA Key Pair',
  op: 'Cfm3GenerateKeyPair',
  needsLogin: true,
  syntax: keyPairSyntax('genRSAKeyPair', ['-m <modulus length>', '-e <public exponent>', '-l <label>']),
  flags: [
    { flag: '-m', key: 'modulusBits', parse: v.integer(2048, 16384), required: true, metavar: '<modulus length>' },
    { flag: '-e', key: 'exponent', parse: exponent, required: true, metavar: '<public exponent>' },
    ...KEY_PAIR_FLAGS,
  ],
  validate: validateKeyPairOptions,
  parallel: KEY_PAIR_PARALLEL,
  async run(ctx, o) {
    const pair = await createAfterChecks(ctx, o, async () => {
      await requireMechanisms(ctx.backend, 'this token cannot make RSA keys', [CKM.RSA_PKCS_KEY_PAIR_GEN]);
      const t = pairTemplates(o, CKK.RSA);
      // The page's dump of an RSA public key: ENCRYPT, WRAP and VERIFY; its private half decrypts, unwraps and signs.
      const publicTemplate = [
        ...set(t.publicTemplate, { [CKA.ENCRYPT]: true, [CKA.WRAP]: true }),
        { type: CKA.MODULUS_BITS, value: o.modulusBits },
        { type: CKA.PUBLIC_EXPONENT, value: bigEndian(o.exponent) },
      ];
      const privateTemplate = set(t.privateTemplate, { [CKA.DECRYPT]: true, [CKA.UNWRAP]: true });
      return generatePair(ctx, o, { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN }, publicTemplate, privateTemplate);
    });
    return ok(genRSAKeyPair, { ...pair, modulusBits: o.modulusBits, exponent: o.exponent });
  },
};
