import { CKA, CKK, CKM, CKO } from '../p11/index.js';
import { UsageError } from '../kmu/errors.js';
import { ok, type Command } from './types.js';
import {
  KEY_PAIR_FLAGS,
  KEY_PAIR_PARALLEL,
  generatePair,
  createAfterChecks,
  pairTemplates,
  validateKeyPairOptions,
  type GeneratedPair,
  type KeyPairOptions,
  keyPairSyntax,
} from './lib/keygen.js';
import { requireMechanisms } from './lib/mechanisms.js';

export interface GenDSAKeyPairOptions extends KeyPairOptions {
  modulusBits: number;
}

export type GenDSAKeyPairData = GeneratedPair & { modulusBits: number };

function modulus(text: string, flag: string): number {
  if (text !== '2048') throw new UsageError(`${flag}: the only valid modulus length is 2048, not '${text}'`);
  return 2048;
}

export const genDSAKeyPair: Command<GenDSAKeyPairOptions, GenDSAKeyPairData> = {
  name: 'genDSAKeyPair',
  description: 'Generates a DSA Key Pair',
  op: 'Cfm3GenerateKeyPair',
  needsLogin: true,
  syntax: keyPairSyntax('genDSAKeyPair', ['-m <modulus length>', '-l <label>']),
  flags: [{ flag: '-m', key: 'modulusBits', parse: modulus, required: true, metavar: '<modulus length>' }, ...KEY_PAIR_FLAGS],
  validate: validateKeyPairOptions,
  parallel: KEY_PAIR_PARALLEL,
  async run(ctx, o) {
    const pair = await createAfterChecks(ctx, o, async () => {
      await requireMechanisms(ctx.backend, 'this token cannot make DSA keys', [CKM.DSA_PARAMETER_GEN, CKM.DSA_KEY_PAIR_GEN]);
      const { session } = ctx.backend;
      // Fresh domain parameters for every key (CKM_DSA_PARAMETER_GEN), as a session object that
      // is destroyed whatever happens next.
      const params = await session.generateKey({ mechanism: CKM.DSA_PARAMETER_GEN }, [
        { type: CKA.CLASS, value: CKO.DOMAIN_PARAMETERS },
        { type: CKA.KEY_TYPE, value: CKK.DSA },
        { type: CKA.TOKEN, value: false },
        { type: CKA.PRIME_BITS, value: o.modulusBits },
      ]);
      try {
        const read = await session.getAttributes(params, [CKA.PRIME, CKA.SUBPRIME, CKA.BASE]);
        const domain = read.map((r) => {
          if (!('value' in r)) throw new Error(`DSA domain parameter ${r.type} unavailable`);
          return { type: r.type, value: r.value };
        });
        const { publicTemplate, privateTemplate } = pairTemplates(o, CKK.DSA);
        return await generatePair(ctx, o, { mechanism: CKM.DSA_KEY_PAIR_GEN }, [...publicTemplate, ...domain], privateTemplate);
      } finally {
        await session.destroyObject(params).catch(() => undefined);
      }
    });
    return ok(genDSAKeyPair, { ...pair, modulusBits: o.modulusBits });
  },
};
