// Errors: every failed PKCS#11 call carries its CK_RV and the function that
// returned it (as rust-cryptoki's Error::Pkcs11(rv, function)).
import { ckrName } from './constants.js';

export class Pkcs11Error extends Error {
  /** The CK_RV. */
  readonly code: number;
  /** Its name, e.g. 'CKR_PIN_INCORRECT'. */
  readonly ckr: string;
  /** The PKCS#11 function that returned it, e.g. 'C_Login'. */
  readonly fn: string;

  constructor(code: number, fn: string) {
    const ckr = ckrName(code);
    super(`${fn} failed: ${ckr} (0x${code.toString(16)})`);
    this.code = code;
    this.ckr = ckr;
    this.fn = fn;
  }
}

Object.defineProperty(Pkcs11Error.prototype, 'name', { value: 'Pkcs11Error', writable: true, configurable: true });
