// Reading a key as kmu shows it: its PKCS#11 attributes, its public key (for a private key,
// the public value the handle store recorded, else found through its partner public key
// object), and the OBJ_ATTR values getAttribute prints.
import { randomBytes } from 'node:crypto';
import {
  CKA,
  CKK,
  CKM,
  CKO,
  dsaSpki,
  ecSpki,
  rsaSpki,
  unwrapOctetString,
  type AttributeValue,
  type Session,
  type Template,
} from '../../p11/index.js';
import { derToOid, curveByOid, oidToDer } from '../../kmu/curves.js';
import { asymmetricKcv } from '../../kmu/kcv.js';
import { OBJ, OBJ_ATTRS, type ObjAttr, type ObjAttrValue } from '../../kmu/objAttr.js';

/** Everything readable that kmu's views need, in one C_GetAttributeValue. */
const READ = [
  CKA.CLASS, CKA.KEY_TYPE, CKA.TOKEN, CKA.PRIVATE, CKA.LABEL, CKA.TRUSTED, CKA.ID, CKA.SENSITIVE,
  CKA.ENCRYPT, CKA.DECRYPT, CKA.WRAP, CKA.UNWRAP, CKA.SIGN, CKA.VERIFY, CKA.DERIVE, CKA.MODULUS,
  CKA.MODULUS_BITS, CKA.PUBLIC_EXPONENT, CKA.VALUE_LEN, CKA.EXTRACTABLE, CKA.LOCAL, CKA.NEVER_EXTRACTABLE,
  CKA.ALWAYS_SENSITIVE, CKA.DESTROYABLE, CKA.WRAP_WITH_TRUSTED, CKA.EC_PARAMS, CKA.EC_POINT, CKA.PRIME,
  CKA.SUBPRIME, CKA.BASE, CKA.VALUE, CKA.CHECK_VALUE,
];

export class KeyView {
  constructor(
    readonly object: number,
    readonly attrs: ReadonlyMap<number, AttributeValue>,
    /** A private key's public value (EC point, DSA y) known without its public half. */
    readonly recordedPublic?: Buffer,
  ) {}
  get(type: number): AttributeValue | undefined {
    return this.attrs.get(type);
  }
  buf(type: number): Buffer | undefined {
    const v = this.attrs.get(type);
    return Buffer.isBuffer(v) ? v : undefined;
  }
  get cls(): number {
    return Number(this.attrs.get(CKA.CLASS));
  }
  get keyType(): number {
    return Number(this.attrs.get(CKA.KEY_TYPE));
  }
  get curveOid(): string | undefined {
    const p = this.buf(CKA.EC_PARAMS);
    return p ? derToOid(p) : undefined;
  }
}

/** `recordedPublic`: HandleStore.publicValue of the key's handle, when it has one. */
export async function readKey(session: Session, object: number, recordedPublic?: Buffer): Promise<KeyView> {
  const reads = await session.getAttributes(object, READ);
  const attrs = new Map<number, AttributeValue>();
  for (const r of reads) if ('value' in r) attrs.set(r.type, r.value);
  return new KeyView(object, attrs, recordedPublic);
}

/** SPKI of a public key object, from its own attributes. */
export function publicSpki(pub: KeyView): Buffer | undefined {
  switch (pub.keyType) {
    case CKK.EC: {
      // Named curves only: the OID read from CKA_EC_PARAMS, encoded afresh.
      const oid = pub.curveOid;
      const point = pub.buf(CKA.EC_POINT);
      return oid && point ? ecSpki(oidToDer(oid), unwrapOctetString(point)) : undefined;
    }
    case CKK.DSA: {
      const [p, q, g, y] = [CKA.PRIME, CKA.SUBPRIME, CKA.BASE, CKA.VALUE].map((t) => pub.buf(t));
      return p && q && g && y ? dsaSpki(p, q, g, y) : undefined;
    }
    case CKK.RSA: {
      const [n, e] = [CKA.MODULUS, CKA.PUBLIC_EXPONENT].map((t) => pub.buf(t));
      return n && e ? rsaSpki(n, e) : undefined;
    }
  }
  return undefined;
}

const partners = new WeakMap<Session, Map<number, number | null>>();

