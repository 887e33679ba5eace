// What the three backends share: loading a module, choosing a token, the one RW session
// commands run on, PKCS#11 login/logout and its errors in kmu's words, info() and close().
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KmuError, oneLine, SetupError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { toKmuError } from '../kmu/pkcs11Codes.js';
import { CKA, CKF_TOKEN, CKK, CKM, CKO, CKR, CKU, Module, Pkcs11Error, type Session, type Slot, type TokenInfo } from '../p11/index.js';
import type { Backend, BackendCapabilities, BackendInfo, BackendKind, KmuUser } from './backend.js';
import { attest, sha256File, type AttestFacts, type AttestPins, type AttestResult } from './attest.js';
import { checkMinSrv } from './cluster.js';
import { ensurePrivateDir } from './fsutil.js';
import { keygenLockName, TOKEN_LOCK, withLock } from './lock.js';
import type { TokenRules } from './tokenRules.js';
import { keyUri, parseTokenUri, tokenMatches, type TokenCandidate, type UriTokenInfo } from './uri.js';

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

/** Load a PKCS#11 module, turning every way that can fail into one SetupError line. */
export async function loadModule(path: string, what = 'PKCS#11 module'): Promise<Module> {
  if (!existsSync(path)) throw new SetupError(`${what} not found: ${path}`);
  try {
    const module = await Module.load(path);
    // SoftHSM up to 2.6 loses objects written while another thread reads (p11/objectLock.ts).
    const { manufacturerID, libraryVersion: v } = await module.getInfo();
    if (/^SoftHSM/i.test(manufacturerID) && v.major <= 2 && (v.major < 2 || v.minor <= 6)) module.serializeObjectWrites();
    return module;
  } catch (e) {
    const why = e instanceof Pkcs11Error ? `${e.fn} returned ${e.ckr}` : oneLine((e as Error)?.message ?? String(e));
    throw new SetupError(`cannot load ${what} ${path}: ${why}`, { cause: e });
  }
}

/**
 * Runs a call that rewrites or reads the token's own file. SoftHSM 2.6 rewrites token.object
 * on every C_Login (it stores the token flags): a C_GetTokenInfo of another process that
 * overlaps the rewrite fails with CKR_GENERAL_ERROR, and a C_Login that overlaps another's
 * leaves its process with no view of the token (every later call fails although C_Login
 * itself succeeded). kmu11 processes sharing a home take
 * turns, under <home>/token.lock (the home made if missing, as the handle store would); other
 * modules need no lock. A home that cannot be made leaves nowhere to meet: run unlocked.
 */
export async function tokenFileTurn<T>(module: Module, home: string | undefined, fn: () => Promise<T>, warnings: string[] = []): Promise<T> {
  if (home === undefined) return fn();
  const { manufacturerID } = await module.getInfo();
  if (!/^SoftHSM/i.test(manufacturerID)) return fn();
  try {
    await ensurePrivateDir(home, warnings);
  } catch {
    return fn();
  }
  return withLock(join(home, TOKEN_LOCK), fn);
}

export interface TokenChoice {
  slot: Slot;
  label: string;
}

/** A slot's token as a PKCS#11 URI's token attributes describe it (uri.ts tokenMatches). */
export async function describeToken(slot: Slot): Promise<TokenCandidate & { flags: number }> {
  const [ti, si] = await Promise.all([slot.getTokenInfo(), slot.getInfo()]);
  return {
    slotId: slot.id,
    label: ti.label,
    flags: ti.flags,
    manufacturerID: ti.manufacturerID,
    model: ti.model,
    serialNumber: ti.serialNumber,
    slotDescription: si.slotDescription,
    slotManufacturer: si.manufacturerID,
  };
}

/** The library as a PKCS#11 URI's library-manufacturer= and library-description= describe it. */
export async function describeLibrary(module: Module): Promise<{ manufacturerID: string; description: string }> {
  const mi = await module.getInfo();
  return { manufacturerID: mi.manufacturerID, description: mi.libraryDescription };
}

async function describeTokens(module: Module): Promise<Array<TokenCandidate & { slot: Slot; flags: number }>> {
  const out = [];
  for (const slot of await module.getSlots(true)) out.push({ slot, ...(await describeToken(slot)) });
  return out;
}

/**
 * The token to use: the one `choice` names — a label, or a PKCS#11 URI (RFC 7512: token=,
 * serial=, slot-id=, model=, manufacturer=, …); else the first of `preferred` that is present;
 * else the only initialized token. Nothing found, or more than one token matching, is a
 * SetupError that lists what the module offers: kmu11 never picks one of two silently.
 */
export async function chooseToken(module: Module, choice: string | undefined, preferred: string[] = []): Promise<TokenChoice> {
  const tokens = await describeTokens(module);
  const initialized = tokens.filter((t) => t.flags & CKF_TOKEN.TOKEN_INITIALIZED);
  const describe = (list: typeof tokens) =>
    list
      .map((t) => `${JSON.stringify(t.label)} serial ${t.serialNumber || '-'} slot ${t.slotId}`)
      .sort()
      .join(', ');
  if (choice !== undefined) {
    let hits: typeof tokens;
    if (choice.startsWith('pkcs11:')) {
      const attrs = parseTokenUri(choice);
      const library = await describeLibrary(module);
      hits = tokens.filter((t) => tokenMatches(attrs, t, library));
    } else {
      hits = tokens.filter((t) => t.label === choice);
    }
    if (hits.length === 1) return hits[0]!;
    const what = choice.startsWith('pkcs11:') ? choice : `labelled ${JSON.stringify(choice)}`;
    if (hits.length > 1)
      throw new SetupError(`${hits.length} tokens ${choice.startsWith('pkcs11:') ? 'match ' : ''}${what} in ${module.path} (${describe(hits)}); choose one with a PKCS#11 URI, e.g. --token 'pkcs11:serial=${hits[0]!.serialNumber}'`);
    throw new SetupError(
      `no token ${choice.startsWith('pkcs11:') ? 'matches ' : ''}${what} in ${module.path}` +
        (initialized.length ? ` (tokens: ${describe(initialized)})` : ' (it has no initialized token)'),
    );
  }
  for (const p of preferred) {
    const hit = initialized.filter((t) => t.label === p);
    if (hit.length === 1) return hit[0]!;
  }
  if (initialized.length === 1) return initialized[0]!;
  if (initialized.length === 0) {
    throw new SetupError(`${module.path} has no initialized token; initialize one or set KMU11_TOKEN`);
  }
  throw new SetupError(`${module.path} has ${initialized.length} tokens (${describe(initialized)}); choose one with KMU11_TOKEN or --token (a label or a PKCS#11 URI)`);
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
    return tokenFileTurn(this.module, this.home, () => this.slot.getTokenInfo(), this.warnings);
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
    const tag = createHash('sha256').update(`${this.module.path}\0${serialNumber}\0${label}`).digest('hex');
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
      await tokenFileTurn(this.module, this.home, () => this.session.login(pin, CKU.USER), this.warnings);
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

/** Open the backend's RW session, as a SetupError if the token refuses. */
export async function openRwSession(slot: Slot, label: string): Promise<Session> {
  try {
    return await slot.openSession({ rw: true });
  } catch (e) {
    const why = e instanceof Pkcs11Error ? e.ckr : oneLine((e as Error)?.message ?? String(e));
    throw new SetupError(`cannot open a session on token ${JSON.stringify(label)}: ${why}`, { cause: e });
  }
}
