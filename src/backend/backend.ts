// The backend's interface: what the layers above (kmu11.ts's command runner, the commands through
// their context, the CLI's own modes through index.ts) may know of a backend.
import type { Info } from '../api.js';
import type { Module, Session, Slot, Template } from '../p11/index.js';
import type { AttestFacts, AttestPins, AttestResult } from './attest.js';
import type { QuorumStore } from './quorum.js';
import type { TokenRules } from './tokenRules.js';

export type { AttestFacts, AttestPins, AttestResult } from './attest.js';
export type { HandleStore, KeyMeta } from './handles/store.js';

export type BackendKind = 'embedded' | 'cloudhsm' | 'generic';

/** CloudHSM's user types; kmu itself accepts only CU logins. */
export type UserType = 'CO' | 'CU' | 'AU' | 'PCO' | 'PRECO';

export interface KmuUser {
  /** CloudHSM user id (1 = first CO "admin", 2 = first CU "crypto_user" on the embedded token). */
  id: number;
  name: string;
  type: UserType;
}

/** What `kmu11 info` prints (the library's Info): everything another PKCS#11 tool needs to reach the same token. */
export type BackendInfo = Info;

/** One row of kmu's listUsers. */
export interface UserListEntry {
  id: number;
  type: UserType;
  name: string;
  mofnPubKey: boolean;
  loginFailureCnt: number;
  twoFA: boolean;
}

/** Cluster features kmu exposes as flags; a backend that lacks one refuses the flag. */
export interface BackendCapabilities {
  /** -u at generation, getKeyInfo's shared users. */
  sharing: boolean;
  /** -m_value. */
  quorum: boolean;
  /** -min_srv / -timeout: HSMs the backend spans (a single token: 1). */
  servers: number;
  /** -attest. */
  attestation: boolean;
}

/** CloudHSM's users, where the backend keeps them itself (embedded): -u, shareKey and quorum ask it. */
export interface UserModel {
  /** A user by id (with the quorum key they registered, PEM), or undefined. */
  user(id: number): Promise<(KmuUser & { mofnPubKey?: string }) | undefined>;
  readonly quorum: QuorumStore;
}

/** Owner, shared users and quorum of a key, as the backend keeps them (getKeyInfo, shareKey). */
export interface KeyAccess {
  owner: number;
  shared: number[];
  mValue: number;
}

/** A key pair as kmu asked for it, for the backend's policy and its own ways of making pairs. */
export interface KeyPairRequest {
  algorithm: 'ec' | 'dsa' | 'rsa';
  /** EC: kmu's curve id and OpenSSL name. */
  curve?: { id: number; nid: string };
  label: string;
  id?: string;
  nex: boolean;
  sess: boolean;
  users: number[];
  mValue: number;
}

