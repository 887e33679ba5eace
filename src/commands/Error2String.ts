import { RC, returnCodeText } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type OfflineCommand } from './types.js';

/** Reads the one code table every formatter prints from; a code it lacks is a failure (exit non-zero). */
export const Error2String: OfflineCommand<{ code: number }, { code: number; text: string | null }> = {
  name: 'Error2String',
  description: 'Converts Error codes to Strings',
  op: 'Error2String',
  offline: true,
  syntax: 'Error2String -h\n\nError2String -r <response-code>',
  flags: [{ flag: '-r', key: 'code', parse: v.responseCode, required: true, metavar: '<response-code>' }],
  async run(_ctx, o) {
    const text = returnCodeText(o.code) ?? null;
    const result = ok(Error2String, { code: o.code, text });
    return text === null ? { ...result, code: RC.INVALID_INPUT } : result;
  },
};
