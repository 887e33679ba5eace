import { createPrivateKey } from 'node:crypto';
import { KmuError } from '../kmu/errors.js';
import { fakePemHandle } from '../kmu/fakePem.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type OfflineCommand } from './types.js';
import { readInput } from './lib/files.js';

export const IsValidKeyHandlefile: OfflineCommand<{ file: string }, { file: string; fake: boolean; handle?: number }> = {
  name: 'IsValidKeyHandlefile',
  description: 'Checks if private key file has\n                          an HSM key handle or a real key',
  op: 'IsValidKeyHandlefile',
  // A look at a local file: nothing on the token is needed.
  offline: true,
  syntax: `IsValidKeyHandlefile -h

IsValidKeyHandlefile -f <private-key-file>`,
  flags: [{ flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<private-key-file>' }],
  async run(_ctx, o) {
    const text = readInput(o.file, '-f').toString('latin1');
    const handle = fakePemHandle(text);
    if (handle !== undefined) return ok(IsValidKeyHandlefile, { file: o.file, fake: true, handle });
    try {
      createPrivateKey(text);
    } catch (e) {
      throw new KmuError(RC.INVALID_INPUT, { detail: `-f ${o.file}: neither a private key nor a fake PEM key file (${(e as Error).message})` });
    }
    return ok(IsValidKeyHandlefile, { file: o.file, fake: false });
  },
};
