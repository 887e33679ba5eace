import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import type { CommandContext, OfflineContext } from '../types.js';

/** Throws, naming the signal, once the operator has interrupted the command; the caller rolls back. */
export function checkInterrupt(ctx: OfflineContext): void {
  if (ctx.signal?.aborted)
    throw new KmuError(RC.GENERAL_ERROR, { detail: `interrupted by ${String(ctx.signal.reason)}; nothing was made` });
}

/** kmu answers 0xa3 before a login, for every command that works on keys. */
export function requireLogin(ctx: CommandContext): void {
  if (!ctx.backend.user) throw new KmuError(RC.NOT_LOGGED_IN, { detail: 'log in first with loginHSM -u CU -s <user> -p <password>' });
}
