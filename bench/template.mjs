// The one key-pair request every benchmark sends: an EC P-256 session pair
// with every attribute kmu11 sets explicitly (DESIGN.md, "usage flags").
// bench/raw.c sends the same template; keep the two in step.
// Attribute and mechanism numbers are PKCS#11 v2.40's, so both bindings get
// identical input without going through either one's constant tables.

const CKA = {
  TOKEN: 0x001, PRIVATE: 0x002, LABEL: 0x003, SENSITIVE: 0x103, ENCRYPT: 0x104,
  DECRYPT: 0x105, WRAP: 0x106, UNWRAP: 0x107, SIGN: 0x108, VERIFY: 0x10a,
  DERIVE: 0x10c, EXTRACTABLE: 0x162, EC_PARAMS: 0x180,
};

export const CKM_EC_KEY_PAIR_GEN = 0x1040;
export const CKU_USER = 1;
export const CKR_USER_ALREADY_LOGGED_IN = 0x100;

/** DER OBJECT IDENTIFIER 1.2.840.10045.3.1.7 (prime256v1 / secp256r1). */
export const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const LABEL = 'bench';

export const mechanism = { mechanism: CKM_EC_KEY_PAIR_GEN };

export const publicTemplate = [
  { type: CKA.TOKEN, value: false },
  { type: CKA.PRIVATE, value: false },
  { type: CKA.VERIFY, value: true },
  { type: CKA.ENCRYPT, value: false },
  { type: CKA.WRAP, value: false },
  { type: CKA.DERIVE, value: false },
  { type: CKA.LABEL, value: LABEL },
  { type: CKA.EC_PARAMS, value: P256_PARAMS },
];

export const privateTemplate = [
  { type: CKA.TOKEN, value: false },
  { type: CKA.PRIVATE, value: true },
  { type: CKA.SENSITIVE, value: true },
  { type: CKA.EXTRACTABLE, value: true },
  { type: CKA.SIGN, value: true },
  { type: CKA.DECRYPT, value: false },
  { type: CKA.UNWRAP, value: false },
  { type: CKA.DERIVE, value: false },
  { type: CKA.LABEL, value: LABEL },
];
