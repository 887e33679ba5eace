// Single-part signing and verification.
import { CKR } from '../constants.js';
import { Pkcs11Error } from '../error.js';
import type { Mechanism } from '../mechanism.js';
import type { NativeModule } from '../native.js';

export function sign(native: NativeModule, session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
  return native.sign(session, mechanism, key, data);
}

function rejectedSignature(e: unknown): boolean {
  return e instanceof Pkcs11Error && (e.code === CKR.SIGNATURE_INVALID || e.code === CKR.SIGNATURE_LEN_RANGE);
}

/** true if the signature verifies, false if the module says it does not; other failures throw. */
export function verify(
  native: NativeModule,
  session: number,
  mechanism: Mechanism,
  key: number,
  data: Buffer,
  signature: Buffer,
): Promise<boolean> {
  return native.verify(session, mechanism, key, data, signature).then(
    () => true,
    (e: unknown) => {
      if (rejectedSignature(e)) return false;
      throw e;
    },
  );
}
