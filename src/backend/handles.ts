// kmu key handles that hold across processes.
//
// On CloudHSM (SDK 3) a key handle was the key's lasting name; SDK 5's and SoftHSM's object handles are per session
// (and may even be reused within one). The handle store gives every key on the token one kmu
// handle (a positive integer, 262145 and up, never reused) that names the same key in every
// later process until the key is deleted:
//
//   handles/api.ts         the interface (HandleStore) and its options
//   handles/store.ts       FileHandleStore / openHandleStore: resolve, list, replace, remove, ...
//   handles/generations.ts register, intents, recovery of killed generations
//   handles/ledger.ts      turns, the lock, reading the token, what operations append
//   handles/fingerprint.ts what identifies an object (pure: attributes in, identity out)
//   handles/reconcile.ts   which stored handle is which object (pure: objects + records in)
//   handles/journal.ts     the durable store: one append-only, checksummed journal
//
// What identifies a key, first to last: CKA_UNIQUE_ID where the token reports it (PKCS#11
// 3.0); its key material (public values, RSA n/e, a readable secret value); for an EC/DSA
// private key, CKA_PUBLIC_KEY_INFO (kmu11 writes it on every private key it generates); else
// its one public key of the same family (curve / DSA domain), CKA_LABEL and CKA_ID, when it is
// the only such private key there. Nothing is ever signed with a key to find out which it is
// (a signature is audit-logged on HSMs, fails for CKA_ALWAYS_AUTHENTICATE keys and consumes
// usage-limited ones), and a private value is never read. What that leaves alike:
//  - Private keys that nothing identifies but their family, label and id, several alike:
//    each gets a handle, but resolve() refuses them (0xa8, "ambiguous") so that deleteKey can
//    never destroy a key other than the one the handle named. One such key per family, label
//    and id is matched to its record (the best unambiguous assignment). If another tool
//    relabels it, it looks new: a new handle, the old one reported deleted (updated() keeps
//    kmu11's own relabelling).
//  - Secret keys whose value is not readable: the same, by key type, CKA_VALUE_LEN,
//    CKA_CHECK_VALUE, label and id.
//  - Copies (objects with the same key material, label and id) are interchangeable: either
//    may answer a handle; each has its own.
//  - Remains of a generation killed half way (SoftHSM: objects without their attributes) are
//    destroyed when that generation is rolled back; others get handles as junk.
//  - Keys first seen from other tools have owner 0 (kmu11 never learned their creator).
//  - A session that is not logged in sees no private objects: their handles report "not on
//    the token" (0xa8) and nothing is tombstoned (see HandleStoreOptions.fullView).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Backend } from './backend.js';
import { openHandleStore, type HandleStore } from './handles/store.js';

export {
  FileHandleStore,
  openHandleStore,
  SESSION_INSTANCE,
  type CreatedObject,
  type HandleState,
  type HandleStore,
  type HandleStoreOptions,
  type KeyMeta,
} from './handles/store.js';
/**
 * The handle store for a backend's token: a journal, in the embedded token's home, or for
 * another module's token in <home>/handles/<module, serial number and label hashed>. Every
 * backend, CloudHSM's SDK 5 included (its object handles are per session).
 */
export async function handleStoreFor(backend: Backend, home: string): Promise<HandleStore> {
  const info = await backend.info();
  const tag = createHash('sha256').update(`${info.modulePath}\0${info.token.serialNumber}\0${info.token.label}`).digest('hex');
  const dir = info.home ?? join(backend.home ?? home, 'handles', tag.slice(0, 16));
  // Logged in, a scan sees every key: one that is gone was deleted (tombstone it).
  const uniqueId = Number(info.library.cryptokiVersion.split('.')[0]) >= 3;
  return openHandleStore(dir, backend.session, { fullView: () => backend.user !== null, uniqueId });
}
