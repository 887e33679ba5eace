// CloudHSM's user model for the embedded token, kept in <home>/users.json (0600):
// users with CloudHSM ids and types, passwords only as scrypt hashes, and the login-failure
// counter that locks an account after five wrong passwords, as CloudHSM does.
// Every read-modify-write happens under the home's lock and is written atomically.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KmuError, SetupError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import type { KmuUser, UserListEntry, UserType } from './backend.js';
import { writeFileAtomic, createFileAtomic } from './fsutil.js';
import { withLock } from './lock.js';

/** The password CloudHSM's first users have on a new cluster. */
export const DEFAULT_PASSWORD = 'password';
/** Wrong passwords after which an account is locked (CloudHSM: five). */
const MAX_LOGIN_FAILURES = 5;
/** CloudHSM's password length rule (createUser / changePswd). */
const PASSWORD_MIN = 7;
const PASSWORD_MAX = 32;

// scrypt cost: N = 2^12, r = 8, p = 1 (4 MiB, ~10 ms on an idle core). What the hash guards is small: the
// token's user PIN sits beside users.json (user.pin, same owner, same 0600), so whoever can read
// the hash can use every key without any password, and online guessing meets the lockout after
// five tries. It keeps only the password itself (reused elsewhere) from a cheap offline guess, and
// every one-shot `singlecmd loginHSM …` pays it; 2^15 cost ~0.1 s a run. Parameters are stored
// with each hash, so hashes made with 2^15 still verify (and the next passwd writes 2^12).
const LOG_N = 12;
const R = 8;
const P = 1;
const KEY_LEN = 32;
const SALT_LEN = 16;

export interface UserRecord {
  id: number;
  type: UserType;
  name: string;
  /** `$scrypt$ln=12,r=8,p=1$<salt base64>$<hash base64>` (older homes: ln=15) */
  passwordHash: string;
  loginFailures: number;
  /** The public key (PEM) the user registered for signing quorum tokens (listUsers' MofnPubKey). */
  mofnPubKey?: string;
}

export interface UsersFile {
  version: 1;
  users: UserRecord[];
  /** The next user id: ids are never reused, so a deleted user's id cannot name someone new. */
  nextId?: number;
}

const USER_TYPES: readonly UserType[] = ['CO', 'CU', 'AU', 'PCO', 'PRECO'];

function scrypt(password: string, salt: Buffer, logN: number, r: number, p: number, len: number): Promise<Buffer> {
  const N = 2 ** logN;
  const opts: ScryptOptions = { N, r, p, maxmem: 256 * N * r };
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFC'), salt, len, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LEN);
  const key = await scrypt(password, salt, LOG_N, R, P, KEY_LEN);
  return `$scrypt$ln=${LOG_N},r=${R},p=${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const HASH_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = HASH_RE.exec(hash);
  if (!m) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 10 || logN > 20 || r < 1 || p < 1) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  if (expected.length < 16) return false;
  const actual = await scrypt(password, Buffer.from(m[4]!, 'base64'), logN, r, p, expected.length);
  return timingSafeEqual(actual, expected);
}

// Verified against when the user name is unknown, so that a wrong name costs as much time
// as a wrong password.
let dummyHash: Promise<string> | undefined;
async function burnTime(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummyHash);
}

/** users.json for a new home: CloudHSM's first CO and first CU, both with the default password. */
async function initialUsers(): Promise<UsersFile> {
  return {
    version: 1,
    users: [
      { id: 1, type: 'CO', name: 'admin', passwordHash: await hashPassword(DEFAULT_PASSWORD), loginFailures: 0 },
      { id: 2, type: 'CU', name: 'crypto_user', passwordHash: await hashPassword(DEFAULT_PASSWORD), loginFailures: 0 },
    ],
  };
}

function bad(path: string, why: string): SetupError {
  return new SetupError(`user store ${path} is damaged: ${why}`);
}

function validate(path: string, data: unknown): UsersFile {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad(path, 'not a JSON object');
  const o = data as Record<string, unknown>;
  if (o.version !== 1) throw bad(path, `unsupported version ${JSON.stringify(o.version)}`);
  if (!Array.isArray(o.users)) throw bad(path, '"users" is not a list');
  const ids = new Set<number>();
  const names = new Set<string>();
  const users = o.users.map((u: unknown, i): UserRecord => {
    const r = u as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) throw bad(path, `user #${i + 1} is not an object`);
    if (!Number.isSafeInteger(r.id) || (r.id as number) < 1) throw bad(path, `user #${i + 1} has no valid id`);
    if (typeof r.name !== 'string' || r.name === '') throw bad(path, `user #${i + 1} has no name`);
    if (!USER_TYPES.includes(r.type as UserType)) throw bad(path, `user ${r.name} has unknown type ${JSON.stringify(r.type)}`);
    if (typeof r.passwordHash !== 'string' || !HASH_RE.test(r.passwordHash)) throw bad(path, `user ${r.name} has no valid password hash`);
    if (!Number.isSafeInteger(r.loginFailures) || (r.loginFailures as number) < 0) throw bad(path, `user ${r.name} has no valid loginFailures`);
    if (ids.has(r.id as number)) throw bad(path, `user id ${r.id} appears twice`);
    if (names.has(r.name)) throw bad(path, `user name ${r.name} appears twice`);
    if (r.mofnPubKey !== undefined && typeof r.mofnPubKey !== 'string') throw bad(path, `user ${r.name} has no valid mofnPubKey`);
    ids.add(r.id as number);
    names.add(r.name);
    const rec: UserRecord = { id: r.id as number, type: r.type as UserType, name: r.name, passwordHash: r.passwordHash, loginFailures: r.loginFailures as number };
    if (typeof r.mofnPubKey === 'string') rec.mofnPubKey = r.mofnPubKey;
    return rec;
  });
  if (o.nextId !== undefined && !Number.isSafeInteger(o.nextId)) throw bad(path, '"nextId" is not an integer');
  const nextId = Math.max(typeof o.nextId === 'number' ? o.nextId : 0, ...users.map((u) => u.id + 1));
  return { version: 1, users, nextId };
}

