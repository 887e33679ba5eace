// What the three backends share once their token is open (tokenAccess.ts): PKCS#11
// login/logout and its errors in kmu's words, info(), key URIs, capability caches and close().
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { toKmuError } from '../kmu/pkcs11Codes.js';
import { CKA, CKK, CKM, CKO, CKR, CKU, Pkcs11Error, type Module, type Session, type Slot, type TokenInfo } from '../p11/index.js';
import type { Backend, BackendCapabilities, BackendInfo, BackendKind, KmuUser } from './backend.js';
import { attest, sha256File, type AttestFacts, type AttestPins, type AttestResult } from './attest.js';
import { checkMinSrv } from './cluster.js';
import { keygenLockName, withLock } from './lock.js';
import { tokenFileTurn } from './tokenAccess.js';
import type { TokenRules } from './tokenRules.js';
import { keyUri, type UriTokenInfo } from './uri.js';

/**
 * The user id reported for a login on the generic and cloudhsm backends. PKCS#11 has one
 * normal user per token and no user ids (CloudHSM's ids are not visible through its PKCS#11
 * library), so 0 stands for "the token's user": it is never a real CloudHSM id (those start at 1),
 * so it cannot be mistaken for one in getKeyInfo or findKey -u.
 */
export const TOKEN_USER_ID = 0;

/** kmu accepts only crypto-user logins; anything else (CO, AU, PCO, typos) is 0xdb. */
export function checkUserType(type: string): 'CU' {
  if (type.toUpperCase() !== 'CU') {
    throw new KmuError(RC.INVALID_USER_TYPE, { detail: `key_mgmt_util accepts only CU logins, not "${type}"` });
  }
  return 'CU';
}

function isCkr(e: unknown, ...codes: number[]): e is Pkcs11Error {
  return e instanceof Pkcs11Error && codes.includes(e.code);
}

// PKCS#11 login state belongs to the application (this process) and token, not to a session:
// C_Logout on one session logs out every session of the process on that token. Backends
// sharing a module in one process count their logins here so that one logging out does not
// log the others out.
const tokenLogins = new Map<string, number>();

export interface TokenBackendParts {
  module: Module;
  slot: Slot;
  session: Session;
  capabilities: BackendCapabilities;
  home?: string;
  attestPins?: AttestPins;
}

export abstract class TokenBackend implements Backend {
  abstract readonly kind: BackendKind;
  readonly module: Module;
  readonly slot: Slot;
  readonly session: Session;
  readonly capabilities: BackendCapabilities;
  /** What this token is known to refuse (the generic backend sets it: tpm2-pkcs11 and others). */
  readonly tokenRules?: TokenRules;
  readonly home?: string;
  attestPins?: AttestPins;
  protected currentUser: KmuUser | null = null;
  protected warnings: string[] = [];
  private tokenLoggedIn = false;
  private closed = false;
  private mechanismList?: Promise<number[]>;
  private tokenIdentity?: Promise<UriTokenInfo>;
  private readonly curves = new Map<string, Promise<boolean>>();

  constructor(parts: TokenBackendParts) {
    this.module = parts.module;
    this.slot = parts.slot;
    this.session = parts.session;
    this.capabilities = parts.capabilities;
    this.home = parts.home;
    this.attestPins = parts.attestPins;
  }

  get user(): KmuUser | null {
    return this.currentUser;
  }

  abstract login(type: string, name: string, password: string): Promise<KmuUser>;

  async logout(): Promise<void> {
    if (!this.currentUser) throw new KmuError(RC.NOT_LOGGED_IN);
    await this.tokenLogout();
    this.currentUser = null;
  }

  takeWarnings(): string[] {
    const w = this.warnings;
    this.warnings = [];
    return w;
  }

  /** C_GetTokenInfo in the token file's turn. */
  private tokenInfo(): Promise<TokenInfo> {
    return tokenFileTurn(this.module, this.home, 'read', () => this.slot.getTokenInfo(), this.warnings);
  }

  exclusive<T>(id: Buffer, fn: () => Promise<T>): Promise<T> {
    return this.home === undefined ? fn() : withLock(join(this.home, keygenLockName(id)), fn);
  }

  requireServers(minSrv: number | undefined): void {
    checkMinSrv(minSrv, Math.max(1, this.capabilities.servers), this.kind);
  }

  /** The token's label, serial number, model and manufacturer: read once (they never change). */
  private identity(): Promise<UriTokenInfo> {
    return (this.tokenIdentity ??= this.tokenInfo().catch((e: unknown) => {
      this.tokenIdentity = undefined;
      throw e;
    }));
  }

  async keyUri(key: { label?: string; id?: Buffer; type: 'public' | 'private' | 'secret' }): Promise<string> {
    return keyUri(await this.identity(), key);
  }

  async handleStoreDir(home: string): Promise<string> {
    const { label, serialNumber } = await this.identity();
    // Trimmed at both ends, as kmu11 named these directories before the addon alone trimmed.
    const tag = createHash('sha256').update(`${this.module.path}\0${serialNumber.trim()}\0${label.trim()}`).digest('hex');
    return join(this.home ?? home, 'handles', tag.slice(0, 16));
  }

