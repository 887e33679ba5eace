import { CKA, CKK, CKO } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { fakeRsaPem } from '../kmu/fakePem.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { resolveKey } from './lib/transfer.js';
import { writeOut } from './lib/files.js';

export const getCaviumPrivKey: Command<{ handle: number; out: string }, { handle: number; file: string }> = {
  name: 'getCaviumPrivKey',
  // The help page's two lines, the second aligned under the first.
  description: 'Saves an RSA private key handle\n                          in fake PEM format',
  op: 'getCaviumPrivKey',
  needsLogin: true,
  syntax: `getCaviumPrivKey -h

getCaviumPrivKey -k <private-key-handle>
                 -out <fake-PEM-file>`,
  flags: [
    { flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<private-key-handle>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<fake-PEM-file>' },
  ],
  async run(ctx, o) {
    const key = await resolveKey(ctx, o.handle, 'export');
    if (key.view.cls !== CKO.PRIVATE_KEY || key.view.keyType !== CKK.RSA)
      throw new KmuError(RC.NOT_SUPPORTED, { detail: `key ${o.handle} is not an RSA private key; kmu11 writes fake PEM files for RSA private keys` });
    const [n, e] = [key.view.buf(CKA.MODULUS), key.view.buf(CKA.PUBLIC_EXPONENT)];
    if (!n || !e) throw new KmuError(RC.ATTRIBUTE_NOT_PRESENT, { detail: `key ${o.handle} shows no modulus and public exponent` });
    const pem = fakeRsaPem(n, e, o.handle);
    writeOut(o.out, pem);
    return ok(getCaviumPrivKey, { handle: o.handle, file: o.out });
  },
};
