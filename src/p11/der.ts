// The little DER kmu11 reads and writes itself (SubjectPublicKeyInfo, signatures, kmu's fake
// PEM): TLVs one level at a time, and unsigned INTEGERs.

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
      if (n === 0 || n > 4 || start + n > der.length) throw new Error('bad DER length');
      len = der.readUIntBE(start, n);
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
  return Buffer.concat([Buffer.from([tag, ...(n < 0x80 ? [n] : [0x80 | bytes.length, ...bytes])]), value]);
}

/** Strip leading zero bytes (PKCS#11 big integers, e.g. CKA_MODULUS, may come padded); keeps one byte of a zero. */
export function magnitude(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** A non-negative INTEGER from its big-endian magnitude (a sign byte added when needed). */
export function integer(mag: Buffer): Buffer {
  const m = mag.length ? magnitude(mag) : Buffer.from([0]);
  return tlv(0x02, m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}
