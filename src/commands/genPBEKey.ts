import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import type { Command } from './types.js';
import { KEY_PAIR_FLAGS, keyPairSyntax } from './lib/keygen.js';

/**
 * The page: genPBEKey (a 3DES key from a password) "is not supported on the FIPS-validated HSMs
 * that AWS CloudHSM provides" — real kmu refuses it there, and so does kmu11, on every backend,
 * after reading its flags (so a script's typo is still reported as one) and before anything is made.
 */
export const genPBEKey: Command<Record<string, unknown>, never> = {
  name: 'genPBEKey',
  description: 'Generates a PBE DES3 key',
  op: 'Cfm3GeneratePBEKey',
  needsLogin: true,
  syntax: keyPairSyntax('genPBEKey', ['-l <label>', '-p <password>', '-s <salt>', '-i <iteration count>']),
  flags: [
    { flag: '-p', key: 'password', parse: v.text('password'), required: true, metavar: '<password>' },
    { flag: '-s', key: 'salt', parse: v.text('salt'), required: true, metavar: '<salt>' },
    { flag: '-i', key: 'iterations', parse: v.integer(1, 100_000_000), required: true, metavar: '<iteration count>' },
    ...KEY_PAIR_FLAGS,
  ],
  async run() {
    throw new KmuError(RC.POLICY_VIOLATION, {
      detail: 'genPBEKey is not supported on FIPS-validated HSMs (the key_mgmt_util page); use genSymKey',
    });
  },
};