export async function readUsers(path: string): Promise<UsersFile> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    throw new SetupError(`cannot read user store ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw bad(path, 'not valid JSON');
  }
  return validate(path, data);
}

function serialize(users: UsersFile): string {
  return JSON.stringify(users, null, 2) + '\n';
}

/** Create users.json with the initial users unless it exists. */
export async function ensureUsers(path: string): Promise<void> {
  try {
    await fs.access(path);
    return;
  } catch {
    // fall through: create it
  }
  await createFileAtomic(path, serialize(await initialUsers()));
}

/** Read, change and write users.json under the home's lock. */
export async function updateUsers<T>(path: string, lockPath: string, fn: (users: UsersFile) => T): Promise<T> {
  return withLock(lockPath, async () => {
    const users = await readUsers(path);
    const out = fn(users);
    await writeFileAtomic(path, serialize(users));
    return out;
  });
}

export interface UserStorePaths {
  users: string;
  lock: string;
}

/** User names are case-insensitive, as in cloudhsm_mgmt_util. */
export function find(users: UsersFile, name: string, type?: UserType): UserRecord | undefined {
  const key = name.toLowerCase();
  return users.users.find((u) => u.name.toLowerCase() === key && (type === undefined || u.type === type));
}

/**
 * Check `name`'s password, counting failures. Locked accounts are refused before the password
 * is looked at (as on CloudHSM, where only a CO's password reset unlocks them).
 * Throws KmuError: LOGIN_FAILED (unknown name, other type, wrong password), ACCOUNT_LOCKED.
 */
export async function authenticate(paths: UserStorePaths, name: string, password: string, type?: UserType): Promise<KmuUser> {
  const users = await readUsers(paths.users);
  const u = find(users, name, type);
  if (!u) {
    await burnTime(password);
    throw new KmuError(RC.LOGIN_FAILED);
  }
  if (u.loginFailures >= MAX_LOGIN_FAILURES) {
    throw new KmuError(RC.ACCOUNT_LOCKED, {
      detail: `user ${name} is locked after ${MAX_LOGIN_FAILURES} failed logins; a CO must reset the password`,
    });
  }
  if (!(await verifyPassword(password, u.passwordHash))) {
    const failures = await updateUsers(paths.users, paths.lock, (f) => {
      const r = find(f, u.name, u.type);
      if (r) r.loginFailures += 1;
      return r?.loginFailures ?? 0;
    });
    const left = MAX_LOGIN_FAILURES - failures;
    throw new KmuError(RC.LOGIN_FAILED, {
      detail: left > 0 ? `${left} attempt${left === 1 ? '' : 's'} left before user ${name} is locked` : `user ${name} is now locked`,
    });
  }
  if (u.loginFailures > 0) {
    await updateUsers(paths.users, paths.lock, (f) => {
      const r = find(f, u.name, u.type);
      if (r) r.loginFailures = 0;
    });
  }
  return { id: u.id, name: u.name, type: u.type };
}

export function checkNewPassword(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new UsageError(`a password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`);
  }
}

async function setPassword(paths: UserStorePaths, name: string, newPassword: string): Promise<void> {
  const hash = await hashPassword(newPassword);
  await updateUsers(paths.users, paths.lock, (f) => {
    const r = find(f, name);
    if (!r) throw new KmuError(RC.LOGIN_FAILED);
    r.passwordHash = hash;
    r.loginFailures = 0;
  });
}

/** A user changes their own password (needs the current one; a locked user cannot). */
export async function changeUserPassword(paths: UserStorePaths, name: string, oldPassword: string, newPassword: string): Promise<void> {
  checkNewPassword(newPassword);
  await authenticate(paths, name, oldPassword);
  await setPassword(paths, name, newPassword);
}

/** A CO sets another user's password, which also unlocks the account (CloudHSM's changePswd by a CO). */
export async function resetUserPassword(
  paths: UserStorePaths,
  officer: string,
  officerPassword: string,
  name: string,
  newPassword: string,
): Promise<void> {
  checkNewPassword(newPassword);
  const co = await authenticate(paths, officer, officerPassword);
  if (co.type !== 'CO' && co.type !== 'PCO') {
    throw new KmuError(RC.ACCESS_DENIED, { detail: `only a crypto officer can reset another user's password; ${officer} is ${co.type}` });
  }
  const users = await readUsers(paths.users);
  if (!find(users, name)) throw new UsageError(`no user named ${name}`);
  await setPassword(paths, name, newPassword);
}

export async function listUserEntries(path: string): Promise<UserListEntry[]> {
  const users = await readUsers(path);
  return users.users
    .slice()
    .sort((a, b) => a.id - b.id)
    .map((u) => ({ id: u.id, type: u.type, name: u.name, mofnPubKey: u.mofnPubKey !== undefined, loginFailureCnt: u.loginFailures, twoFA: false }));
}
