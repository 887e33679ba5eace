// Recognising a token object again without writing anything to it.
//
// Every object is read afresh by each store operation, in one C_GetAttributeValue (READ below;
// a second one for keys other than EC), and reduced to:
//  - fam: its family: class-independent key type plus domain (EC curve, DSA p/q/g, RSA size,
//    secret key type/length/CKA_CHECK_VALUE). Immutable.
//  - fp: a fingerprint of its key material, the same for both halves of a pair: EC params +
//    point, DSA p/q/g/y, RSA n/e, hash of a readable secret value, of a certificate's value.
//    Immutable, and unique to the key. Known from attributes alone for public keys, RSA
//    private keys, readable secrets, and EC/DSA private keys whose CKA_VALUE is readable
//    (the public value is derived: Q = dG, y = g^x mod p). A sensitive EC or DSA private key
//    shows only its domain, so its fp comes from elsewhere: from register() (the partner
//    generated with it), from a public key object with the same family, CKA_LABEL and CKA_ID
//    ("pairing", unconfirmed), or from a sign-test: the key signs a random challenge on the
//    token and node:crypto verifies it against candidate public values.
//  - hint: hash of CKA_LABEL and CKA_ID. Mutable (setAttribute, other tools), so only used
//    to tell apart things that fp cannot.
import { ECDH, createECDH, createHash, createPublicKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  CKA,
  CKK,
  CKM,
  CKO,
  CKR,
  dsaSpki,
  ecSpki,
  magnitude,
  unwrapOctetString,
  type AttributeValue,
  type Mechanism,
  type Session,
} from '../../p11/index.js';

/** Named curves node:crypto's ECDH knows, by the DER of their OID (CKA_EC_PARAMS). */
export const ECDH_CURVES: Readonly<Record<string, string>> = {
  '06082a8648ce3d030107': 'prime256v1',
  '06052b81040022': 'secp384r1',
  '06052b81040023': 'secp521r1',
  '06052b81040021': 'secp224r1',
  '06052b8104000a': 'secp256k1',
  '06082a8648ce3d030101': 'prime192v1',
  '06092b2403030208010107': 'brainpoolP256r1',
  '06092b240303020801010b': 'brainpoolP384r1',
  '06092b240303020801010d': 'brainpoolP512r1',
};

/**
 * What readInfo asks for first: everything an EC key needs. The addon finds out why an
 * attribute is unavailable with one more call per attribute when more than one is, so the
 * lists keep to attributes the object has: an EC public key lacks only CKA_SIGN here, an EC
 * private key only CKA_EC_POINT.
 */
export const READ: number[] = [CKA.CLASS, CKA.KEY_TYPE, CKA.TOKEN, CKA.LABEL, CKA.ID, CKA.EC_PARAMS, CKA.EC_POINT, CKA.SIGN];
/** Then what other kinds of object need besides (CKA_VALUE of an EC private key only when it cannot sign: it may be readable). */
export function moreToRead(cls: number, kt: number, sign: boolean): number[] {
  const isKey = cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;
  if (cls === CKO.SECRET_KEY) return [CKA.VALUE_LEN, CKA.CHECK_VALUE, CKA.VALUE];
  if (isKey && kt === CKK.EC) return cls === CKO.PRIVATE_KEY ? [CKA.PUBLIC_KEY_INFO, ...(sign ? [] : [CKA.VALUE])] : [];
  if (isKey && kt === CKK.DSA) return [CKA.PRIME, CKA.SUBPRIME, CKA.BASE, CKA.VALUE, ...(cls === CKO.PRIVATE_KEY ? [CKA.PUBLIC_KEY_INFO] : [])];
  if (isKey && kt === CKK.RSA) return [CKA.MODULUS, CKA.PUBLIC_EXPONENT];
  if (isKey) return [CKA.VALUE];
  if (cls === CKO.CERTIFICATE) return [CKA.CERTIFICATE_TYPE, CKA.VALUE];
  if (cls === CKO.DATA) return [CKA.APPLICATION, CKA.OBJECT_ID, CKA.VALUE];
  return [];
}

export type FpSource = 'attr' | 'gen' | 'pair' | 'sig' | 'record';

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
  /** Public value (hex; EC point uncompressed when the curve is known, DSA y) of a key pair. */
  pub?: string;
  fpSrc?: FpSource;
  /** Domain, for building the SPKI of a private key's candidate public value. */
  ecParams?: Buffer;
  dsa?: { p: Buffer; q: Buffer; g: Buffer };
  /** EC/DSA private key with CKA_SIGN (a key that needs a context login fails the test: unknown). */
  canSign: boolean;
  /** Sign-test done in this process (whatever its outcome). */
  tested: boolean;
  /** Fingerprints a sign-test proved this object is not. */
  excluded: Set<string>;
}

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

