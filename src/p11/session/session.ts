// A PKCS#11 session. Each method is one pool job in the addon; the work is in
// the per-concern files next to this one (management, objects, keys,
// signing, random). One operation at a time per session, as PKCS#11 requires;
// use several sessions (SessionPool) for parallel work.
import type { AttributeRead, Template } from '../attributes.js';
import { CKU } from '../constants.js';
import type { Mechanism } from '../mechanism.js';
import { SESSIONS } from '../module.js';
import { asPromise, NATIVE, type NativeModule } from '../native.js';
import type { Slot } from '../slot.js';
import * as cipher from './cipher.js';
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
    return asPromise(() => management.login(this.#native, this.handle, pin, userType));
  }

  logout(): Promise<void> {
    return asPromise(() => management.logout(this.#native, this.handle));
  }

  initPin(pin: string): Promise<void> {
    return asPromise(() => management.initPin(this.#native, this.handle, pin));
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
    return asPromise(() => keys.generateKeyPair(this.#native, this.handle, mechanism, publicTemplate, privateTemplate));
  }

  generateKey(mechanism: Mechanism, template: Template): Promise<number> {
    return asPromise(() => keys.generateKey(this.#native, this.handle, mechanism, template));
  }

  wrapKey(mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer> {
    return asPromise(() => keys.wrapKey(this.#native, this.handle, mechanism, wrappingKey, key));
  }

  unwrapKey(mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<number> {
    return asPromise(() => keys.unwrapKey(this.#native, this.handle, mechanism, unwrappingKey, wrapped, template));
  }

  // --------------------------------------------------------------- objects
  /** Every object matching the template (all objects when omitted). */
  find(template?: Template): Promise<number[]> {
    return asPromise(() => objects.find(this.#native, this.handle, template));
  }

  /** Values decoded by the attribute table; unreadable attributes say why. */
  getAttributes(object: number, types: number[]): Promise<AttributeRead[]> {
    return asPromise(() => objects.getAttributes(this.#native, this.handle, object, types));
  }

  /** Values as the module's raw bytes. */
  getAttributeRaw(object: number, types: number[]): Promise<AttributeRead[]> {
    return asPromise(() => objects.getAttributeRaw(this.#native, this.handle, object, types));
  }

  setAttributes(object: number, template: Template): Promise<void> {
    return asPromise(() => objects.setAttributes(this.#native, this.handle, object, template));
  }

  createObject(template: Template): Promise<number> {
    return asPromise(() => objects.createObject(this.#native, this.handle, template));
  }

  copyObject(object: number, template: Template): Promise<number> {
    return asPromise(() => objects.copyObject(this.#native, this.handle, object, template));
  }

  /** One handle, or an array destroyed in one pool job (all attempted, first failure reported). */
  destroyObject(object: number | number[]): Promise<void> {
    return asPromise(() => objects.destroyObject(this.#native, this.handle, object));
  }

  // --------------------------------------------------------------- signing
  sign(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => signing.sign(this.#native, this.handle, mechanism, key, data));
  }

  /** false on CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE; other failures reject. */
  verify(mechanism: Mechanism, key: number, data: Buffer, signature: Buffer): Promise<boolean> {
    return asPromise(() => signing.verify(this.#native, this.handle, mechanism, key, data, signature));
  }

  // ------------------------------------------------------------ encryption
  encrypt(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => cipher.encrypt(this.#native, this.handle, mechanism, key, data));
  }

  decrypt(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => cipher.decrypt(this.#native, this.handle, mechanism, key, data));
  }

  // ---------------------------------------------------------------- random
  generateRandom(length: number): Promise<Buffer> {
    return asPromise(() => random.generateRandom(this.#native, this.handle, length));
  }
}
