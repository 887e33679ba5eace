import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import type { KeyMeta } from '../../backend/handles.js';
import type { CommandContext } from '../types.js';

/**
 * Only a key's owner may delete it or change it (kmu's 0xc6); keys kmu11 first saw from other
 * tools have owner 0 and belong to whoever can log in to the token.
 */
export function requireOwner(ctx: CommandContext, handle: number, meta: KeyMeta): void {
  const user = ctx.backend.user!;
  if (meta.owner !== 0 && meta.owner !== user.id)
    throw new KmuError(RC.ACCESS_DENIED, { detail: `key ${handle} is owned by user ${meta.owner}; only the owner can do this` });
}