function readHashOf(attrs: ReadonlyMap<number, AttributeValue>): string {
  const parts: Array<string | Buffer> = [];
  for (const [t, v] of [...attrs].sort((a, b) => a[0] - b[0])) parts.push(String(t), Buffer.isBuffer(v) ? v : `${typeof v}:${String(v)}`);
  return hash('read', ...parts);
}

export const hintOf = (label: string, id: Buffer): string => hash('hint', label, id).slice(0, 16);

const buf = (v: AttributeValue | undefined): Buffer | undefined =>
  Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'utf8') : undefined;
const num = (v: AttributeValue | undefined): number | undefined =>
  typeof v === 'number' ? v : Buffer.isBuffer(v) && v.length > 0 && v.length <= 8 ? Number(v.readUIntLE(0, Math.min(v.length, 6))) : undefined;
const bool = (v: AttributeValue | undefined): boolean | undefined =>
  typeof v === 'boolean' ? v : typeof v === 'number' ? v !== 0 : Buffer.isBuffer(v) && v.length === 1 ? v[0] !== 0 : undefined;

/** EC point in one canonical form: uncompressed when node knows the curve. */
export function canonicalPoint(ecParams: Buffer, raw: Buffer): Buffer {
  const point = unwrapOctetString(raw);
  const curve = ECDH_CURVES[ecParams.toString('hex')];
  if (curve && (point[0] === 0x02 || point[0] === 0x03)) {
    try {
      return ECDH.convertKey(point, curve, undefined, undefined, 'uncompressed') as Buffer;
    } catch {
      return point;
    }
  }
  return point;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}
const big = (b: Buffer): bigint => (b.length ? BigInt('0x' + b.toString('hex')) : 0n);
function toBuf(n: bigint): Buffer {
  let s = n.toString(16);
  if (s.length % 2) s = '0' + s;
  return Buffer.from(s, 'hex');
}

const ecFp = (params: Buffer, point: Buffer) => hash('ec', params, point);
const dsaFp = (p: Buffer, q: Buffer, g: Buffer, y: Buffer) =>
  hash('dsa', magnitude(p), magnitude(q), magnitude(g), magnitude(y));

