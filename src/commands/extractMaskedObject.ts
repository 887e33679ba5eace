import { CKA, CKM } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { mask, maskingKey } from './lib/masking.js';
import { resolveKey } from './lib/transfer.js';
import { CARRIED } from './lib/transferFlags.js';
import { writeOut } from './lib/files.js';
import { keyHeader } from './lib/wrapFile.js';

export const extractMaskedObject: Command<{ handle: number; out: string }, { handle: number; file: string; length: number }> = {
  name: 'extractMaskedObject',
  description: 'Extracts a masked object',
  op: 'Cfm3ExtractMaskedObject',
  needsLogin: true,
  syntax: `extractMaskedObject -h

extractMaskedObject -o <object-handle>
                    -out <object-file>`,
  flags: [
    { flag: '-o', key: 'handle', parse: v.handle, required: true, metavar: '<object-handle>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<object-file>' },
  ],
  async run(ctx, o) {
    // The page: the CU who owns the key (kmu logs in CUs only). The masking key is nobody's.
    const key = await resolveKey(ctx, o.handle, 'export');
    const { meta } = key;
    const carried = CARRIED[key.view.cls];
    if (!carried) throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.handle} is not a secret or private key` });
    if (key.view.get(CKA.EXTRACTABLE) === false)
      throw new KmuError(RC.NOT_SUPPORTED, {
        detail: `key ${o.handle} is not extractable; on a PKCS#11 token even masking cannot take it out (CloudHSM masks in its firmware)`,
      });
    const masking = await maskingKey(ctx, true);
    const wrapped = await ctx.backend.session.wrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, masking, key.object);
    // The masked object's header as it always read: token before the attributes.
    const { attributes, ...described } = keyHeader(key.view, carried);
    const file = await mask(ctx, masking, { ...described, token: key.view.get(CKA.TOKEN) !== false, attributes, ...meta }, wrapped);
    writeOut(o.out, file);
    return ok(extractMaskedObject, { handle: o.handle, file: o.out, length: file.length });
  },
};
