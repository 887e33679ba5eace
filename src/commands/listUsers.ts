import type { UserListEntry } from '../backend/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { ok, type Command } from './types.js';

/** listUsers: the users of the HSM (embedded token: users.json), read-only for crypto users. */
export const listUsers: Command<Record<string, never>, { users: UserListEntry[] }> = {
  name: 'listUsers',
  description: 'Lists all users of a partition',
  op: 'Cfm3ListUsers',
  needsLogin: true,
  syntax: 'listUsers \n\nlistUsers -h',
  flags: [],
  async run(ctx) {
    const { backend } = ctx;
    if (!backend.listUsers)
      throw new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `listUsers: the ${backend.kind} backend cannot see the token's users through PKCS#11` });
    return ok(listUsers, { users: await backend.listUsers() });
  },
};
