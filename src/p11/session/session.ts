// A PKCS#11 session. Each method is one job in the addon, run on the session's lane; templates
// are encoded here by the attribute table (the addon takes bytes) and values read are decoded
// by it. One operation at a time per session, as PKCS#11 requires; use several sessions
// (SessionPool) for parallel work.
import { addonTemplate, decodeAttribute, type AttributeRead, type Template } from '../attributes.js';
import { CKR, CKU } from '../constants.js';
import { Pkcs11Error } from '../error.js';
import type { Mechanism } from '../mechanism.js';
import { SESSIONS } from '../module.js';
import { asPromise, NATIVE, type NativeAttributeRead, type NativeModule } from '../native.js';
import type { Slot } from '../slot.js';

/** Codes after which a session is gone anyway: closing it again is not a failure. */
const ALREADY_CLOSED: ReadonlySet<number> = new Set([
  CKR.SESSION_HANDLE_INVALID,
  CKR.SESSION_CLOSED,
  CKR.CRYPTOKI_NOT_INITIALIZED,
  CKR.DEVICE_REMOVED,
  CKR.TOKEN_NOT_PRESENT,
]);

/** The module saying "this signature does not verify", as opposed to a failure. */
const SIGNATURE_REJECTED: ReadonlySet<number> = new Set([CKR.SIGNATURE_INVALID, CKR.SIGNATURE_LEN_RANGE]);

/** The addon's reads with each value decoded by the attribute table. */
function decodeReads(reads: NativeAttributeRead[]): AttributeRead[] {
  for (const read of reads) {
    if ('value' in read) (read as AttributeRead as { value: unknown }).value = decodeAttribute(read.type, read.value);
  }
  return reads as AttributeRead[];
}

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
    return asPromise(() => this.#native.C_Login(this.handle, userType, pin));
  }

  logout(): Promise<void> {
    return asPromise(() => this.#native.C_Logout(this.handle));
  }

  initPin(pin: string): Promise<void> {
    return asPromise(() => this.#native.C_InitPIN(this.handle, pin));
  }

  /** Idempotent; a session the module already dropped (finalized, token gone) counts as closed. */
  close(): Promise<void> {
    this.#closing ??= this.#native
      .C_CloseSession(this.handle)
      .catch((e: unknown) => {
        if (!(e instanceof Pkcs11Error && ALREADY_CLOSED.has(e.code))) throw e;
      })
      .finally(() => {
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
    return asPromise(() =>
      this.#native.C_GenerateKeyPair(
        this.handle,
        mechanism,
        addonTemplate(publicTemplate, 'publicTemplate'),
        addonTemplate(privateTemplate, 'privateTemplate'),
      ),
    );
  }

  /**
   * generateKeyPair, then the listed attributes of each half, in one job: one trip to the
   * addon's thread instead of three, and reads without size queries where the values fit (on a
   * networked HSM each call is a round trip). If a read fails, the pair is destroyed again and
   * the read's failure rejects.
   */
  generateKeyPairAndRead(
    mechanism: Mechanism,
    publicTemplate: Template,
    privateTemplate: Template,
    read: { publicKey: readonly number[]; privateKey: readonly number[] },
  ): Promise<{ publicKey: number; privateKey: number; publicAttributes: AttributeRead[]; privateAttributes: AttributeRead[] }> {
    return asPromise(async () => {
      const r = await this.#native.C_GenerateKeyPair(
        this.handle,
        mechanism,
        addonTemplate(publicTemplate, 'publicTemplate'),
        addonTemplate(privateTemplate, 'privateTemplate'),
        read.publicKey,
        read.privateKey,
      );
      return {
        publicKey: r.publicKey,
        privateKey: r.privateKey,
        publicAttributes: decodeReads(r.publicAttributes),
        privateAttributes: decodeReads(r.privateAttributes),
      };
    });
  }

  generateKey(mechanism: Mechanism, template: Template): Promise<number> {
    return asPromise(() => this.#native.C_GenerateKey(this.handle, mechanism, addonTemplate(template)));
  }

  wrapKey(mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer> {
    return asPromise(() => this.#native.C_WrapKey(this.handle, mechanism, wrappingKey, key));
  }

  unwrapKey(mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<number> {
    return asPromise(() => this.#native.C_UnwrapKey(this.handle, mechanism, unwrappingKey, wrapped, addonTemplate(template)));
  }

  // --------------------------------------------------------------- objects
  /** Every object matching the template (all objects when omitted). */
  find(template?: Template): Promise<number[]> {
    return asPromise(() =>
      this.#native.findObjects(this.handle, template === undefined ? undefined : addonTemplate(template)),
    );
  }

  /** Values decoded by the attribute table; unreadable attributes say why. */
  getAttributes(object: number, types: number[]): Promise<AttributeRead[]> {
    return asPromise(async () => decodeReads(await this.#native.C_GetAttributeValue(this.handle, object, types)));
  }

  setAttributes(object: number, template: Template): Promise<void> {
    return asPromise(() => this.#native.C_SetAttributeValue(this.handle, object, addonTemplate(template)));
  }

  createObject(template: Template): Promise<number> {
    return asPromise(() => this.#native.C_CreateObject(this.handle, addonTemplate(template)));
  }

  copyObject(object: number, template: Template): Promise<number> {
    return asPromise(() => this.#native.C_CopyObject(this.handle, object, addonTemplate(template)));
  }

  /** One handle, or an array destroyed in one job (all attempted, first failure reported). */
  destroyObject(object: number | number[]): Promise<void> {
    return asPromise(() => this.#native.C_DestroyObject(this.handle, object));
  }

  // --------------------------------------------------------------- signing
  sign(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => this.#native.sign(this.handle, mechanism, key, data));
  }

  /** false on CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE; other failures reject. */
  verify(mechanism: Mechanism, key: number, data: Buffer, signature: Buffer): Promise<boolean> {
    return asPromise(() =>
      this.#native.verify(this.handle, mechanism, key, data, signature).then(
        () => true,
        (e: unknown) => {
          if (e instanceof Pkcs11Error && SIGNATURE_REJECTED.has(e.code)) return false;
          throw e;
        },
      ),
    );
  }

  // ------------------------------------------------------------ encryption
  encrypt(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => this.#native.encrypt(this.handle, mechanism, key, data));
  }

  decrypt(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => this.#native.decrypt(this.handle, mechanism, key, data));
  }

  // ---------------------------------------------------------------- random
  generateRandom(length: number): Promise<Buffer> {
    return asPromise(() => this.#native.C_GenerateRandom(this.handle, length));
  }
}
