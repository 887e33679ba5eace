// The loaded PKCS#11 library (rust-cryptoki's `context`): load + initialize,
// library info, slot enumeration, close.
import { realpath } from 'node:fs/promises';

import { CKR } from './constants.js';
import { Pkcs11Error } from './error.js';
import type { ModuleInfo } from './info.js';
import { addon, NATIVE, type NativeModule } from './native.js';
import { objectLockFor, type ObjectLock } from './objectLock.js';
import type { Session } from './session/session.js';
import { Slot } from './slot.js';

/** Sessions opened through a Module, closed by Module.close (not public API). */
export const SESSIONS: unique symbol = Symbol('kmu11.p11.sessions');
/** The library's ObjectLock, shared by every Module on it (not public API). */
export const OBJECT_LOCK: unique symbol = Symbol('kmu11.p11.objectLock');

export class Module {
  /**
   * dlopen + C_GetFunctionList + C_Initialize with CKF_OS_LOCKING_OK, off the
   * event loop. Loading the same library (same realpath) again shares the
   * loaded library and its initialization; C_Finalize runs when the last
   * Module on it closes.
   */
  static async load(path: string): Promise<Module> {
    if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
    const native = new addon.Module(path);
    await native.C_Initialize();
    const real = await realpath(path).catch(() => path);
    const module = new Module(path, native, objectLockFor(real));
    // SoftHSM is a library on local files, whatever its version: never a network round trip.
    const info = await native.C_GetInfo().catch(() => undefined);
    if (info && /^SoftHSM/i.test(info.manufacturerID)) module.markInProcess();
    return module;
  }

  readonly path: string;
  /** @internal */
  readonly [NATIVE]: NativeModule;
  /** @internal */
  readonly [SESSIONS] = new Set<Session>();
  /** @internal */
  readonly [OBJECT_LOCK]: ObjectLock;
  #closing: Promise<void> | undefined;

  private constructor(path: string, native: NativeModule, lock: ObjectLock) {
    this.path = path;
    this[NATIVE] = native;
    this[OBJECT_LOCK] = lock;
  }

  /**
   * From now on, in this process, calls that write token objects (generation, creation, copy or
   * unwrap of token objects, C_SetAttributeValue, C_DestroyObject, logins) run alone among this
   * library's calls, through every Module on it; other calls still run together. For modules that
   * corrupt their object store otherwise (SoftHSM 2.6: objectLock.ts).
   */
  serializeObjectWrites(): void {
    this[OBJECT_LOCK].enabled = true;
  }

  /**
   * The module is an in-process software token on local storage (SoftHSM), never a networked
   * HSM's client: a Session then destroys the session objects it made on the event loop itself
   * when the session has nothing else in flight (a few µs of the module's work, against two
   * thread hand-offs; pkcs11js makes every call so). Every other call still runs on a lane.
   */
  markInProcess(): void {
    this.inProcess = true;
  }

  /** @internal Set by markInProcess. */
  inProcess = false;

  getInfo(): Promise<ModuleInfo> {
    return this[NATIVE].C_GetInfo();
  }

  /** Slots, by default only those with a token present. */
  async getSlots(tokenPresent = true): Promise<Slot[]> {
    if (typeof tokenPresent !== 'boolean') throw new TypeError('tokenPresent must be a boolean');
    const ids = await this[NATIVE].C_GetSlotList(tokenPresent);
    return ids.map((id) => new Slot(this, id));
  }

  /** The first slot whose token's label (blank padding trimmed) equals `label`. */
  async findSlotByTokenLabel(label: string): Promise<Slot | undefined> {
    if (typeof label !== 'string') throw new TypeError('label must be a string');
    for (const slot of await this.getSlots(true)) {
      try {
        if ((await slot.getTokenInfo()).label === label) return slot;
      } catch (e) {
        // A token removed or unreadable between the two calls is not the one.
        if (e instanceof Pkcs11Error && (e.code === CKR.TOKEN_NOT_PRESENT || e.code === CKR.TOKEN_NOT_RECOGNIZED)) {
          continue;
        }
        throw e;
      }
    }
    return undefined;
  }

  /** Closes this Module's sessions, then C_Finalize if it is the last user of the library. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this[SESSIONS]].map((s) => s.close()));
    await this[NATIVE].C_Finalize();
  }
}
