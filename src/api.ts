// The library's public types: what a program passes to each command and gets back. Nothing
// here imports kmu11's internals or Node's types, so the published .d.ts stands alone.
//
// Adding a command to the library: one entry in CommandMap below (its options as a program
// passes them, and its result). Kmu gets the method from the command table at run time
// (index.ts); `npm run build:ts` fails if the entry's types drift from the command's own.

/** Options every key-generating command takes (the flags -l, -id, -nex, -sess, -u, …). */
export interface KeyGenOptions {
  /** -l */
  label: string;
  /** -id */
  id?: string;
  /** -nex: the private (or secret) key cannot be extracted. */
  nex?: boolean;
  /** -sess: the key lives only as long as this Kmu. */
  sess?: boolean;
  /** -u: CloudHSM user ids to share with. */
  users?: number[];
  /** -m_value */
  mValue?: number;
  /** -min_srv */
  minSrv?: number;
  /** -timeout */
  timeout?: number;
  /** -attest */
  attest?: boolean;
  /** -uri: kmu11's own; the result holds the keys' PKCS#11 URIs either way. */
  uri?: boolean;
}

/** A key pair made on the token: kmu handles, and the templates sent (attribute name → value). */
export interface KeyPairResult {
  publicKey: number;
  privateKey: number;
  /** false for -sess keys */
  token: boolean;
  /** RFC 7512 PKCS#11 URIs of the two keys */
  publicUri: string;
  privateUri: string;
  /** HSMs the backend spans */
  nodes?: number;
  /** -attest: the HSM's attestation checked out */
  attestation?: 'PASS';
  publicTemplate: Record<string, boolean | number | string>;
  privateTemplate: Record<string, boolean | number | string>;
}

/** One key made on the token (a secret key, an imported or unwrapped key): its kmu handle and the template sent. */
export interface NewKey {
  handle: number;
  /** false for -sess keys */
  token: boolean;
  template: Record<string, boolean | number | string>;
}

/** The key options of the commands that import or unwrap a key (a subset of KeyGenOptions, by command). */
type KeyOptions<K extends keyof KeyGenOptions> = Pick<KeyGenOptions, K>;

/** sign / verify -m: 0–4 RSA PKCS#1 v1.5 (SHA1, SHA256, SHA384, SHA512, SHA224), 5–9 RSA-PSS (same order), 15–19 ECDSA (SHA1, SHA224, SHA256, SHA384, SHA512), 20–24 DSA (same order). */
export type SignMechanismId = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 | 23 | 24;
/** wrapKey / unWrapKey -m: 4 AES_KEY_WRAP_PAD_PKCS5, 5 NIST_AES_WRAP_NO_PAD, 6 NIST_AES_WRAP_PAD, 7 RSA_AES, 8 RSA_OAEP, 10 AES_GCM, 11 CLOUDHSM_AES_GCM, 12 RSA_PKCS. */
export type WrapMechanismId = 4 | 5 | 6 | 7 | 8 | 10 | 11 | 12;
/** -t hash for RSA_AES and RSA_OAEP: 2 SHA1, 3 SHA256, 4 SHA384, 5 SHA512, 6 SHA224. */
export type HashTypeId = 2 | 3 | 4 | 5 | 6;
/** unWrapKey -kt: 0 RSA, 1 DSA, 3 ECC, 16 GENERIC_SECRET, 21 DES3, 31 AES. */
export type KeyTypeId = 0 | 1 | 3 | 16 | 21 | 31;
/** getToken -o: the quorum-controlled operations. */
export type QuorumOperation = 'sign' | 'share' | 'unshare' | 'delete';
/** getCert -s: 1 manufacturer root, 2 manufacturer hardware, 4 customer root, 8 cluster (customer root), 16 cluster (manufacturer root). */
export type CertificateType = 1 | 2 | 4 | 8 | 16;

/** The options of wrapKey and unWrapKey's mechanism flags. */
export interface WrapFlags {
  /** -m */
  mechanism: WrapMechanismId;
  /** -t: RSA_AES (7) and RSA_OAEP (8) only */
  hash?: HashTypeId;
  /** -aad: a file of additional authenticated data (AES-GCM) */
  aad?: string;
  /** -noheader: the bare wrapped bytes, without kmu11's header */
  noheader?: boolean;
  /** -i: an 8-byte IV in hex (with -noheader, mechanisms 4 and 5) */
  iv?: string;
  /** -iv_file */
  ivFile?: string;
  /** -tag_size: 8–16 */
  tagSize?: number;
}

export interface AttributeDump {
  handle: number;
  all: boolean;
  attributes: Array<{ name: string; id: number; value: string }>;
  /** Bytes of attribute data, as kmu's "got all attributes of size N" counts them. */
  size: number;
  file?: string;
}

