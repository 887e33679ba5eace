import { CKA, CKO } from '../p11/index.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { requireLogin, toKmuError } from './lib/context.js';

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
    requireLogin(ctx);
    try {
      const object = await ctx.handles.resolve(o.handle);
      // Where the HSM keeps owners, sharing and quorum itself (cloudhsm), it is asked.
      const meta = ctx.backend.keyInfo ? await ctx.backend.keyInfo(object) : await ctx.handles.meta(o.handle);
      const [cls] = await ctx.backend.session.getAttributes(object, [CKA.CLASS]);
      // The page: on a public key, getKeyInfo returns only the owner.
      const isPublic = cls && 'value' in cls && cls.value === CKO.PUBLIC_KEY;
      return ok(getKeyInfo, {
        handle: o.handle,
        owner: meta.owner,
        shared: isPublic ? [] : meta.shared,
        mValue: isPublic ? 0 : meta.mValue,
      });
    } catch (e) {
      throw toKmuError(e);
    }
  },
};
