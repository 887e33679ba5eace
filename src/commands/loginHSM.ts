import { KmuError, NoAnswer, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
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
    { flag: '-p', key: 'password', parse: (t: string) => t, metavar: '<password>', secret: true },
    { flag: '-hpswd', key: 'hiddenPassword' },
  ],
  validate(o) {
    if (o.password === undefined && !o.hiddenPassword) throw new UsageError('loginHSM needs a password: -p <password> or -hpswd');
    if (o.password !== undefined && o.hiddenPassword) throw new UsageError('give either -p or -hpswd, not both');
  },
  async run(ctx, o) {
    let password = o.password;
    if (password === undefined) {
      if (!ctx.prompt) throw new UsageError('-hpswd needs a terminal or standard input to read the password from; use -p or KMU11_PASSWORD');
      try {
        password = await ctx.prompt('Enter password: ', { hidden: true, env: 'KMU11_PASSWORD' });
      } catch (e) {
        // Ctrl-D or end of input at the password question: a failed login, as a wrong password.
        if (e instanceof NoAnswer) throw new KmuError(RC.LOGIN_FAILED, { detail: 'no password given' });
        throw e;
      }
    }
    const user = await ctx.backend.login(o.userType, o.user, password);
    return ok(loginHSM, { user: { id: user.id, name: user.name, type: user.type } }, ctx.backend.takeWarnings());
  },
};
