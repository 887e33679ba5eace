// The default backend: the system's SoftHSMv2 with kmu11's own configuration and token under
// kmu11's home, plus CloudHSM's user model (users.json). Layout of <home> (dirs 0700, files 0600):
//
//   softhsm2.conf   SoftHSM's config: tokendir = <home>/tokens
//   tokens/         SoftHSM's token store
//   so.pin          the token's SO PIN   (random; only used to create the token)
//   user.pin        the token's user PIN (random; C_Login after a kmu user's password checks out)
//   users.json      kmu users: CO admin (id 1), CU crypto_user (id 2), scrypt-hashed passwords
//   lock            held briefly while the home is set up or users.json changes
//   token.lock      turns at SoftHSM's token file: C_Initialize and C_GetTokenInfo together, C_Login
//                   alone (tokenAccess.ts tokenFileTurn)
//
// A complete home opens without the setup lock. Otherwise setup is a sequence of idempotent steps,
// each file written atomically, all under the lock (SoftHSM loaded inside it, so it sees a
// token another process has just made): an interrupted first run leaves complete files only,
// and the next run finishes the job (a token whose user PIN was never set gets it then).
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KmuError, SetupError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { CKF_TOKEN, CKU, Pkcs11Error, type Module, type Slot } from '../p11/index.js';
import type { Backend, BackendInfo, KmuUser, UserListEntry, UserModel } from './backend.js';
import { QuorumStore } from './quorum.js';
import { userById } from './userAdmin.js';
import type { Kmu11Config } from './config.js';
import { createFileAtomic, DIR_MODE, FILE_MODE, makeDirs, missing, requirePrivate } from './fsutil.js';
import { withLock } from './lock.js';
import { findSoftHsmModule } from './softhsm.js';
import { checkUserType, TokenBackend } from './token.js';
import { inTokenTurn, loadModule, openRwSession } from './tokenAccess.js';
import {
  authenticate,
  changeUserPassword,
  DEFAULT_PASSWORD,
  ensureUsers,
  listUserEntries,
  resetUserPassword,
} from './users.js';

const EMBEDDED_TOKEN_LABEL = 'kmu11';

/**
 * A one-HSM cluster for -min_srv (the config file's "servers" may say otherwise), with
 * CloudHSM's users, sharing and quorum (users.json, quorum.json). -attest pins the SoftHSM
 * library and token.
 */
const EMBEDDED_CAPABILITIES = { sharing: true, quorum: true, servers: 1, attestation: true } as const;

export interface EmbeddedPaths {
  home: string;
  softhsmConf: string;
  tokens: string;
  soPin: string;
  userPin: string;
  users: string;
  quorum: string;
  lock: string;
}

export function embeddedPaths(home: string): EmbeddedPaths {
  return {
    home,
    softhsmConf: join(home, 'softhsm2.conf'),
    tokens: join(home, 'tokens'),
    soPin: join(home, 'so.pin'),
    userPin: join(home, 'user.pin'),
    users: join(home, 'users.json'),
    quorum: join(home, 'quorum.json'),
    lock: join(home, 'lock'),
  };
}

function softhsmConf(paths: EmbeddedPaths): string {
  return [
    '# SoftHSMv2 configuration for kmu11\'s embedded token (written by kmu11).',
    `directories.tokendir = ${paths.tokens}`,
    'objectstore.backend = file',
    'log.level = ERROR',
    'slots.removable = false',
    '',
  ].join('\n');
}

/** The tokendir an existing softhsm2.conf names (a user may have edited it). */
function confTokenDir(conf: string, fallback: string): string {
  const m = /^\s*directories\.tokendir\s*=\s*(.+?)\s*$/m.exec(readFileSync(conf, 'utf8'));
  return m?.[1] ?? fallback;
}

async function readPin(path: string): Promise<string> {
  let pin: string;
  try {
    pin = (await fs.readFile(path, 'utf8')).trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SetupError(`cannot read ${path}: ${code === 'ENOENT' ? 'missing' : (code ?? (e as Error).message)}`, { cause: e });
  }
  if (!pin) throw new SetupError(`${path} is empty`);
  return pin;
}

