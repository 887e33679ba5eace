// The loaded PKCS#11 library (rust-cryptoki's `context`): load + initialize,
// library info, slot enumeration, close.
import { CKR } from './constants.js';
import { Pkcs11Error } from './error.js';
import type { ModuleInfo } from './info.js';
import { addon, NATIVE, type NativeModule } from './native.js';
import type { Session } from './session/session.js';
import { Slot } from './slot.js';

/** Sessions opened through a Module, closed by Module.close (not public API). */
export const SESSIONS: unique symbol = Symbol('kmu11.p11.sessions');

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
    return new Module(path, native);
  }

  readonly path: string;
  /** @internal */
  readonly [NATIVE]: NativeModule;
  /** @internal */
  readonly [SESSIONS] = new Set<Session>();
  #closing: Promise<void> | undefined;

  private constructor(path: string, native: NativeModule) {
    this.path = path;
    this[NATIVE] = native;
  }

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
