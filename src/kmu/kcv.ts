// CloudHSM's key check value (KCV) of a key pair.
import { createHash } from 'node:crypto';

/** The first 3 bytes of the SHA-1 of the public key (its SubjectPublicKeyInfo, see p11/spki.ts). */
export function asymmetricKcv(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest().subarray(0, 3);
}
