// Attributes and templates: the value kinds of every standard v2.40 attribute
// (one table, like python-pkcs11's ATTRIBUTE_TYPES) and the one place values
// are encoded to / decoded from the bytes a module stores. The addon sees bytes only.
import { ckaName, CKA } from './constants.js';

export type AttributeValue = boolean | number | string | Buffer;
export interface Attribute {
  type: number;
  value: AttributeValue;
}
export type Template = Attribute[];

export type AttributeRead =
  | { type: number; value: AttributeValue }
  | { type: number; unavailable: 'sensitive' | 'invalid' | 'unavailable' };

/** How an attribute's bytes are read: CK_BBOOL, CK_ULONG, UTF-8 text, raw bytes, CK_DATE ("YYYYMMDD"). */
export type AttributeKind = 'bool' | 'ulong' | 'string' | 'bytes' | 'date';

const KINDS: ReadonlyArray<readonly [number, AttributeKind]> = [
  [CKA.CLASS, 'ulong'],
  [CKA.TOKEN, 'bool'],
  [CKA.PRIVATE, 'bool'],
  [CKA.LABEL, 'string'],
  [CKA.UNIQUE_ID, 'string'],
  [CKA.APPLICATION, 'string'],
  [CKA.VALUE, 'bytes'],
  [CKA.OBJECT_ID, 'bytes'],
  [CKA.CERTIFICATE_TYPE, 'ulong'],
  [CKA.ISSUER, 'bytes'],
  [CKA.SERIAL_NUMBER, 'bytes'],
  [CKA.AC_ISSUER, 'bytes'],
  [CKA.OWNER, 'bytes'],
  [CKA.ATTR_TYPES, 'bytes'],
  [CKA.TRUSTED, 'bool'],
  [CKA.CERTIFICATE_CATEGORY, 'ulong'],
  [CKA.JAVA_MIDP_SECURITY_DOMAIN, 'ulong'],
  [CKA.URL, 'string'],
  [CKA.HASH_OF_SUBJECT_PUBLIC_KEY, 'bytes'],
  [CKA.HASH_OF_ISSUER_PUBLIC_KEY, 'bytes'],
  [CKA.NAME_HASH_ALGORITHM, 'ulong'],
  [CKA.CHECK_VALUE, 'bytes'],
  [CKA.KEY_TYPE, 'ulong'],
  [CKA.SUBJECT, 'bytes'],
  [CKA.ID, 'bytes'],
  [CKA.SENSITIVE, 'bool'],
  [CKA.ENCRYPT, 'bool'],
  [CKA.DECRYPT, 'bool'],
  [CKA.WRAP, 'bool'],
  [CKA.UNWRAP, 'bool'],
  [CKA.SIGN, 'bool'],
  [CKA.SIGN_RECOVER, 'bool'],
  [CKA.VERIFY, 'bool'],
  [CKA.VERIFY_RECOVER, 'bool'],
  [CKA.DERIVE, 'bool'],
  [CKA.START_DATE, 'date'],
  [CKA.END_DATE, 'date'],
  [CKA.MODULUS, 'bytes'],
  [CKA.MODULUS_BITS, 'ulong'],
  [CKA.PUBLIC_EXPONENT, 'bytes'],
  [CKA.PRIVATE_EXPONENT, 'bytes'],
  [CKA.PRIME_1, 'bytes'],
  [CKA.PRIME_2, 'bytes'],
  [CKA.EXPONENT_1, 'bytes'],
  [CKA.EXPONENT_2, 'bytes'],
  [CKA.COEFFICIENT, 'bytes'],
  [CKA.PUBLIC_KEY_INFO, 'bytes'],
  [CKA.PRIME, 'bytes'],
  [CKA.SUBPRIME, 'bytes'],
  [CKA.BASE, 'bytes'],
  [CKA.PRIME_BITS, 'ulong'],
  [CKA.SUBPRIME_BITS, 'ulong'],
  [CKA.VALUE_BITS, 'ulong'],
  [CKA.VALUE_LEN, 'ulong'],
  [CKA.EXTRACTABLE, 'bool'],
  [CKA.LOCAL, 'bool'],
  [CKA.NEVER_EXTRACTABLE, 'bool'],
  [CKA.ALWAYS_SENSITIVE, 'bool'],
  [CKA.KEY_GEN_MECHANISM, 'ulong'],
  [CKA.MODIFIABLE, 'bool'],
  [CKA.COPYABLE, 'bool'],
  [CKA.DESTROYABLE, 'bool'],
  [CKA.EC_PARAMS, 'bytes'],
  [CKA.EC_POINT, 'bytes'],
  [CKA.SECONDARY_AUTH, 'bool'],
  [CKA.AUTH_PIN_FLAGS, 'ulong'],
  [CKA.ALWAYS_AUTHENTICATE, 'bool'],
  [CKA.WRAP_WITH_TRUSTED, 'bool'],
  [CKA.WRAP_TEMPLATE, 'bytes'], // CK_ATTRIBUTE array: raw
  [CKA.UNWRAP_TEMPLATE, 'bytes'],
  [CKA.DERIVE_TEMPLATE, 'bytes'],
  [CKA.OTP_FORMAT, 'ulong'],
  [CKA.OTP_LENGTH, 'ulong'],
  [CKA.OTP_TIME_INTERVAL, 'ulong'],
  [CKA.OTP_USER_FRIENDLY_MODE, 'bool'],
  [CKA.OTP_CHALLENGE_REQUIREMENT, 'ulong'],
  [CKA.OTP_TIME_REQUIREMENT, 'ulong'],
  [CKA.OTP_COUNTER_REQUIREMENT, 'ulong'],
  [CKA.OTP_PIN_REQUIREMENT, 'ulong'],
  [CKA.OTP_USER_IDENTIFIER, 'string'],
  [CKA.OTP_SERVICE_IDENTIFIER, 'string'],
  [CKA.OTP_SERVICE_LOGO, 'bytes'],
  [CKA.OTP_SERVICE_LOGO_TYPE, 'string'],
  [CKA.OTP_COUNTER, 'bytes'],
  [CKA.OTP_TIME, 'string'],
  [CKA.GOSTR3410_PARAMS, 'bytes'],
  [CKA.GOSTR3411_PARAMS, 'bytes'],
  [CKA.GOST28147_PARAMS, 'bytes'],
  [CKA.HW_FEATURE_TYPE, 'ulong'],
  [CKA.RESET_ON_INIT, 'bool'],
  [CKA.HAS_RESET, 'bool'],
  [CKA.PIXEL_X, 'ulong'],
  [CKA.PIXEL_Y, 'ulong'],
  [CKA.RESOLUTION, 'ulong'],
  [CKA.CHAR_ROWS, 'ulong'],
  [CKA.CHAR_COLUMNS, 'ulong'],
  [CKA.COLOR, 'bool'],
  [CKA.BITS_PER_PIXEL, 'ulong'],
  [CKA.CHAR_SETS, 'string'],
  [CKA.ENCODING_METHODS, 'string'],
  [CKA.MIME_TYPES, 'string'],
  [CKA.MECHANISM_TYPE, 'ulong'],
  [CKA.REQUIRED_CMS_ATTRIBUTES, 'bytes'],
  [CKA.DEFAULT_CMS_ATTRIBUTES, 'bytes'],
  [CKA.SUPPORTED_CMS_ATTRIBUTES, 'bytes'],
  [CKA.ALLOWED_MECHANISMS, 'bytes'], // CK_MECHANISM_TYPE array: raw
];

