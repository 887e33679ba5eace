// kmu's key type constants (-t, -kt) and what each means in PKCS#11: the CKK value (kmu's
// numbers are CloudHSM's, which are PKCS#11's), the generation mechanism, valid sizes in bytes
// and the usage attributes a generated or imported key of that type gets (the genSymKey page's
// dump of a 3DES key: ENCRYPT and DECRYPT, not WRAP; AES keys also wrap, as exSymKey's page shows).
import { CKK, CKM, CKO } from '../p11/index.js';

export interface SymKeyType {
  /** kmu's -t value. */
  id: number;
  name: string;
  ckk: number;
  gen: number;
  /** Valid -s values (bytes), or a range. */
  sizes: readonly number[] | { min: number; max: number };
  usage: { encrypt: boolean; decrypt: boolean; wrap: boolean; unwrap: boolean; sign: boolean; verify: boolean };
}

export const SYM_KEY_TYPES: readonly SymKeyType[] = [
  {
    id: 16,
    name: 'GENERIC_SECRET',
    ckk: CKK.GENERIC_SECRET,
    gen: CKM.GENERIC_SECRET_KEY_GEN,
    // The page: "Generic Secret: <3584" bytes.
    sizes: { min: 1, max: 3583 },
    usage: { encrypt: false, decrypt: false, wrap: false, unwrap: false, sign: false, verify: false },
  },
  {
    id: 18,
    name: 'RC4',
    ckk: CKK.RC4,
    gen: CKM.RC4_KEY_GEN,
    sizes: { min: 1, max: 256 },
    usage: { encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false },
  },
  {
    id: 21,
    name: 'DES3',
    ckk: CKK.DES3,
    gen: CKM.DES3_KEY_GEN,
    sizes: [24],
    usage: { encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false },
  },
  {
    id: 31,
    name: 'AES',
    ckk: CKK.AES,
    gen: CKM.AES_KEY_GEN,
    sizes: [16, 24, 32],
    usage: { encrypt: true, decrypt: true, wrap: true, unwrap: true, sign: false, verify: false },
  },
];

export function symKeyType(id: number): SymKeyType | undefined {
  return SYM_KEY_TYPES.find((t) => t.id === id);
}

export function validSize(t: SymKeyType, bytes: number): boolean {
  return Array.isArray(t.sizes) ? t.sizes.includes(bytes) : bytes >= (t.sizes as { min: number }).min && bytes <= (t.sizes as { max: number }).max;
}

export function sizesText(t: SymKeyType): string {
  return Array.isArray(t.sizes) ? t.sizes.join(', ') : `${(t.sizes as { min: number }).min}..${(t.sizes as { max: number }).max}`;
}

/** unWrapKey -kt: every key type kmu names there. */
export const KEY_TYPES: ReadonlyArray<{ id: number; name: string; ckk: number }> = [
  { id: 0, name: 'RSA', ckk: CKK.RSA },
  { id: 1, name: 'DSA', ckk: CKK.DSA },
  { id: 3, name: 'ECC', ckk: CKK.EC },
  ...SYM_KEY_TYPES.filter((t) => t.id !== 18).map((t) => ({ id: t.id, name: t.name, ckk: t.ckk })),
];

/** unWrapKey -kc: the classes a wrapped key can have. */
export const KEY_CLASSES: ReadonlyArray<{ id: number; name: string; cko: number }> = [
  { id: 3, name: 'private key', cko: CKO.PRIVATE_KEY },
  { id: 4, name: 'secret key', cko: CKO.SECRET_KEY },
];
