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
}

const a = (id: number, name: string, format: ObjAttrFormat, listed: boolean): ObjAttr =>
  Object.freeze({ id, name, format, listed });

/** In listAttributes order (the page's), then the table's other attributes. */
export const OBJ_ATTRS: readonly ObjAttr[] = Object.freeze([
  a(0, 'OBJ_ATTR_CLASS', 'enum', true),
  a(1, 'OBJ_ATTR_TOKEN', 'bool', true),
  a(2, 'OBJ_ATTR_PRIVATE', 'bool', true),
  a(3, 'OBJ_ATTR_LABEL', 'text', true),
  a(256, 'OBJ_ATTR_KEY_TYPE', 'enum', true),
  a(258, 'OBJ_ATTR_ID', 'text', false),
  a(259, 'OBJ_ATTR_SENSITIVE', 'bool', false),
  a(260, 'OBJ_ATTR_ENCRYPT', 'bool', true),
  a(261, 'OBJ_ATTR_DECRYPT', 'bool', true),
  a(262, 'OBJ_ATTR_WRAP', 'bool', true),
  a(263, 'OBJ_ATTR_UNWRAP', 'bool', true),
  a(264, 'OBJ_ATTR_SIGN', 'bool', true),
  a(266, 'OBJ_ATTR_VERIFY', 'bool', true),
  a(355, 'OBJ_ATTR_LOCAL', 'bool', true),
  a(288, 'OBJ_ATTR_MODULUS', 'hex', true),
  a(289, 'OBJ_ATTR_MODULUS_BITS', 'ulong', true),
  a(290, 'OBJ_ATTR_PUBLIC_EXPONENT', 'hex', true),
  a(353, 'OBJ_ATTR_VALUE_LEN', 'ulong', true),
  a(354, 'OBJ_ATTR_EXTRACTABLE', 'bool', true),
  a(371, 'OBJ_ATTR_KCV', 'kcv', true),
  a(134, 'OBJ_ATTR_TRUSTED', 'bool', false),
  a(268, 'OBJ_ATTR_DERIVE', 'bool', false),
  a(356, 'OBJ_ATTR_NEVER_EXTRACTABLE', 'bool', false),
  a(357, 'OBJ_ATTR_ALWAYS_SENSITIVE', 'bool', false),
  a(370, 'OBJ_ATTR_DESTROYABLE', 'bool', false),
  a(528, 'OBJ_ATTR_WRAP_WITH_TRUSTED', 'bool', false),
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

/**
 * getAttribute's dump, as its -out file holds it and the CLI prints it: each attribute's name
 * and value on a line of their own; -a 512 starts with a blank line.
 */
export function attributeDump(attributes: ReadonlyArray<{ name: string; value: string }>, all: boolean): string {
  const body = attributes.map((a) => `${a.name}\n${a.value}\n`).join('');
  return all ? `\n${body}` : body;
}
