// kmu's return codes: the number a command prints after "returned:", and its text.
// 0x00, 0xa8, 0xb3, 0xc6, 0xdb and the cluster state 0x30000085 (with their exact wording) come
// from the key_mgmt_util reference pages; the rest are kmu11's own assignments in the same style, kept here as data
// so that Error2String, the formatters and the PKCS#11 mapping all read one table.

// One list: each code's name (for the source), number and text.
const CODES = {
  SUCCESS: [0x00, 'HSM Return: SUCCESS'],
  GENERAL_ERROR: [0x01, 'HSM Error: General error'],
  INVALID_INPUT: [0x02, 'HSM Error: Invalid input'],
  MEMORY: [0x03, 'HSM Error: Not enough memory on the HSM'],
  NOT_SUPPORTED: [0x04, 'HSM Error: Operation not supported by this token'],
  MECHANISM_NOT_SUPPORTED: [0x05, 'HSM Error: Mechanism or curve not supported by this token'],
  ATTRIBUTE_INVALID: [0x06, 'HSM Error: Attribute value is invalid or inconsistent'],
  KEY_ID_EXISTS: [0x07, 'HSM Error: Key ID already exists'],
  FILE_WRITE: [0x08, 'HSM Error: Output file could not be written'],
  FILE_READ: [0x09, 'HSM Error: Input file could not be read'],
  TOKEN_NOT_PRESENT: [0x0a, 'HSM Error: Token is not present or not initialized'],
  SIGNATURE_INVALID: [0x0b, 'HSM Error: Signature is invalid'],
  ATTESTATION_FAILED: [0x0c, 'HSM Error: Attestation check failed'],
  FEATURE_UNAVAILABLE: [0x0d, 'HSM Error: Cluster feature not available on this backend'],
  QUORUM_REQUIRED: [0x0e, 'HSM Error: Quorum approvals are missing or invalid'],
  // The verify page's refusal of a signature that does not match.
  BAD_PKCS_DATA: [0x1b, 'CSP Error: ERR_BAD_PKCS_DATA'],
  NOT_LOGGED_IN: [0xa3, 'HSM Error: User is not logged in'],
  ALREADY_LOGGED_IN: [0xa4, 'HSM Error: User is already logged in'],
  LOGIN_FAILED: [0xa5, 'HSM Error: Invalid user name or password'],
  ACCOUNT_LOCKED: [0xa6, 'HSM Error: User account is locked'],
  INVALID_HANDLE: [0xa8, 'HSM Error: Invalid object handle is passed to this operation'],
  ATTRIBUTE_NOT_PRESENT: [0xa9, 'HSM Error: Attribute is not present for this object'],
  ATTRIBUTE_READ_ONLY: [0xaa, 'HSM Error: Attribute is read only'],
  ATTRIBUTE_SENSITIVE: [0xab, 'HSM Error: Attribute is sensitive and cannot be revealed'],
  POLICY_VIOLATION: [0xb3, 'HSM Error: This operation violates the current configured/FIPS policies'],
  ACCESS_DENIED: [0xc6, 'HSM Error: Key Access is denied'],
  INVALID_USER_TYPE: [0xdb, 'HSM Error: Invalid User Type.'],
  // A node's err state, not a command's return code: the genECCKeyPair page's policy refusal.
  CLUSTER_UNAVAILABLE: [0x30000085, 'HSM CLUSTER ERROR: Server in cluster is unavailable'],
} as const satisfies Record<string, readonly [number, string]>;

type Codes = typeof CODES;
export const RC = Object.fromEntries(Object.entries(CODES).map(([k, [code]]) => [k, code])) as { readonly [K in keyof Codes]: Codes[K][0] };

/** Every code kmu11 prints, with its text (Error2String reads this). */
export const RETURN_CODES: ReadonlyMap<number, string> = new Map(Object.values(CODES));

export function returnCodeText(code: number): string | undefined {
  return RETURN_CODES.get(code);
}

/** "0x00", "0xa8": kmu prints codes as two lowercase hex digits at least. */
export function hexCode(code: number): string {
  return '0x' + code.toString(16).padStart(2, '0');
}
