import { CKO } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { exportPlaintext, resolveKey } from './lib/transfer.js';
import { onlyMechanism4 } from './lib/transferFlags.js';
import { writeOut } from './lib/files.js';

export const exSymKey: Command<{ key: number; wrapping: number; out: string; mechanism?: number; wk?: string }, { handle: number; file: string; externalKey: boolean; length: number }> = {
  name: 'exSymKey',
  description: 'Exports a Symmetric key',
  op: 'Cfm3WrapKey',
  needsLogin: true,
  syntax: `exSymKey -h

exSymKey -k <key-to-export>
         -w <wrapping-key>
         -out <key-file>
         [-m 4]
         [-wk <unwrapping-key-file> ]`,
  flags: [
    { flag: '-k', key: 'key', parse: v.handle, required: true, metavar: '<key-to-export>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<key-file>' },
    { flag: '-m', key: 'mechanism', parse: onlyMechanism4, metavar: '4' },
    { flag: '-wk', key: 'wk', parse: v.text('file path'), metavar: '<unwrapping-key-file>' },
  ],
  async run(ctx, o) {
    const key = await resolveKey(ctx, o.key, 'export');
    if (key.view.cls !== CKO.SECRET_KEY)
      throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.key} is not a symmetric key; exSymKey exports those (private keys: exportPrivateKey)` });
    const plain = await exportPlaintext(ctx, key, o.wrapping, o.wk);
    writeOut(o.out, plain);
    return ok(exSymKey, { handle: o.key, file: o.out, externalKey: o.wk !== undefined, length: plain.length });
  },
};
