// genECCKeyPair's curve ids (1-15, as the key_mgmt_util page numbers them), with the names
// operators also type, and the OID that goes into CKA_EC_PARAMS.

import type { CurveInfo } from '../api.js';

/** A row of the table (the library's CurveInfo); `names` are matched case-insensitively. */
export type Curve = CurveInfo;

const row = (id: number, nid: string, oid: string, bits: number, names: string[], forbidden = false): Curve =>
  Object.freeze({ id, nid, names: Object.freeze([nid.replace(/^NID_(X9_62_)?/, ''), ...names]), oid, bits, cloudhsmForbidden: forbidden });

export const CURVES: readonly Curve[] = Object.freeze([
  row(1, 'NID_X9_62_prime192v1', '1.2.840.10045.3.1.1', 192, ['secp192r1', 'P-192'], true),
  row(2, 'NID_X9_62_prime256v1', '1.2.840.10045.3.1.7', 256, ['secp256r1', 'P-256']),
  row(3, 'NID_sect163k1', '1.3.132.0.1', 163, ['K-163']),
  row(4, 'NID_sect163r2', '1.3.132.0.15', 163, ['B-163']),
  row(5, 'NID_sect233k1', '1.3.132.0.26', 233, ['K-233']),
  row(6, 'NID_sect233r1', '1.3.132.0.27', 233, ['B-233']),
  row(7, 'NID_sect283k1', '1.3.132.0.16', 283, ['K-283']),
  row(8, 'NID_sect283r1', '1.3.132.0.17', 283, ['B-283']),
  row(9, 'NID_sect409k1', '1.3.132.0.36', 409, ['K-409']),
  row(10, 'NID_sect409r1', '1.3.132.0.37', 409, ['B-409']),
  row(11, 'NID_sect571k1', '1.3.132.0.38', 571, ['K-571']),
  row(12, 'NID_sect571r1', '1.3.132.0.39', 571, ['B-571']),
  row(13, 'NID_secp224r1', '1.3.132.0.33', 224, ['P-224']),
  row(14, 'NID_secp384r1', '1.3.132.0.34', 384, ['P-384']),
  row(15, 'NID_secp521r1', '1.3.132.0.35', 521, ['P-521']),
]);

const byName = new Map<string, Curve>();
for (const c of CURVES) for (const n of [c.nid, ...c.names]) byName.set(n.toLowerCase(), c);

/** A curve by kmu id ("2") or by name ("prime256v1", "P-256", "secp256r1"); undefined if neither. */
export function findCurve(text: string): Curve | undefined {
  if (/^[0-9]+$/.test(text)) return CURVES.find((c) => c.id === Number(text));
  return byName.get(text.toLowerCase());
}

export function curveByOid(oid: string): Curve | undefined {
  return CURVES.find((c) => c.oid === oid);
}

/** DER encoding of an OBJECT IDENTIFIER: the value of CKA_EC_PARAMS for a named curve. */
export function oidToDer(oid: string): Buffer {
  const arcs = oid.split('.').map(Number);
  const body: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const bytes = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) bytes.unshift((v & 0x7f) | 0x80);
    body.push(...bytes);
  }
  return Buffer.from([0x06, body.length, ...body]);
}

/** The dotted OID inside a DER OBJECT IDENTIFIER, or undefined if it is not one. */
export function derToOid(der: Buffer): string | undefined {
  if (der.length < 3 || der[0] !== 0x06 || der[1] !== der.length - 2) return undefined;
  const arcs: number[] = [];
  let v = 0;
  for (const b of der.subarray(2)) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  const first = arcs.shift()!;
  const a0 = first < 80 ? Math.floor(first / 40) : 2;
  return [a0, first - a0 * 40, ...arcs].join('.');
}
