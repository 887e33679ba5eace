// sign / verify -m: kmu's signing mechanism numbers (key_mgmt_util-sign.md: 1 = SHA256_RSA_PKCS;
// the rest of kmu's list as AWS's page gives it), and DSA, which kmu's list lacks, as kmu11's
// own numbers 20-24. How each is done on PKCS#11: RSA with the module's hash-and-sign
// mechanisms (PSS with the digest's length as salt, MGF1 of the same digest); ECDSA and DSA
// hash on the host and sign the digest with CKM_ECDSA / CKM_DSA (SoftHSM 2.6 has no
// CKM_ECDSA_SHA256; the signature is the same).
import { CKK, CKM } from '../p11/index.js';

export type Digest = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export interface SignMechanism {
  id: number;
  name: string;
  keyType: number;
  digest: Digest;
  /** RSA: the PKCS#11 hash-and-sign mechanism. ECDSA/DSA: the raw mechanism the host digest goes to. */
  ckm: number;
  pss?: boolean;
}

const rsa = (id: number, digest: Digest, ckm: number, pss = false): SignMechanism => ({
  id,
  name: `${digest.toUpperCase()}_RSA_PKCS${pss ? '_PSS' : ''}`,
  keyType: CKK.RSA,
  digest,
  ckm,
  pss,
});
const ec = (id: number, digest: Digest): SignMechanism => ({ id, name: `ECDSA_${digest.toUpperCase()}`, keyType: CKK.EC, digest, ckm: CKM.ECDSA });
const dsa = (id: number, digest: Digest): SignMechanism => ({ id, name: `DSA_${digest.toUpperCase()}`, keyType: CKK.DSA, digest, ckm: CKM.DSA });

export const SIGN_MECHANISMS: readonly SignMechanism[] = [
  rsa(0, 'sha1', CKM.SHA1_RSA_PKCS),
  rsa(1, 'sha256', CKM.SHA256_RSA_PKCS),
  rsa(2, 'sha384', CKM.SHA384_RSA_PKCS),
  rsa(3, 'sha512', CKM.SHA512_RSA_PKCS),
  rsa(4, 'sha224', CKM.SHA224_RSA_PKCS),
  rsa(5, 'sha1', CKM.SHA1_RSA_PKCS_PSS, true),
  rsa(6, 'sha256', CKM.SHA256_RSA_PKCS_PSS, true),
  rsa(7, 'sha384', CKM.SHA384_RSA_PKCS_PSS, true),
  rsa(8, 'sha512', CKM.SHA512_RSA_PKCS_PSS, true),
  rsa(9, 'sha224', CKM.SHA224_RSA_PKCS_PSS, true),
  ec(15, 'sha1'),
  ec(16, 'sha224'),
  ec(17, 'sha256'),
  ec(18, 'sha384'),
  ec(19, 'sha512'),
  dsa(20, 'sha1'),
  dsa(21, 'sha224'),
  dsa(22, 'sha256'),
  dsa(23, 'sha384'),
  dsa(24, 'sha512'),
];

export function signMechanism(id: number): SignMechanism | undefined {
  return SIGN_MECHANISMS.find((m) => m.id === id);
}

/** PKCS#11's CKM for a digest and CKG_MGF1 for the same digest (PSS parameters). */
export const DIGEST_CKM: Record<Digest, { hash: number; mgf: number; length: number }> = {
  sha1: { hash: CKM.SHA_1, mgf: 1, length: 20 },
  sha224: { hash: CKM.SHA224, mgf: 5, length: 28 },
  sha256: { hash: CKM.SHA256, mgf: 2, length: 32 },
  sha384: { hash: CKM.SHA384, mgf: 3, length: 48 },
  sha512: { hash: CKM.SHA512, mgf: 4, length: 64 },
};