/** Reduce one object's attributes (as READ returns them) to what matching needs. */
export function describe(obj: number, attrs: ReadonlyMap<number, AttributeValue>): ObjInfo {
  const cls = num(attrs.get(CKA.CLASS)) ?? -1;
  const kt = num(attrs.get(CKA.KEY_TYPE)) ?? -1;
  const labelV = attrs.get(CKA.LABEL);
  const label = typeof labelV === 'string' ? labelV : (buf(labelV)?.toString('utf8') ?? '');
  const id = buf(attrs.get(CKA.ID)) ?? Buffer.alloc(0);
  const info: ObjInfo = {
    obj,
    cls,
    kt,
    tok: bool(attrs.get(CKA.TOKEN)) ?? false,
    label,
    id,
    hint: hintOf(label, id),
    readHash: readHashOf(attrs),
    fam: `c${cls}`,
    canSign: false,
    tested: false,
    excluded: new Set(),
  };
  if (!attrs.has(CKA.CLASS)) {
    // Nothing readable: junk nobody can use or tell apart from other junk like it.
    info.fam = 'unreadable';
    info.fp = hash('unreadable');
    info.fpSrc = 'attr';
    return info;
  }
  const value = buf(attrs.get(CKA.VALUE));
  const isKey = cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;
  if (isKey && kt === CKK.EC) {
    const params = buf(attrs.get(CKA.EC_PARAMS));
    if (params && params.length > 0) {
      info.fam = `ec:${params.toString('hex')}`;
      info.ecParams = params;
      if (cls === CKO.PUBLIC_KEY) {
        const raw = buf(attrs.get(CKA.EC_POINT));
        if (raw) {
          const point = canonicalPoint(params, raw);
          info.pub = point.toString('hex');
          info.fp = ecFp(params, point);
          info.fpSrc = 'attr';
        }
      } else if (cls === CKO.PRIVATE_KEY && value && value.length > 0) {
        const curve = ECDH_CURVES[params.toString('hex')];
        if (curve) {
          try {
            const ecdh = createECDH(curve);
            ecdh.setPrivateKey(magnitude(value));
            const point = ecdh.getPublicKey();
            info.pub = point.toString('hex');
            info.fp = ecFp(params, point);
            info.fpSrc = 'attr';
          } catch {
            /* not a usable scalar: stays a private key of unknown public value */
          }
        }
      }
    }
  } else if (isKey && kt === CKK.DSA) {
    const [p, q, g] = [CKA.PRIME, CKA.SUBPRIME, CKA.BASE].map((t) => buf(attrs.get(t)));
    if (p && q && g) {
      info.fam = `dsa:${hash('dsa-domain', magnitude(p), magnitude(q), magnitude(g))}`;
      info.dsa = { p, q, g };
      let y: Buffer | undefined;
      if (cls === CKO.PUBLIC_KEY) y = value;
      else if (cls === CKO.PRIVATE_KEY && value && value.length > 0) y = toBuf(modPow(big(g), big(value), big(p)));
      if (y) {
        info.pub = magnitude(y).toString('hex');
        info.fp = dsaFp(p, q, g, y);
        info.fpSrc = 'attr';
      }
    }
  } else if (isKey && kt === CKK.RSA) {
    const n = buf(attrs.get(CKA.MODULUS));
    const e = buf(attrs.get(CKA.PUBLIC_EXPONENT));
    if (n) {
      info.fam = `rsa:${magnitude(n).length * 8}`;
      if (e) {
        info.fp = hash('rsa', magnitude(n), magnitude(e));
        info.fpSrc = 'attr';
      }
    }
  } else if (cls === CKO.SECRET_KEY) {
    const len = num(attrs.get(CKA.VALUE_LEN)) ?? value?.length ?? -1;
    const kcv = buf(attrs.get(CKA.CHECK_VALUE))?.toString('hex') ?? '';
    info.fam = `sec:${kt}:${len}:${kcv}`;
    if (value && value.length > 0) {
      info.fp = hash('secret', String(kt), value);
      info.fpSrc = 'attr';
    }
  } else if (isKey) {
    info.fam = `k:${kt}`;
    if (cls === CKO.PUBLIC_KEY && value) {
      info.fp = hash('key', String(kt), value);
      info.fpSrc = 'attr';
    }
  } else if (cls === CKO.CERTIFICATE) {
    info.fam = `cert:${num(attrs.get(CKA.CERTIFICATE_TYPE)) ?? -1}`;
    if (value) {
      info.fp = hash('cert', value);
      info.fpSrc = 'attr';
    }
  } else if (cls === CKO.DATA) {
    const app = buf(attrs.get(CKA.APPLICATION)) ?? Buffer.alloc(0);
    const oid = buf(attrs.get(CKA.OBJECT_ID)) ?? Buffer.alloc(0);
    info.fam = `data`;
    if (value) {
      info.fp = hash('data', app, oid, value);
      info.fpSrc = 'attr';
    }
  }
  // A private key kmu11 generated carries its public key (CKA_PUBLIC_KEY_INFO, written right
  // after generation): its fingerprint for sure, as the public half's, without a sign-test.
  const spki = buf(attrs.get(CKA.PUBLIC_KEY_INFO));
  if (cls === CKO.PRIVATE_KEY && info.fp === undefined && spki && spki.length > 0 && (info.ecParams || info.dsa)) {
    const pub = publicValueOf(spki, info.dsa !== undefined);
    const fp = pub && spkiFor(info, pub)?.equals(spki) ? fpFor(info, pub) : undefined;
    if (pub && fp) {
      info.pub = pub;
      info.fp = fp;
      info.fpSrc = 'attr';
    }
  }
  // PKCS#11 3.0 tokens name every object for good (CKA_UNIQUE_ID): that is its identity, and
  // nothing else is needed (the public value, if known, still serves getAttribute and KCVs).
  const uid = buf(attrs.get(CKA.UNIQUE_ID));
  if (uid && uid.length > 0) {
    info.fp = hash('uid', uid);
    info.fpSrc = 'attr';
  }
  if (isKey && info.fp === undefined && malformed(kt, attrs)) {
    // A key object without the domain its type needs (an EC key without CKA_EC_PARAMS...):
    // what a kill -9 in the middle of a generation leaves in SoftHSM's token directory. It
    // can never be used, and two of them with the same label and id cannot be told apart by
    // anything, so they count as copies of one thing (interchangeable) rather than as
    // different keys nobody can resolve. It keeps its own family so it never meets real keys.
    info.fam = `malformed:${kt}`;
    info.fp = hash('malformed', String(cls), String(kt), info.tok ? '1' : '0', label, id);
    info.fpSrc = 'attr';
    info.ecParams = undefined;
    info.dsa = undefined;
  }
  info.canSign =
    cls === CKO.PRIVATE_KEY &&
    (info.ecParams !== undefined || info.dsa !== undefined) &&
    bool(attrs.get(CKA.SIGN)) === true;
  return info;
}

