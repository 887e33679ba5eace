// RFC 3394 AES key wrap over any AES block cipher: the token's AES-ECB under a key that never
// leaves it, or node:crypto under a key read from a file (-wk). kmu's mechanism 4
// (AES_KEY_WRAP_PAD_PKCS5) is this over the data padded PKCS#5-style to a multiple of 8 bytes,
// which is what aesWrapUnwrap's page shows (24 bytes in, 40 out).
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** One AES block (16 bytes) in, one out. */
export type BlockCipher = (block: Buffer) => Promise<Buffer>;

export const DEFAULT_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

export class IntegrityError extends Error {}

function pkcs5Pad(data: Buffer): Buffer {
  const n = 8 - (data.length % 8);
  return Buffer.concat([data, Buffer.alloc(n, n)]);
}

function pkcs5Unpad(data: Buffer): Buffer {
  const n = data[data.length - 1] ?? 0;
  if (n < 1 || n > 8 || n > data.length || !data.subarray(data.length - n).every((b) => b === n))
    throw new IntegrityError('the unwrapped data has no valid PKCS#5 padding');
  return data.subarray(0, data.length - n);
}

function xorCounter(a: Buffer, t: number): Buffer {
  const out = Buffer.from(a);
  let v = BigInt('0x' + out.toString('hex')) ^ BigInt(t);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export async function wrap(encrypt: BlockCipher, plaintext: Buffer, iv: Buffer = DEFAULT_IV): Promise<Buffer> {
  if (plaintext.length < 16 || plaintext.length % 8 !== 0) throw new RangeError('AES key wrap needs at least 16 bytes, a multiple of 8');
  const n = plaintext.length / 8;
  let a: Buffer = Buffer.from(iv);
  const r = Array.from({ length: n }, (_, i) => Buffer.from(plaintext.subarray(i * 8, i * 8 + 8)));
  for (let j = 0; j <= 5; j++)
    for (let i = 0; i < n; i++) {
      const b = await encrypt(Buffer.concat([a, r[i]!]));
      a = xorCounter(b.subarray(0, 8), n * j + i + 1);
      r[i] = Buffer.from(b.subarray(8, 16));
    }
  return Buffer.concat([a, ...r]);
}

export async function unwrap(decrypt: BlockCipher, wrapped: Buffer, iv: Buffer = DEFAULT_IV): Promise<Buffer> {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) throw new IntegrityError(`a wrapped key is a multiple of 8 bytes, at least 24; this is ${wrapped.length}`);
  const n = wrapped.length / 8 - 1;
  let a: Buffer = Buffer.from(wrapped.subarray(0, 8));
  const r = Array.from({ length: n }, (_, i) => Buffer.from(wrapped.subarray(8 + i * 8, 16 + i * 8)));
  for (let j = 5; j >= 0; j--)
    for (let i = n - 1; i >= 0; i--) {
      const b = await decrypt(Buffer.concat([xorCounter(a, n * j + i + 1), r[i]!]));
      a = Buffer.from(b.subarray(0, 8));
      r[i] = Buffer.from(b.subarray(8, 16));
    }
  if (!a.equals(iv)) throw new IntegrityError('the integrity check failed: wrong unwrapping key or IV, or damaged data');
  return Buffer.concat(r);
}

export const wrapPkcs5 = (encrypt: BlockCipher, data: Buffer, iv?: Buffer) => wrap(encrypt, pkcs5Pad(data), iv);
export const unwrapPkcs5 = async (decrypt: BlockCipher, blob: Buffer, iv?: Buffer) => pkcs5Unpad(await unwrap(decrypt, blob, iv));

/** A block cipher under a key held in memory (-wk files, the transient transfer key). */
export function softwareCipher(key: Buffer, direction: 'encrypt' | 'decrypt'): BlockCipher {
  if (![16, 24, 32].includes(key.length)) throw new RangeError(`an AES key is 16, 24 or 32 bytes, not ${key.length}`);
  const alg = `aes-${key.length * 8}-ecb`;
  return async (block) => {
    const c = direction === 'encrypt' ? createCipheriv(alg, key, null) : createDecipheriv(alg, key, null);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(block), c.final()]);
  };
}

/** RFC 5649 (AES key wrap with padding) in software, as node:crypto's id-aesNNN-wrap-pad. */
export function wrapPad(key: Buffer, data: Buffer): Buffer {
  const c = createCipheriv(`id-aes${key.length * 8}-wrap-pad`, key, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([c.update(data), c.final()]);
}

export function unwrapPad(key: Buffer, blob: Buffer): Buffer {
  const d = createDecipheriv(`id-aes${key.length * 8}-wrap-pad`, key, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([d.update(blob), d.final()]);
}
