import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { authorize, checkShareTargets, requireQuorum } from './lib/ownership.js';

export interface ShareKeyOptions {
  handle: number;
  users: number[];
  share: boolean;
}

/**
 * cloudhsm_mgmt_util's shareKey (<key handle> <user id> <1 share / 0 unshare>) in kmu's flag
 * style: the owner shares a private key with crypto users or unshares it; a quorum-controlled
 * key needs its approvals for either.
 */
export const shareKey: Command<ShareKeyOptions, { handle: number; shared: number[]; share: boolean; users: number[] }> = {
  name: 'shareKey',
  description: 'Share or unshare a key with other users',
  op: 'Cfm3ShareKey',
  needsLogin: true,
  syntax: `shareKey -h

shareKey -k <key handle>
         -u <user-ids>
         -share <1 to share | 0 to unshare>`,
  flags: [
    { flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<key handle>' },
    { flag: '-u', key: 'users', parse: v.userIds, required: true, metavar: '<user-ids>' },
    {
      flag: '-share',
      key: 'share',
      parse: (t: string, flag: string) => {
        if (t !== '0' && t !== '1') throw new UsageError(`${flag} takes 1 (share) or 0 (unshare), not '${t}'`);
        return t === '1';
      },
      required: true,
      metavar: '<1 to share | 0 to unshare>',
      what: 'Share (1) or unshare (0)',
    },
  ],
  async run(ctx, o) {
    const { backend } = ctx;
    if (!backend.capabilities.sharing || !backend.userModel)
      throw new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `shareKey (sharing keys with other users) is not available on the ${backend.kind} backend` });
    const key = await authorize(ctx, o.handle, 'manage');
    if (key.isPublic)
      throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.handle} is a public key: every user can already use it; only private keys are shared` });
    const shared = new Set(key.meta.shared);
    if (o.share) {
      await checkShareTargets(ctx, o.users);
      const already = o.users.filter((u) => shared.has(u));
      if (already.length) throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.handle} is already shared with user(s) ${already.join(', ')}` });
      o.users.forEach((u) => shared.add(u));
    } else {
      const absent = o.users.filter((u) => !shared.has(u));
      if (absent.length) throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.handle} is not shared with user(s) ${absent.join(', ')}` });
      o.users.forEach((u) => shared.delete(u));
      // CloudHSM keeps -m_value within reach: a quorum larger than owner + shared users could never be met.
      if (key.meta.mValue > shared.size + 1)
        throw new KmuError(RC.INVALID_INPUT, {
          detail: `key ${o.handle} needs ${key.meta.mValue} approvals; unsharing would leave ${shared.size + 1} user(s) able to give them`,
        });
    }
    await requireQuorum(ctx, o.handle, key, o.share ? 'share' : 'unshare');
    const next = [...shared];
    await ctx.handles.setMeta(o.handle, { ...key.meta, shared: next });
    return ok(shareKey, { handle: o.handle, shared: next, share: o.share, users: o.users });
  },
};
