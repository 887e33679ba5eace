// kmu's "fake PEM" (getCaviumPrivKey, IsValidKeyHandlefile): an RSA private key file that holds
// no private key material, only a reference to a key on the HSM, for SSL offload. CloudHSM's
// exact layout is its engine's; kmu11's: a PKCS#1 RSAPrivateKey with the key's real modulus
// and public exponent, the key handle as privateExponent, and prime1 = prime2 = exponent1 =
// exponent2 = coefficient = 0 (no real RSA key has a zero prime: that marks it fake).

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derInteger(magnitude: Buffer): Buffer {
  let m = magnitude;
  while (m.length > 1 && m[0] === 0) m = m.subarray(1);
  if (m.length === 0) m = Buffer.from([0]);
  if (m[0]! & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
  return Buffer.concat([Buffer.from([0x02]), derLength(m.length), m]);
}

function uint(n: number): Buffer {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
}

export function fakeRsaPem(modulus: Buffer, publicExponent: Buffer, handle: number): string {
  const zero = Buffer.from([0]);
  const fields = [zero, modulus, publicExponent, uint(handle), zero, zero, zero, zero, zero].map(derInteger);
  const body = Buffer.concat(fields);
  const der = Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN RSA PRIVATE KEY-----\n${b64}\n-----END RSA PRIVATE KEY-----\n`;
}

/** The integers of a DER SEQUENCE of INTEGERs, or undefined if it is not one. */
function integers(der: Buffer): Buffer[] | undefined {
  const readLen = (at: number): [number, number] | undefined => {
    const first = der[at];
    if (first === undefined) return undefined;
    if (first < 0x80) return [first, at + 1];
    const n = first & 0x7f;
    if (n === 0 || n > 4 || at + 1 + n > der.length) return undefined;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[at + 1 + i]!;
    return [len, at + 1 + n];
  };
  if (der[0] !== 0x30) return undefined;
  const seq = readLen(1);
  if (!seq || seq[1] + seq[0] !== der.length) return undefined;
  const out: Buffer[] = [];
  for (let at = seq[1]; at < der.length; ) {
    if (der[at] !== 0x02) return undefined;
    const l = readLen(at + 1);
    if (!l || l[1] + l[0] > der.length) return undefined;
    out.push(der.subarray(l[1], l[1] + l[0]));
    at = l[1] + l[0];
  }
  return out;
}

/** The handle a fake PEM names, or undefined when the text is not kmu11's fake PEM. */
export function fakePemHandle(pem: string): number | undefined {
  const m = /-----BEGIN RSA PRIVATE KEY-----([\s\S]*?)-----END RSA PRIVATE KEY-----/.exec(pem);
  if (!m) return undefined;
  const ints = integers(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  if (!ints || ints.length !== 9) return undefined;
  const isZero = (b: Buffer) => b.every((x) => x === 0);
  if (!ints.slice(4).every(isZero)) return undefined;
  const d = BigInt('0x' + (ints[3]!.toString('hex') || '0'));
  return d > 0n && d <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(d) : undefined;
}