/** The PIN in `path`, creating it (32 random hex chars) if absent. */
async function readOrCreatePin(path: string): Promise<string> {
  if (await missing(path)) await createFileAtomic(path, randomBytes(16).toString('hex') + '\n');
  return readPin(path);
}

// SoftHSM reads SOFTHSM2_CONF once, in C_Initialize, and the module is shared by the whole
// process: one embedded home per process while its module is loaded.
let activeConf: { conf: string; opens: number } | undefined;

async function loadSoftHsm(modulePath: string, conf: string): Promise<Module> {
  if (activeConf && activeConf.opens > 0 && activeConf.conf !== conf) {
    throw new SetupError(
      `this process already uses SoftHSM with ${activeConf.conf}; close that backend before opening ${conf}`,
    );
  }
  process.env.SOFTHSM2_CONF = conf;
  const module = await loadModule(modulePath, 'SoftHSMv2 module');
  activeConf = { conf, opens: (activeConf?.conf === conf ? activeConf.opens : 0) + 1 };
  return module;
}

function releaseSoftHsm(): void {
  if (activeConf) activeConf.opens = Math.max(0, activeConf.opens - 1);
}

async function tokenDirCount(tokenDir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(tokenDir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory() && !(await missing(join(tokenDir, e.name, 'token.object')))) n++;
  }
  return n;
}

async function findToken(module: Module, label: string): Promise<{ slot: Slot; flags: number } | undefined> {
  for (const slot of await module.getSlots(true)) {
    const ti = await slot.getTokenInfo();
    if (ti.label === label && ti.flags & CKF_TOKEN.TOKEN_INITIALIZED) return { slot, flags: ti.flags };
  }
  return undefined;
}

function setupError(step: string, e: unknown): SetupError {
  const why = e instanceof Pkcs11Error ? `${e.fn} returned ${e.ckr}` : String((e as Error)?.message ?? e).replace(/\s*\n\s*/g, ' ');
  return new SetupError(`${step}: ${why}`, { cause: e });
}

/** SO login, C_InitPIN with the user PIN, logout: the second half of making a token. */
async function initUserPin(slot: Slot, soPin: string, userPin: string, label: string): Promise<void> {
  const s = await slot.openSession({ rw: true });
  try {
    await s.login(soPin, CKU.SO);
    try {
      await s.initPin(userPin);
    } finally {
      await s.logout().catch(() => undefined);
    }
  } catch (e) {
    throw setupError(`cannot set the user PIN of token ${JSON.stringify(label)}`, e);
  } finally {
    await s.close().catch(() => undefined);
  }
}

/** Find the home's token, creating it on the free slot (or finishing a half-made one). */
async function ensureToken(module: Module, paths: EmbeddedPaths, label: string): Promise<Slot> {
  let found = await findToken(module, label);
  if (!found) {
    const tokenDir = confTokenDir(paths.softhsmConf, paths.tokens);
    const slots = await module.getSlots(true);
    const infos = await Promise.all(slots.map((s) => s.getTokenInfo()));
    const initialized = infos.filter((t) => t.flags & CKF_TOKEN.TOKEN_INITIALIZED).length;
    // The module must be reading our tokendir before we initialize anything on it: if something
    // else in this process loaded SoftHSM first with another config, its token count differs.
    if (initialized !== (await tokenDirCount(tokenDir))) {
      throw new SetupError(
        `SoftHSM in this process was not started with ${paths.softhsmConf}; open the embedded backend before any other use of SoftHSM`,
      );
    }
    // The home has its token already: another label is a typo, never a second, empty token.
    if (initialized > 0) {
      const labels = infos.filter((t) => t.flags & CKF_TOKEN.TOKEN_INITIALIZED).map((t) => JSON.stringify(t.label));
      throw new SetupError(`no token labelled ${JSON.stringify(label)} in ${paths.home} (tokens: ${labels.sort().join(', ')}); kmu11 makes its token only in an empty home`);
    }
    const free = slots.find((_, i) => !(infos[i]!.flags & CKF_TOKEN.TOKEN_INITIALIZED));
    if (!free) throw new SetupError(`SoftHSM offers no free slot to create token ${JSON.stringify(label)}`);
    const soPin = await readOrCreatePin(paths.soPin);
    await readOrCreatePin(paths.userPin);
    try {
      await free.initToken(soPin, label);
    } catch (e) {
      throw setupError(`cannot create token ${JSON.stringify(label)} in ${tokenDir}`, e);
    }
    found = await findToken(module, label);
    if (!found) throw new SetupError(`token ${JSON.stringify(label)} was created but SoftHSM does not list it`);
  }
  if (!(found.flags & CKF_TOKEN.USER_PIN_INITIALIZED)) {
    const soPin = await readPin(paths.soPin);
    const userPin = await readOrCreatePin(paths.userPin);
    await initUserPin(found.slot, soPin, userPin, label);
  }
  // The token is usable only with the user PIN file; never invent a new one for an existing token.
  await readPin(paths.userPin);
  return found.slot;
}

