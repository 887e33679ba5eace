import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { authorize } from './lib/ownership.js';

export const deleteKey: Command<{ handle: number }, { handle: number }> = {
  name: 'deleteKey',
  description: 'Delete Key',
  op: 'Cfm3DeleteKey',
  needsLogin: true,
  parallel: { group: 'delete', key: (o) => `handle:${o.handle}` },
  syntax: 'deleteKey -h\n\ndeleteKey -k <key handle>',
  flags: [{ flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<key handle>' }],
  async run(ctx, o) {
    const { object } = await authorize(ctx, o.handle, 'manage', 'delete');
    // Destroy first, then the tombstone: a crash between leaves a record whose key is gone,
    // which the store reports as deleted.
    await ctx.backend.session.destroyObject(object);
    await ctx.handles.remove(o.handle);
    await ctx.backend.userModel?.quorum.forget((t) => t.handle === o.handle);
    return ok(deleteKey, { handle: o.handle });
  },
};