/**
 * The public key object that belongs to a private key. Candidates share the key's public
 * parameters (and, first, its label and id); several are told apart by a signature the private
 * key makes and only its own public key verifies. Undefined when none can be confirmed.
 */
export async function partnerOf(session: Session, priv: KeyView): Promise<KeyView | undefined> {
  let cache = partners.get(session);
  if (!cache) partners.set(session, (cache = new Map()));
  const known = cache.get(priv.object);
  if (known === null) return undefined;
  if (known !== undefined) return readKey(session, known).catch(() => undefined);

  const shared: Template = [
    { type: CKA.CLASS, value: CKO.PUBLIC_KEY },
    { type: CKA.KEY_TYPE, value: priv.keyType },
  ];
  const params: number[] =
    priv.keyType === CKK.EC ? [CKA.EC_PARAMS] : priv.keyType === CKK.DSA ? [CKA.PRIME, CKA.SUBPRIME, CKA.BASE] : [CKA.MODULUS];
  for (const t of params) {
    const v = priv.get(t);
    if (v === undefined) return undefined;
    shared.push({ type: t, value: v });
  }
  const named: Template = [...shared];
  for (const t of [CKA.LABEL, CKA.ID]) {
    const v = priv.get(t);
    if (v !== undefined) named.push({ type: t, value: v });
  }
  let found: number | undefined;
  for (const template of [named, shared]) {
    const candidates = await session.find(template);
    if (candidates.length === 1 && template === named) {
      found = candidates[0];
      break;
    }
    if (candidates.length > 0) {
      found = await confirmBySignature(session, priv, candidates);
      if (found !== undefined) break;
    }
  }
  cache.set(priv.object, found ?? null);
  return found === undefined ? undefined : readKey(session, found);
}

async function confirmBySignature(session: Session, priv: KeyView, candidates: number[]): Promise<number | undefined> {
  if (priv.get(CKA.SIGN) !== true) return candidates.length === 1 ? candidates[0] : undefined;
  const mechanism =
    priv.keyType === CKK.EC ? CKM.ECDSA : priv.keyType === CKK.DSA ? CKM.DSA : priv.keyType === CKK.RSA ? CKM.RSA_PKCS : undefined;
  if (mechanism === undefined) return undefined;
  const challenge = randomBytes(32);
  const signature = await session.sign({ mechanism }, priv.object, challenge).catch(() => undefined);
  if (!signature) return undefined;
  for (const c of candidates) {
    if (await session.verify({ mechanism }, c, challenge, signature).catch(() => false)) return c;
  }
  return undefined;
}

/** SPKI of a private key from its domain (curve, DSA p q g) and a public value known for it. */
function recordedSpki(priv: KeyView, value: Buffer): Buffer | undefined {
  if (priv.keyType === CKK.EC) {
    const oid = priv.curveOid;
    return oid ? ecSpki(oidToDer(oid), value) : undefined;
  }
  if (priv.keyType === CKK.DSA) {
    const [p, q, g] = [CKA.PRIME, CKA.SUBPRIME, CKA.BASE].map((t) => priv.buf(t));
    return p && q && g ? dsaSpki(p, q, g, value) : undefined;
  }
  return undefined;
}

/** The public key of any key object: its own; for a private key, the recorded one or its partner's. */
export async function spkiOf(session: Session, key: KeyView): Promise<Buffer | undefined> {
  if (key.cls === CKO.PUBLIC_KEY) return publicSpki(key);
  if (key.cls === CKO.PRIVATE_KEY) {
    const recorded = key.recordedPublic && recordedSpki(key, key.recordedPublic);
    if (recorded) return recorded;
    const pub = await partnerOf(session, key);
    return pub ? publicSpki(pub) : undefined;
  }
  return undefined;
}

