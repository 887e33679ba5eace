// Loads the addon (a local build or the package's prebuild: load.ts) and makes its PKCS#11 failures
// Pkcs11Errors. Only src/p11 talks to this; everything above uses Module,
// Slot and Session.
import { loadAddon } from './load.js';

import { Pkcs11Error } from './error.js';
import type { MechanismInfo, ModuleInfo, SlotInfo, TokenInfo } from './info.js';
import type { Mechanism } from './mechanism.js';

/** A template with every value encoded (attributes.ts encodeTemplate): the addon takes bytes only. */
export type NativeTemplate = ReadonlyArray<{ type: number; value: Buffer }>;

export type NativeAttributeRead =
  | { type: number; value: Buffer }
  | { type: number; unavailable: 'sensitive' | 'invalid' | 'unavailable' };

/** One handle on a loaded PKCS#11 library; every method returns a Promise, the call made on one of the addon's threads. */
export interface NativeModule {
  readonly path: string;
  readonly isOpen: boolean;
  C_Initialize(): Promise<void>;
  C_Finalize(): Promise<void>;
  C_GetInfo(): Promise<ModuleInfo>;
  C_GetSlotList(tokenPresent: boolean): Promise<number[]>;
  C_GetSlotInfo(slot: number): Promise<SlotInfo>;
  C_GetTokenInfo(slot: number): Promise<TokenInfo>;
  C_GetMechanismList(slot: number): Promise<number[]>;
  C_GetMechanismInfo(slot: number, mechanism: number): Promise<MechanismInfo>;
  C_InitToken(slot: number, soPin: string | Buffer, label: string): Promise<void>;
  C_InitPIN(session: number, pin: string | Buffer): Promise<void>;
  C_OpenSession(slot: number, flags: number): Promise<number>;
  C_CloseSession(session: number): Promise<void>;
  C_Login(session: number, userType: number, pin: string | Buffer): Promise<void>;
  C_Logout(session: number): Promise<void>;
  C_GenerateKeyPair(
    session: number,
    mechanism: Mechanism,
    publicTemplate: NativeTemplate,
    privateTemplate: NativeTemplate,
  ): Promise<{ publicKey: number; privateKey: number }>;
  /**
   * The same job then reads the listed attributes of each half. A failed read leaves the pair
   * made: the job resolves with the handles and the read's CK_RV (readError) instead.
   */
  C_GenerateKeyPair(
    session: number,
    mechanism: Mechanism,
    publicTemplate: NativeTemplate,
    privateTemplate: NativeTemplate,
    publicRead: readonly number[],
    privateRead: readonly number[],
  ): Promise<
    | { publicKey: number; privateKey: number; publicAttributes: NativeAttributeRead[]; privateAttributes: NativeAttributeRead[] }
    | { publicKey: number; privateKey: number; readError: number }
  >;
  C_GenerateKey(session: number, mechanism: Mechanism, template: NativeTemplate): Promise<number>;
  findObjects(session: number, template?: NativeTemplate): Promise<number[]>;
  C_GetAttributeValue(session: number, object: number, types: readonly number[]): Promise<NativeAttributeRead[]>;
  C_SetAttributeValue(session: number, object: number, template: NativeTemplate): Promise<void>;
  C_CopyObject(session: number, object: number, template: NativeTemplate): Promise<number>;
  /** `here`: run on the loop thread when the session is idle (session objects of an in-process token only). */
  C_DestroyObject(session: number, object: number | readonly number[], here?: boolean): Promise<void>;
  sign(session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer>;
  verify(session: number, mechanism: Mechanism, key: number, data: Buffer, signature: Buffer): Promise<true>;
  C_WrapKey(session: number, mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer>;
  C_GenerateRandom(session: number, length: number): Promise<Buffer>;
  C_UnwrapKey(session: number, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: NativeTemplate): Promise<number>;
  C_CreateObject(session: number, template: NativeTemplate): Promise<number>;
  encrypt(session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer>;
  decrypt(session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer>;
}

export interface NativeAddon {
  Module: new (path: string) => NativeModule;
  /** The addon reports a failed call's CK_RV and function; the factory names it and writes the message. */
  setErrorFactory(factory: ((code: number, fn: string) => Error) | null): void;
}

const loaded = loadAddon<NativeAddon>(import.meta.url);

export const addon: NativeAddon = loaded.addon;

// The addon builds every CK_RV failure through this, so callers get
// Pkcs11Error without a per-call wrapper. TypeErrors are thrown as they are.
addon.setErrorFactory((code, fn) => new Pkcs11Error(code, fn));

/** Where Module keeps its native handle (not part of the public API). */
export const NATIVE: unique symbol = Symbol('kmu11.p11.native');

/**
 * What `call` returns, or a rejected promise if it throws instead (a TypeError for a bad
 * argument, from the addon or from encoding a template): the p11 API fails one way.
 */
export function asPromise<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (e) {
    return Promise.reject(e);
  }
}
