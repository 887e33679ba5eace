import { Pkcs11Error } from '../../p11/index.js';
import { KmuError, UsageError } from '../../kmu/errors.js';
import { kmuCodeForCkr } from '../../kmu/pkcs11Codes.js';
import { RC } from '../../kmu/returnCodes.js';
import type { CommandContext } from '../types.js';

/** kmu answers 0xa3 before a login, for every command that works on keys. */
export function requireLogin(ctx: CommandContext): void {
  if (!ctx.backend.user) throw new KmuError(RC.NOT_LOGGED_IN, { detail: 'log in first with loginHSM -u CU -s <user> -p <password>' });
}

/** Any failure as a kmu error: PKCS#11 errors keep their CKR name; kmu and usage errors pass. */
export function toKmuError(e: unknown): KmuError | UsageError {
  if (e instanceof KmuError || e instanceof UsageError) return e;
  if (e instanceof Pkcs11Error) return new KmuError(kmuCodeForCkr(e.ckr), { ckr: e.ckr, detail: `${e.fn}: ${e.ckr}`, cause: e });
  return new KmuError(RC.GENERAL_ERROR, { detail: e instanceof Error ? e.message : String(e), cause: e });
}
