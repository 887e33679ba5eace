import { CKA, CKK } from '../p11/index.js';
import { curveByOid } from '../kmu/curves.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import type { SignMechanism } from '../kmu/signMechanisms.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import type { KeyView } from './lib/keys.js';
import { derToRaw, mechanismFlag, signingInput, signingKey } from './lib/signatures.js';
import { readInput } from './lib/files.js';

export interface VerifyOptions {
  file: string;
  signature: string;
  handle: number;
  mechanism: SignMechanism;
}

/** Bytes of r (and of s) in an ECDSA or DSA signature made with this key. */
function halfLength(key: KeyView): number | undefined {
  if (key.keyType === CKK.EC) {
    const c = curveByOid(key.curveOid ?? '');
    return c ? Math.ceil(c.bits / 8) : undefined;
  }
  return key.buf(CKA.SUBPRIME)?.length;
}

/** verify: checks a signature file against a public key (every user may use public keys). */
export const verify: Command<VerifyOptions, { handle: number; mechanism: string; valid: true }> = {
  name: 'verify',
  description: 'Verifies a signature',
  op: 'Cfm3Verify',
  needsLogin: true,
  syntax: `verify -h

verify -f <message-file>
       -s <signature-file>
       -k <public-key-handle>
       -m <signature-mechanism>`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file name'), required: true, metavar: '<message-file>' },
    { flag: '-s', key: 'signature', parse: v.text('file name'), required: true, metavar: '<signature-file>' },
    { flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<public-key-handle>' },
    { flag: '-m', key: 'mechanism', parse: mechanismFlag, required: true, metavar: '<signature-mechanism>' },
  ],
  async run(ctx, o) {
    const message = readInput(o.file, 'message file');
    const given = readInput(o.signature, 'signature file');
    const { session } = ctx.backend;
    const key = await signingKey(ctx, o.handle, o.mechanism, 'verify');
    let signature = given;
    if (o.mechanism.keyType !== CKK.RSA) {
      const half = halfLength(key.view);
      // DER as openssl writes it, or PKCS#11's raw r || s.
      signature = (half !== undefined ? derToRaw(given, half) : undefined) ?? given;
    }
    const { mechanism, data } = signingInput(o.mechanism, message);
    if (!(await session.verify(mechanism, key.object, data, signature)))
      throw new KmuError(RC.BAD_PKCS_DATA, { detail: `the signature in ${o.signature} does not verify with key ${o.handle} and ${o.mechanism.name}` });
    return ok(verify, { handle: o.handle, mechanism: o.mechanism.name, valid: true });
  },
};
