// Public keys as DER SubjectPublicKeyInfo, built from PKCS#11 attribute values: what
// exportPubKey writes as PEM, what CloudHSM's KCV of a key pair hashes, and the
// CKA_PUBLIC_KEY_INFO the handle store writes on private keys (and reads back). Just enough DER
// for that.
import { children, integer, magnitude, tlv } from './der.js';

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));

/**
 * CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.x, SoftHSM); some modules
 * return the bare point. Returns the bare point when `der` is exactly one OCTET STRING, else `der`.
 */
export function unwrapOctetString(der: Buffer): Buffer {
  if (der.length < 2 || der[0] !== 0x04) return der;
  let n = der[1]!;
  let off = 2;
  // tpm2-pkcs11 1.9 writes a P-521 point's length 133 as the single byte 0x85 (not 81 85).
  if (n & 0x80 && n === der.length - 2 && der[2] === 0x04) return der.subarray(2);
  if (n & 0x80) {
    const k = n & 0x7f;
    if (k === 0 || k > 3 || der.length < 2 + k) return der;
    n = 0;
    for (let i = 0; i < k; i++) n = n * 256 + der[2 + i]!;
    off = 2 + k;
  }
  // An uncompressed point also starts with 04: only unwrap when the length fits exactly.
  return off + n === der.length ? der.subarray(off) : der;
}

// AlgorithmIdentifier OIDs, DER-encoded.
const OID_EC_PUBLIC_KEY = Buffer.from('06072a8648ce3d0201', 'hex'); // 1.2.840.10045.2.1
const OID_DSA = Buffer.from('06072a8648ce380401', 'hex'); // 1.2.840.10040.4.1
const OID_RSA = Buffer.from('06092a864886f70d010101', 'hex'); // 1.2.840.113549.1.1.1

/** `ecParams`: the DER of CKA_EC_PARAMS (a named curve's OID); `point`: the bare point. */
export function ecSpki(ecParams: Buffer, point: Buffer): Buffer {
  return seq(seq(OID_EC_PUBLIC_KEY, ecParams), bitString(point));
}

/** CKA_PRIME, CKA_SUBPRIME, CKA_BASE and the public CKA_VALUE. */
export function dsaSpki(p: Buffer, q: Buffer, g: Buffer, y: Buffer): Buffer {
  return seq(seq(OID_DSA, seq(integer(p), integer(q), integer(g))), bitString(integer(y)));
}

/** CKA_MODULUS and CKA_PUBLIC_EXPONENT. */
export function rsaSpki(modulus: Buffer, exponent: Buffer): Buffer {
  return seq(seq(OID_RSA, Buffer.from([0x05, 0x00])), bitString(seq(integer(modulus), integer(exponent))));
}

/** The SPKI of a pair from its domain (CKA_EC_PARAMS, or DSA p q g) and public value (EC point, DSA y). */
export function pairSpki(domain: { ec?: Buffer; dsa?: { p: Buffer; q: Buffer; g: Buffer } }, value: Buffer): Buffer | undefined {
  if (domain.ec) return ecSpki(domain.ec, value);
  return domain.dsa && dsaSpki(domain.dsa.p, domain.dsa.q, domain.dsa.g, value);
}

/** The public value in an EC or DSA SubjectPublicKeyInfo: the point, or y's magnitude. */
export function spkiPublicValue(spki: Buffer, dsa: boolean): Buffer | undefined {
  try {
    const [, bits] = children(children(spki)[0]?.value ?? Buffer.alloc(0));
    if (bits?.tag !== 0x03 || bits.value.length < 2) return undefined;
    const key = bits.value.subarray(1);
    const [y] = dsa ? children(key) : [];
    return !dsa ? key : y?.tag === 0x02 ? magnitude(y.value) : undefined;
  } catch {
    return undefined;
  }
}

export function toPem(spki: Buffer): string {
  const b64 = spki.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}
