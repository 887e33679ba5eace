// Flag readers and rules the key-transfer commands share (wrapKey, unWrapKey, exSymKey,
// exportPrivateKey, extractMaskedObject), and which attributes a transferred key carries.
import { CKA, CKO } from '../../p11/index.js';
import { UsageError } from '../../kmu/errors.js';
import { HASH_TYPES, WRAP_MECHANISMS, hashType, wrapMechanism, type WrapMechanism } from '../../kmu/wrapMechanisms.js';

/** Usage and sensitivity attributes a wrapped key carries in kmu11's header, by class. */
export const CARRIED: Record<number, number[]> = {
  [CKO.SECRET_KEY]: [CKA.PRIVATE, CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.ENCRYPT, CKA.DECRYPT, CKA.WRAP, CKA.UNWRAP, CKA.SIGN, CKA.VERIFY, CKA.DERIVE],
  [CKO.PRIVATE_KEY]: [CKA.PRIVATE, CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.DECRYPT, CKA.UNWRAP, CKA.SIGN, CKA.DERIVE],
};

export function mechanismFlag(text: string, flag: string): WrapMechanism {
  const m = /^[0-9]+$/.test(text) ? wrapMechanism(Number(text)) : undefined;
  if (!m) throw new UsageError(`${flag} takes a wrapping mechanism: ${WRAP_MECHANISMS.map((w) => `${w.id} (${w.name})`).join(', ')}; not '${text}'`);
  return m;
}

export function hashFlag(text: string, flag: string): number {
  const h = /^[0-9]+$/.test(text) ? hashType(Number(text)) : undefined;
  if (!h) throw new UsageError(`${flag} takes a hash type: ${HASH_TYPES.map((x) => `${x.id} (${x.name})`).join(', ')}; not '${text}'`);
  return h.id;
}

/** -i: the wrapping IV, 8 bytes of hex (0x optional). */
export function ivFlag(text: string, flag: string): Buffer {
  const hex = text.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) throw new UsageError(`${flag} takes an 8-byte IV in hex such as 0xA6A6A6A6A6A6A6A6, not '${text}'`);
  return Buffer.from(hex, 'hex');
}

/** The pages' rules for the GCM- and header-only flags, shared with unWrapKey. */
export function validateWrapFlags(o: { mechanism: WrapMechanism; hash?: number; aad?: string; noheader?: boolean; iv?: Buffer; ivFile?: string; tagSize?: number }): void {
  const gcm = o.mechanism.id === 10 || o.mechanism.id === 11;
  if (o.aad !== undefined && !gcm) throw new UsageError('-aad is valid only for AES_GCM (10) and CLOUDHSM_AES_GCM (11)');
  if (o.tagSize !== undefined && !(gcm && o.noheader)) throw new UsageError('-tag_size is valid only with -noheader for AES_GCM and CLOUDHSM_AES_GCM');
  if (o.ivFile !== undefined && !(o.mechanism.id === 10 && o.noheader)) throw new UsageError('-iv_file is valid only with -noheader for AES_GCM (10)');
  if (o.iv !== undefined && !(o.noheader && (o.mechanism.id === 4 || o.mechanism.id === 5)))
    throw new UsageError('-i is valid only with -noheader for AES key wrap mechanisms 4 and 5');
  if (o.hash !== undefined && !o.mechanism.hashed) throw new UsageError('-t (hash) is valid only for RSA_AES (7) and RSA_OAEP (8)');
}

/** -m: the pages of exSymKey and exportPrivateKey allow only 4 (NIST_AES_WRAP). */
export function onlyMechanism4(text: string, flag: string): number {
  if (text !== '4') throw new UsageError(`${flag}: the only valid wrapping mechanism is 4 (NIST_AES_WRAP), not '${text}'`);
  return 4;
}
