// A PKCS#11 session. Each method is one pool job in the addon; the work is in
// the per-concern files next to this one (management, objects, keys,
// signing, random). One operation at a time per session, as PKCS#11 requires;
// use several sessions (SessionPool) for parallel work.
import type { AttributeRead, Template } from '../attributes.js';
import { CKU } from '../constants.js';
import type { Mechanism } from '../mechanism.js';
import { SESSIONS } from '../module.js';
import { NATIVE, type NativeModule } from '../native.js';
import type { Slot } from '../slot.js';
import * as keys from './keys.js';
import * as management from './management.js';
import * as objects from './objects.js';
import * as random from './random.js';
import * as signing from './signing.js';

export class Session {
  readonly slot: Slot;
  readonly handle: number;
  readonly #native: NativeModule;
  #closing: Promise<void> | undefined;

  constructor(slot: Slot, handle: number) {
    this.slot = slot;
    this.handle = handle;
    this.#native = slot.module[NATIVE];
  }

  // ------------------------------------------------------------ management
  login(pin: string, userType: number = CKU.USER): Promise<void> {
    try {
      return management.login(this.#native, this.handle, pin, userType);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  logout(): Promise<void> {
    try {
      return management.logout(this.#native, this.handle);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  initPin(pin: string): Promise<void> {
    try {
      return management.initPin(this.#native, this.handle, pin);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.#closing ??= management.closeSession(this.#native, this.handle).finally(() => {
      this.slot.module[SESSIONS].delete(this);
    });
    return this.#closing;
  }

  // ------------------------------------------------------------------ keys
  generateKeyPair(
    mechanism: Mechanism,
    publicTemplate: Template,
    privateTemplate: Template,
  ): Promise<{ publicKey: number; privateKey: number }> {
    try {
      return keys.generateKeyPair(this.#native, this.handle, mechanism, publicTemplate, privateTemplate);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  generateKey(mechanism: Mechanism, template: Template): Promise<number> {
    try {
      return keys.generateKey(this.#native, this.handle, mechanism, template);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  wrapKey(mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer> {
    try {
      return keys.wrapKey(this.#native, this.handle, mechanism, wrappingKey, key);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // --------------------------------------------------------------- objects
  /** Every object matching the template (all objects when omitted). */
  find(template?: Template): Promise<number[]> {
    try {
      return objects.find(this.#native, this.handle, template);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Values decoded by the attribute table; unreadable attributes say why. */
  getAttributes(object: number, types: number[]): Promise<AttributeRead[]> {
    try {
      return objects.getAttributes(this.#native, this.handle, object, types);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Values as the module's raw bytes. */
  getAttributeRaw(object: number, types: number[]): Promise<AttributeRead[]> {
    try {
      return objects.getAttributeRaw(this.#native, this.handle, object, types);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  setAttributes(object: number, template: Template): Promise<void> {
    try {
      return objects.setAttributes(this.#native, this.handle, object, template);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  copyObject(object: number, template: Template): Promise<number> {
    try {
      return objects.copyObject(this.#native, this.handle, object, template);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** One handle, or an array destroyed in one pool job (all attempted, first failure reported). */
  destroyObject(object: number | number[]): Promise<void> {
    try {
      return objects.destroyObject(this.#native, this.handle, object);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // --------------------------------------------------------------- signing
  sign(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    try {
      return signing.sign(this.#native, this.handle, mechanism, key, data);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** false on CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE; other failures reject. */
  verify(mechanism: Mechanism, key: number, data: Buffer, signature: Buffer): Promise<boolean> {
    try {
      return signing.verify(this.#native, this.handle, mechanism, key, data, signature);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ---------------------------------------------------------------- random
  generateRandom(length: number): Promise<Buffer> {
    try {
      return random.generateRandom(this.#native, this.handle, length);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