function malformed(kt: number, attrs: ReadonlyMap<number, AttributeValue>): boolean {
  const empty = (t: number) => (buf(attrs.get(t))?.length ?? 0) === 0;
  if (kt === CKK.EC) return empty(CKA.EC_PARAMS);
  if (kt === CKK.DSA) return empty(CKA.PRIME) || empty(CKA.SUBPRIME) || empty(CKA.BASE);
  if (kt === CKK.RSA) return empty(CKA.MODULUS);
  return kt < 0;
}

/** Half made: an object another process may be creating right now (or the remains of one killed). */
export const halfMade = (i: ObjInfo): boolean => i.fam === 'unreadable' || i.fam.startsWith('malformed');

/** The fingerprint a private key of this family would have with public value `pub` (hex). */
export function fpFor(info: ObjInfo, pub: string): string | undefined {
  if (info.ecParams) return ecFp(info.ecParams, Buffer.from(pub, 'hex'));
  if (info.dsa) return dsaFp(info.dsa.p, info.dsa.q, info.dsa.g, Buffer.from(pub, 'hex'));
  return undefined;
}

/**
 * Read one object's attributes (readInfo describes them). Throws what the module says
 * (CKR_OBJECT_HANDLE_INVALID: gone), except that an object the module lists but whose every
 * attribute it refuses with CKR.ATTRIBUTE_VALUE_INVALID (SoftHSM: the empty object file a
 * kill -9 right after its creation leaves) reads as nothing: 'unreadable'. `kind`: the class and
 * key type the caller expects (the private half of a pair whose public half it just read): one
 * C_GetAttributeValue then asks for everything, a second only if the guess was wrong.
 */
export async function readAttrs(session: Session, obj: number, uniqueId = false, kind?: { cls: number; kt: number }): Promise<Map<number, AttributeValue>> {
  const attrs = new Map<number, AttributeValue>();
  const get = async (types: number[]) => {
    for (const r of await session.getAttributes(obj, types)) if ('value' in r) attrs.set(r.type, r.value);
  };
  const first = kind ? firstRead(kind, uniqueId) : READ;
  try {
    await get(first);
  } catch (e) {
    if ((e as { code?: unknown }).code !== CKR.ATTRIBUTE_VALUE_INVALID) throw e;
    return new Map();
  }
  const more = moreToRead(num(attrs.get(CKA.CLASS)) ?? -1, num(attrs.get(CKA.KEY_TYPE)) ?? -1, bool(attrs.get(CKA.SIGN)) === true);
  if (uniqueId) more.push(CKA.UNIQUE_ID);
  const missing = more.filter((t) => !first.includes(t));
  if (missing.length) {
    try {
      await get(missing);
    } catch (e) {
      if ((e as { code?: unknown }).code !== CKR.ATTRIBUTE_VALUE_INVALID) throw e;
    }
  }
  await checkValueOnToken(session, obj, attrs);
  return attrs;
}

export const readInfo = async (session: Session, obj: number, uniqueId = false, kind?: { cls: number; kt: number }): Promise<ObjInfo> =>
  describe(obj, await readAttrs(session, obj, uniqueId, kind));

