// Public keys as DER SubjectPublicKeyInfo (what exportPubKey writes as PEM, and what the key
// check value of an asymmetric key is computed over), built from PKCS#11 attribute values.
import { createHash } from 'node:crypto';
import { oidToDer } from './curves.js';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const bitString = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));

/** A DER INTEGER from an unsigned big-endian magnitude (as PKCS#11 stores big integers). */
function integer(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(0x02, m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

/** The content of a DER OCTET STRING (CKA_EC_POINT comes wrapped in one); raw input passes. */
export function unwrapOctetString(der: Buffer): Buffer {
  if (der[0] !== 0x04 || der.length < 2) return der;
  let n = der[1]!;
  let off = 2;
  if (n & 0x80) {
    const k = n & 0x7f;
    n = 0;
    for (let i = 0; i < k; i++) n = n * 256 + der[2 + i]!;
    off = 2 + k;
  }
  // An uncompressed point also starts with 04: only unwrap when the length fits exactly.
  return off + n === der.length ? der.subarray(off) : der;
}

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_DSA = '1.2.840.10040.4.1';
const OID_RSA = '1.2.840.113549.1.1.1';

export function ecSpki(curveOid: string, point: Buffer): Buffer {
  return seq(seq(oidToDer(OID_EC_PUBLIC_KEY), oidToDer(curveOid)), bitString(point));
}

export function dsaSpki(p: Buffer, q: Buffer, g: Buffer, y: Buffer): Buffer {
  return seq(seq(oidToDer(OID_DSA), seq(integer(p), integer(q), integer(g))), bitString(integer(y)));
}

export function rsaSpki(modulus: Buffer, exponent: Buffer): Buffer {
  return seq(seq(oidToDer(OID_RSA), Buffer.from([0x05, 0x00])), bitString(seq(integer(modulus), integer(exponent))));
}

export function toPem(spki: Buffer): string {
  const b64 = spki.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

/** CloudHSM's KCV for a key pair: the first 3 bytes of the SHA-1 of the public key (its SPKI). */
export function asymmetricKcv(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest().subarray(0, 3);
}
