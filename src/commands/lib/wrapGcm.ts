// AES-GCM wrapping: kmu's -m 10 (AES_GCM) and -m 11 (CLOUDHSM_AES_GCM), with -aad and -tag_size.
//
// The token's C_WrapKey / C_UnwrapKey do it where they accept GCM (CloudHSM; for 11 its vendor
// mechanism, which prepends the IV itself). Where the token refuses GCM in C_WrapKey
// (CKR_MECHANISM_INVALID: SoftHSM 2.6 has CKM_AES_GCM for encryption only) kmu11 encrypts the
// key's plaintext with the token's AES-GCM under the wrapping key, as it does for mechanism 4:
// the wrapping key never leaves the token. The blob is the same either way (PKCS#11 GCM
// wrapping encrypts the key value): ciphertext then tag; the IV travels beside it.
import { randomBytes } from 'node:crypto';
import { CKM, CKR, Pkcs11Error, type GcmParameter, type Mechanism, type Template } from '../../p11/index.js';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import { CLOUDHSM_AES_GCM, GCM_IV_BYTES, GCM_TAG_BYTES, type WrapMechanism } from '../../kmu/wrapMechanisms.js';
import type { CommandContext } from '../types.js';
import { createFromPlaintext, offers, plaintextOf } from './transfer.js';
import { readInput } from './files.js';

/** -aad: the file's bytes. */
export const readAad = (file?: string): Buffer | undefined => (file === undefined ? undefined : readInput(file, '-aad'));

export interface GcmOptions {
  aad?: Buffer;
  /** -tag_size, in bytes. */
  tagBytes?: number;
}

const gcm = (iv: Buffer, o: GcmOptions): GcmParameter => ({ type: 'gcm', iv, aad: o.aad, tagBits: 8 * (o.tagBytes ?? GCM_TAG_BYTES) });

/** The token refuses the mechanism for this call (not: the key, data or parameters are wrong). */
const refused = (e: unknown) => e instanceof Pkcs11Error && e.code === CKR.MECHANISM_INVALID;

function requireGcm(ok: boolean, m: WrapMechanism): void {
  if (!ok) throw new KmuError(RC.MECHANISM_NOT_SUPPORTED, { detail: `-m ${m.id} (${m.name}): this token offers no AES-GCM` });
}

/** `key` wrapped under `wrapping`: the IV and the blob (ciphertext and tag). */
export async function gcmWrap(ctx: CommandContext, m: WrapMechanism, wrapping: number, key: number, o: GcmOptions): Promise<{ iv: Buffer; blob: Buffer }> {
  const { session } = ctx.backend;
  if (m.vendor !== undefined && (await offers(ctx, m.vendor))) {
    // CloudHSM's own mechanism: no IV in, the IV it generated first in the output.
    const out = await session.wrapKey({ mechanism: m.vendor, parameter: gcm(Buffer.alloc(0), o) }, wrapping, key);
    return { iv: out.subarray(0, GCM_IV_BYTES), blob: out.subarray(GCM_IV_BYTES) };
  }
  requireGcm(await offers(ctx, CKM.AES_GCM), m);
  // CloudHSM generates the IV and writes it into this buffer (the addon copies it back); it
  // wants the buffer zeroed. Other tokens take the IV given.
  const cloudhsm = await offers(ctx, CLOUDHSM_AES_GCM);
  const iv = cloudhsm ? Buffer.alloc(GCM_IV_BYTES) : randomBytes(GCM_IV_BYTES);
  const mech: Mechanism = { mechanism: CKM.AES_GCM, parameter: gcm(iv, o) };
  try {
    return { iv, blob: await session.wrapKey(mech, wrapping, key) };
  } catch (e) {
    if (!refused(e)) throw e;
  }
  const blob = await session.encrypt(mech, wrapping, await plaintextOf(session, key));
  return { iv, blob };
}

/** A new key with `template` from `blob` (ciphertext and tag) and its IV, under `wrapping`. */
export async function gcmUnwrap(
  ctx: CommandContext,
  m: WrapMechanism,
  wrapping: number,
  iv: Buffer,
  blob: Buffer,
  template: Template,
  o: GcmOptions,
): Promise<number> {
  const { session } = ctx.backend;
  if (iv.length !== GCM_IV_BYTES)
    throw new KmuError(RC.INVALID_INPUT, { detail: `the GCM IV must be ${GCM_IV_BYTES} bytes, not ${iv.length}` });
  if (blob.length < (o.tagBytes ?? GCM_TAG_BYTES))
    throw new KmuError(RC.INVALID_INPUT, { detail: 'the wrapped key is shorter than its GCM tag' });
  return withTagCheck(async () => {
    if (m.vendor !== undefined && (await offers(ctx, m.vendor)))
      return session.unwrapKey({ mechanism: m.vendor, parameter: gcm(Buffer.alloc(0), o) }, wrapping, Buffer.concat([iv, blob]), template);
    requireGcm(await offers(ctx, CKM.AES_GCM), m);
    const mech: Mechanism = { mechanism: CKM.AES_GCM, parameter: gcm(Buffer.from(iv), o) };
    try {
      return await session.unwrapKey(mech, wrapping, blob, template);
    } catch (e) {
      if (!refused(e)) throw e;
    }
    const plain = await session.decrypt(mech, wrapping, blob).catch((e: unknown) => {
      // SoftHSM 2.6 answers a GCM tag that does not verify with CKR_GENERAL_ERROR.
      throw e instanceof Pkcs11Error && e.code === CKR.GENERAL_ERROR ? new Pkcs11Error(CKR.ENCRYPTED_DATA_INVALID, e.fn) : e;
    });
    return createFromPlaintext(session, plain, template);
  });
}

/** A tag that does not verify (wrong key, IV, AAD or tag size, or a changed blob) is bad input. */
async function withTagCheck<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof Pkcs11Error && (e.code === CKR.ENCRYPTED_DATA_INVALID || e.code === CKR.WRAPPED_KEY_INVALID))
      throw new KmuError(RC.INVALID_INPUT, { detail: 'unwrap failed: the GCM tag does not verify (wrong key, IV, AAD or tag size, or a changed blob)' });
    throw e;
  }
}