/** Attribute type → kind, for every standard attribute. Vendor attributes are not listed (decoded as bytes). */
export const ATTRIBUTE_KINDS: ReadonlyMap<number, AttributeKind> = new Map(KINDS);

export function attributeKind(type: number): AttributeKind {
  return ATTRIBUTE_KINDS.get(type) ?? 'bytes';
}

/** sizeof(CK_ULONG) on every LP64 platform kmu11 builds for. */
const ULONG_SIZE = 8;
const TWO_32 = 0x1_0000_0000;

const TAKES: Record<AttributeKind, string> = {
  bool: 'a boolean (CK_BBOOL)',
  ulong: 'a non-negative safe integer (CK_ULONG)',
  string: 'a string (UTF-8) or a Buffer',
  bytes: 'a Buffer or a string (its UTF-8 bytes)',
  date: "a 'YYYYMMDD' string, '' or a Buffer (CK_DATE)",
};

/**
 * The bytes a module stores for `value`, by the attribute's kind in the table: bool →
 * CK_BBOOL, ulong → CK_ULONG (8 bytes, little-endian), string → UTF-8 without NUL, date →
 * 8 ASCII digits, bytes → as is. A value of the wrong kind for its attribute (a number for
 * CKA_LABEL, a string for CKA_TOKEN) is a TypeError naming the attribute. Attributes the
 * table does not know (vendor ones) take raw bytes.
 */
