import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { authorize } from './lib/ownership.js';

export interface GetKeyInfoData {
  handle: number;
  owner: number;
  /** Users the key is shared with (none for public keys, which every user can use). */
  shared: number[];
  mValue: number;
}

export const getKeyInfo: Command<{ handle: number }, GetKeyInfoData> = {
  name: 'getKeyInfo',
  description: 'Get Key Info about shared users/sessions',
  op: 'Cfm3GetKey',
  needsLogin: true,
  syntax: 'getKeyInfo -h\n\ngetKeyInfo -k <key-handle>',
  flags: [{ flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<key-handle>' }],
  async run(ctx, o) {
    const key = await authorize(ctx, o.handle, 'see');
    // Where the HSM keeps owners, sharing and quorum itself (cloudhsm), it is asked.
    const meta = ctx.backend.keyInfo ? await ctx.backend.keyInfo(key.object) : key.meta;
    // The page: on a public key, getKeyInfo returns only the owner.
    return ok(getKeyInfo, {
      handle: o.handle,
      owner: meta.owner,
      shared: key.isPublic ? [] : meta.shared,
      mValue: key.isPublic ? 0 : meta.mValue,
    });
  },
};
