// The little DER kmu11 reads and writes itself: a DSA SubjectPublicKeyInfo taken apart
// (importPubKey), ECDSA/DSA signatures as SEQUENCE { r, s } (sign, verify), kmu's fake PEM
// (getCaviumPrivKey, IsValidKeyHandlefile), an EC point's OCTET STRING (importPubKey).

export interface Tlv {
  tag: number;
  value: Buffer;
}

/** The TLVs directly inside `der` (one level). Throws on malformed input. */
export function children(der: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < der.length; ) {
    const tag = der[at]!;
    let len = der[at + 1];
    let start = at + 2;
    if (len === undefined) throw new Error('truncated DER');
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new Error('bad DER length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
      start += n;
    }
    if (start + len > der.length) throw new Error('truncated DER');
    out.push({ tag, value: der.subarray(start, start + len) });
    at = start + len;
  }
  return out;
}

/** One TLV: the tag, the definite length, the value. */
export function tlv(tag: number, value: Buffer): Buffer {
  const n = value.length;
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  const length = n < 0x80 ? [n] : [0x80 | bytes.length, ...bytes];
  return Buffer.concat([Buffer.from([tag, ...length]), value]);
}

/** A non-negative INTEGER from its big-endian magnitude (leading zeros dropped, a sign byte added when needed). */
function derInteger(magnitude: Buffer): Buffer {
  let m = magnitude;
  while (m.length > 1 && m[0] === 0) m = m.subarray(1);
  if (m.length === 0) m = Buffer.from([0]);
  if (m[0]! & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
  return tlv(0x02, m);
}

/** SEQUENCE of INTEGERs from their magnitudes. */
export function integerSequence(magnitudes: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(magnitudes.map(derInteger)));
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