/** Every command the library runs by name: options in, result data out. */
export interface CommandMap {
  loginHSM: {
    options: { userType?: string; user: string; password: string };
    result: { user: { id: number; name: string; type: string } };
  };
  logoutHSM: { options: Record<string, never>; result: Record<string, never> };
  genECCKeyPair: {
    /** curve: kmu's id (1–15) or a name such as 'P-256', 'prime256v1', 'secp384r1'. */
    options: KeyGenOptions & { curve: number | string };
    result: KeyPairResult & { curve: { id: number; nid: string; oid: string } };
  };
  genDSAKeyPair: { options: KeyGenOptions & { modulusBits?: 2048 }; result: KeyPairResult & { modulusBits: number } };
  findKey: {
    options: {
      /** -c: key class (2 public, 3 private, 4 secret) */
      cls?: number;
      /** -t: key type (PKCS#11 CKK number) */
      keyType?: number;
      label?: string;
      id?: string;
      sess?: 0 | 1;
      users?: number[];
      /** -m: a file holding an RSA modulus */
      modulusFile?: string;
      /** -kcv: 3-byte key check value in hex */
      kcv?: string;
    };
    result: { handles: number[] };
  };
  getAttribute: { options: { handle: number; attribute: number; out?: string }; result: AttributeDump };
  getKeyInfo: { options: { handle: number }; result: { handle: number; owner: number; shared: number[]; mValue: number } };
  setAttribute: {
    options: { handle: number; attribute: 1; value: 1 };
    result: { handle: number; attribute: number; value: number; prompted: boolean };
  };
  deleteKey: { options: { handle: number }; result: { handle: number } };
  exportPubKey: { options: { handle: number; out: string }; result: { handle: number; file: string; pem: string } };
  listECCCurveIds: {
    options: Record<string, never>;
    result: { supported: Array<{ id: number; nid: string }>; unsupported: Array<{ id: number; nid: string }> };
  };
  listAttributes: { options: Record<string, never>; result: { attributes: Array<{ name: string; id: number }> } };
  Error2String: { options: { code: number }; result: { code: number; text: string | null } };
  listUsers: {
    options: Record<string, never>;
    result: {
      users: Array<{ id: number; type: 'CO' | 'CU' | 'AU' | 'PCO' | 'PRECO'; name: string; mofnPubKey: boolean; loginFailureCnt: number; twoFA: boolean }>;
    };
  };
  shareKey: {
    /** share: 1 shares the key with `users`, 0 unshares it (-share). */
    options: { handle: number; users: number[]; share: 0 | 1 };
    result: { handle: number; shared: number[]; share: boolean; users: number[] };
  };
  getToken: {
    options: { handle: number; operation: QuorumOperation; out: string };
    result: { handle: number; operation: QuorumOperation; file: string; id: string; expires: string; approvalsNeeded: number };
  };
  approveToken: {
    /** file: the token file; signatures: the approvers' signature files over it. */
    options: { file: string; signatures: string[] };
    result: { handle: number; operation: string; approvals: number[]; approvalsNeeded: number };
  };
  sign: {
    /** file: the message; out: where the signature goes (DER for ECDSA and DSA). */
    options: { file: string; handle: number; mechanism: SignMechanismId; out: string };
    /** signature: hex */
    result: { handle: number; mechanism: string; file: string; signature: string };
  };
  verify: {
    /** file: the message; signature: the signature file. A signature that does not verify throws KmuError. */
    options: { file: string; signature: string; handle: number; mechanism: SignMechanismId };
    result: { handle: number; mechanism: string; valid: true };
  };
  genRSAKeyPair: {
    /** modulusBits: 2048–16384; exponent: odd, at least 65537. */
    options: KeyGenOptions & { modulusBits: number; exponent: number };
    result: KeyPairResult & { modulusBits: number; exponent: number };
  };
  genSymKey: {
    /** type: 16 GENERIC_SECRET, 18 RC4, 21 DES3, 31 AES; size in bytes. */
    options: KeyGenOptions & { type: 16 | 18 | 21 | 31; size: number };
    result: NewKey & { type: string; size: number };
  };
  wrapKey: {
    /** key: the key to export; wrapping: the wrapping key's handle; out: the file. */
    options: { key: number; wrapping: number; out: string } & WrapFlags;
    result: { handle: number; wrappingKey: number; file: string; length: number; mechanism: string };
  };
  unWrapKey: {
    /** file: the wrapped key; with noheader, label, keyType and keyClass (3 private, 4 secret) say what it is. */
    options: { file: string; wrapping: number; label?: string; keyType?: KeyTypeId; keyClass?: 3 | 4 } & WrapFlags &
      KeyOptions<'id' | 'sess' | 'nex' | 'users' | 'mValue' | 'minSrv' | 'timeout' | 'attest'>;
    result: NewKey & { noheader: boolean };
  };
  exSymKey: {
    /** wk: a file holding the AES key that wraps instead of `wrapping`'s. */
    options: { key: number; wrapping: number; out: string; mechanism?: 4; wk?: string };
    result: { handle: number; file: string; externalKey: boolean; length: number };
  };
  imSymKey: {
    /** file: the plaintext key; type: 21 DES3 or 31 AES. */
    options: { file: string; wrapping: number; type: 21 | 31; wk?: string } & KeyOptions<'label' | 'id' | 'sess' | 'attest' | 'minSrv' | 'timeout' | 'users'>;
    result: NewKey;
  };
  importPubKey: {
    /** file: a PEM public key (RSA, DSA or EC). */
    options: { file: string } & KeyOptions<'label' | 'sess' | 'id' | 'minSrv' | 'timeout'>;
    result: NewKey;
  };
  exportPrivateKey: {
    /** out: the PKCS#8 PEM file. */
    options: { key: number; wrapping: number; out: string; mechanism?: 4; wk?: string };
    result: { handle: number; file: string; externalKey: boolean };
  };
  importPrivateKey: {
    /** file: a PEM private key (RSA, EC or DSA); wrapping: an AES key that carries it in. */
    options: { file: string; wrapping: number; wk?: string } & KeyOptions<'label' | 'sess' | 'id' | 'mValue' | 'minSrv' | 'timeout' | 'users' | 'attest'>;
    result: NewKey & { berLength: number; keyType: string };
  };
  aesWrapUnwrap: {
    /** mode: 1 wrap, 0 unwrap; iv: 8 bytes in hex; out: default wrapped_key / unwrapped_key. */
    options: { mode: 0 | 1; file: string; wrapping: number; iv?: string; out?: string };
    /** result: hex */
    result: { wrap: boolean; file: string; result: string; defaultIv: boolean };
  };
  findSingleKey: { options: { handle: number }; result: { handle: number; servers: number } };
  /** No PKCS#11 token has partition certificates: always throws KmuError. */
  getCert: { options: { file: string; type: CertificateType }; result: never };
  IsValidKeyHandlefile: { options: { file: string }; result: { file: string; fake: boolean; handle?: number } };
  getCaviumPrivKey: { options: { handle: number; out: string }; result: { handle: number; file: string } };
  extractMaskedObject: { options: { handle: number; out: string }; result: { handle: number; file: string; length: number } };
  insertMaskedObject: { options: { file: string; minSrv?: number; timeout?: number }; result: NewKey };
  /** Not on FIPS-validated HSMs (kmu's page): always throws KmuError once its options are read. */
  genPBEKey: { options: KeyGenOptions & { password: string; salt: string; iterations: number }; result: never };
}

