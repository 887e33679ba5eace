// kmu's wrapping mechanisms (wrapKey/unWrapKey -m) and hash types (-t), as data.
//
// `ckm`: the PKCS#11 mechanism the token runs. `vendor`: CloudHSM's own mechanism, used when the
// token offers it. Mechanism 4 (kmu's default everywhere) is RFC 3394 AES key wrap of the key
// padded PKCS#5-style to a multiple of 8 bytes: CloudHSM has it as a vendor mechanism; on other
// tokens kmu11 computes it with the token's AES-ECB under the wrapping key (`emulated`), so the
// wrapping key never leaves the token (the wrapped key's plaintext passes through kmu11's memory).
// AES-GCM (10, 11) is done the same way, with the token's AES-GCM encryption, where the token's
// C_WrapKey refuses GCM (SoftHSM 2.6 encrypts with it but does not wrap). kmu11's GCM blob (the
// pages are silent): the 12-byte IV, the ciphertext, the tag — CloudHSM's own layout for 11; for
// 10, -noheader with -iv_file writes the IV to that file and leaves it out of the blob.
import { CKM } from '../p11/index.js';

export type WrapFamily = 'aes' | 'rsa';

export interface WrapMechanism {
  id: number;
  name: string;
  family: WrapFamily;
  ckm?: number;
  /** CloudHSM's vendor mechanism, when kmu's mechanism is one. */
  vendor?: number;
  /** kmu11 computes it from other token mechanisms when the token lacks it (AES-ECB for 4, see wrapRsaAes.ts for 7). */
  emulated?: boolean;
  /** Takes -t (a hash). */
  hashed?: boolean;
  /** AES-GCM: IV, AAD (-aad) and tag size (-tag_size) as CK_GCM_PARAMS. */
  gcm?: boolean;
}

/** CloudHSM's vendor-defined mechanism ids (CKM_VENDOR_DEFINED | n), from its PKCS#11 headers. */
const CKM_VENDOR_DEFINED = 0x80000000;
const CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD = CKM_VENDOR_DEFINED | 0x216f;
/** CloudHSM's AES-GCM that prepends the IV it generates (cloudhsm_pkcs11_vendor_defs.h). */
export const CLOUDHSM_AES_GCM = CKM_VENDOR_DEFINED | CKM.AES_GCM;
/** GCM: the IV length (the one CloudHSM generates) and the default tag length, in bytes. */
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

export const WRAP_MECHANISMS: readonly WrapMechanism[] = [
  { id: 4, name: 'AES_KEY_WRAP_PAD_PKCS5', family: 'aes', vendor: CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, emulated: true },
  { id: 5, name: 'NIST_AES_WRAP_NO_PAD', family: 'aes', ckm: CKM.AES_KEY_WRAP },
  { id: 6, name: 'NIST_AES_WRAP_PAD', family: 'aes', ckm: CKM.AES_KEY_WRAP_PAD },
  // Emulated: PKCS#11's own steps for it with RSA-OAEP and AES key wrap on the token (wrapRsaAes.ts).
  { id: 7, name: 'RSA_AES', family: 'rsa', ckm: CKM.RSA_AES_KEY_WRAP, hashed: true, emulated: true },
  { id: 8, name: 'RSA_OAEP', family: 'rsa', ckm: CKM.RSA_PKCS_OAEP, hashed: true },
  { id: 10, name: 'AES_GCM', family: 'aes', ckm: CKM.AES_GCM, gcm: true, emulated: true },
  { id: 11, name: 'CLOUDHSM_AES_GCM', family: 'aes', vendor: CLOUDHSM_AES_GCM, ckm: CKM.AES_GCM, gcm: true, emulated: true },
  { id: 12, name: 'RSA_PKCS', family: 'rsa', ckm: CKM.RSA_PKCS },
];

export function wrapMechanism(id: number): WrapMechanism | undefined {
  return WRAP_MECHANISMS.find((m) => m.id === id);
}

/** -t: hash for RSA_OAEP / RSA_AES, with its PKCS#11 digest and MGF1 ids. */
export interface HashType {
  id: number;
  name: string;
  ckm: number;
  mgf: number;
  bytes: number;
}

export const HASH_TYPES: readonly HashType[] = [
  { id: 2, name: 'SHA1', ckm: CKM.SHA_1, mgf: 1, bytes: 20 },
  { id: 3, name: 'SHA256', ckm: CKM.SHA256, mgf: 2, bytes: 32 },
  { id: 4, name: 'SHA384', ckm: CKM.SHA384, mgf: 3, bytes: 48 },
  { id: 5, name: 'SHA512', ckm: CKM.SHA512, mgf: 4, bytes: 64 },
  { id: 6, name: 'SHA224', ckm: CKM.SHA224, mgf: 5, bytes: 28 },
];

export function hashType(id: number): HashType | undefined {
  return HASH_TYPES.find((h) => h.id === id);
}