  attest(opts: { repin?: boolean } = {}): Promise<AttestResult> {
    return attest(this, { configPins: this.attestPins, repin: opts.repin });
  }

  mechanisms(): Promise<number[]> {
    return (this.mechanismList ??= this.slot.getMechanisms());
  }

  makesCurve(ecParams: Buffer): Promise<boolean> {
    const key = ecParams.toString('hex');
    let p = this.curves.get(key);
    if (!p) {
      p = (async () => {
        try {
          // A throwaway pair: session objects where the token makes them, else token objects
          // (tpm2-pkcs11), destroyed straight away.
          const token = this.tokenRules?.sessionObjects === false;
          const common = [
            { type: CKA.KEY_TYPE, value: CKK.EC },
            { type: CKA.TOKEN, value: token },
            ...(token ? [{ type: CKA.LABEL, value: 'kmu11-curve-probe' }] : [{ type: CKA.PRIVATE, value: false }]),
          ];
          const privateOnly = token
            ? [
                { type: CKA.SENSITIVE, value: true },
                { type: CKA.EXTRACTABLE, value: false },
                { type: CKA.SIGN, value: true },
              ]
            : [];
          const pair = await this.session.generateKeyPair(
            { mechanism: CKM.EC_KEY_PAIR_GEN },
            [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, ...common, { type: CKA.EC_PARAMS, value: ecParams }],
            [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, ...common, ...privateOnly],
          );
          await this.session.destroyObject([pair.publicKey, pair.privateKey]);
          return true;
        } catch {
          return false;
        }
      })();
      this.curves.set(key, p);
    }
    return p;
  }

  /** Backend-specific additions to info() (the embedded backend's paths). */
  protected extraInfo(): Partial<BackendInfo> {
    return {};
  }

  async info(): Promise<BackendInfo> {
    const [mi, si, ti] = await Promise.all([this.module.getInfo(), this.slot.getInfo(), this.tokenInfo()]);
    return {
      backend: this.kind,
      modulePath: this.module.path,
      library: {
        manufacturerID: mi.manufacturerID,
        description: mi.libraryDescription,
        version: `${mi.libraryVersion.major}.${mi.libraryVersion.minor}`,
        cryptokiVersion: `${mi.cryptokiVersion.major}.${mi.cryptokiVersion.minor}`,
      },
      slot: { id: this.slot.id, description: si.slotDescription },
      token: {
        label: ti.label,
        manufacturerID: ti.manufacturerID,
        model: ti.model,
        serialNumber: ti.serialNumber,
        flags: ti.flags,
      },
      ...this.extraInfo(),
    };
  }

  async attestationFacts(): Promise<AttestFacts> {
    const [mi, ti] = await Promise.all([this.module.getInfo(), this.tokenInfo()]);
    const v = (x: { major: number; minor: number }) => `${x.major}.${x.minor}`;
    return {
      module: { path: this.module.path, sha256: await sha256File(this.module.path) },
      library: { manufacturerID: mi.manufacturerID, description: mi.libraryDescription, version: v(mi.libraryVersion) },
      token: {
        manufacturerID: ti.manufacturerID,
        model: ti.model,
        serialNumber: ti.serialNumber,
        firmwareVersion: v(ti.firmwareVersion),
        hardwareVersion: v(ti.hardwareVersion),
      },
    };
  }

  private get loginKey(): string {
    return `${this.module.path}\0${this.slot.id}`;
  }

  /**
   * C_Login(CKU_USER, pin). `shareExisting`: when this process is already logged in to the
   * token (another backend object), join that login instead of failing; only for backends
   * that checked the user's credentials themselves before getting here (embedded).
   */
  protected async tokenLogin(pin: string, shareExisting: boolean): Promise<void> {
    const key = this.loginKey;
    const n = tokenLogins.get(key) ?? 0;
    if (n > 0 && shareExisting) {
      tokenLogins.set(key, n + 1);
      this.tokenLoggedIn = true;
      return;
    }
    try {
      await tokenFileTurn(this.module, this.home, 'write', () => this.session.login(pin, CKU.USER), this.warnings);
    } catch (e) {
      if (!(shareExisting && isCkr(e, CKR.USER_ALREADY_LOGGED_IN))) throw toKmuError(e); // login() promises kmu's codes: the one CKR table
    }
    tokenLogins.set(key, (tokenLogins.get(key) ?? 0) + 1);
    this.tokenLoggedIn = true;
  }

  protected async tokenLogout(): Promise<void> {
    if (!this.tokenLoggedIn) return;
    this.tokenLoggedIn = false;
    const key = this.loginKey;
    const n = (tokenLogins.get(key) ?? 1) - 1;
    if (n > 0) {
      tokenLogins.set(key, n);
      return;
    }
    tokenLogins.delete(key);
    try {
      await this.session.logout();
    } catch (e) {
      if (!isCkr(e, CKR.USER_NOT_LOGGED_IN, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_CLOSED)) throw e;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    try {
      await this.tokenLogout();
    } catch (e) {
      errors.push(e);
    }
    this.currentUser = null;
    try {
      await this.session.close();
    } catch (e) {
      if (!isCkr(e, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_CLOSED)) errors.push(e);
    }
    try {
      await this.module.close();
    } catch (e) {
      errors.push(e);
    }
    if (errors.length) throw errors[0];
  }
}
