// How a token object is recognised again: pure, its attributes in, its identity out.
//  - fam: its family: class-independent key type plus domain (EC curve, DSA p/q/g, RSA size,
//    secret key type/length/CKA_CHECK_VALUE). Immutable.
//  - fp: a fingerprint of its key material, the same for both halves of a pair (EC params +
//    point, DSA p/q/g/y, RSA n/e, a readable secret value, a certificate's value), or of its
//    CKA_UNIQUE_ID. A private EC/DSA key has one when its CKA_PUBLIC_KEY_INFO is set (kmu11
//    writes it on every private key it generates); else reconcile.ts may lend it the one of its
//    one public key of the same family, label and id (its value, even where readable, is never
//    used: nothing more is needed to pair it, and it stays out of memory).
//  - hint: hash of CKA_LABEL and CKA_ID. Mutable (setAttribute, other tools): a tie-breaker.
import { createHash } from 'node:crypto';
import { CKA, CKK, CKO, dsaSpki, ecSpki, magnitude, unwrapOctetString, type AttributeValue } from '../../p11/index.js';

export interface ObjInfo {
  obj: number;
  cls: number;
  /** CKA_KEY_TYPE, or -1. */
  kt: number;
  tok: boolean;
  label: string;
  id: Buffer;
  hint: string;
  /** Hash of every attribute read: the same object, unchanged. */
  readHash: string;
  fam: string;
  fp?: string;
  /** Public value (hex; EC point uncompressed, DSA y) of a key pair's half. */
  pub?: string;
  /** fp and pub were lent by the one public key of its family, label and id (reconcile.ts). */
  paired?: boolean;
  /** Domain of an EC/DSA key: a private key's SubjectPublicKeyInfo is built from it. */
  ec?: Buffer;
  dsa?: { p: Buffer; q: Buffer; g: Buffer };
}

const isKey = (cls: number) => cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;

/** What describe() needs of an object of this class and key type, besides CLASS..ID. */
function readsFor(cls: number, kt: number): number[] {
  if (cls === CKO.SECRET_KEY) return [CKA.VALUE_LEN, CKA.CHECK_VALUE, CKA.VALUE];
  const priv = cls === CKO.PRIVATE_KEY;
  if (isKey(cls) && kt === CKK.EC) return [CKA.EC_PARAMS, priv ? CKA.PUBLIC_KEY_INFO : CKA.EC_POINT];
  if (isKey(cls) && kt === CKK.DSA) return [CKA.PRIME, CKA.SUBPRIME, CKA.BASE, priv ? CKA.PUBLIC_KEY_INFO : CKA.VALUE];
  if (isKey(cls) && kt === CKK.RSA) return [CKA.MODULUS, CKA.PUBLIC_EXPONENT];
  if (isKey(cls)) return [CKA.VALUE];
  if (cls === CKO.CERTIFICATE) return [CKA.CERTIFICATE_TYPE, CKA.VALUE];
  if (cls === CKO.DATA) return [CKA.APPLICATION, CKA.OBJECT_ID, CKA.VALUE];
  return [];
}

const BASE = [CKA.CLASS, CKA.KEY_TYPE, CKA.TOKEN, CKA.LABEL, CKA.ID];
/**
 * A first read of an unknown object: what an EC key needs. (The addon asks once more per
 * attribute when several are unavailable; an EC private key lacks only CKA_EC_POINT.)
 */
export const FIRST_READ = [...BASE, CKA.EC_PARAMS, CKA.EC_POINT];
/** Everything describe() needs of an object of a known kind, in one read. */
export const readsOf = (cls: number, kt: number, uniqueId: boolean): number[] =>
  [...BASE, ...readsFor(cls, kt), ...(uniqueId ? [CKA.UNIQUE_ID] : [])];

export const hash = (...parts: Array<string | Buffer>): string => {
  const h = createHash('sha256');
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    h.update(n).update(b);
  }
  return h.digest('hex').slice(0, 32);
};

