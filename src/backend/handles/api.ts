// The handle store's interface (what commands and the session use) and its options.
import type { AttributeRead, Session } from '../../p11/index.js';
import type { KeyMeta } from './journal.js';

export type { KeyMeta } from './journal.js';

export interface CreatedObject {
  object: number;
  meta: KeyMeta;
  /** The other half of a pair generated together, in the same session. */
  partner?: number;
  /** Its attributes, read by the caller in the job that made it (registerReads()): not read again. */
  read?: AttributeRead[];
}

export interface HandleStore {
  /** Handles for objects just made (read on `session`); durable before it returns; same order. */
  register(created: CreatedObject[], session?: Session): Promise<number[]>;
  /** The attribute types register() reads of a new object of this class and key type. */
  registerReads(cls: number, kt: number): number[];
  /** The PKCS#11 object a handle names. Throws KmuError 0xa8 if unknown, deleted, gone or ambiguous. */
  resolve(handle: number): Promise<number>;
  /** kmu handles for objects C_FindObjects found (unseen keys get new handles), same order. */
  list(objects: number[]): Promise<number[]>;
  /** Owner, shared users, m_value. Throws KmuError 0xa8 for an unknown or deleted handle. */
  meta(handle: number): Promise<KeyMeta>;
  /**
   * A private key's public value (EC point uncompressed, DSA's y): as recorded, else as the last
   * resolve() learned it. Undefined when unknown; throws like meta().
   */
  publicValue(handle: number): Promise<Buffer | undefined>;
  /** The key named `handle` is now `newObject` (a copy, e.g. session -> token). */
  replace(handle: number, newObject: number): Promise<void>;
  /** Change owner / shared users / m_value (shareKey, a CO's claim of a key of unknown owner). */
  setMeta(handle: number, meta: KeyMeta): Promise<void>;
  /** Record that the key was destroyed (after a successful C_DestroyObject). */
  remove(handle: number): Promise<void>;
  /** The key's CKA_LABEL or CKA_ID was changed through this session (after setAttribute). */
  updated(handle: number): Promise<void>;
  /**
   * A generation of token keys labelled `label` (CKA_ID `id`) is about to start: durable before
   * it does, so that a process killed part way has it finished or rolled back by the next one.
   */
  intend(what: { label: string; id?: Buffer; meta: KeyMeta }): Promise<void>;
  /** The command's outcome is out (printed, or rolled back); `delivered`: its warnings were shown too. */
  settle(delivered: boolean): Promise<void>;
  /** Runs one command: the generations it announces (intend) are settled by its own settle(). */
  scope<T>(fn: () => Promise<T>): Promise<T>;
  /** The command could not destroy what it made: its generations stay open for the next process. */
  unsettled(): void;
  /** Finish or roll back generations of killed processes (before each command; needs a full view). */
  recover(): Promise<void>;
  /** What a recovery did, for the operator (stderr, --json warnings). Drained on read. */
  takeWarnings(): string[];
  close(): Promise<void>;
}

/** What a handle is now, as seen by this process (diagnostics and tests). */
export type HandleState = 'live' | 'ambiguous' | 'missing' | 'deleted' | 'unknown';

export interface HandleStoreOptions {
  /** First handle number when the store is created (default 262145, kmu-like). */
  firstHandle?: number;
  /** True while the session sees every object (a user is logged in): keys gone are tombstoned. */
  fullView?: () => boolean;
  /** Wait at most this long for another process's allocation (default 30 s). */
  lockTimeoutMs?: number;
  /** Tombstone foreign deletions only for records older than this (default 10 s). */
  tombstoneAfterMs?: number;
  /** The token reports CKA_UNIQUE_ID (PKCS#11 3.0): objects are identified by it. */
  uniqueId?: boolean;
  /** Compact the journal at open when it has more lines than this and twice the live records (default 4096). */
  compactLines?: number;
}
