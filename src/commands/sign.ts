import { CKK } from '../p11/index.js';
import type { SignMechanism } from '../kmu/signMechanisms.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { requireQuorum } from './lib/ownership.js';
import { mechanismFlag, rawToDer, signingInput, signingKey } from './lib/signatures.js';
import { readInput, writeOut } from './lib/files.js';

export interface SignOptions {
  file: string;
  handle: number;
  mechanism: SignMechanism;
  out: string;
}

/** sign: a private key the user owns or shares signs a file (a quorum-controlled key needs its approvals). */
export const sign: Command<SignOptions, { handle: number; mechanism: string; file: string; signature: string }> = {
  name: 'sign',
  description: 'Generates a signature',
  op: 'Cfm3Sign',
  needsLogin: true,
  syntax: `sign -h

sign -f <file name>
     -k <private key handle>
     -m <signature mechanism>
     -out <signed file name>`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file name'), required: true, metavar: '<file name>' },
    { flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<private key handle>' },
    { flag: '-m', key: 'mechanism', parse: mechanismFlag, required: true, metavar: '<signature mechanism>' },
    { flag: '-out', key: 'out', parse: v.text('file name'), required: true, metavar: '<signed file name>' },
  ],
  async run(ctx, o) {
    const message = readInput(o.file, 'file');
    const { session } = ctx.backend;
    const key = await signingKey(ctx, o.handle, o.mechanism, 'sign');
    // Approvals are used up only once everything else about the request holds.
    await requireQuorum(ctx, o.handle, key, 'sign');
    const { mechanism, data } = signingInput(o.mechanism, message);
    const raw = await session.sign(mechanism, key.object, data);
    const signature = o.mechanism.keyType === CKK.RSA ? raw : rawToDer(raw);
    writeOut(o.out, signature, 0o644);
    return ok(sign, { handle: o.handle, mechanism: o.mechanism.name, file: o.out, signature: signature.toString('hex') });
  },
};
