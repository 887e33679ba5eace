// kmu's -m 7 (RSA_AES) where the token lacks CKM_RSA_AES_KEY_WRAP (SoftHSM 2.6): the steps
// PKCS#11 v2.40 §2.1.21 defines for it, each a token mechanism, so no key's value reaches kmu11.
// Wrap: a fresh AES-256 session key made on the token, the key wrapped under it with
// CKM_AES_KEY_WRAP_PAD (RFC 5649), the AES key wrapped under the RSA public key with
// CKM_RSA_PKCS_OAEP; the blob is the OAEP part then the RFC 5649 part, as the mechanism's.
// Unwrap: the reverse, with the RSA private key; the AES key is destroyed either way.
import { CKA, CKK, CKM, CKO, type Mechanism, type Session, type Template } from '../../p11/index.js';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import { readKey } from './keys.js';

const AES_BITS = 256;

/** A session AES key that only wraps and unwraps, for one transfer; `label` says what for. */
export function transientAesTemplate(label: string): Template {
  return [
    { type: CKA.CLASS, value: CKO.SECRET_KEY },
    { type: CKA.KEY_TYPE, value: CKK.AES },
    { type: CKA.TOKEN, value: false },
    { type: CKA.PRIVATE, value: true },
    { type: CKA.SENSITIVE, value: true },
    { type: CKA.WRAP, value: true },
    { type: CKA.UNWRAP, value: true },
    { type: CKA.ENCRYPT, value: false },
    { type: CKA.DECRYPT, value: false },
    { type: CKA.LABEL, value: label },
  ];
}

function temporaryAes(session: Session, template: Template): Promise<number> {
  return session.generateKey({ mechanism: CKM.AES_KEY_GEN }, [...transientAesTemplate('kmu11 RSA_AES'), ...template]);
}

async function destroying<T>(session: Session, object: number, use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } finally {
    await session.destroyObject(object).catch(() => undefined);
  }
}

/** `key` wrapped under the RSA public key `wrapping`; `oaep`: the OAEP mechanism (hash from -t). */
export async function rsaAesWrap(session: Session, oaep: Mechanism, wrapping: number, key: number): Promise<Buffer> {
  const temp = await temporaryAes(session, [{ type: CKA.VALUE_LEN, value: AES_BITS / 8 }, { type: CKA.EXTRACTABLE, value: true }]);
  return destroying(session, temp, async () => {
    const inner = await session.wrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, temp, key);
    const outer = await session.wrapKey(oaep, wrapping, temp);
    return Buffer.concat([outer, inner]);
  });
}

/** A new key with `template` from an RSA_AES blob, under the RSA private key `unwrapping`. */
export async function rsaAesUnwrap(session: Session, oaep: Mechanism, unwrapping: number, blob: Buffer, template: Template): Promise<number> {
  const bytes = (await readKey(session, unwrapping)).buf(CKA.MODULUS)?.length ?? 0;
  if (bytes === 0 || blob.length <= bytes + 8)
    throw new KmuError(RC.INVALID_INPUT, { detail: `an RSA_AES blob is the RSA-OAEP part (${bytes || 'the modulus'} bytes) and an RFC 5649 part; this one has ${blob.length} bytes` });
  const temp = await session.unwrapKey(oaep, unwrapping, blob.subarray(0, bytes), [
    ...transientAesTemplate('kmu11 RSA_AES'),
    { type: CKA.EXTRACTABLE, value: false },
  ]);
  return destroying(session, temp, () => session.unwrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, temp, blob.subarray(bytes), template));
}