export const hintOf = (label: string, id: Buffer): string => hash('hint', label, id).slice(0, 16);

const buf = (v: AttributeValue | undefined): Buffer | undefined =>
  Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'utf8') : undefined;
const num = (v: AttributeValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined);
const nonEmpty = (v: AttributeValue | undefined) => ((b) => (b && b.length > 0 ? b : undefined))(buf(v));

/** The fingerprint of a pair of this EC/DSA domain with public value `pub` (hex). */
export function fpFor(i: Pick<ObjInfo, 'ec' | 'dsa'>, pub: string): string | undefined {
  const v = Buffer.from(pub, 'hex');
  if (i.ec) return hash('ec', i.ec, v);
  if (i.dsa) return hash('dsa', magnitude(i.dsa.p), magnitude(i.dsa.q), magnitude(i.dsa.g), magnitude(v));
  return undefined;
}

/** The SubjectPublicKeyInfo of a pair of this domain with public value `pub` (hex). */
export function spkiFor(i: Pick<ObjInfo, 'ec' | 'dsa'>, pub: string): Buffer | undefined {
  const v = Buffer.from(pub, 'hex');
  if (i.ec) return ecSpki(i.ec, v);
  if (i.dsa) return dsaSpki(i.dsa.p, i.dsa.q, i.dsa.g, v);
  return undefined;
}

/** One DER element at `at`: where its contents start and end. */
function derAt(b: Buffer, at: number): { start: number; end: number } | undefined {
  if (at + 2 > b.length) return undefined;
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || start + n > b.length) return undefined;
    len = b.readUIntBE(start, n);
    start += n;
  }
  return start + len <= b.length ? { start, end: start + len } : undefined;
}

/** The public value (hex) in a SubjectPublicKeyInfo: the EC point, or DSA's y. */
function publicValueOf(spki: Buffer, dsa: boolean): string | undefined {
  const seq = derAt(spki, 0);
  const alg = seq && derAt(spki, seq.start);
  const bits = alg && spki[alg.end] === 0x03 ? derAt(spki, alg.end) : undefined;
  if (!bits || bits.end - bits.start < 2) return undefined;
  const key = spki.subarray(bits.start + 1, bits.end);
  if (!dsa) return key.toString('hex');
  const y = key[0] === 0x02 ? derAt(key, 0) : undefined;
  return y ? magnitude(key.subarray(y.start, y.end)).toString('hex') : undefined;
}