/** Everything an object of `kind` needs, in one list (READ without what that kind lacks). */
function firstRead(kind: { cls: number; kt: number }, uniqueId: boolean): number[] {
  const base = [CKA.CLASS, CKA.KEY_TYPE, CKA.TOKEN, CKA.LABEL, CKA.ID, CKA.SIGN];
  if (kind.kt === CKK.EC) base.push(CKA.EC_PARAMS, ...(kind.cls === CKO.PUBLIC_KEY ? [CKA.EC_POINT] : []));
  return [...base, ...moreToRead(kind.cls, kind.kt, true), ...(uniqueId ? [CKA.UNIQUE_ID] : [])];
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
export function publicValueOf(spki: Buffer, dsa: boolean): string | undefined {
  const seq = derAt(spki, 0);
  const alg = seq && derAt(spki, seq.start);
  const bits = alg && spki[alg.end] === 0x03 ? derAt(spki, alg.end) : undefined;
  if (!bits || bits.end - bits.start < 2) return undefined;
  const key = spki.subarray(bits.start + 1, bits.end);
  if (!dsa) return key.toString('hex');
  const y = key[0] === 0x02 ? derAt(key, 0) : undefined;
  return y ? magnitude(key.subarray(y.start, y.end)).toString('hex') : undefined;
}


/**
 * (keycmds) SoftHSM leaves CKA_CHECK_VALUE empty on keys made by C_UnwrapKey (unWrapKey,
 * imSymKey, insertMaskedObject), so two sensitive secret keys of one type, size and label would
 * be indistinguishable. Their check value as PKCS#11 defines it (ECB of a zero block under the
 * key), computed on the token, stands in; a key that may not encrypt keeps the empty one.
 */
async function checkValueOnToken(session: Session, obj: number, attrs: Map<number, AttributeValue>): Promise<void> {
  if (num(attrs.get(CKA.CLASS)) !== CKO.SECRET_KEY || (buf(attrs.get(CKA.CHECK_VALUE))?.length ?? 0) > 0) return;
  const kt = num(attrs.get(CKA.KEY_TYPE));
  const ecb = kt === CKK.AES ? { mechanism: CKM.AES_ECB, block: 16 } : kt === CKK.DES3 ? { mechanism: CKM.DES3_ECB, block: 8 } : undefined;
  if (!ecb) return;
  // Only "this key may not encrypt" leaves it empty: any other failure (a device error) would
  // record a fingerprint the key never has again, and its handle would never resolve.
  const out = await session.encrypt({ mechanism: ecb.mechanism }, obj, Buffer.alloc(ecb.block)).catch((e: unknown) => {
    if ((e as { code?: number })?.code === CKR.KEY_FUNCTION_NOT_PERMITTED || (e as { code?: number })?.code === CKR.MECHANISM_INVALID) return undefined;
    throw e;
  });
  if (out) attrs.set(CKA.CHECK_VALUE, out.subarray(0, 3));
}

export function spkiFor(info: ObjInfo, pub: string): Buffer | undefined {
  const v = Buffer.from(pub, 'hex');
  if (info.ecParams) return ecSpki(info.ecParams, v);
  if (info.dsa) return dsaSpki(info.dsa.p, info.dsa.q, info.dsa.g, v);
  return undefined;
}

const keyCache = new Map<string, KeyObject | null>();
function publicKeyFor(info: ObjInfo, pub: string): KeyObject | null {
  const k = `${info.fam}\n${pub}`;
  let key = keyCache.get(k);
  if (key === undefined) {
    const spki = spkiFor(info, pub);
    try {
      key = spki ? createPublicKey({ key: spki, format: 'der', type: 'spki' }) : null;
    } catch {
      key = null; // a value node cannot load is simply not this key
    }
    if (keyCache.size > 4096) keyCache.clear();
    keyCache.set(k, key);
  }
  return key;
}

/**
 * Sign-test, first half: private key `info` signs a fresh random challenge on the token.
 * Returns a check "does public value `pub` (hex) verify it?" (done in software, node:crypto),
 * or undefined when the key could not sign (then nothing is learned).
 */
export async function signChallenge(session: Session, info: ObjInfo): Promise<((pub: string) => boolean) | undefined> {
  if (!info.canSign) return undefined;
  const challenge = randomBytes(32);
  let alg = 'sha256';
  let mechanism: Mechanism = { mechanism: CKM.ECDSA };
  if (info.dsa) {
    mechanism = { mechanism: CKM.DSA };
    const qLen = magnitude(info.dsa.q).length;
    alg = qLen <= 20 ? 'sha1' : qLen <= 28 ? 'sha224' : 'sha256';
  }
  const digest = createHash(alg).update(challenge).digest();
  let sig: Buffer;
  try {
    sig = await session.sign(mechanism, info.obj, digest);
  } catch {
    return undefined;
  }
  return (pub: string) => {
    const key = publicKeyFor(info, pub);
    try {
      return key !== null && cryptoVerify(alg, challenge, { key, dsaEncoding: 'ieee-p1363' }, sig);
    } catch {
      return false;
    }
  };
}

/**
 * Sign-test: does private key `info` belong to one of the public values `candidates` (hex)?
 * Returns the candidate that verified, null when none did, undefined when it could not sign.
 */
/** What was believed of a private key's public value, dropped (a sign-test ruled it out). */
export function forget(i: ObjInfo): void {
  i.fp = undefined;
  i.pub = undefined;
  i.fpSrc = undefined;
}

export async function signTest(session: Session, info: ObjInfo, candidates: Iterable<string>): Promise<string | null | undefined> {
  const check = await signChallenge(session, info);
  if (!check) return undefined;
  for (const c of candidates) if (check(c)) return c;
  return null;
}