/**
 * The default-password warning shows once per home and user (real kmu prints none; a warning on
 * every login would add a line to every script's `2>&1` capture). Remembered in a file beside users.json.
 */
async function firstDefaultPasswordLogin(home: string, user: string): Promise<boolean> {
  const file = join(home, 'default-password-warned');
  const warned = await fs.readFile(file, 'utf8').then((t) => t.split('\n'), () => [] as string[]);
  if (warned.includes(user)) return false;
  await fs.appendFile(file, user + '\n', { mode: FILE_MODE }).catch(() => undefined);
  return true;
}

class EmbeddedBackend extends TokenBackend {
  readonly kind = 'embedded' as const;
  readonly paths: EmbeddedPaths;

  readonly userModel: UserModel;

  constructor(parts: ConstructorParameters<typeof TokenBackend>[0], paths: EmbeddedPaths, warnings: string[]) {
    super(parts);
    this.paths = paths;
    this.warnings.push(...warnings);
    this.userModel = { user: (id) => userById(paths, id), quorum: new QuorumStore(paths) };
  }

  async login(type: string, name: string, password: string): Promise<KmuUser> {
    checkUserType(type);
    if (this.currentUser) throw new KmuError(RC.ALREADY_LOGGED_IN);
    const user = await authenticate(this.paths, name, password, 'CU');
    await this.tokenLogin(await readPin(this.paths.userPin), true);
    this.currentUser = user;
    if (password === DEFAULT_PASSWORD && (await firstDefaultPasswordLogin(this.paths.home, user.name))) {
      this.warnings.push(
        `Warning: user ${user.name} still has the default password; change it with: kmu11 passwd ${user.name}`,
      );
    }
    return user;
  }

  listUsers(): Promise<UserListEntry[]> {
    return listUserEntries(this.paths.users);
  }

  /** The embedded token's handle store lives in its home, beside it. */
  override async handleStoreDir(): Promise<string> {
    return this.paths.home;
  }

  protected override extraInfo(): Partial<BackendInfo> {
    return {
      home: this.paths.home,
      softhsmConf: this.paths.softhsmConf,
      userPinFile: this.paths.userPin,
      soPinFile: this.paths.soPin,
    };
  }

  private released = false;

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      if (!this.released) {
        this.released = true;
        releaseSoftHsm();
      }
    }
  }
}

/** The home, its token directory and every file with a PIN or password hash: private, or kmu11 refuses to start. */
async function checkPrivate(paths: EmbeddedPaths): Promise<void> {
  for (const [path, mode] of [
    [paths.home, DIR_MODE],
    [paths.tokens, DIR_MODE],
    [paths.softhsmConf, FILE_MODE],
    [paths.users, FILE_MODE],
    [paths.soPin, FILE_MODE],
    [paths.userPin, FILE_MODE],
  ] as const) {
    if (await missing(path)) continue;
    try {
      await requirePrivate(path, mode);
    } catch (e) {
      throw new SetupError((e as Error).message, { cause: e });
    }
  }
}

/**
 * Open the token if the home is complete (config, user PIN, users, and a token labelled `label`
 * whose user PIN is set): the common case, without the setup lock. Undefined otherwise.
 */
