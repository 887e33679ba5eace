// Every PKCS#11 error becomes a kmu return code; the CKR name travels along (shown in --json).
// The one place errors become kmu's: CommandRunner.execute converts whatever a command throws.
import { Pkcs11Error } from '../p11/index.js';
import { KmuError, UsageError } from './errors.js';
import { RC } from './returnCodes.js';

/** CKR name → kmu code, or [code, detail] where the CKR name alone would not tell the operator what is wrong. */
const byCkr: Readonly<Record<string, number | readonly [number, string]>> = {
  CKR_OBJECT_HANDLE_INVALID: RC.INVALID_HANDLE,
  CKR_KEY_HANDLE_INVALID: RC.INVALID_HANDLE,
  CKR_USER_NOT_LOGGED_IN: RC.NOT_LOGGED_IN,
  CKR_USER_ALREADY_LOGGED_IN: RC.ALREADY_LOGGED_IN,
  CKR_USER_ANOTHER_ALREADY_LOGGED_IN: RC.ALREADY_LOGGED_IN,
  CKR_PIN_INCORRECT: RC.LOGIN_FAILED,
  CKR_PIN_INVALID: RC.LOGIN_FAILED,
  CKR_PIN_LEN_RANGE: RC.LOGIN_FAILED,
  CKR_USER_PIN_NOT_INITIALIZED: [RC.LOGIN_FAILED, "the token's user PIN is not initialized"],
  CKR_PIN_LOCKED: RC.ACCOUNT_LOCKED,
  CKR_USER_TYPE_INVALID: RC.INVALID_USER_TYPE,
  CKR_MECHANISM_INVALID: RC.MECHANISM_NOT_SUPPORTED,
  CKR_MECHANISM_PARAM_INVALID: RC.MECHANISM_NOT_SUPPORTED,
  CKR_CURVE_NOT_SUPPORTED: RC.MECHANISM_NOT_SUPPORTED,
  CKR_DOMAIN_PARAMS_INVALID: RC.MECHANISM_NOT_SUPPORTED,
  CKR_KEY_SIZE_RANGE: RC.MECHANISM_NOT_SUPPORTED,
  CKR_ATTRIBUTE_VALUE_INVALID: RC.ATTRIBUTE_INVALID,
  CKR_ATTRIBUTE_TYPE_INVALID: RC.ATTRIBUTE_INVALID,
  CKR_TEMPLATE_INCONSISTENT: RC.ATTRIBUTE_INVALID,
  CKR_TEMPLATE_INCOMPLETE: RC.ATTRIBUTE_INVALID,
  CKR_ATTRIBUTE_READ_ONLY: RC.ATTRIBUTE_READ_ONLY,
  CKR_ATTRIBUTE_SENSITIVE: RC.ATTRIBUTE_SENSITIVE,
  CKR_KEY_UNEXTRACTABLE: RC.ATTRIBUTE_SENSITIVE,
  CKR_KEY_FUNCTION_NOT_PERMITTED: RC.ACCESS_DENIED,
  CKR_ACTION_PROHIBITED: RC.ACCESS_DENIED,
  CKR_DEVICE_MEMORY: RC.MEMORY,
  CKR_HOST_MEMORY: RC.MEMORY,
  CKR_FUNCTION_NOT_SUPPORTED: RC.NOT_SUPPORTED,
  CKR_TOKEN_NOT_PRESENT: RC.TOKEN_NOT_PRESENT,
  CKR_DEVICE_REMOVED: RC.TOKEN_NOT_PRESENT,
  CKR_TOKEN_NOT_RECOGNIZED: RC.TOKEN_NOT_PRESENT,
  CKR_SLOT_ID_INVALID: RC.TOKEN_NOT_PRESENT,
  CKR_SIGNATURE_INVALID: RC.SIGNATURE_INVALID,
  CKR_SIGNATURE_LEN_RANGE: RC.SIGNATURE_INVALID,
};

export function kmuCodeForCkr(ckr: string): number {
  const m = byCkr[ckr] ?? RC.GENERAL_ERROR;
  return typeof m === 'number' ? m : m[0];
}

/** Any failure as a kmu error: PKCS#11 errors keep their CKR name; kmu and usage errors pass. */
export function toKmuError(e: unknown): KmuError | UsageError {
  if (e instanceof KmuError || e instanceof UsageError) return e;
  if (e instanceof Pkcs11Error) {
    const m = byCkr[e.ckr];
    const detail = typeof m === 'object' ? m[1] : `${e.fn}: ${e.ckr}`;
    return new KmuError(kmuCodeForCkr(e.ckr), { ckr: e.ckr, detail, cause: e });
  }
  return new KmuError(RC.GENERAL_ERROR, { detail: e instanceof Error ? e.message : String(e), cause: e });
}
