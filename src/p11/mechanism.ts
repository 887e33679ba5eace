// Mechanisms: a CKM number and its parameter, passed through untouched.
// `parameter` is a CK_ULONG (number), the parameter structure's bytes as the module expects them
// (Buffer, e.g. a vendor structure), or one of the structures that hold pointers, which the
// addon builds and keeps alive for the call.
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
