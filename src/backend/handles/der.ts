// Just enough DER to turn a token's public values into a SubjectPublicKeyInfo that
// node:crypto can verify with (sign-tests of private keys, see identify.ts).

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));

/** Unsigned big-endian magnitude → DER INTEGER. */
export function int(mag: Buffer): Buffer {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  let b = mag.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));

const OID_EC_PUBLIC_KEY = Buffer.from('06072a8648ce3d0201', 'hex');
const OID_DSA = Buffer.from('06072a8648ce380401', 'hex');

export function ecSpki(ecParams: Buffer, point: Buffer): Buffer {
  return seq(seq(OID_EC_PUBLIC_KEY, ecParams), bitString(point));
}

export function dsaSpki(p: Buffer, q: Buffer, g: Buffer, y: Buffer): Buffer {
  return seq(seq(OID_DSA, seq(int(p), int(q), int(g))), bitString(int(y)));
}

/**
 * CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.x, SoftHSM); some modules
 * return the bare point. Returns the bare point when `b` is exactly one OCTET STRING, else `b`.
 */
export function unwrapOctetString(b: Buffer): Buffer {
  if (b.length < 2 || b[0] !== 0x04) return b;
  let n = b[1]!;
  let off = 2;
  if (n & 0x80) {
    const k = n & 0x7f;
    if (k === 0 || k > 3 || b.length < 2 + k) return b;
    n = 0;
    for (let i = 0; i < k; i++) n = n * 256 + b[2 + i]!;
    off = 2 + k;
  }
  return off + n === b.length ? b.subarray(off) : b;
}

/** Strip leading zero bytes (CKA_MODULUS, CKA_PUBLIC_EXPONENT may come padded). */
export function magnitude(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Named curves node:crypto's ECDH knows, by the DER of their OID (CKA_EC_PARAMS). */
export const ECDH_CURVES: Readonly<Record<string, string>> = {
  '06082a8648ce3d030107': 'prime256v1',
  '06052b81040022': 'secp384r1',
  '06052b81040023': 'secp521r1',
  '06052b81040021': 'secp224r1',
  '06052b8104000a': 'secp256k1',
  '06082a8648ce3d030101': 'prime192v1',
  '06092b2403030208010107': 'brainpoolP256r1',
  '06092b240303020801010b': 'brainpoolP384r1',
  '06092b240303020801010d': 'brainpoolP512r1',
};
