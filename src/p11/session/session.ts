// A PKCS#11 session. Each method is one job in the addon, run on the session's lane; templates
// are encoded here by the attribute table (the addon takes bytes) and values read are decoded
// by it. One operation at a time per session, as PKCS#11 requires; use several sessions
// for parallel work.
import { addonTemplate, decodeAttribute, type AttributeRead, type Template } from '../attributes.js';
import { CKR, CKU } from '../constants.js';
import { Pkcs11Error } from '../error.js';
import type { Mechanism } from '../mechanism.js';
import { OBJECT_LOCK, SESSIONS } from '../module.js';
import { asPromise, NATIVE, type NativeAttributeRead, type NativeModule, type NativeTemplate } from '../native.js';
import { makesTokenObject, type ObjectLock } from '../objectLock.js';
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

function decodeReads(reads: NativeAttributeRead[]): AttributeRead[] {
  for (const read of reads) {
    if ('value' in read) (read as AttributeRead as { value: unknown }).value = decodeAttribute(read.type, read.value);
  }
  return reads as AttributeRead[];
}

/** generateKeyPairAndRead's result: the pair, and either both halves' reads or why they failed. */
export type GeneratedAndRead =
  | { publicKey: number; privateKey: number; publicAttributes: AttributeRead[]; privateAttributes: AttributeRead[]; readError?: undefined }
  | { publicKey: number; privateKey: number; readError: Pkcs11Error; publicAttributes?: undefined; privateAttributes?: undefined };

export class Session {
  readonly slot: Slot;
  readonly handle: number;
  readonly #native: NativeModule;
  readonly #lock: ObjectLock;
  readonly #inProcess: boolean;
  /** Session objects made here, when #inProcess: destroyed on the loop thread (destroyObject). */
  readonly #sessionObjects = new Set<number>();
  #closing: Promise<void> | undefined;

  constructor(slot: Slot, handle: number) {
    this.slot = slot;
    this.handle = handle;
    this.#native = slot.module[NATIVE];
    this.#lock = slot.module[OBJECT_LOCK];
    this.#inProcess = slot.module.inProcess;
  }

