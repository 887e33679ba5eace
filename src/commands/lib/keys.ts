// Reading a key as kmu shows it: its PKCS#11 attributes, its public key (for a private key,
// the public value the handle store knows for it: HandleStore.publicValue), and the OBJ_ATTR
// values getAttribute prints.
import {
  CKA,
  CKK,
  CKO,
  dsaSpki,
  ecSpki,
  pairSpki,
  rsaSpki,
  tokenCheckValue,
  unwrapOctetString,
  type AttributeValue,
  type Session,
} from '../../p11/index.js';
import { derToOid, curveByOid, oidToDer } from '../../kmu/curves.js';
import { asymmetricKcv } from '../../kmu/kcv.js';
import { dumpOrder } from '../../kmu/dumpOrder.js';
import { OBJ, objAttr, type ObjAttr, type ObjAttrValue } from '../../kmu/objAttr.js';

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

/** SPKI of a private key from its domain (named curve, DSA p q g) and a public value known for it. */
function recordedSpki(priv: KeyView, value: Buffer): Buffer | undefined {
  const oid = priv.keyType === CKK.EC ? priv.curveOid : undefined;
  const [p, q, g] = [CKA.PRIME, CKA.SUBPRIME, CKA.BASE].map((t) => priv.buf(t));
  if (priv.keyType === CKK.EC) return oid ? pairSpki({ ec: oidToDer(oid) }, value) : undefined;
  return priv.keyType === CKK.DSA && p && q && g ? pairSpki({ dsa: { p, q, g } }, value) : undefined;
}

/** The public key of any key object: its own; for a private key, the one the handle store knows. */
function spkiOf(key: KeyView): Buffer | undefined {
  if (key.cls === CKO.PUBLIC_KEY) return publicSpki(key);
  if (key.cls === CKO.PRIVATE_KEY && key.recordedPublic) return recordedSpki(key, key.recordedPublic);
  return undefined;
}

/** CloudHSM's KCV: asymmetric keys hash their public key; secret keys use CKA_CHECK_VALUE. */
export async function kcvOf(session: Session, key: KeyView): Promise<Buffer | undefined> {
  if (key.cls === CKO.SECRET_KEY) {
    const own = key.buf(CKA.CHECK_VALUE);
    if (own && own.length > 0) return own.subarray(0, 3);
    // SoftHSM leaves CKA_CHECK_VALUE empty on unwrapped keys: computed on the token when it may encrypt.
    return key.get(CKA.ENCRYPT) === true ? tokenCheckValue(session, key.object, key.keyType).catch(() => undefined) : undefined;
  }
  const spki = spkiOf(key);
  return spki ? asymmetricKcv(spki) : undefined;
}

/** Public value kmu shows as OBJ_ATTR_MODULUS for an EC key: the uncompressed point. */
function ecPointOf(key: KeyView): Buffer | undefined {
  const own = key.buf(CKA.EC_POINT);
  if (own) return unwrapOctetString(own);
  return key.cls === CKO.PRIVATE_KEY ? key.recordedPublic : undefined;
}

/**
 * The OBJ_ATTRs CloudHSM dumps for the key's type (dumpOrder.ts), or just `only`, with kmu's derived values: public
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
    const point = wants(OBJ.MODULUS!) ? ecPointOf(key) : undefined;
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
  const attrs = only !== undefined ? [objAttr(only)!] : dumpOrder(key.keyType).map((n) => objAttr(OBJ[n]!)!);
  for (const attr of attrs) {
    const value = attr.name === 'OBJ_ATTR_KCV' ? kcv : (key.get(attr.id) ?? derived.get(attr.id));
    if (value !== undefined) out.push([attr, value as ObjAttrValue]);
  }
  return out;
}