/** One object's identity from its attributes (as readsOf() lists them; absent = unavailable). */
export function describe(obj: number, attrs: ReadonlyMap<number, AttributeValue>): ObjInfo {
  const cls = num(attrs.get(CKA.CLASS)) ?? -1;
  const kt = num(attrs.get(CKA.KEY_TYPE)) ?? -1;
  const label = buf(attrs.get(CKA.LABEL))?.toString('utf8') ?? '';
  const id = buf(attrs.get(CKA.ID)) ?? Buffer.alloc(0);
  const parts = [...attrs].sort((a, b) => a[0] - b[0]).flatMap(([t, v]) => [String(t), buf(v) ?? `${typeof v}:${String(v)}`]);
  const tok = attrs.get(CKA.TOKEN) === true;
  const i: ObjInfo = { obj, cls, kt, tok, label, id, hint: hintOf(label, id), readHash: hash('read', ...parts), fam: `c${cls}` };
  // Nothing readable (SoftHSM: the empty file a kill -9 right after creation leaves): junk
  // nobody can use or tell apart from other junk like it.
  if (!attrs.has(CKA.CLASS)) return { ...i, fam: 'unreadable', fp: hash('unreadable') };
  const raw = buf(attrs.get(CKA.VALUE));
  const value = nonEmpty(raw);
  const pub = (v: Buffer | undefined) => (v ? ((i.pub = v.toString('hex')), (i.fp = fpFor(i, i.pub))) : undefined);
  if (isKey(cls) && kt === CKK.EC && nonEmpty(attrs.get(CKA.EC_PARAMS))) {
    i.ec = buf(attrs.get(CKA.EC_PARAMS))!;
    i.fam = `ec:${i.ec.toString('hex')}`;
    const point = nonEmpty(attrs.get(CKA.EC_POINT));
    if (cls === CKO.PUBLIC_KEY && point) pub(unwrapOctetString(point));
  } else if (isKey(cls) && kt === CKK.DSA) {
    const [p, q, g] = [CKA.PRIME, CKA.SUBPRIME, CKA.BASE].map((t) => nonEmpty(attrs.get(t)));
    if (p && q && g) {
      i.dsa = { p, q, g };
      i.fam = `dsa:${hash('dsa-domain', magnitude(p), magnitude(q), magnitude(g))}`;
      if (cls === CKO.PUBLIC_KEY && value) pub(magnitude(value));
    }
  } else if (isKey(cls) && kt === CKK.RSA) {
    const [n, e] = [nonEmpty(attrs.get(CKA.MODULUS)), nonEmpty(attrs.get(CKA.PUBLIC_EXPONENT))];
    if (n) i.fam = `rsa:${magnitude(n).length * 8}`;
    if (n && e) i.fp = hash('rsa', magnitude(n), magnitude(e));
  } else if (cls === CKO.SECRET_KEY) {
    const len = num(attrs.get(CKA.VALUE_LEN)) ?? value?.length ?? -1;
    i.fam = `sec:${kt}:${len}:${buf(attrs.get(CKA.CHECK_VALUE))?.toString('hex') ?? ''}`;
    if (value) i.fp = hash('secret', String(kt), value);
  } else if (isKey(cls)) {
    i.fam = `k:${kt}`;
    if (cls === CKO.PUBLIC_KEY && raw) i.fp = hash('key', String(kt), raw);
  } else if (cls === CKO.CERTIFICATE) {
    i.fam = `cert:${num(attrs.get(CKA.CERTIFICATE_TYPE)) ?? -1}`;
    if (raw) i.fp = hash('cert', raw);
  } else if (cls === CKO.DATA) {
    i.fam = 'data';
    if (raw) i.fp = hash('data', buf(attrs.get(CKA.APPLICATION)) ?? '', buf(attrs.get(CKA.OBJECT_ID)) ?? '', raw);
  }
  // A private key kmu11 generated says which public key it has (CKA_PUBLIC_KEY_INFO).
  const spki = nonEmpty(attrs.get(CKA.PUBLIC_KEY_INFO));
  if (cls === CKO.PRIVATE_KEY && !i.fp && spki && (i.ec || i.dsa)) {
    const v = publicValueOf(spki, i.dsa !== undefined);
    if (v && spkiFor(i, v)?.equals(spki)) pub(Buffer.from(v, 'hex'));
  }
  // PKCS#11 3.0 tokens name every object for good: that is its identity.
  const uid = nonEmpty(attrs.get(CKA.UNIQUE_ID));
  if (uid) i.fp = hash('uid', uid);
  if (isKey(cls) && !i.fp && malformed(kt, i)) {
    // A key without the domain its type needs: what a kill -9 in the middle of a generation
    // leaves in SoftHSM's token directory. Never usable, and two of them with one label and id
    // cannot be told apart: copies of one thing, in a family of their own.
    return { ...i, ec: undefined, dsa: undefined, fam: `malformed:${kt}`, fp: hash('malformed', String(cls), String(kt), tok ? '1' : '0', label, id) };
  }
  return i;
}

const malformed = (kt: number, i: ObjInfo) =>
  kt === CKK.EC ? !i.ec : kt === CKK.DSA ? !i.dsa : kt === CKK.RSA ? !i.fam.startsWith('rsa') : kt < 0;

/** Half made: an object another process may be creating right now (or the remains of one killed). */
export const halfMade = (i: ObjInfo): boolean => i.fam === 'unreadable' || i.fam.startsWith('malformed');
