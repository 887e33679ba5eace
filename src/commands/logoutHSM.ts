import { ok, type Command } from './types.js';
import { toKmuError } from './lib/context.js';

export const logoutHSM: Command<Record<string, never>, Record<string, never>> = {
  name: 'logoutHSM',
  description: 'Logout from the HSM',
  op: 'Cfm3LogoutHSM',
  syntax: 'logoutHSM -h\n\nlogoutHSM',
  flags: [],
  async run(ctx) {
    try {
      await ctx.backend.logout();
    } catch (e) {
      throw toKmuError(e);
    }
    return ok(logoutHSM, {});
  },
};
