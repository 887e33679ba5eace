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
}

/** A key pair made on the token: kmu handles, and the templates sent (attribute name → value). */
export interface KeyPairResult {
  publicKey: number;
  privateKey: number;
  /** false for -sess keys */
  token: boolean;
  publicTemplate: Record<string, boolean | number | string>;
  privateTemplate: Record<string, boolean | number | string>;
}

export interface AttributeDump {
  handle: number;
  all: boolean;
  attributes: Array<{ name: string; id: number; value: string }>;
  /** Bytes of attribute data, as kmu's "got all attributes of size N" counts them. */
  size: number;
  file?: string;
  /** The dump as written to the file (or printed when there is no -out). */
  text: string;
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
