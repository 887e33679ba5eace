import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { authorize } from './lib/ownership.js';

export const findSingleKey: Command<{ handle: number }, { handle: number; servers: number }> = {
  name: 'findSingleKey',
  description: 'Find single Key',
  op: 'Cfm3FindKey',
  needsLogin: true,
  syntax: `findSingleKey -h

findSingleKey -k <key-handle>`,
  flags: [{ flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<key-handle>' }],
  async run(ctx, o) {
    // A token is a one-server cluster: the key exists on every server when its handle names a key here.
    await authorize(ctx, o.handle, 'see');
    return ok(findSingleKey, { handle: o.handle, servers: Math.max(1, ctx.backend.capabilities.servers) });
  },
};
