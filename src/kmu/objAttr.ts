// The OBJ_ATTR constants of key-attribute-table.md, how each prints in a getAttribute dump,
// and which PKCS#11 attribute stands behind it. Derived ones (KCV, VALUE_LEN, MODULUS and
// MODULUS_BITS of EC/DSA keys) have no CKA and are computed by the reader.

export type ObjAttrFormat =
  | 'bool' // 0x00 / 0x01
  | 'enum' // 0x03 in a full dump, 0x00000003 alone (CLASS, KEY_TYPE as the pages print them)
  | 'ulong' // 0x0000008a
  | 'text' // label and id as given
  | 'hex' // byte strings, lowercase hex
  | 'kcv'; // 0xbbb32a

export interface ObjAttr {
  id: number;
  name: string;
  format: ObjAttrFormat;
  /** Listed by listAttributes (the page's list). */
  listed: boolean;
  /** Position in a full (-a 512) dump; the page's order, then the rest of the table. */
  dumpOrder: number;
}

const a = (id: number, name: string, format: ObjAttrFormat, listed: boolean, dumpOrder: number): ObjAttr =>
  Object.freeze({ id, name, format, listed, dumpOrder });

/** In listAttributes order (the page's), then the table's other attributes. */
export const OBJ_ATTRS: readonly ObjAttr[] = Object.freeze([
  a(0, 'OBJ_ATTR_CLASS', 'enum', true, 0),
  a(1, 'OBJ_ATTR_TOKEN', 'bool', true, 2),
  a(2, 'OBJ_ATTR_PRIVATE', 'bool', true, 3),
  a(3, 'OBJ_ATTR_LABEL', 'text', true, 13),
  a(256, 'OBJ_ATTR_KEY_TYPE', 'enum', true, 1),
  a(258, 'OBJ_ATTR_ID', 'text', false, 14),
  a(259, 'OBJ_ATTR_SENSITIVE', 'bool', false, 11),
  a(260, 'OBJ_ATTR_ENCRYPT', 'bool', true, 4),
  a(261, 'OBJ_ATTR_DECRYPT', 'bool', true, 5),
  a(262, 'OBJ_ATTR_WRAP', 'bool', true, 6),
  a(263, 'OBJ_ATTR_UNWRAP', 'bool', true, 7),
  a(264, 'OBJ_ATTR_SIGN', 'bool', true, 8),
  a(266, 'OBJ_ATTR_VERIFY', 'bool', true, 9),
  a(355, 'OBJ_ATTR_LOCAL', 'bool', true, 10),
  a(288, 'OBJ_ATTR_MODULUS', 'hex', true, 17),
  a(289, 'OBJ_ATTR_MODULUS_BITS', 'ulong', true, 18),
  a(290, 'OBJ_ATTR_PUBLIC_EXPONENT', 'hex', true, 19),
  a(353, 'OBJ_ATTR_VALUE_LEN', 'ulong', true, 15),
  a(354, 'OBJ_ATTR_EXTRACTABLE', 'bool', true, 12),
  a(371, 'OBJ_ATTR_KCV', 'kcv', true, 16),
  a(134, 'OBJ_ATTR_TRUSTED', 'bool', false, 20),
  a(268, 'OBJ_ATTR_DERIVE', 'bool', false, 21),
  a(356, 'OBJ_ATTR_NEVER_EXTRACTABLE', 'bool', false, 22),
  a(357, 'OBJ_ATTR_ALWAYS_SENSITIVE', 'bool', false, 23),
  a(370, 'OBJ_ATTR_DESTROYABLE', 'bool', false, 24),
  a(528, 'OBJ_ATTR_WRAP_WITH_TRUSTED', 'bool', false, 25),
]);

export const OBJ_ATTR_ALL = 512;

export const OBJ = Object.freeze(
  Object.fromEntries(OBJ_ATTRS.map((x) => [x.name.replace(/^OBJ_ATTR_/, ''), x.id])) as Record<string, number>,
);

const byId = new Map(OBJ_ATTRS.map((x) => [x.id, x]));

export function objAttr(id: number): ObjAttr | undefined {
  return byId.get(id);
}

export type ObjAttrValue = boolean | number | string | Buffer;

/** One attribute's value as getAttribute writes it. `alone`: asked for by itself, not -a 512. */
export function formatObjAttrValue(attr: ObjAttr, value: ObjAttrValue, alone: boolean): string {
  switch (attr.format) {
    case 'bool':
      return value ? '0x01' : '0x00';
    case 'enum':
      return '0x' + Number(value).toString(16).padStart(alone ? 8 : 2, '0');
    case 'ulong':
      return '0x' + Number(value).toString(16).padStart(8, '0');
    case 'text':
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    case 'hex':
      return Buffer.isBuffer(value) ? value.toString('hex') : String(value);
    case 'kcv':
      return '0x' + (Buffer.isBuffer(value) ? value.toString('hex') : String(value));
  }
}
