// How a token object is recognised again (README "Key handles"): pure, attributes in, identity out.
//  fam   its family: key type and domain (curve, DSA p/q/g, RSA size; a secret key's type,
//        length and check value). Immutable.
//  fp    its key material, the same for both halves of a pair (or its CKA_UNIQUE_ID). A private
//        EC/DSA key has one through CKA_PUBLIC_KEY_INFO, else reconcile.ts may lend it its one
//        public key's; its own value is never read.
//  hint  CKA_LABEL and CKA_ID: mutable, a tie-breaker.
import { createHash } from 'node:crypto';
import { CKA, CKK, CKO, magnitude, pairSpki, spkiPublicValue, unwrapOctetString, type AttributeValue } from '../../p11/index.js';

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
  /** A pair half's public value (hex; EC point uncompressed, DSA y). */
  pub?: string;
  /** fp and pub lent by its one public key (reconcile.ts). */
  paired?: boolean;
  ec?: Buffer;
  dsa?: { p: Buffer; q: Buffer; g: Buffer };
}

const isKey = (cls: number) => cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;

function readsFor(cls: number, kt: number): number[] {
  if (cls === CKO.SECRET_KEY) return [CKA.VALUE_LEN, CKA.CHECK_VALUE, CKA.VALUE];
  const priv = cls === CKO.PRIVATE_KEY;
  if (!isKey(cls)) return [];
  if (kt === CKK.EC) return [CKA.EC_PARAMS, priv ? CKA.PUBLIC_KEY_INFO : CKA.EC_POINT];
  if (kt === CKK.DSA) return [CKA.PRIME, CKA.SUBPRIME, CKA.BASE, priv ? CKA.PUBLIC_KEY_INFO : CKA.VALUE];
  if (kt === CKK.RSA) return [CKA.MODULUS, CKA.PUBLIC_EXPONENT];
  return [CKA.VALUE];
}

const BASE = [CKA.CLASS, CKA.KEY_TYPE, CKA.TOKEN, CKA.LABEL, CKA.ID];
/** A first read of an unknown object: what an EC key needs (its kind then tells what else). */
export const FIRST_READ = [...BASE, CKA.EC_PARAMS, CKA.EC_POINT];
/** Everything describe() needs of an object of a known kind, in one read. */
export const readsOf = (cls: number, kt: number, uniqueId: boolean): number[] => [...BASE, ...readsFor(cls, kt), ...(uniqueId ? [CKA.UNIQUE_ID] : [])];

const hash = (...parts: Array<string | Buffer>): string => {
  const h = createHash('sha256');
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    h.update(Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255])).update(b);
  }
  return h.digest('hex').slice(0, 32);
};

const buf = (v: AttributeValue | undefined): Buffer | undefined => (Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'utf8') : undefined);
const num = (v: AttributeValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined);
const nonEmpty = (v: AttributeValue | undefined) => ((b) => (b?.length ? b : undefined))(buf(v));

/** The fingerprint of a pair of this EC/DSA domain with public value `pub` (hex). */
export function fpFor(i: Pick<ObjInfo, 'ec' | 'dsa'>, pub: string): string | undefined {
  const v = Buffer.from(pub, 'hex');
  if (i.ec) return hash('ec', i.ec, v);
  return i.dsa && hash('dsa', magnitude(i.dsa.p), magnitude(i.dsa.q), magnitude(i.dsa.g), magnitude(v));
}

/** One object's identity from its attributes (as readsOf() lists them; absent = unavailable). */
export function describe(obj: number, attrs: ReadonlyMap<number, AttributeValue>): ObjInfo {
  const cls = num(attrs.get(CKA.CLASS)) ?? -1;
  const kt = num(attrs.get(CKA.KEY_TYPE)) ?? -1;
  const label = buf(attrs.get(CKA.LABEL))?.toString('utf8') ?? '';
  const id = buf(attrs.get(CKA.ID)) ?? Buffer.alloc(0);
  const parts = [...attrs].sort((a, b) => a[0] - b[0]).flatMap(([t, v]) => [String(t), buf(v) ?? `${typeof v}:${String(v)}`]);
  const tok = attrs.get(CKA.TOKEN) === true;
  const i: ObjInfo = { obj, cls, kt, tok, label, id, hint: hash('hint', label, id).slice(0, 16), readHash: hash('read', ...parts), fam: `c${cls}` };
  // Nothing readable (SoftHSM: the empty file a kill -9 right after creation leaves).
  if (!attrs.has(CKA.CLASS)) return { ...i, fam: 'unreadable', fp: hash('unreadable') };
  const value = nonEmpty(attrs.get(CKA.VALUE));
  const pub = (v: Buffer | undefined) => void (v && ((i.pub = v.toString('hex')), (i.fp = fpFor(i, i.pub))));
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
    const raw = buf(attrs.get(CKA.VALUE));
    if (cls === CKO.PUBLIC_KEY && raw) i.fp = hash('key', String(kt), raw);
  }
  // A private key kmu11 generated says which public key it has.
  const spki = nonEmpty(attrs.get(CKA.PUBLIC_KEY_INFO));
  if (cls === CKO.PRIVATE_KEY && !i.fp && spki && (i.ec || i.dsa)) {
    const v = spkiPublicValue(spki, i.dsa !== undefined);
    if (v && pairSpki(i, v)?.equals(spki)) pub(v);
  }
  const uid = nonEmpty(attrs.get(CKA.UNIQUE_ID));
  if (uid) i.fp = hash('uid', uid);
  if (isKey(cls) && !i.fp && (kt === CKK.EC ? !i.ec : kt === CKK.DSA ? !i.dsa : kt === CKK.RSA ? !i.fam.startsWith('rsa') : kt < 0)) {
    // A key without the domain its type needs: what a kill -9 inside a generation leaves in
    // SoftHSM's token directory. Never usable; alike ones are copies of one thing.
    return { ...i, ec: undefined, dsa: undefined, fam: `malformed:${kt}`, fp: hash('malformed', String(cls), String(kt), tok ? '1' : '0', label, id) };
  }
  return i;
}

/** Half made: an object another process may be creating right now (or the remains of one killed). */
export const halfMade = (i: ObjInfo): boolean => i.fam === 'unreadable' || i.fam.startsWith('malformed');
