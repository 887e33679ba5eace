// CKA_CHECK_VALUE as PKCS#11 defines it for AES and DES3 keys (the first 3 bytes of a zero
// block encrypted under the key with ECB), computed on the token: SoftHSM leaves the attribute
// empty on unwrapped keys.
import { CKK, CKM, CKR } from './constants.js';
import type { Session } from './session/session.js';

/** Undefined for other key types, or when the key may not encrypt; other failures throw. */
export async function tokenCheckValue(session: Session, key: number, keyType: number): Promise<Buffer | undefined> {
  const ecb = keyType === CKK.AES ? { mechanism: CKM.AES_ECB, block: 16 } : keyType === CKK.DES3 ? { mechanism: CKM.DES3_ECB, block: 8 } : undefined;
  if (!ecb) return undefined;
  const out = await session.encrypt({ mechanism: ecb.mechanism }, key, Buffer.alloc(ecb.block)).catch((e: { code?: number }) => {
    if (e?.code === CKR.KEY_FUNCTION_NOT_PERMITTED || e?.code === CKR.MECHANISM_INVALID) return undefined;
    throw e;
  });
  return out?.subarray(0, 3);
}
