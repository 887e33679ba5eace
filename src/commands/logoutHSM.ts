import { ok, type Command } from './types.js';

export const logoutHSM: Command<Record<string, never>, Record<string, never>> = {
  name: 'logoutHSM',
  description: 'Logout from the HSM',
  op: 'Cfm3LogoutHSM',
  syntax: 'logoutHSM -h\n\nlogoutHSM',
  flags: [],
  async run(ctx) {
    await ctx.backend.logout();
    return ok(logoutHSM, {});
  },
};
