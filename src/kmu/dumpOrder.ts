// Which OBJ_ATTRs `getAttribute -a 512` writes for each kind of key, and in what order: the set
// and order CloudHSM prints (the pages' dumps), so scripts that read the file by position keep
// working. Keys are kmu's class and key-type numbers (OBJ_ATTR_CLASS, OBJ_ATTR_KEY_TYPE).

/** Every key: the getAttribute page's AES dump (17 attributes, ending with KCV). */
const COMMON = [
  'CLASS', 'KEY_TYPE', 'TOKEN', 'PRIVATE', 'ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP', 'SIGN', 'VERIFY',
  'LOCAL', 'SENSITIVE', 'EXTRACTABLE', 'LABEL', 'ID', 'VALUE_LEN', 'KCV',
] as const;

/** EC: the genECCKeyPair page's private-key dump (19, ending with MODULUS_BITS). */
const EC = [...COMMON, 'MODULUS', 'MODULUS_BITS'] as const;

/** RSA: the genRSAKeyPair page's public-key dump (26). */
const RSA = [
  ...EC, 'PUBLIC_EXPONENT', 'TRUSTED', 'WRAP_WITH_TRUSTED', 'DESTROYABLE', 'DERIVE', 'ALWAYS_SENSITIVE', 'NEVER_EXTRACTABLE',
] as const;

const KEY_TYPE = { RSA: 0, DSA: 1, EC: 3 } as const;

/**
 * OBJ_ATTR names (without the prefix) in dump order. RSA and EC as their pages; DSA, secret and
 * any other key as the common 17 (no page dumps them; key-attribute-table.md gives MODULUS,
 * MODULUS_BITS and PUBLIC_EXPONENT to RSA only, and the EC page adds the point and curve size).
 */
export function dumpOrder(keyType: number): readonly string[] {
  if (keyType === KEY_TYPE.RSA) return RSA;
  if (keyType === KEY_TYPE.EC) return EC;
  return COMMON;
}
