import { CKA } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import type { WrapMechanism } from '../kmu/wrapMechanisms.js';
import { ok, type Command } from './types.js';
import { requireWrappingKey, resolveKey, wrapWith } from './lib/transfer.js';
import { gcmWrap, readAad } from './lib/wrapGcm.js';
import { CARRIED, hashFlag, ivFlag, mechanismFlag, validateWrapFlags } from './lib/transferFlags.js';
import { keyHeader, withHeader } from './lib/wrapFile.js';
import { writeOut } from './lib/files.js';

export interface WrapKeyOptions {
  key: number;
  wrapping: number;
  out: string;
  mechanism: WrapMechanism;
  hash?: number;
  aad?: string;
  noheader?: boolean;
  iv?: Buffer;
  ivFile?: string;
  tagSize?: number;
}

export const wrapKey: Command<WrapKeyOptions, { handle: number; wrappingKey: number; file: string; length: number; mechanism: string }> = {
  name: 'wrapKey',
  description: 'Wraps a key from from HSM using the specified handle',
  op: 'Cfm2WrapKey',
  needsLogin: true,
  syntax: `wrapKey -h

wrapKey -k <exported-key-handle>
        -w <wrapping-key-handle>
        -out <output-file>
        [-m <wrapping-mechanism>]
        [-aad <additional authenticated data filename>]
        [-t <hash-type>]
        [-noheader]
        [-i <wrapping IV>]
        [-iv_file <IV file>]
        [-tag_size <num_tag_bytes>>]`,
  flags: [
    { flag: '-k', key: 'key', parse: v.handle, required: true, metavar: '<exported-key-handle>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key-handle>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<output-file>' },
    { flag: '-m', key: 'mechanism', parse: mechanismFlag, required: true, metavar: '<wrapping-mechanism>' },
    { flag: '-aad', key: 'aad', parse: v.text('file path'), metavar: '<additional authenticated data filename>' },
    { flag: '-t', key: 'hash', parse: hashFlag, metavar: '<hash-type>' },
    { flag: '-noheader', key: 'noheader' },
    { flag: '-i', key: 'iv', parse: ivFlag, metavar: '<wrapping IV>' },
    { flag: '-iv_file', key: 'ivFile', parse: v.text('file path'), metavar: '<IV file>' },
    { flag: '-tag_size', key: 'tagSize', parse: v.integer(8, 16), metavar: '<num_tag_bytes>' },
  ],
  validate: validateWrapFlags,
  async run(ctx, o) {
    let file: Buffer;
    // The page: "You can export only those keys that you own."
    const key = await resolveKey(ctx, o.key, 'export');
    const carried = CARRIED[key.view.cls];
    if (!carried)
      throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.key} is not a secret or private key; wrapKey exports those (public keys: exportPubKey)` });
    if (key.view.get(CKA.EXTRACTABLE) === false)
      throw new KmuError(RC.POLICY_VIOLATION, { detail: `key ${o.key} is not extractable (OBJ_ATTR_EXTRACTABLE 0)` });
    const wrapping = await resolveKey(ctx, o.wrapping);
    requireWrappingKey(o.mechanism, wrapping, 'wrap');
    let wrapped: Buffer;
    if (o.mechanism.gcm) {
      const { iv, blob } = await gcmWrap(ctx, o.mechanism, wrapping.object, key.object, { aad: readAad(o.aad), tagBytes: o.tagSize });
      // -iv_file (with -noheader, AES_GCM): the IV goes to its file; otherwise it leads the blob.
      if (o.ivFile !== undefined) writeOut(o.ivFile, iv);
      wrapped = o.ivFile !== undefined ? blob : Buffer.concat([iv, blob]);
    } else wrapped = await wrapWith(ctx, o.mechanism, wrapping.object, key.object, o.hash, o.iv);
    if (o.noheader) file = wrapped;
    else file = withHeader({ mechanism: o.mechanism.id, ...keyHeader(key.view, carried) }, wrapped);
    writeOut(o.out, file);
    return ok(wrapKey, { handle: o.key, wrappingKey: o.wrapping, file: o.out, length: file.length, mechanism: o.mechanism.name });
  },
};