export function encodeAttribute(type: number, value: AttributeValue): Buffer {
  const kind = attributeKind(type);
  const wrong = () => new TypeError(`${ckaName(type)} takes ${TAKES[kind]}, not ${describe(value)}`);
  switch (kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw wrong();
      return Buffer.from([value ? 1 : 0]);
    case 'ulong': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw wrong();
      const out = Buffer.alloc(ULONG_SIZE);
      out.writeUInt32LE(value % TWO_32, 0);
      out.writeUInt32LE(Math.floor(value / TWO_32), 4);
      return out;
    }
    default:
      // string, bytes, and dates as their 8 ASCII digits
      if (kind === 'date' && typeof value === 'string' && !/^(\d{8})?$/.test(value)) throw wrong();
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      if (Buffer.isBuffer(value)) return Buffer.from(value);
      throw wrong();
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return 'a Buffer';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A template as the addon takes it: each value encoded by encodeAttribute. */
export function encodeTemplate(template: Template, what = 'template'): Array<{ type: number; value: Buffer }> {
  return checkedTemplate(template, what).map(({ type, value }) => ({ type, value: encodeAttribute(type, value) }));
}

// The addon copies every value before its call returns, so the templates Session hands it may
// share these and pass a caller's Buffer as it is (a Buffer for every boolean was most of a
// template's allocations). Not exported from the package: a caller could change them.
const ADDON_TRUE = Buffer.from([1]);
const ADDON_FALSE = Buffer.from([0]);

/** encodeTemplate for a template that goes straight to the addon. */
export function addonTemplate(template: Template, what = 'template'): Array<{ type: number; value: Buffer }> {
  return checkedTemplate(template, what).map(({ type, value }) => {
    const kind = attributeKind(type);
    if (kind === 'bool' && typeof value === 'boolean') return { type, value: value ? ADDON_TRUE : ADDON_FALSE };
    if ((kind === 'bytes' || kind === 'string') && Buffer.isBuffer(value)) return { type, value };
    return { type, value: encodeAttribute(type, value) };
  });
}

function checkedTemplate(template: Template, what: string): Template {
  if (!Array.isArray(template)) throw new TypeError(`${what} must be an array of {type, value} attributes`);
  template.forEach((attr, i) => {
    if (typeof attr !== 'object' || attr === null) throw new TypeError(`${what}[${i}] must be an object {type, value}`);
    if (!Number.isSafeInteger(attr.type) || attr.type < 0) throw new TypeError(`${what}[${i}].type must be a non-negative safe integer`);
  });
  return template;
}

/**
 * A value read back, by the attribute table: bool → boolean, ulong → number,
 * string → string, date → "YYYYMMDD" (or '' when empty), bytes → Buffer.
 * Bytes that do not fit the kind (wrong length, a CK_ULONG beyond 2^53 such as
 * CK_UNAVAILABLE_INFORMATION) come back as the raw Buffer.
 */
export function decodeAttribute(type: number, raw: Buffer): AttributeValue {
  switch (attributeKind(type)) {
    case 'bool':
      return raw.length === 1 ? raw[0] !== 0 : raw;
    case 'ulong': {
      if (raw.length === 8) {
        const high = raw.readUInt32LE(4);
        if (high >= 0x200000) return raw; // beyond Number.MAX_SAFE_INTEGER
        return high * TWO_32 + raw.readUInt32LE(0);
      }
      if (raw.length === 4) return raw.readUInt32LE(0);
      return raw;
    }
    case 'string':
      return raw.toString('utf8');
    case 'date':
      return raw.length === 8 || raw.length === 0 ? raw.toString('latin1') : raw;
    default:
      return raw;
  }
}
