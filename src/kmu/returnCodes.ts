// kmu's return codes: the number a command prints after "returned:", and its text.
// 0x00, 0xa8, 0xb3, 0xc6, 0xdb and the cluster state 0x30000085 (with their exact wording) come
// from the key_mgmt_util reference pages; the rest are kmu11's own assignments in the same style, kept here as data
// so that Error2String, the formatters and the PKCS#11 mapping all read one table.

export interface ReturnCode {
  code: number;
  /** Text after "0x.. : ", e.g. "HSM Error: Key Access is denied". */
  text: string;
}

const table: ReadonlyArray<readonly [number, string]> = [
  [0x00, 'HSM Return: SUCCESS'],
  [0x01, 'HSM Error: General error'],
  [0x02, 'HSM Error: Invalid input'],
  [0x03, 'HSM Error: Not enough memory on the HSM'],
  [0x04, 'HSM Error: Operation not supported by this token'],
  [0x05, 'HSM Error: Mechanism or curve not supported by this token'],
  [0x06, 'HSM Error: Attribute value is invalid or inconsistent'],
  [0x07, 'HSM Error: Key ID already exists'],
  [0x08, 'HSM Error: Output file could not be written'],
  [0x09, 'HSM Error: Input file could not be read'],
  [0x0a, 'HSM Error: Token is not present or not initialized'],
  [0x0b, 'HSM Error: Signature is invalid'],
  [0x0c, 'HSM Error: Attestation check failed'],
  [0x0d, 'HSM Error: Cluster feature not available on this backend'],
  [0xa3, 'HSM Error: User is not logged in'],
  [0xa4, 'HSM Error: User is already logged in'],
  [0xa5, 'HSM Error: Invalid user name or password'],
  [0xa6, 'HSM Error: User account is locked'],
  [0xa8, 'HSM Error: Invalid object handle is passed to this operation'],
  [0xa9, 'HSM Error: Attribute is not present for this object'],
  [0xaa, 'HSM Error: Attribute is read only'],
  [0xab, 'HSM Error: Attribute is sensitive and cannot be revealed'],
  [0xb3, 'HSM Error: This operation violates the current configured/FIPS policies'],
  [0xc6, 'HSM Error: Key Access is denied'],
  [0xdb, 'HSM Error: Invalid User Type.'],
  // A node's err state, not a command's return code: the genECCKeyPair page's policy refusal.
  [0x30000085, 'HSM CLUSTER ERROR: Server in cluster is unavailable'],
];

/** The err state kmu prints for a node when the cluster refuses an operation (0xb3). */
export const CLUSTER_UNAVAILABLE = 0x30000085;

export const RETURN_CODES: ReadonlyMap<number, string> = new Map(table);

export const RC = {
  SUCCESS: 0x00,
  GENERAL_ERROR: 0x01,
  INVALID_INPUT: 0x02,
  MEMORY: 0x03,
  NOT_SUPPORTED: 0x04,
  MECHANISM_NOT_SUPPORTED: 0x05,
  ATTRIBUTE_INVALID: 0x06,
  KEY_ID_EXISTS: 0x07,
  FILE_WRITE: 0x08,
  FILE_READ: 0x09,
  TOKEN_NOT_PRESENT: 0x0a,
  SIGNATURE_INVALID: 0x0b,
  ATTESTATION_FAILED: 0x0c,
  FEATURE_UNAVAILABLE: 0x0d,
  NOT_LOGGED_IN: 0xa3,
  ALREADY_LOGGED_IN: 0xa4,
  LOGIN_FAILED: 0xa5,
  ACCOUNT_LOCKED: 0xa6,
  INVALID_HANDLE: 0xa8,
  ATTRIBUTE_NOT_PRESENT: 0xa9,
  ATTRIBUTE_READ_ONLY: 0xaa,
  ATTRIBUTE_SENSITIVE: 0xab,
  POLICY_VIOLATION: 0xb3,
  ACCESS_DENIED: 0xc6,
  INVALID_USER_TYPE: 0xdb,
} as const;

export function returnCodeText(code: number): string | undefined {
  return RETURN_CODES.get(code);
}

/** "0x00", "0xa8": kmu prints codes as two lowercase hex digits at least. */
export function hexCode(code: number): string {
  return '0x' + code.toString(16).padStart(2, '0');
}