export type CommandName = keyof CommandMap;
export type CommandOptions<K extends CommandName> = CommandMap[K]['options'];
export type CommandData<K extends CommandName> = CommandMap[K]['result'];

/** One method a command: `kmu.deleteKey({ handle })` resolves to the command's result data. */
export type CommandMethods = {
  [K in CommandName]: {} extends CommandOptions<K>
    ? (options?: CommandOptions<K>) => Promise<CommandData<K>>
    : (options: CommandOptions<K>) => Promise<CommandData<K>>;
};

/** What a command returned: kmu's return code and operation name, warnings, and its data. */
export interface CommandResult<D = Record<string, unknown>> {
  command: string;
  /** kmu's operation name in "<op> returned: 0x..", e.g. Cfm3GenerateKeyPair. */
  op: string;
  code: number;
  warnings: string[];
  data: D;
}

/** Where Kmu.open finds the token (each defaults as the CLI's settings do). */
export interface OpenOptions {
  /** PKCS#11 module path; none: the embedded SoftHSM token. */
  module?: string;
  /** token label */
  token?: string;
  /** kmu11's home (default ~/.kmu11, or $KMU11_HOME) */
  home?: string;
  /** a config file instead of $KMU11_CONFIG / <home>/config.json */
  config?: string;
}

/** What `kmu.info()` reports: backend, module, slot and token (and the embedded token's files). */
export interface Info {
  backend: 'embedded' | 'generic' | 'cloudhsm';
  modulePath: string;
  library: { manufacturerID: string; description: string; version: string; cryptokiVersion: string };
  slot: { id: number; description: string };
  token: { label: string; manufacturerID: string; model: string; serialNumber: string; flags: number };
  home?: string;
  softhsmConf?: string;
  userPinFile?: string;
  soPinFile?: string;
}

/** One of kmu's EC curves (listECCCurveIds, genECCKeyPair -i). */
export interface CurveInfo {
  id: number;
  /** OpenSSL NID name as kmu prints it, e.g. NID_X9_62_prime256v1 */
  nid: string;
  /** names accepted besides the id */
  names: readonly string[];
  oid: string;
  bits: number;
  /** CloudHSM's FIPS policy refuses it */
  cloudhsmForbidden: boolean;
}