async function openComplete(modulePath: string, paths: EmbeddedPaths, label: string, warnings: string[]): Promise<EmbeddedBackend | undefined> {
  for (const f of [paths.softhsmConf, paths.userPin, paths.users]) if (await missing(f)) return undefined;
  // SoftHSM's C_Initialize reads token.object (the user PIN's blob with it) and findToken reads
  // it again: both in a shared turn of token.lock (tokenAccess.ts tokenFileTurn). A token a first
  // run left half-made reads as an error or without its user PIN: the locked path below finishes it.
  const { module, found } = await inTokenTurn(paths.home, 'read', async () => {
    const module = await loadSoftHsm(modulePath, paths.softhsmConf);
    return { module, found: await findToken(module, label).catch(() => undefined) };
  }, warnings);
  try {
    if (!found || !(found.flags & CKF_TOKEN.USER_PIN_INITIALIZED)) {
      // Let the locked path load SoftHSM afresh: it rescans the token directory only on C_Initialize.
      releaseSoftHsm();
      await module.close();
      return undefined;
    }
    await checkPrivate(paths);
    await readPin(paths.userPin);
    const session = await openRwSession(found.slot, label);
    return new EmbeddedBackend({ module, slot: found.slot, session, home: paths.home, capabilities: { ...EMBEDDED_CAPABILITIES } }, paths, warnings);
  } catch (e) {
    releaseSoftHsm();
    await module.close().catch(() => undefined);
    throw e;
  }
}

/** Create (on first use) and open kmu11's embedded SoftHSM token under `config.home`. */
export async function openEmbedded(config: Pick<Kmu11Config, 'home' | 'token'>, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  const modulePath = findSoftHsmModule(env);
  const paths = embeddedPaths(config.home);
  const label = config.token ?? EMBEDDED_TOKEN_LABEL;
  const warnings: string[] = [];
  try {
    await makeDirs(paths.home, DIR_MODE);
  } catch (e) {
    throw setupError(`cannot create ${paths.home}`, e);
  }
  await checkPrivate(paths);
  const ready = await openComplete(modulePath, paths, label, warnings);
  if (ready) return ready;
  // First use, or an interrupted one: every step checked and done under the lock, and SoftHSM
  // loaded only inside it, so that it sees a token another process has just made.
  return withLock(paths.lock, async () => {
    try {
      await makeDirs(paths.tokens, DIR_MODE);
      await checkPrivate(paths);
      if (await missing(paths.softhsmConf)) await createFileAtomic(paths.softhsmConf, softhsmConf(paths));
      await ensureUsers(paths.users);
    } catch (e) {
      if (e instanceof SetupError) throw e;
      throw setupError(`cannot set up ${paths.home}`, e);
    }
    // C_Initialize reads token.object and ensureToken writes it: in a sole turn of token.lock, or
    // another process's C_Login rewriting it meanwhile fails them (tokenAccess.ts tokenFileTurn).
    return inTokenTurn(paths.home, 'write', async () => {
      const module = await loadSoftHsm(modulePath, paths.softhsmConf);
      try {
        const slot = await ensureToken(module, paths, label);
        const session = await openRwSession(slot, label);
        return new EmbeddedBackend({ module, slot, session, home: paths.home, capabilities: { ...EMBEDDED_CAPABILITIES } }, paths, warnings);
      } catch (e) {
        releaseSoftHsm();
        await module.close().catch(() => undefined);
        throw e;
      }
    }, warnings);
  });
}

/** The home's paths, once kmu11 has made its user store there (a SetupError before). */
async function existingUserStore(home: string): Promise<EmbeddedPaths> {
  const paths = embeddedPaths(home);
  if (await missing(paths.users)) throw new SetupError(`no user store at ${paths.users}; run kmu11 once to create it`);
  return paths;
}

/** `kmu11 passwd`: a user changes their own password in <home>/users.json. */
export async function changePassword(home: string, name: string, oldPassword: string, newPassword: string): Promise<void> {
  await changeUserPassword(await existingUserStore(home), name, oldPassword, newPassword);
}

/** A CO (admin) sets a user's password and unlocks the account, as CloudHSM's changePswd by a CO. */
export async function resetPassword(
  home: string,
  officer: string,
  officerPassword: string,
  name: string,
  newPassword: string,
): Promise<void> {
  await resetUserPassword(await existingUserStore(home), officer, officerPassword, name, newPassword);
}

/** listUsers on the embedded token, without opening it. */
export async function listUsers(home: string): Promise<UserListEntry[]> {
  return listUserEntries(embeddedPaths(home).users);
}
