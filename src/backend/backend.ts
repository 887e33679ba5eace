import type { Module, Session, Slot } from '../p11/index.js';
import type { QuorumStore } from './quorum.js';

export type BackendKind = 'embedded' | 'cloudhsm' | 'generic';

/** CloudHSM's user types; kmu itself accepts only CU logins. */
export type UserType = 'CO' | 'CU' | 'AU' | 'PCO' | 'PRECO';

export interface KmuUser {
  /** CloudHSM user id (1 = first CO "admin", 2 = first CU "crypto_user" on the embedded token). */
  id: number;
  name: string;
  type: UserType;
}

/** What `kmu11 info` prints: everything another PKCS#11 tool needs to reach the same token. */
export interface BackendInfo {
  backend: BackendKind;
  modulePath: string;
  library: { manufacturerID: string; description: string; version: string; cryptokiVersion: string };
  slot: { id: number; description: string };
  token: { label: string; manufacturerID: string; model: string; serialNumber: string; flags: number };
  /** Embedded token only. */
  home?: string;
  softhsmConf?: string;
  userPinFile?: string;
  soPinFile?: string;
}

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
  /** -min_srv / -timeout: number of servers in the cluster, or 0 when not a cluster. */
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
   * Runs `fn` while no other kmu11 process sharing this backend's home runs one (an ID check
   * and the generation it allows are one step). Without a home, just runs it.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** The token's mechanism list, read once. */
  mechanisms(): Promise<number[]>;
  /** Whether the token makes EC keys on the curve `ecParams` (DER OID): a throwaway session pair, tried once. */
  makesCurve(ecParams: Buffer): Promise<boolean>;
  /** listUsers: the backend's user table; absent where the backend cannot see users (PKCS#11 has none). */
  listUsers?(): Promise<UserListEntry[]>;
  /** Users, sharing and quorum; absent where PKCS#11 alone cannot know them (generic, cloudhsm). */
  readonly userModel?: UserModel;
  /** Close sessions; session objects (-sess keys) die here. Idempotent. */
  close(): Promise<void>;
}
