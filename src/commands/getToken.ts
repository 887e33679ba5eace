import { QUORUM_OPS, type QuorumOp } from '../kmu/access.js';
import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { authorize } from './lib/ownership.js';
import { writeOut } from './lib/files.js';

export interface GetTokenOptions {
  handle: number;
  operation: QuorumOp;
  out: string;
}

export interface GetTokenData {
  handle: number;
  operation: QuorumOp;
  file: string;
  id: string;
  expires: string;
  approvalsNeeded: number;
}

/**
 * Quorum step one (quorum-authentication.md): the user who wants to do a quorum-controlled
 * operation gets a token for it and writes it to a file, which the approvers sign outside the
 * token (`openssl dgst -sha256 -sign <their key> -out <sig> <token file>`).
 */
export const getToken: Command<GetTokenOptions, GetTokenData> = {
  name: 'getToken',
  description: 'Initiate an MxN service and get Token',
  op: 'Cfm3GetToken',
  needsLogin: true,
  syntax: `getToken -h

getToken -k <key handle>
         -o <${QUORUM_OPS.join(' | ')}>
         -out <token file>`,
  flags: [
    { flag: '-k', key: 'handle', parse: v.handle, required: true, metavar: '<key handle>' },
    {
      flag: '-o',
      key: 'operation',
      parse: (t: string, flag: string) => {
        if (!(QUORUM_OPS as readonly string[]).includes(t)) throw new UsageError(`${flag} takes one of ${QUORUM_OPS.join(', ')}, not '${t}'`);
        return t;
      },
      required: true,
      metavar: `<${QUORUM_OPS.join(' | ')}>`,
    },
    { flag: '-out', key: 'out', parse: v.text('file name'), required: true, metavar: '<token file>' },
  ],
  async run(ctx, o) {
    const model = ctx.backend.userModel;
    if (!model || !ctx.backend.capabilities.quorum)
      throw new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `getToken (quorum authentication) is not available on the ${ctx.backend.kind} backend` });
    const key = await authorize(ctx, o.handle, o.operation === 'sign' ? 'use' : 'manage');
    if (key.isPublic || key.meta.mValue <= 0)
      throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.handle} is not quorum-controlled (its m_value is 0)` });
    const needed = key.meta.mValue;
    const token = await model.quorum.issue(o.handle, o.operation, ctx.backend.user!.id);
    writeOut(o.out, token.text, 0o644);
    return ok(getToken, {
      handle: o.handle,
      operation: o.operation,
      file: o.out,
      id: token.id,
      expires: new Date(token.expires).toISOString(),
      approvalsNeeded: needed,
    });
  },
};
