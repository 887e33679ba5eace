// kmu's "fake PEM" (getCaviumPrivKey, IsValidKeyHandlefile): an RSA private key file that holds
// no private key material, only a reference to a key on the HSM, for SSL offload. CloudHSM's
// exact layout is its engine's; kmu11's: a PKCS#1 RSAPrivateKey with the key's real modulus
// and public exponent, the key handle as privateExponent, and prime1 = prime2 = exponent1 =
// exponent2 = coefficient = 0 (no real RSA key has a zero prime: that marks it fake).
import { integerSequence, integersOf } from './der.js';

function uint(n: number): Buffer {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
}

export function fakeRsaPem(modulus: Buffer, publicExponent: Buffer, handle: number): string {
  const zero = Buffer.from([0]);
  const der = integerSequence([zero, modulus, publicExponent, uint(handle), zero, zero, zero, zero, zero]);
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN RSA PRIVATE KEY-----\n${b64}\n-----END RSA PRIVATE KEY-----\n`;
}

/** The handle a fake PEM names, or undefined when the text is not kmu11's fake PEM. */
export function fakePemHandle(pem: string): number | undefined {
  const m = /-----BEGIN RSA PRIVATE KEY-----([\s\S]*?)-----END RSA PRIVATE KEY-----/.exec(pem);
  if (!m) return undefined;
  const ints = integersOf(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  if (!ints || ints.length !== 9) return undefined;
  const isZero = (b: Buffer) => b.every((x) => x === 0);
  if (!ints.slice(4).every(isZero)) return undefined;
  const d = BigInt('0x' + (ints[3]!.toString('hex') || '0'));
  return d > 0n && d <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(d) : undefined;
}
