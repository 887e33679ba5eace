// A minimal DER reader: enough to take a DSA SubjectPublicKeyInfo apart (importPubKey).

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
