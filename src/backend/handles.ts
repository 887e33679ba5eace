// kmu key handles that hold across processes. See handles/store.ts (durability, crash order),
// handles/identify.ts (how a key is recognised without writing to it), handles/match.ts
// (which handle is which object), handles/journal.ts (the file), handles/lock.ts.
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
export { IdentityHandleStore, type IdentityHandleStoreOptions } from './handles/identity.js';
