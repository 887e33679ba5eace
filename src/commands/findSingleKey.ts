import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { requireLogin, toKmuError } from './lib/context.js';

export const findSingleKey: Command<{ handle: number }, { handle: number; servers: number }> = {
  name: 'findSingleKey',
  description: 'Find single Key',
  op: 'Cfm3FindKey',
  needsLogin: true,
  syntax: `findSingleKey -h

findSingleKey -k <key-handle>`,
  flags: [{ flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<key-handle>' }],
  async run(ctx, o) {
    requireLogin(ctx);
    // A token is a one-server cluster: the key exists on every server when its handle names a key here.
    try {
      await ctx.handles.resolve(o.handle);
    } catch (e) {
      throw toKmuError(e);
    }
    return ok(findSingleKey, { handle: o.handle, servers: Math.max(1, ctx.backend.capabilities.servers) });
  },
};
