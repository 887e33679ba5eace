// Who may do what with a key: CloudHSM's rules, in one place the commands ask.
//
//  - The CU who makes a key owns it; `-u` / shareKey share a private (or secret) key with
//    other CUs, who may use it (sign) and see it, but not delete, change, share or export it.
//  - Public keys are visible to and usable by every user; only their owner deletes or changes
//    them, or exports them (exportPubKey of the pair is the owner's).
//  - A private key neither owned by nor shared with the user does not exist for them: every
//    command answers as for an unknown handle (0xa8), so nothing reveals that it is there.
//    A key they can see but not manage is refused with 0xc6.
//  - Keys whose owner kmu11 never learned (owner 0: made by other tools) are visible to and
//    usable by every CU, as they are to any PKCS#11 application that logs in to the token;
//    deleting, changing or sharing them needs an owner, which only a crypto officer assigns
//    (`kmu11 users claim`). "Any CU may delete it" would let one CU destroy keys another
//    application depends on. Their public keys, having no owner to keep them, anyone exports.
// On the generic and cloudhsm backends the logged-in user is the token's only user (id 0) and
// every key there is owner 0: the same test, `owner === user`, makes them its own.
import type { KeyMeta } from '../backend/index.js';

/** The operations a quorum token allows once (getToken -o): a quorum-controlled key needs approvals for each. */
export const QUORUM_OPS = ['sign', 'share', 'unshare', 'delete'] as const;
export type QuorumOp = (typeof QUORUM_OPS)[number];

/** see: findKey, getAttribute, getKeyInfo; use: sign; manage: deleteKey, setAttribute, shareKey; export: exportPubKey. */
export type KeyAction = 'see' | 'use' | 'manage' | 'export';

export type Decision =
  | { allow: true }
  | { allow: false; hidden: true }
  | { allow: false; hidden: false; why: string };

export interface KeyFacts {
  meta: KeyMeta;
  /** A public key (CKO_PUBLIC_KEY): visible and usable by every user. */
  isPublic: boolean;
}

const UNKNOWN_OWNER = 0;

export function decide(userId: number, key: KeyFacts, action: KeyAction): Decision {
  const { meta, isPublic } = key;
  if (meta.owner === userId) return { allow: true };
  const unknownOwner = meta.owner === UNKNOWN_OWNER;
  const shared = meta.shared.includes(userId);
  const visible = isPublic || unknownOwner || shared;
  if (!visible) return { allow: false, hidden: true };
  if (action === 'see' || action === 'use') return { allow: true };
  // A public key nobody owns has no owner to keep its export from: any user may.
  if (action === 'export' && isPublic && unknownOwner) return { allow: true };
  if (unknownOwner)
    return { allow: false, hidden: false, why: 'its owner is unknown (made outside kmu11); a crypto officer must assign one first (kmu11 users claim)' };
  return { allow: false, hidden: false, why: `only its owner (user ${meta.owner}) can do this` };
}

/** Whether `userId` may use the key (owner or shared): who can approve its quorum tokens. */
export function quorumMembers(meta: KeyMeta): number[] {
  return meta.owner === UNKNOWN_OWNER ? [] : [meta.owner, ...meta.shared];
}
