// The handle store's interface: what commands and the session use.
import type { AttributeRead, Session } from '../../p11/index.js';

export interface KeyMeta {
  owner: number;
  shared: number[];
  mValue: number;
}

export interface CreatedObject {
  object: number;
  meta: KeyMeta;
  /** The other half of a pair generated together, in the same session. */
  partner?: number;
  /** Its attributes as registerReads() lists them, read in the job that made it: not read again. */
  read?: AttributeRead[];
}

export interface HandleStore {
  /** Handles for objects just made (read on `session`); durable before it returns; same order. */
  register(created: CreatedObject[], session?: Session): Promise<number[]>;
  registerReads(cls: number, kt: number): number[];
  /** The PKCS#11 object a handle names. Throws KmuError 0xa8 if unknown, deleted, gone or ambiguous. */
  resolve(handle: number): Promise<number>;
  /** kmu handles for objects C_FindObjects found (unseen keys get new handles), same order. */
  list(objects: number[]): Promise<number[]>;
  /** Owner, shared users, m_value. Throws KmuError 0xa8 for an unknown or deleted handle. */
  meta(handle: number): Promise<KeyMeta>;
  /** A private key's public value (EC point, DSA y): as recorded, else as resolve() learned it. */
  publicValue(handle: number): Promise<Buffer | undefined>;
  /** The key named `handle` is now `newObject` (a copy, e.g. session -> token). */
  replace(handle: number, newObject: number): Promise<void>;
  setMeta(handle: number, meta: KeyMeta): Promise<void>;
  /** The key was destroyed (after a successful C_DestroyObject). */
  remove(handle: number): Promise<void>;
  /** The key's CKA_LABEL or CKA_ID was changed through this session. */
  updated(handle: number): Promise<void>;
  /** A generation of token keys is about to start: durable before it does (generations.ts). */
  intend(what: { label: string; id?: Buffer; meta: KeyMeta }): Promise<void>;
  /** The command's outcome is out (printed, or rolled back); `delivered`: its warnings were shown too. */
  settle(delivered: boolean): Promise<void>;
  /** Runs one command: the generations it announces are settled by its own settle(). */
  scope<T>(fn: () => Promise<T>): Promise<T>;
  /** The command could not destroy what it made: its generations stay open for the next process. */
  unsettled(): void;
  /** Finish or roll back generations of killed processes (before each command; needs a full view). */
  recover(): Promise<void>;
  /** What a recovery did, for the operator. Drained on read. */
  takeWarnings(): string[];
  close(): Promise<void>;
}

export interface HandleStoreOptions {
  /** First handle number when the store is created (default 262145, kmu-like). */
  firstHandle?: number;
  /** True while the session sees every object (a user is logged in): keys gone are tombstoned. */
  fullView?: () => boolean;
  /** Wait at most this long for another process's turn at the journal (default 30 s). */
  lockTimeoutMs?: number;
  /** Tombstone foreign deletions only for records older than this (default 10 s). */
  tombstoneAfterMs?: number;
  /** The token reports CKA_UNIQUE_ID (PKCS#11 3.0). */
  uniqueId?: boolean;
  /** Compact the journal at open past this many lines and twice the live records (default 4096). */
  compactLines?: number;
}