  /** A call that writes token objects (or the token: logins), alone; see Module.serializeObjectWrites. */
  #write<T>(call: () => Promise<T>): Promise<T> {
    return this.#lock.run(true, call);
  }

  /** A call that reads objects, beside other reads. */
  #read<T>(call: () => Promise<T>): Promise<T> {
    return this.#lock.run(false, call);
  }

  /**
   * A generation: a write when it makes a token object; else it touches no object file and
   * takes no turn (a DSA domain-parameter generation can take seconds: a token write must not
   * wait for it).
   */
  #generate<T>(templates: Array<{ type: number; value: Buffer }[]>, call: () => Promise<T>): Promise<T> {
    return makesTokenObject(...templates) ? this.#write(call) : call();
  }

  // ------------------------------------------------------------ management
  login(pin: string, userType: number = CKU.USER): Promise<void> {
    return asPromise(() => this.#write(() => this.#native.C_Login(this.handle, userType, pin)));
  }

  logout(): Promise<void> {
    return asPromise(() => this.#write(() => this.#native.C_Logout(this.handle)));
  }

  initPin(pin: string): Promise<void> {
    return asPromise(() => this.#write(() => this.#native.C_InitPIN(this.handle, pin)));
  }

  /** Idempotent; a session the module already dropped (finalized, token gone) counts as closed. */
  close(): Promise<void> {
    this.#closing ??= this.#native
      .C_CloseSession(this.handle)
      .catch((e: unknown) => {
        if (!(e instanceof Pkcs11Error && ALREADY_CLOSED.has(e.code))) throw e;
      })
      .finally(() => {
        this.#sessionObjects.clear();
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
    return asPromise(() => {
      const pub = addonTemplate(publicTemplate, 'publicTemplate');
      const priv = addonTemplate(privateTemplate, 'privateTemplate');
      return this.#generate([pub, priv], () => this.#native.C_GenerateKeyPair(this.handle, mechanism, pub, priv)).then((r) =>
        this.#madeSessionObjects(r, pub, priv),
      );
    });
  }

  /**
   * generateKeyPair, then the listed attributes of each half, in one job: one trip to the
   * addon's thread instead of three, and reads without size queries where the values fit (on a
   * networked HSM each call is a round trip). A failed generation rejects. A failed read does
   * not: the pair exists, so the result carries both handles and `readError` (the read's
   * Pkcs11Error, fn C_GetAttributeValue) instead of the attributes, and the caller rolls the
   * pair back (or reads again) itself, seeing whether that worked.
   */
  generateKeyPairAndRead(
    mechanism: Mechanism,
    publicTemplate: Template,
    privateTemplate: Template,
    read: { publicKey: readonly number[]; privateKey: readonly number[] },
  ): Promise<GeneratedAndRead> {
    return asPromise(async () => {
      const pub = addonTemplate(publicTemplate, 'publicTemplate');
      const priv = addonTemplate(privateTemplate, 'privateTemplate');
      const r = await this.#generate([pub, priv], () =>
        this.#native.C_GenerateKeyPair(this.handle, mechanism, pub, priv, read.publicKey, read.privateKey),
      );
      this.#madeSessionObjects(r, pub, priv);
      if ('readError' in r) {
        return { publicKey: r.publicKey, privateKey: r.privateKey, readError: new Pkcs11Error(r.readError, 'C_GetAttributeValue') };
      }
      return {
        publicKey: r.publicKey,
        privateKey: r.privateKey,
        publicAttributes: decodeReads(r.publicAttributes),
        privateAttributes: decodeReads(r.privateAttributes),
      };
    });
  }

  generateKey(mechanism: Mechanism, template: Template): Promise<number> {
    return asPromise(() => {
      const t = addonTemplate(template);
      return this.#generate([t], () => this.#native.C_GenerateKey(this.handle, mechanism, t)).then((key) => this.#made(key, t));
    });
  }

  wrapKey(mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer> {
    return asPromise(() => this.#read(() => this.#native.C_WrapKey(this.handle, mechanism, wrappingKey, key)));
  }

  unwrapKey(mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<number> {
    return asPromise(() => {
      const t = addonTemplate(template);
      return this.#lock.run(makesTokenObject(t), () => this.#native.C_UnwrapKey(this.handle, mechanism, unwrappingKey, wrapped, t));
    });
  }

  // --------------------------------------------------------------- objects
  /** Every object matching the template (all objects when omitted). */
  find(template?: Template): Promise<number[]> {
    return asPromise(() => {
      const t = template === undefined ? undefined : addonTemplate(template);
      return this.#read(() => this.#native.findObjects(this.handle, t));
    });
  }

  /** Values decoded by the attribute table; unreadable attributes say why. */
  getAttributes(object: number, types: number[]): Promise<AttributeRead[]> {
    return asPromise(async () => {
      return decodeReads(await this.#read(() => this.#native.C_GetAttributeValue(this.handle, object, types)));
    });
  }

  setAttributes(object: number, template: Template): Promise<void> {
    return asPromise(() => {
      const t = addonTemplate(template);
      return this.#write(() => this.#native.C_SetAttributeValue(this.handle, object, t));
    });
  }

  createObject(template: Template): Promise<number> {
    return asPromise(() => {
      const t = addonTemplate(template);
      return this.#lock.run(makesTokenObject(t), () => this.#native.C_CreateObject(this.handle, t)).then((o) => this.#made(o, t));
    });
  }

  copyObject(object: number, template: Template): Promise<number> {
    // A copy is a token object when its source is one, which the template need not say.
    return asPromise(() => {
      const t = addonTemplate(template);
      return this.#write(() => this.#native.C_CopyObject(this.handle, object, t));
    });
  }

  /** One handle, or an array destroyed in one job (all attempted, first failure reported). */
  destroyObject(object: number | number[]): Promise<void> {
    // Always a write: SoftHSM's C_DestroyObject reads the token's object list unlocked.
    return asPromise(() => {
      const here = this.#inProcess && this.#sessionObjects.size > 0 && this.#forgetSessionObjects(object);
      return this.#write(() => this.#native.C_DestroyObject(this.handle, object, here));
    });
  }

  /** An object this Session made from `template`: kept when a session object of an in-process module (Module.markInProcess). */
  #made(object: number, template: NativeTemplate): number {
    if (this.#inProcess && !makesTokenObject(template)) this.#sessionObjects.add(object);
    return object;
  }

  #madeSessionObjects<T extends { publicKey: number; privateKey: number }>(r: T, pub: NativeTemplate, priv: NativeTemplate): T {
    this.#made(r.publicKey, pub);
    this.#made(r.privateKey, priv);
    return r;
  }

  /** Whether every object is one of those; they are forgotten either way (being destroyed). */
  #forgetSessionObjects(object: number | number[]): boolean {
    const all = typeof object === 'number' ? [object] : object;
    let known = all.length > 0;
    for (const o of all) known = this.#sessionObjects.delete(o) && known;
    return known;
  }

  // --------------------------------------------------------------- signing
  sign(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => this.#read(() => this.#native.sign(this.handle, mechanism, key, data)));
  }

  /** false on CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE; other failures reject. */
  verify(mechanism: Mechanism, key: number, data: Buffer, signature: Buffer): Promise<boolean> {
    return asPromise(() =>
      this.#read(() => this.#native.verify(this.handle, mechanism, key, data, signature)).then(
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
    return asPromise(() => this.#read(() => this.#native.encrypt(this.handle, mechanism, key, data)));
  }

  decrypt(mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
    return asPromise(() => this.#read(() => this.#native.decrypt(this.handle, mechanism, key, data)));
  }

  // ---------------------------------------------------------------- random
  generateRandom(length: number): Promise<Buffer> {
    return asPromise(() => this.#native.C_GenerateRandom(this.handle, length));
  }
}
