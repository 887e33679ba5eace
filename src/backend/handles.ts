// kmu key handles that hold across processes.
//
// On CloudHSM (SDK 3) a key handle was the key's lasting name; SDK 5's and SoftHSM's object handles are per session
// (and may even be reused within one). The handle store gives every key on the token one kmu
// handle (a positive integer, 262145 and up, never reused) that names the same key in every
// later process until the key is deleted:
//
//   handles/store.ts     FileHandleStore / openHandleStore: the API, the crash order
//   handles/identify.ts  how a key is recognised again without writing anything to it
//   handles/match.ts     which stored handle is which object in this process
//   handles/journal.ts   the durable store: one append-only, checksummed journal
//   handles/lock.ts      the allocation lock between processes
//
// What cannot be told apart, and what the store then does:
//  - Private keys that nothing identifies but their family (curve / DSA domain), CKA_LABEL
//    and CKA_ID: sensitive EC/DSA private keys whose public half is not on the token (and
//    was not recorded when kmu11 made them) and that cannot sign a challenge (CKA_SIGN false,
//    or needing a context login). One such key per family/label/id is matched to its record
//    ("the best unambiguous assignment"). Several identical-looking ones each get a handle,
//    but resolve() refuses them (0xa8, "ambiguous") so that deleteKey can never destroy a key
//    other than the one the handle named. If such a key is deleted by another tool and another
//    identical-looking one appears, it inherits the handle (nothing can tell them apart);
//    with `fullView` set, a scan in between tombstones the old handle first. If another tool
//    relabels such a key, it looks new: a new handle, the old one reported deleted
//    (updated() keeps kmu11's own relabelling).
//  - Secret keys whose value is not readable are in the same position, identified by key
//    type, CKA_VALUE_LEN and CKA_CHECK_VALUE, label and id.
//  - Copies (objects with the same key material, label and id) are interchangeable: either
//    may answer a handle; each has its own.
//  - Remains of a generation killed half way (SoftHSM: objects without their attributes,
//    or unreadable) get handles as junk; equal junk is interchangeable.
//  - Keys first seen from other tools have owner 0 (kmu11 never learned their creator).
//  - A session that is not logged in sees no private objects: their handles report
//    "not on the token" (0xa8) and nothing is tombstoned (see HandleStoreOptions.fullView).
export {
  FileHandleStore,
  openHandleStore,
  invalidHandle,
  SESSION_INSTANCE,
  type CreatedObject,
  type HandleState,
  type HandleStore,
  type HandleStoreOptions,
  type KeyMeta,
} from './handles/store.js';
