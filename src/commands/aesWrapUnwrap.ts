import { KmuError, UsageError } from '../kmu/errors.js';
import { DEFAULT_IV, unwrapPkcs5, wrapPkcs5 } from '../kmu/aesKeyWrap.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { requireAes, resolveKey, tokenCipher } from './lib/transfer.js';
import { ivFlag } from './lib/transferFlags.js';
import { readInput, writeOut } from './lib/files.js';

export interface AesWrapUnwrapOptions {
  mode: 0 | 1;
  file: string;
  wrapping: number;
  iv?: Buffer;
  out?: string;
}

function mode(text: string, flag: string): 0 | 1 {
  if (text !== '0' && text !== '1') throw new UsageError(`${flag} takes 1 (wrap) or 0 (unwrap), not '${text}'`);
  return Number(text) as 0 | 1;
}

export const aesWrapUnwrap: Command<AesWrapUnwrapOptions, { wrap: boolean; file: string; /** Hex, as the page prints it. */ result: string; defaultIv: boolean }> = {
  name: 'aesWrapUnwrap',
  description: 'Does NIST AES Wrap/Unwrap',
  op: 'Cfm3WrapHostKey',
  needsLogin: true,
  syntax: `aesWrapUnwrap -h

aesWrapUnwrap -m <wrap-unwrap mode>
              -f <file-to-wrap-unwrap>
              -w <wrapping-key-handle>
              [-i <wrapping-IV>]
              [-out <output-file>]`,
  flags: [
    { flag: '-m', key: 'mode', parse: mode, required: true, metavar: '<wrap-unwrap mode>' },
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<file-to-wrap-unwrap>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key-handle>' },
    { flag: '-i', key: 'iv', parse: ivFlag, metavar: '<wrapping-IV>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), metavar: '<output-file>' },
  ],
  async run(ctx, o) {
    const wrap = o.mode === 1;
    const op = wrap ? 'Cfm3WrapHostKey' : 'Cfm3UnWrapHostKey';
    const out = o.out ?? (wrap ? 'wrapped_key' : 'unwrapped_key');
    let result: Buffer;
    try {
      const data = readInput(o.file, '-f');
      // The page: "a file that contains less than 4 KB (4096 bytes)".
      if (data.length === 0 || data.length >= 4096)
        throw new KmuError(RC.INVALID_INPUT, { detail: `-f ${o.file} holds ${data.length} bytes; aesWrapUnwrap takes 1 to 4095` });
      const wrapping = await resolveKey(ctx, o.wrapping);
      requireAes(wrapping);
      const { session } = ctx.backend;
      result = wrap
        ? await wrapPkcs5(tokenCipher(session, wrapping.object, 'encrypt'), data, o.iv ?? DEFAULT_IV)
        : await unwrapPkcs5(tokenCipher(session, wrapping.object, 'decrypt'), data, o.iv ?? DEFAULT_IV);
    } catch (e) {
      // The page: "If the command fails, aesWrapUnwrap creates an output file with no contents."
      try {
        writeOut(out, Buffer.alloc(0));
      } catch {
        /* the original failure is the one to report */
      }
      // (A failure is reported as the command's op, Cfm3WrapHostKey, in both modes.)
      throw e;
    }
    writeOut(out, result);
    return { ...ok(aesWrapUnwrap, { wrap, file: out, result: result.toString('hex'), defaultIv: o.iv === undefined }), op };
  },
};
