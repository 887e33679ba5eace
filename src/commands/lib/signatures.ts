// What sign and verify share: the PKCS#11 mechanism and input for a kmu -m number, and the
// signature's form in files. ECDSA and DSA signatures are written DER-encoded
// (SEQUENCE { r INTEGER, s INTEGER }), the form openssl makes and checks; verify also takes
// PKCS#11's raw r || s.
import { createHash } from 'node:crypto';
import { CKK, type Mechanism } from '../../p11/index.js';
import { KmuError, UsageError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import { DIGEST_CKM, SIGN_MECHANISMS, signMechanism, type SignMechanism } from '../../kmu/signMechanisms.js';

/** The mechanism and the bytes to give C_Sign / C_Verify for a message. */
export function signingInput(m: SignMechanism, message: Buffer): { mechanism: Mechanism; data: Buffer } {
  if (m.keyType === CKK.RSA) {
    if (!m.pss) return { mechanism: { mechanism: m.ckm }, data: message };
    const d = DIGEST_CKM[m.digest];
    // CK_RSA_PKCS_PSS_PARAMS: three CK_ULONGs (hashAlg, mgf, sLen), native width and order.
    const params = Buffer.alloc(24);
    [d.hash, d.mgf, d.length].forEach((v, i) => params.writeBigUInt64LE(BigInt(v), i * 8));
    return { mechanism: { mechanism: m.ckm, parameter: params }, data: message };
  }
  return { mechanism: { mechanism: m.ckm }, data: createHash(m.digest).update(message).digest() };
}

function derInt(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** r || s (each half the length) → DER SEQUENCE { r, s }. */
export function rawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([derInt(raw.subarray(0, half)), derInt(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

function readLength(b: Buffer, at: number): [number, number] | undefined {
  const first = b[at];
  if (first === undefined) return undefined;
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  if (n === 0 || n > 3 || at + 1 + n > b.length) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[at + 1 + i]!;
  return [len, at + 1 + n];
}

/** DER SEQUENCE { r, s } → r || s with each half `half` bytes; undefined if it is not one. */
export function derToRaw(der: Buffer, half: number): Buffer | undefined {
  if (der[0] !== 0x30) return undefined;
  const seq = readLength(der, 1);
  if (!seq || seq[1] + seq[0] !== der.length) return undefined;
  const out: Buffer[] = [];
  let at = seq[1];
  for (let k = 0; k < 2; k++) {
    if (der[at] !== 0x02) return undefined;
    const l = readLength(der, at + 1);
    if (!l || l[1] + l[0] > der.length) return undefined;
    let v = der.subarray(l[1], l[1] + l[0]);
    while (v.length > half && v[0] === 0) v = v.subarray(1);
    if (v.length > half) return undefined;
    out.push(Buffer.concat([Buffer.alloc(half - v.length), v]));
    at = l[1] + l[0];
  }
  return at === der.length ? Buffer.concat(out) : undefined;
}

export function mechanismFlag(text: string, flag: string): SignMechanism {
  const m = /^[0-9]+$/.test(text) ? signMechanism(Number(text)) : undefined;
  if (!m) throw new UsageError(`${flag} takes a signing mechanism (${SIGN_MECHANISMS.map((x) => x.id).join(', ')}), not '${text}'`);
  return m;
}

const KEY_TYPE_NAMES: Record<number, string> = { [CKK.RSA]: 'RSA', [CKK.EC]: 'EC', [CKK.DSA]: 'DSA' };

/** A mechanism works with one key type: anything else is refused before the token is asked. */
export function requireKeyType(m: SignMechanism, keyType: number, handle: number): void {
  if (keyType !== m.keyType)
    throw new KmuError(RC.INVALID_INPUT, {
      detail: `mechanism ${m.id} (${m.name}) needs an ${KEY_TYPE_NAMES[m.keyType]} key; key ${handle} is ${KEY_TYPE_NAMES[keyType] ?? 'another type'}`,
    });
}
