import { CKA, CKK, CKM, Pkcs11Error, type Template } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { kmuCodeForCkr } from '../kmu/pkcs11Codes.js';
import { oidToDer, type Curve } from '../kmu/curves.js';
import * as v from '../kmu/values.js';
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

export interface GenECCKeyPairOptions extends KeyPairOptions {
  curve: Curve;
}

export type GenECCKeyPairData = GeneratedPair & { curve: { id: number; nid: string; oid: string } };

export const genECCKeyPair: Command<GenECCKeyPairOptions, GenECCKeyPairData> = {
  name: 'genECCKeyPair',
  description: 'Generates an ECC Key Pair',
  op: 'Cfm3GenerateKeyPair',
  needsLogin: true,
  syntax: keyPairSyntax('genECCKeyPair', ['-i <EC curve id>', '-l <label>']),
  flags: [{ flag: '-i', key: 'curve', parse: v.curve, required: true, metavar: '<EC curve id>' }, ...KEY_PAIR_FLAGS],
  validate: validateKeyPairOptions,
  parallel: KEY_PAIR_PARALLEL,
  async run(ctx, o) {
    const pair = await createAfterChecks(ctx, o, async () => {
      if (o.curve.cloudhsmForbidden && ctx.backend.kind === 'cloudhsm')
        throw new KmuError(RC.POLICY_VIOLATION, { detail: `${o.curve.nid} is not allowed by the HSM's FIPS policy` });
      const what = `this token cannot make keys on ${o.curve.nid} (id ${o.curve.id})`;
      const hint = 'listECCCurveIds shows the curves it can';
      await requireMechanisms(ctx.backend, what, [CKM.EC_KEY_PAIR_GEN], hint);
      const { publicTemplate, privateTemplate } = pairTemplates(o, CKK.EC);
      const ecParams: Template = [{ type: CKA.EC_PARAMS, value: oidToDer(o.curve.oid) }];
      return generatePair(ctx, o, { mechanism: CKM.EC_KEY_PAIR_GEN }, [...publicTemplate, ...ecParams], privateTemplate).catch(
        (e: unknown) => {
          // A curve this token cannot make: say which, and where to see the ones it can.
          if (e instanceof Pkcs11Error && kmuCodeForCkr(e.ckr) === RC.MECHANISM_NOT_SUPPORTED)
            throw new KmuError(RC.MECHANISM_NOT_SUPPORTED, { ckr: e.ckr, cause: e, detail: `${what}: ${e.ckr}; ${hint}` });
          throw e;
        },
      );
    });
    return ok(genECCKeyPair, { ...pair, curve: { id: o.curve.id, nid: o.curve.nid, oid: o.curve.oid } });
  },
};
