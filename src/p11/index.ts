// kmu11's typed PKCS#11 surface. Everything above src/p11 uses this; nothing
// above touches the addon.
export * from './constants.js';
export { Pkcs11Error } from './error.js';
export {
  ATTRIBUTE_KINDS,
  attributeKind,
  decodeAttribute,
  encodeAttribute,
  encodeTemplate,
  type Attribute,
  type AttributeKind,
  type AttributeRead,
  type AttributeValue,
  type Template,
} from './attributes.js';
export { oaepParameter, pssParameter, type GcmParameter, type Mechanism, type RsaAesParameter } from './mechanism.js';
export type { MechanismInfo, ModuleInfo, SlotInfo, TokenInfo, Version } from './info.js';
export { Module } from './module.js';
export { Slot } from './slot.js';
export { Session, type GeneratedAndRead } from './session/session.js';
export { tokenCheckValue } from './checkValue.js';
export { children, integer, magnitude, tlv, type Tlv } from './der.js';
export { dsaSpki, ecSpki, pairSpki, rsaSpki, spkiPublicValue, toPem, unwrapOctetString } from './spki.js';
