// What sign and verify share: the PKCS#11 mechanism and input for a kmu -m number, and the
// signature's form in files. ECDSA and DSA signatures are written DER-encoded
// (SEQUENCE { r INTEGER, s INTEGER }), the form openssl makes and checks; verify also takes
// PKCS#11's raw r || s.
import { createHash } from 'node:crypto';
import { CKK, CKO, pssParameter, type Mechanism } from '../../p11/index.js';
import { KmuError, UsageError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import { integerSequence, integersOf } from '../../kmu/der.js';
import { DIGEST_CKM, SIGN_MECHANISMS, signMechanism, type SignMechanism } from '../../kmu/signMechanisms.js';
import type { CommandContext } from '../types.js';
import { readKey, type KeyView } from './keys.js';
import { authorize, type AuthorizedKey } from './ownership.js';

/** The mechanism and the bytes to give C_Sign / C_Verify for a message. */
export function signingInput(m: SignMechanism, message: Buffer): { mechanism: Mechanism; data: Buffer } {
  if (m.keyType === CKK.RSA) {
    if (!m.pss) return { mechanism: { mechanism: m.ckm }, data: message };
    const d = DIGEST_CKM[m.digest];
    return { mechanism: { mechanism: m.ckm, parameter: pssParameter(d.hash, d.mgf, d.length) }, data: message };
  }
  return { mechanism: { mechanism: m.ckm }, data: createHash(m.digest).update(message).digest() };
}

/** r || s (each half the length) → DER SEQUENCE { r, s }. */
export function rawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  return integerSequence([raw.subarray(0, half), raw.subarray(half)]);
}

/** DER SEQUENCE { r, s } → r || s with each half `half` bytes; undefined if it is not one. */
export function derToRaw(der: Buffer, half: number): Buffer | undefined {
  const ints = integersOf(der);
  if (ints?.length !== 2) return undefined;
  const out: Buffer[] = [];
  for (let v of ints) {
    while (v.length > half && v[0] === 0) v = v.subarray(1);
    if (v.length > half) return undefined;
    out.push(Buffer.concat([Buffer.alloc(half - v.length), v]));
  }
  return Buffer.concat(out);
}

export function mechanismFlag(text: string, flag: string): SignMechanism {
  const m = /^[0-9]+$/.test(text) ? signMechanism(Number(text)) : undefined;
  if (!m) throw new UsageError(`${flag} takes a signing mechanism (${SIGN_MECHANISMS.map((x) => x.id).join(', ')}), not '${text}'`);
  return m;
}

const KEY_TYPE_NAMES: Record<number, string> = { [CKK.RSA]: 'RSA', [CKK.EC]: 'EC', [CKK.DSA]: 'DSA' };

/** A mechanism works with one key type: anything else is refused before the token is asked. */
function requireKeyType(m: SignMechanism, keyType: number, handle: number): void {
  if (keyType !== m.keyType)
    throw new KmuError(RC.INVALID_INPUT, {
      detail: `mechanism ${m.id} (${m.name}) needs an ${KEY_TYPE_NAMES[m.keyType]} key; key ${handle} is ${KEY_TYPE_NAMES[keyType] ?? 'another type'}`,
    });
}

/**
 * The key sign (a private key) or verify (a public one) works with: usable by the logged-in
 * user, of the class the command takes and the key type the mechanism needs.
 */
export async function signingKey(ctx: CommandContext, handle: number, m: SignMechanism, command: 'sign' | 'verify'): Promise<AuthorizedKey & { view: KeyView }> {
  const key = await authorize(ctx, handle, 'use');
  const view = await readKey(ctx.backend.session, key.object);
  const [cls, what] = command === 'sign' ? [CKO.PRIVATE_KEY, 'private'] : [CKO.PUBLIC_KEY, 'public'];
  if (view.cls !== cls)
    throw new KmuError(RC.INVALID_INPUT, { detail: `key ${handle} is not a ${what} key; ${command} takes a ${what} key handle` });
  requireKeyType(m, view.keyType, handle);
  return { ...key, view };
}