export interface Backend {
  readonly kind: BackendKind;
  readonly module: Module;
  readonly slot: Slot;
  /** The RW session commands run on; logged in once loginHSM succeeds. */
  readonly session: Session;
  readonly capabilities: BackendCapabilities;
  /** kmu11's home (config.home): where kmu11's own stores for this backend live. */
  readonly home?: string;
  /** The logged-in user, or null before loginHSM / after logoutHSM. */
  readonly user: KmuUser | null;
  /**
   * loginHSM. Throws KmuError: 0xdb for a user type kmu does not accept, 0xa5 for a wrong
   * name or password, 0xa4 when already logged in.
   */
  login(type: string, name: string, password: string): Promise<KmuUser>;
  /** logoutHSM. Throws KmuError 0xa3 when nobody is logged in. */
  logout(): Promise<void>;
  /** Warnings to show on stderr (e.g. a default password still in use). Drained on read. */
  takeWarnings(): string[];
  info(): Promise<BackendInfo>;
  /**
   * Runs `fn` while no other kmu11 process (or call) sharing this backend's home runs one for
   * the same key ID (an ID check and the generation it allows are one step). Without a home,
   * just runs it.
   */
  exclusive<T>(id: Buffer, fn: () => Promise<T>): Promise<T>;
  /**
   * -min_srv: throws KmuError 0x0d when the backend spans fewer HSMs than `minSrv`, before
   * anything is made (a single token is one).
   */
  requireServers(minSrv: number | undefined): void;
  /**
   * Where this token's handle store lives: the embedded token's home; else
   * <home>/handles/<module path, serial number and label hashed> (`home`: config.home when the
   * backend has none). README "Key handles".
   */
  handleStoreDir(home: string): Promise<string>;
  /** The RFC 7512 URI of a key on this token (token info read once), for -uri and --json. */
  keyUri(key: { label?: string; id?: Buffer; type: 'public' | 'private' | 'secret' }): Promise<string>;
  /**
   * -attest and `kmu11 attest`: the backend against its pins (the config file's, else those
   * recorded in the home, recorded now on first use); `repin` records the current facts again.
   */
  attest(opts?: { repin?: boolean }): Promise<AttestResult>;
  /** The token's mechanism list, read once. */
  mechanisms(): Promise<number[]>;
  /** Whether the token makes EC keys on the curve `ecParams` (DER OID): a throwaway session pair, tried once. */
  makesCurve(ecParams: Buffer): Promise<boolean>;
  /** listUsers: the backend's user table; absent where the backend cannot see users (PKCS#11 has none). */
  listUsers?(): Promise<UserListEntry[]>;
  /** Users, sharing and quorum; absent where PKCS#11 alone cannot know them (generic, cloudhsm). */
  readonly userModel?: UserModel;
  /**
   * The backend's rules for a pair, before anything is made: throws KmuError in kmu's words for
   * what it cannot do (cloudhsm: DSA, curves SDK 5 lacks, -sess with -u). Absent: no rules.
   */
  checkKeyPair?(req: KeyPairRequest): void;
  /** The PKCS#11 templates as this backend must send them (cloudhsm: a unique CKA_ID, its defaults). */
  keyPairTemplates?(req: KeyPairRequest, pub: Template, priv: Template): { publicTemplate: Template; privateTemplate: Template };
  /**
   * Makes a pair shared with `req.users` and with quorum `req.mValue` in one step, or nothing
   * (cloudhsm: CloudHSM CLI). Returns this session's PKCS#11 objects. Absent: -u/-m_value are
   * the handle store's metadata (embedded) or refused (capabilities).
   */
  generateSharedKeyPair?(req: KeyPairRequest): Promise<{ publicKey: number; privateKey: number }>;
  /** -min_srv above what the module guarantees itself: wait until the new pair is on `minSrv` HSMs or throw (caller destroys it). */
  waitForServers?(pair: { publicKey: number; privateKey: number }, minSrv: number, timeout: number | undefined, signal?: AbortSignal): Promise<void>;
  /** getKeyInfo: owner/shared/quorum as the HSM keeps them. Absent: the handle store's metadata. */
  keyInfo?(object: number): Promise<KeyAccess>;
  /** shareKey: share (true) or unshare the key with each user id. */
  shareKey?(object: number, users: number[], share: boolean): Promise<void>;
  /** setAttribute -a 1: make a session key a token key where C_CopyObject does not exist (cloudhsm). */
  makeTokenKey?(object: number): Promise<void>;
  /** What this token is known to refuse (generic backend: tpm2-pkcs11 and others). Absent: nothing known. */
  readonly tokenRules?: TokenRules;
  /** What -attest pins: module file hash, library and token info (cloudhsm: HSM identities too). */
  attestationFacts(): Promise<AttestFacts>;
  /** Pins given in the config file, if any (else recorded in the home). */
  readonly attestPins?: AttestPins;
  /** Close sessions; session objects (-sess keys) die here. Idempotent. */
  close(): Promise<void>;
}
