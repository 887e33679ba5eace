// Mechanisms: a CKM number and its parameter, passed through untouched.
// `parameter` is a CK_ULONG (number), the parameter structure's bytes as the module expects them
// (Buffer, e.g. a vendor structure, or oaepParameter's and pssParameter's below), or one of the
// structures that hold pointers, which the addon builds and keeps alive for the call.
export interface GcmParameter {
  type: 'gcm';
  iv: Buffer;
  aad?: Buffer;
  tagBits: number;
}

/** CK_RSA_AES_KEY_WRAP_PARAMS with its CK_RSA_PKCS_OAEP_PARAMS (source: CKZ_DATA_SPECIFIED). */
export interface RsaAesParameter {
  type: 'rsaAes';
  aesKeyBits: number;
  hashAlg: number;
  mgf: number;
  sourceData?: Buffer;
}

export interface Mechanism {
  mechanism: number;
  parameter?: Buffer | number | GcmParameter | RsaAesParameter;
}

/**
 * A parameter structure of CK_ULONGs (and null pointers) only, in the module's layout: this
 * addon builds for 64-bit Linux (LP64), where CK_ULONG and pointers are 8 bytes, little-endian.
 */
function ulongStruct(values: number[]): Buffer {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 8 * i));
  return b;
}

const CKZ_DATA_SPECIFIED = 1;

/** CK_RSA_PKCS_OAEP_PARAMS: hashAlg, mgf, source CKZ_DATA_SPECIFIED with an empty label. */
export function oaepParameter(hashAlg: number, mgf: number): Buffer {
  return ulongStruct([hashAlg, mgf, CKZ_DATA_SPECIFIED, 0, 0]);
}

/** CK_RSA_PKCS_PSS_PARAMS: hashAlg, mgf, sLen. */
export function pssParameter(hashAlg: number, mgf: number, saltLength: number): Buffer {
  return ulongStruct([hashAlg, mgf, saltLength]);
}
