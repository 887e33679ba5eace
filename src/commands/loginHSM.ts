import { UsageError } from '../kmu/errors.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';

export interface LoginHSMOptions {
  userType: string;
  user: string;
  password?: string;
  hiddenPassword?: boolean;
}

export const loginHSM: Command<LoginHSMOptions, { user: { id: number; name: string; type: string } }> = {
  name: 'loginHSM',
  description: 'Login to the HSM',
  op: 'Cfm3LoginHSM',
  syntax: `loginHSM -h

loginHSM -u <user type>
         { -p | -hpswd } <password>
         -s <username>`,
  flags: [
    { flag: '-u', key: 'userType', parse: v.text('user type'), required: true, metavar: '<user type>' },
    { flag: '-s', key: 'user', parse: v.text('username'), required: true, metavar: '<username>' },
    { flag: '-p', key: 'password', parse: (t: string) => t, metavar: '<password>' },
    { flag: '-hpswd', key: 'hiddenPassword' },
  ],
  validate(o) {
    if (o.password === undefined && !o.hiddenPassword) throw new UsageError('loginHSM needs a password: -p <password> or -hpswd');
    if (o.password !== undefined && o.hiddenPassword) throw new UsageError('give either -p or -hpswd, not both');
  },
  async run(ctx, o) {
    let password = o.password;
    if (password === undefined) {
      if (!ctx.prompt) throw new UsageError('-hpswd needs a terminal to ask for the password; use -p in scripts');
      password = await ctx.prompt('Enter password: ', { hidden: true });
    }
    const user = await ctx.backend.login(o.userType, o.user, password);
    return ok(loginHSM, { user: { id: user.id, name: user.name, type: user.type } }, ctx.backend.takeWarnings());
  },
};
