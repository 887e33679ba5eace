import { createPublicKey } from 'node:crypto';
import { CKO, toPem } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { publicSpki, readKey } from './lib/keys.js';
import { authorize } from './lib/ownership.js';
import { writeOut } from './lib/files.js';

export const exportPubKey: Command<{ handle: number; out: string }, { handle: number; file: string; pem: string }> = {
  name: 'exportPubKey',
  description: 'Exports RSA/DSA/EC Public key',
  op: 'Cfm3ExportPubKey',
  needsLogin: true,
  syntax: 'exportPubKey -h\n\nexportPubKey -k <public-key-handle>\n             -out <key-file>',
  flags: [
    { flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<public-key-handle>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<key-file>' },
  ],
  async run(ctx, o) {
    const key = await readKey(ctx.backend.session, (await authorize(ctx, o.handle, 'export')).object);
    if (key.cls !== CKO.PUBLIC_KEY)
      throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.handle} is not a public key; exportPubKey takes a public key handle` });
    const spki = publicSpki(key);
    if (!spki) throw new KmuError(RC.NOT_SUPPORTED, { detail: `key ${o.handle} is not an RSA, DSA or EC public key kmu11 can export` });
    const pem = toPem(spki);
    // Never a file that does not parse: the key as the token gave it must make a valid SPKI.
    try {
      createPublicKey(pem);
    } catch (e) {
      throw new KmuError(RC.ATTRIBUTE_INVALID, { detail: `the token's public key ${o.handle} does not make a valid key (${(e as Error).message}); nothing written` });
    }
    writeOut(o.out, pem, 0o644);
    return ok(exportPubKey, { handle: o.handle, file: o.out, pem });
  },
};