/** CloudHSM's KCV: asymmetric keys hash their public key; secret keys use CKA_CHECK_VALUE. */
export async function kcvOf(session: Session, key: KeyView): Promise<Buffer | undefined> {
  if (key.cls === CKO.SECRET_KEY) {
    const own = key.buf(CKA.CHECK_VALUE);
    if (own && own.length > 0) return own.subarray(0, 3);
    // SoftHSM leaves CKA_CHECK_VALUE empty on unwrapped keys: the PKCS#11 definition (ECB of a
    // zero block under the key) computed on the token, when the key may encrypt.
    const ecb = key.keyType === CKK.AES ? { mechanism: CKM.AES_ECB, block: 16 } : key.keyType === CKK.DES3 ? { mechanism: CKM.DES3_ECB, block: 8 } : undefined;
    if (!ecb || key.get(CKA.ENCRYPT) !== true) return undefined;
    const out = await session.encrypt({ mechanism: ecb.mechanism }, key.object, Buffer.alloc(ecb.block)).catch(() => undefined);
    return out?.subarray(0, 3);
  }
  const spki = await spkiOf(session, key);
  return spki ? asymmetricKcv(spki) : undefined;
}

/** Public value kmu shows as OBJ_ATTR_MODULUS for an EC key: the uncompressed point. */
async function ecPointOf(session: Session, key: KeyView): Promise<Buffer | undefined> {
  const own = key.buf(CKA.EC_POINT);
  if (own) return unwrapOctetString(own);
  if (key.cls !== CKO.PRIVATE_KEY) return undefined;
  if (key.recordedPublic) return key.recordedPublic;
  const pub = await partnerOf(session, key);
  const point = pub?.buf(CKA.EC_POINT);
  return point ? unwrapOctetString(point) : undefined;
}

const DUMP_ORDER = [...OBJ_ATTRS].sort((a, b) => a.dumpOrder - b.dumpOrder);

/**
 * Every OBJ_ATTR the key has (or just `only`), in getAttribute's dump order, with kmu's derived values: public
 * keys are never sensitive and always extractable; EC keys show their point as MODULUS and the
 * curve size as MODULUS_BITS; VALUE_LEN is the key size in bytes; KCV as kcvOf.
 */
export async function objAttrValues(session: Session, key: KeyView, only?: number): Promise<Array<[ObjAttr, ObjAttrValue]>> {
  // The public point and the KCV may need the partner key found (and a signature): only when asked.
  const wants = (id: number) => only === undefined || only === id;
  const derived = new Map<number, ObjAttrValue>();
  // kmu shows every usage flag on every key: one a key class cannot have (ENCRYPT on a private
  // key, SIGN on a public one) is false.
  for (const t of [CKA.ENCRYPT, CKA.DECRYPT, CKA.WRAP, CKA.UNWRAP, CKA.SIGN, CKA.VERIFY, CKA.DERIVE]) derived.set(t, false);
  if (key.cls === CKO.PUBLIC_KEY) {
    derived.set(CKA.SENSITIVE, false);
    derived.set(CKA.EXTRACTABLE, true);
  }
  if (key.keyType === CKK.EC) {
    const curve = curveByOid(key.curveOid ?? '');
    const point = wants(OBJ.MODULUS!) ? await ecPointOf(session, key) : undefined;
    if (point) derived.set(CKA.MODULUS, point);
    if (curve) {
      derived.set(CKA.MODULUS_BITS, curve.bits);
      derived.set(CKA.VALUE_LEN, Math.ceil(curve.bits / 8));
    }
  } else if (key.keyType === CKK.DSA) {
    const p = key.buf(CKA.PRIME);
    if (p) derived.set(CKA.VALUE_LEN, p.length);
  } else if (key.keyType === CKK.RSA) {
    const n = key.buf(CKA.MODULUS);
    if (n) derived.set(CKA.VALUE_LEN, n.length);
  } else if (key.keyType === CKK.DES3) {
    // SoftHSM has no CKA_VALUE_LEN on DES3 keys; the genSymKey page shows 0x18.
    derived.set(CKA.VALUE_LEN, 24);
  }
  const kcv = wants(OBJ.KCV!) ? await kcvOf(session, key) : undefined;
  const out: Array<[ObjAttr, ObjAttrValue]> = [];
  for (const attr of DUMP_ORDER) {
    if (!wants(attr.id)) continue;
    const value = attr.name === 'OBJ_ATTR_KCV' ? kcv : (key.get(attr.id) ?? derived.get(attr.id));
    if (value !== undefined) out.push([attr, value as ObjAttrValue]);
  }
  return out;
}
