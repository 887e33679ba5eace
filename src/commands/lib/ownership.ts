// The commands' side of access control: resolve a handle, ask kmu/access.ts whether the
// logged-in user may act on it, and for a quorum-controlled private key use up one approved
// quorum token. Keys the user may not see answer as unknown handles (0xa8).
import { CKA, CKO } from '../../p11/index.js';
import type { KeyMeta } from '../../backend/index.js';
import { decide, quorumMembers, type KeyAction, type QuorumOp } from '../../kmu/access.js';
import { invalidHandle, KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import type { CommandContext } from '../types.js';

export interface AuthorizedKey {
  object: number;
  meta: KeyMeta;
  isPublic: boolean;
}

/** Whether a PKCS#11 object is a public key (visible and usable by every user). */
async function isPublicKey(ctx: CommandContext, object: number): Promise<boolean> {
  const [cls] = await ctx.backend.session.getAttributes(object, [CKA.CLASS]);
  return !!cls && 'value' in cls && cls.value === CKO.PUBLIC_KEY;
}

/**
 * The key `handle` names, if the logged-in user may do `action` with it. With `quorum`, a
 * private key whose m_value is N also needs an approved quorum token for that operation
 * (consumed here: call it last, right before the operation).
 */
export async function authorize(ctx: CommandContext, handle: number, action: KeyAction, quorum?: QuorumOp): Promise<AuthorizedKey> {
  const user = ctx.backend.user!;
  const object = await ctx.handles.resolve(handle);
  const meta = await ctx.handles.meta(handle);
  const isPublic = await isPublicKey(ctx, object);
  const d = decide(user.id, { meta, isPublic }, action);
  if (!d.allow) {
    if (d.hidden) throw invalidHandle(handle, 'unknown');
    throw new KmuError(RC.ACCESS_DENIED, { detail: `key ${handle}: ${d.why}` });
  }
  if (quorum) await requireQuorum(ctx, handle, { object, meta, isPublic }, quorum);
  return { object, meta, isPublic };
}

/** N approvals for a private key with m_value N; public keys are never quorum-controlled. */
export async function requireQuorum(ctx: CommandContext, handle: number, key: AuthorizedKey, op: QuorumOp): Promise<void> {
  if (key.isPublic || key.meta.mValue <= 0) return;
  const model = ctx.backend.userModel;
  // An HSM that keeps quorum itself (cloudhsm) enforces it on the operation.
  if (!model && ctx.backend.capabilities.quorum) return;
  if (!model) throw new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `key ${handle} is quorum-controlled and the ${ctx.backend.kind} backend has no quorum` });
  await model.quorum.consume(handle, op, ctx.backend.user!.id, key.meta.mValue, quorumMembers(key.meta));
}

/**
 * Users a key is shared with (-u at generation, shareKey): each must be an existing crypto user
 * other than the caller. Checked before anything is made.
 */
export async function checkShareTargets(ctx: CommandContext, users: readonly number[] | undefined): Promise<void> {
  const model = ctx.backend.userModel;
  if (!users?.length || !model) return;
  const me = ctx.backend.user!;
  for (const id of users) {
    if (id === me.id) throw new KmuError(RC.INVALID_INPUT, { detail: `user ${id} is the current user; the owner can always use the key` });
    const u = await model.user(id);
    if (!u) throw new KmuError(RC.INVALID_INPUT, { detail: `user ${id} does not exist (listUsers shows the users)` });
    if (u.type !== 'CU') throw new KmuError(RC.INVALID_USER_TYPE, { detail: `user ${id} (${u.name}) is ${u.type}; keys are shared with crypto users only` });
  }
}
