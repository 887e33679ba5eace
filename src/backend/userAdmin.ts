// User management on the embedded token, as cloudhsm_mgmt_util has it: createUser and deleteUser
// (crypto officers only), the quorum signing key a user registers (listUsers' MofnPubKey), and
// the CO's assignment of an owner to a key kmu11 never saw made. All in users.json, under the
// home's lock; passwords arrive as arguments from prompts, never from argv.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import type { KmuUser, UserType } from './backend.js';
import { authenticate, checkNewPassword, find, hashPassword, readUsers, updateUsers, type UserRecord, type UsersFile, type UserStorePaths } from './users.js';

/** Types createUser accepts (the page: CO, CU; PCO is functionally a CO; PRECO and AU are made by the HSM). */
const CREATABLE_TYPES: readonly UserType[] = ['CO', 'CU', 'PCO'];
/** createUser's name rule: at most 31 characters, letters, digits and underscore. */
const NAME_RE = /^[A-Za-z0-9_]{1,31}$/;

const isOfficer = (t: UserType) => t === 'CO' || t === 'PCO';

/** The CO (or PCO) `officer`, after their password checks out (login failures counted as for kmu logins). */
export async function authenticateOfficer(paths: UserStorePaths, officer: string, password: string): Promise<KmuUser> {
  const u = await authenticate(paths, officer, password);
  if (!isOfficer(u.type)) throw new KmuError(RC.ACCESS_DENIED, { detail: `only a crypto officer can manage users; ${u.name} is ${u.type}` });
  return u;
}

function checkUserName(name: string): void {
  if (!NAME_RE.test(name))
    throw new UsageError(`a user name is 1 to 31 characters: letters, digits and underscore (_) only, not '${name}'`);
}

/** createUser <type> <name>: a CO makes a user; the new id is the next never-used one. */
export async function createUser(
  paths: UserStorePaths,
  officer: string,
  officerPassword: string,
  type: string,
  name: string,
  password: string,
): Promise<KmuUser> {
  const t = type.toUpperCase() as UserType;
  if (!CREATABLE_TYPES.includes(t)) throw new UsageError(`user type must be one of ${CREATABLE_TYPES.join(', ')}, not '${type}'`);
  checkUserName(name);
  checkNewPassword(password);
  await authenticateOfficer(paths, officer, officerPassword);
  const hash = await hashPassword(password);
  return updateUsers(paths.users, paths.lock, (f) => {
    if (find(f, name)) throw new UsageError(`a user named ${name} already exists (user names are not case-sensitive)`);
    const id = f.nextId ?? Math.max(0, ...f.users.map((u) => u.id)) + 1;
    f.nextId = id + 1;
    f.users.push({ id, type: t, name, passwordHash: hash, loginFailures: 0 });
    return { id, type: t, name };
  });
}

/** What deleteUser needs of the keys (the handle store's view of owners and sharing). */
export interface UserKeys {
  /** The handles `id` owns. */
  owned(id: number): Promise<number[]>;
  /** Takes `id` out of every key's sharing, all or nothing; resolves to what puts it back. */
  unshare(id: number): Promise<() => Promise<void>>;
}

const lastOfficer = (f: UsersFile, r: UserRecord) => isOfficer(r.type) && f.users.filter((u) => isOfficer(u.type)).length === 1;

/**
 * deleteUser <name>. CloudHSM: "You can't delete crypto users (CU) that own keys" — a CU that
 * owns any key is refused. The last crypto officer stays (nobody could manage users after).
 * The keys shared with the user are unshared first and users.json is written last (undoing the
 * unsharing if that fails): a failure part way leaves the user and the keys' sharing as they were.
 * Returns the deleted user.
 */
export async function deleteUser(paths: UserStorePaths, officer: string, officerPassword: string, name: string, keys: UserKeys): Promise<KmuUser> {
  const co = await authenticateOfficer(paths, officer, officerPassword);
  const users = await readUsers(paths.users);
  const target = find(users, name);
  if (!target) throw new UsageError(`no user named ${name}`);
  if (target.id === co.id) throw new UsageError('a crypto officer cannot delete themself');
  const lastCo = () => new UsageError(`${target.name} is the last crypto officer and cannot be deleted`);
  if (lastOfficer(users, target)) throw lastCo();
  const owned = await keys.owned(target.id);
  if (owned.length > 0)
    throw new KmuError(RC.ACCESS_DENIED, {
      detail: `user ${target.name} (${target.id}) owns ${owned.length} key(s) (${owned.slice(0, 8).join(', ')}${owned.length > 8 ? ', …' : ''}); a crypto user that owns keys cannot be deleted`,
    });
  const reshare = await keys.unshare(target.id);
  try {
    return await updateUsers(paths.users, paths.lock, (f) => {
      const r = f.users.find((u) => u.id === target.id);
      if (!r) throw new UsageError(`no user named ${name}`);
      if (lastOfficer(f, r)) throw lastCo();
      f.users = f.users.filter((u) => u.id !== r.id);
      return { id: r.id, type: r.type, name: r.name };
    });
  } catch (e) {
    await reshare().catch(() => undefined);
    throw e;
  }
}

/** A quorum signing key: RSA of 2048 bits or more, or EC on P-256/P-384/P-521, as PEM. */
function parseQuorumKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new UsageError('the quorum key file is not a PEM public key (make one with: openssl pkey -in key.pem -pubout -out pub.pem)');
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && (d.modulusLength ?? 0) >= 2048) return key;
  if (key.asymmetricKeyType === 'ec' && ['prime256v1', 'secp384r1', 'secp521r1'].includes(d.namedCurve ?? '')) return key;
  throw new UsageError('a quorum key must be RSA (2048 bits or more) or EC on P-256, P-384 or P-521');
}

/** A user registers (or replaces) the public key they sign quorum tokens with; needs their own password. */
export async function registerQuorumKey(paths: UserStorePaths, name: string, password: string, pem: string): Promise<KmuUser> {
  const key = parseQuorumKey(pem);
  const u = await authenticate(paths, name, password);
  const normalized = key.export({ type: 'spki', format: 'pem' }).toString();
  await updateUsers(paths.users, paths.lock, (f) => {
    const r = f.users.find((x) => x.id === u.id);
    if (!r) throw new KmuError(RC.LOGIN_FAILED);
    r.mofnPubKey = normalized;
  });
  return u;
}

/** A user by id (without the password hash), or undefined. */
export async function userById(paths: Pick<UserStorePaths, 'users'>, id: number): Promise<(KmuUser & { mofnPubKey?: string }) | undefined> {
  const u = (await readUsers(paths.users)).users.find((x) => x.id === id);
  return u && { id: u.id, name: u.name, type: u.type, mofnPubKey: u.mofnPubKey };
}
