import { quorumMembers } from '../kmu/access.js';
import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { readInput } from './lib/files.js';

export interface ApproveTokenOptions {
  file: string;
  signatures: string[];
}

export interface ApproveTokenData {
  handle: number;
  operation: string;
  approvals: number[];
  approvalsNeeded: number;
}

function fileList(text: string, flag: string): string[] {
  const files = text.split(',');
  if (files.some((f) => f === '')) throw new UsageError(`${flag} takes signature files separated by commas, not '${text}'`);
  return files;
}

/**
 * Quorum step two: the requester presents the token and the approvers' signatures over it.
 * kmu11 verifies each against the registered key (listUsers' MofnPubKey) of a user who owns
 * or shares the key; the approved token then allows the operation once.
 */
export const approveToken: Command<ApproveTokenOptions, ApproveTokenData> = {
  name: 'approveToken',
  description: 'Approves an MxN service',
  op: 'Cfm3ApproveToken',
  needsLogin: true,
  syntax: `approveToken -h

approveToken -f <token file>
             -s <signature file>[,<signature file>...]`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file name'), required: true, metavar: '<token file>' },
    { flag: '-s', key: 'signatures', parse: fileList, required: true, metavar: '<signature file>[,<signature file>...]' },
  ],
  async run(ctx, o) {
    const model = ctx.backend.userModel;
    if (!model || !ctx.backend.capabilities.quorum)
      throw new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `approveToken (quorum authentication) is not available on the ${ctx.backend.kind} backend` });
    const text = readInput(o.file, 'token file').toString('utf8');
    const signatures = o.signatures.map((f) => readInput(f, 'signature file'));
    let needed = 0;
    const outcome = await model.quorum.approve(text, signatures, ctx.backend.user!.id, async (handle) => {
      const meta = await ctx.handles.meta(handle);
      needed = meta.mValue;
      const members = await Promise.all(quorumMembers(meta).map((id) => model.user(id)));
      return members.filter((u) => u !== undefined).map((u) => ({ id: u.id, pem: u.mofnPubKey }));
    });
    return ok(approveToken, { handle: outcome.handle, operation: outcome.op, approvals: outcome.approvals, approvalsNeeded: needed });
  },
};
