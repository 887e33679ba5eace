// Moving key material in and out of the token for the wrap/import/export commands.
//
// Token mechanisms do the work where the token has them (C_WrapKey / C_UnwrapKey). kmu's
// mechanism 4 (PKCS#5-padded RFC 3394) and its "host key" steps (Cfm3WrapHostKey,
// Cfm3UnWrapHostKey) are computed with the wrapping key's AES-ECB on the token when the token
// lacks CloudHSM's vendor mechanism: the wrapping key never leaves the token. A key's plaintext
// reaches kmu11 (or the token) through a transient session AES key whose value kmu11 made:
// C_WrapKey/C_UnwrapKey with CKM_AES_KEY_WRAP_PAD under it, then destroyed.
import { randomBytes } from 'node:crypto';
import { CKA, CKK, CKM, CKO, oaepParameter, type Mechanism, type Session, type Template } from '../../p11/index.js';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import {
  IntegrityError,
  softwareCipher,
  unwrapPad,
  unwrapPkcs5,
  wrapPad,
  wrapPkcs5,
  type BlockCipher,
} from '../../kmu/aesKeyWrap.js';
import { hashType, wrapMechanism, type WrapMechanism } from '../../kmu/wrapMechanisms.js';
import type { CommandContext } from '../types.js';
import { readInput } from './files.js';
import { readKey, type KeyView } from './keys.js';
import { rsaAesUnwrap, rsaAesWrap, transientAesTemplate } from './wrapRsaAes.js';
import { authorize } from './ownership.js';
import type { KeyMeta } from '../../backend/index.js';
import type { KeyAction } from '../../kmu/access.js';

export interface ResolvedKey {
  handle: number;
  object: number;
  view: KeyView;
  meta: KeyMeta;
}

/**
 * The key a handle names, if the logged-in user may do `action` with it (kmu/access.ts):
 * 'use' for a wrapping key, 'export' for a key taken out (the page: "You can export only those
 * keys that you own").
 */
export async function resolveKey(ctx: CommandContext, handle: number, action: KeyAction = 'use'): Promise<ResolvedKey> {
  const { object, meta } = await authorize(ctx, handle, action);
  return { handle, object, view: await readKey(ctx.backend.session, object), meta };
}

/** The wrapping key must be an AES key (kmu: "Only AES keys can be used as wrapping keys"). */
export function requireAes(key: ResolvedKey, flag = '-w'): void {
  if (key.view.cls !== CKO.SECRET_KEY || key.view.keyType !== CKK.AES)
    throw new KmuError(RC.INVALID_INPUT, { detail: `${flag} ${key.handle} is not an AES key; the wrapping key must be an AES key (genSymKey -t 31)` });
}

/** A wrapping key that fits the mechanism: AES for the AES ones, RSA (public to wrap, private to unwrap) for the RSA ones. */
export function requireWrappingKey(m: WrapMechanism, key: ResolvedKey, direction: 'wrap' | 'unwrap'): void {
  if (m.family === 'aes') return requireAes(key);
  const cls = direction === 'wrap' ? CKO.PUBLIC_KEY : CKO.PRIVATE_KEY;
  if (key.view.cls !== cls || key.view.keyType !== CKK.RSA)
    throw new KmuError(RC.INVALID_INPUT, {
      detail: `-w ${key.handle} is not an RSA ${direction === 'wrap' ? 'public' : 'private'} key; -m ${m.id} (${m.name}) ${direction}s with one`,
    });
}

/** The token's AES-ECB under `key`, one block a call. */
export function tokenCipher(session: Session, key: number, direction: 'encrypt' | 'decrypt'): BlockCipher {
  const m = { mechanism: CKM.AES_ECB };
  return direction === 'encrypt' ? (b) => session.encrypt(m, key, b) : (b) => session.decrypt(m, key, b);
}

/** A plaintext AES key from a -wk file. */
export function readAesKeyFile(file: string, flag = '-wk'): Buffer {
  const key = readInput(file, flag);
  if (![16, 24, 32].includes(key.length))
    throw new KmuError(RC.INVALID_INPUT, { detail: `${flag} ${file}: an AES key file holds 16, 24 or 32 bytes, not ${key.length}` });
  return key;
}


/** Runs `use` with a transient session AES-256 key whose value kmu11 knows; destroyed afterwards. */
async function withTransientKey<T>(session: Session, use: (object: number, value: Buffer) => Promise<T>): Promise<T> {
  const value = randomBytes(32);
  const object = await session.createObject([
    ...transientAesTemplate('kmu11 transfer'),
    { type: CKA.EXTRACTABLE, value: false },
    { type: CKA.VALUE, value },
  ]);
  try {
    return await use(object, value);
  } finally {
    await session.destroyObject(object).catch(() => undefined);
  }
}

/** A key's plaintext: raw bytes for a secret key, PKCS#8 DER for a private key. */
export async function plaintextOf(session: Session, object: number): Promise<Buffer> {
  return withTransientKey(session, async (t, value) => unwrapPad(value, await session.wrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, t, object)));
}

/** Creates a key from plaintext (raw secret, or PKCS#8 DER private key) with `template`. */
export function createFromPlaintext(session: Session, plaintext: Buffer, template: Template): Promise<number> {
  return withTransientKey(session, (t, value) => session.unwrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, t, wrapPad(value, plaintext), template));
}

export async function offers(ctx: CommandContext, ckm: number): Promise<boolean> {
  return (await ctx.backend.mechanisms()).includes(ckm);
}

