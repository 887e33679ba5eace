// kmu's DER on top of p11's TLVs: a DSA SubjectPublicKeyInfo taken apart (importPubKey),
// ECDSA/DSA signatures as SEQUENCE { r, s } (sign, verify), kmu's fake PEM (getCaviumPrivKey,
// IsValidKeyHandlefile).

import { children, integer, tlv } from '../p11/index.js';

/** SEQUENCE of INTEGERs from their magnitudes. */
export function integerSequence(magnitudes: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(magnitudes.map(integer)));
}

/** The INTEGERs' contents of a DER SEQUENCE of INTEGERs that is all of `der`, or undefined if it is not one. */
export function integersOf(der: Buffer): Buffer[] | undefined {
  try {
    const top = children(der);
    if (top.length !== 1 || top[0]!.tag !== 0x30) return undefined;
    const items = children(top[0]!.value);
    return items.every((t) => t.tag === 0x02) ? items.map((t) => t.value) : undefined;
  } catch {
    return undefined;
  }
}

/** DSA public key parts from its SPKI DER: p, q, g and y. */
export function dsaFromSpki(spki: Buffer): { p: Buffer; q: Buffer; g: Buffer; y: Buffer } {
  const [seq] = children(spki);
  const [alg, bits] = children(seq!.value);
  const [, params] = children(alg!.value);
  const [p, q, g] = children(params!.value).map((t) => t.value);
  const [y] = children(bits!.value.subarray(1)); // BIT STRING: one byte of unused bits first
  if (!p || !q || !g || !y) throw new Error('not a DSA public key');
  return { p, q, g, y: y.value };
}