/** The PKCS#11 mechanism for a kmu wrap mechanism on this token, or 'emulated'. */
async function tokenMechanism(ctx: CommandContext, m: WrapMechanism, hashId?: number): Promise<Mechanism | 'emulated'> {
  if (m.gcm) throw new Error(`-m ${m.id} is wrapped by wrapGcm.ts`);
  if (m.vendor !== undefined && (await offers(ctx, m.vendor))) return { mechanism: m.vendor };
  if (m.ckm === undefined || !(await offers(ctx, m.ckm))) {
    if (m.emulated) return 'emulated';
    throw new KmuError(RC.MECHANISM_NOT_SUPPORTED, { detail: `-m ${m.id} (${m.name}): this token does not offer it` });
  }
  // Without -t: SHA-1, PKCS#1's default (RFC 8017) and the only OAEP hash SoftHSM wraps with.
  if (m.ckm === CKM.RSA_PKCS_OAEP) return oaepMechanism(hashId);
  if (m.ckm === CKM.RSA_AES_KEY_WRAP) {
    // An ephemeral AES-256 key wraps the key and RSA-OAEP wraps it (the pages are silent on its size).
    const h = hashType(hashId ?? 2)!;
    return { mechanism: m.ckm, parameter: { type: 'rsaAes', aesKeyBits: 256, hashAlg: h.ckm, mgf: h.mgf } };
  }
  return { mechanism: m.ckm };
}

/** RSA-OAEP with -t's hash (SHA-1 without -t). */
function oaepMechanism(hashId?: number): Mechanism {
  const h = hashType(hashId ?? 2)!;
  return { mechanism: CKM.RSA_PKCS_OAEP, parameter: oaepParameter(h.ckm, h.mgf) };
}

/** wrapKey: `key` wrapped under `wrapping` with kmu mechanism `m`. */
export async function wrapWith(ctx: CommandContext, m: WrapMechanism, wrapping: number, key: number, hashId?: number, iv?: Buffer): Promise<Buffer> {
  const { session } = ctx.backend;
  const mech = await tokenMechanism(ctx, m, hashId);
  if (mech !== 'emulated') return session.wrapKey(iv && m.family === 'aes' ? { ...mech, parameter: iv } : mech, wrapping, key);
  if (m.ckm === CKM.RSA_AES_KEY_WRAP) return rsaAesWrap(session, oaepMechanism(hashId), wrapping, key);
  return wrapPkcs5(tokenCipher(session, wrapping, 'encrypt'), await plaintextOf(session, key), iv);
}

/** unWrapKey: a new key with `template` from `blob`, unwrapped under `wrapping`. */
export async function unwrapWith(
  ctx: CommandContext,
  m: WrapMechanism,
  wrapping: number,
  blob: Buffer,
  template: Template,
  hashId?: number,
  iv?: Buffer,
): Promise<number> {
  const { session } = ctx.backend;
  const mech = await tokenMechanism(ctx, m, hashId);
  if (mech !== 'emulated') return session.unwrapKey(iv && m.family === 'aes' ? { ...mech, parameter: iv } : mech, wrapping, blob, template);
  if (m.ckm === CKM.RSA_AES_KEY_WRAP) return rsaAesUnwrap(session, oaepMechanism(hashId), wrapping, blob, template);
  const plain = await unwrapPkcs5(tokenCipher(session, wrapping, 'decrypt'), blob, iv).catch(integrity);
  return createFromPlaintext(session, plain, template);
}

/** Cfm3UnWrapHostKey: mechanism-4 blob → plaintext, under the token key or a -wk file's key. */
async function hostUnwrap(ctx: CommandContext, wrapping: number, blob: Buffer, fileKey?: Buffer): Promise<Buffer> {
  const cipher = fileKey ? softwareCipher(fileKey, 'decrypt') : tokenCipher(ctx.backend.session, wrapping, 'decrypt');
  return unwrapPkcs5(cipher, blob).catch(integrity);
}

/** Cfm3WrapHostKey: plaintext → mechanism-4 blob, under the token key or a -wk file's key. */
export async function hostWrap(ctx: CommandContext, wrapping: number, plaintext: Buffer, fileKey?: Buffer): Promise<Buffer> {
  const cipher = fileKey ? softwareCipher(fileKey, 'encrypt') : tokenCipher(ctx.backend.session, wrapping, 'encrypt');
  return wrapPkcs5(cipher, plaintext);
}

function integrity(e: unknown): never {
  if (e instanceof IntegrityError)
    throw new KmuError(RC.INVALID_INPUT, { detail: `unwrap failed: ${e.message}` });
  throw e;
}

/**
 * Wrap `key` under the token key `-w` with mechanism 4, then unwrap the result on the host side
 * (Cfm3UnWrapHostKey) with the same token key or the -wk file's key: the plaintext.
 */
export async function exportPlaintext(ctx: CommandContext, key: ResolvedKey, wrappingHandle: number, wkFile?: string): Promise<Buffer> {
  const fileKey = wkFile !== undefined ? readAesKeyFile(wkFile) : undefined;
  if (key.view.get(CKA.EXTRACTABLE) === false)
    throw new KmuError(RC.POLICY_VIOLATION, { detail: `key ${key.handle} is not extractable (OBJ_ATTR_EXTRACTABLE 0)` });
  const wrapping = await resolveKey(ctx, wrappingHandle);
  requireAes(wrapping);
  const blob = await wrapWith(ctx, wrapMechanism(4)!, wrapping.object, key.object);
  return hostUnwrap(ctx, wrapping.object, blob, fileKey);
}
