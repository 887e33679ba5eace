// `kmu11 users …`: cloudhsm_mgmt_util's user management for the embedded token, outside kmu's
// own command set (kmu itself only lists users). Passwords are read from the terminal (hidden)
// or standard input, never from argv.
//
//   kmu11 users list
//   kmu11 users create <CO|CU|PCO> <name> [--co <officer>]   CO's password, then the new one twice
//   kmu11 users delete <name> [--co <officer>]               CO's password
//   kmu11 users passwd <name> | passwd --reset <name> [--co <officer>]
//   kmu11 users register-key <name> <public key PEM file>    the user's password
//   kmu11 users claim <key handle> <user id> [--co <officer>]  CO's password
import { readFileSync } from 'node:fs';
import {
  authenticateOfficer,
  createUser,
  deleteUser,
  embeddedPaths,
  FileHandleStore,
  hasUserStore,
  listUsers,
  registerQuorumKey,
  resolveConfig,
  userById,
  type ConfigOverrides,
  type KeyMeta,
} from '../backend/index.js';
import { KmuError, SetupError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { CommandRunner } from '../kmu11.js';
import { readSecrets, runPasswd } from './tools.js';
import { formatCmuUsers } from './usersText.js';

const USERS_USAGE = `usage: kmu11 users list
       kmu11 users create <CO|CU|PCO> <name> [--co <officer>]    (reads the CO's password, then the new user's twice)
       kmu11 users delete <name> [--co <officer>]                (reads the CO's password)
       kmu11 users passwd <name> | passwd --reset <name> [--co <officer>]
       kmu11 users register-key <name> <public key PEM file>     (reads the user's password)
       kmu11 users claim <key handle> <user id> [--co <officer>] (reads the CO's password)
  --co defaults to admin`;

function takeOfficer(args: string[]): [string, string[]] {
  const at = args.indexOf('--co');
  if (at < 0) return ['admin', args];
  const officer = args[at + 1];
  if (!officer || officer.startsWith('-')) throw new UsageError(`--co needs a crypto officer's name\n${USERS_USAGE}`);
  return [officer, [...args.slice(0, at), ...args.slice(at + 2)]];
}

function positive(text: string, what: string): number {
  if (!/^[0-9]{1,15}$/.test(text) || Number(text) < 1) throw new UsageError(`${what} must be a positive number, not '${text}'`);
  return Number(text);
}

/** The embedded token's handle store, for the commands that look at keys' owners. */
async function withHandles<T>(overrides: ConfigOverrides, fn: (store: FileHandleStore) => Promise<T>): Promise<T> {
  const runner = new CommandRunner(overrides);
  try {
    const ctx = await runner.connect();
    if (!(ctx.handles instanceof FileHandleStore)) throw new SetupError('the embedded token has no handle store');
    return await fn(ctx.handles);
  } finally {
    await runner.close().catch(() => undefined);
  }
}

async function ownedBy(store: FileHandleStore, id: number): Promise<number[]> {
  const out: number[] = [];
  for (const h of await store.handles()) if ((await store.meta(h)).owner === id) out.push(h);
  return out;
}

/**
 * The user's id leaves every key shared with it: all read first, then changed; if a change
 * fails, those made are put back. Resolves to what puts them all back (deleteUser, when
 * users.json cannot be written).
 */
async function unshareAll(store: FileHandleStore, id: number): Promise<() => Promise<void>> {
  const before: Array<[number, KeyMeta]> = [];
  for (const h of await store.handles()) {
    const m = await store.meta(h);
    if (m.shared.includes(id)) before.push([h, m]);
  }
  const done: Array<[number, KeyMeta]> = [];
  const undo = async () => {
    for (const [h, m] of done.reverse()) await store.setMeta(h, m);
  };
  try {
    for (const [h, m] of before) {
      await store.setMeta(h, { ...m, shared: m.shared.filter((x) => x !== id) });
      done.push([h, m]);
    }
  } catch (e) {
    await undo().catch(() => undefined);
    throw e;
  }
  return undo;
}

export async function runUsers(overrides: ConfigOverrides, argv: string[]): Promise<number> {
  const config = resolveConfig(overrides);
  if (config.backend !== 'embedded')
    throw new UsageError(`users manages the embedded token's users; the ${config.backend} backend has no kmu11 user model`);
  const paths = embeddedPaths(config.home);
  const [verb, ...rest] = argv;
  if (verb === 'passwd') return runPasswd(overrides, rest);
  // First use makes the home and its first users, as any kmu11 command does.
  if (!(await hasUserStore(config.home))) await withHandles(overrides, async () => undefined);
  const [officer, args] = takeOfficer(rest);
  try {
    switch (verb) {
      case 'list': {
        if (args.length) throw new UsageError(USERS_USAGE);
        process.stdout.write(formatCmuUsers(await listUsers(config.home)) + '\n');
        return 0;
      }
      case 'create': {
        if (args.length !== 2) throw new UsageError(USERS_USAGE);
        const [coPassword, password, again] = await readSecrets([`Password of CO ${officer}: `, 'New user password: ', 'New user password again: '], 'create needs the CO password and the new password twice');
        if (password !== again) throw new UsageError('the new passwords differ');
        const u = await createUser(paths, officer, coPassword!, args[0]!, args[1]!, password!);
        process.stdout.write(`Creating User ${u.name}(${u.type}) on 1 nodes\nUser ${u.name} has id ${u.id}\n`);
        return 0;
      }
      case 'delete': {
        if (args.length !== 1) throw new UsageError(USERS_USAGE);
        const [coPassword] = await readSecrets([`Password of CO ${officer}: `], 'delete needs the CO password');
        await withHandles(overrides, async (store) => {
          const u = await deleteUser(paths, officer, coPassword!, args[0]!, {
            owned: (id) => ownedBy(store, id),
            unshare: (id) => unshareAll(store, id),
          });
          process.stdout.write(`Deleting user ${u.name}(${u.type}) on 1 nodes\ndeleteUser success on server 0(embedded)\n`);
        });
        return 0;
      }
      case 'register-key': {
        if (args.length !== 2) throw new UsageError(USERS_USAGE);
        let pem: string;
        try {
          pem = readFileSync(args[1]!, 'utf8');
        } catch (e) {
          throw new UsageError(`cannot read ${args[1]}: ${(e as NodeJS.ErrnoException).code ?? e}`);
        }
        const [password] = await readSecrets([`Password of ${args[0]}: `], 'register-key needs the user password');
        const u = await registerQuorumKey(paths, args[0]!, password!, pem);
        process.stdout.write(`Quorum key of ${u.name} (user ${u.id}) registered\n`);
        return 0;
      }
      case 'claim': {
        if (args.length !== 2) throw new UsageError(USERS_USAGE);
        const handle = positive(args[0]!, 'the key handle');
        const id = positive(args[1]!, 'the user id');
        const [coPassword] = await readSecrets([`Password of CO ${officer}: `], 'claim needs the CO password');
        await authenticateOfficer(paths, officer, coPassword!);
        const u = await userById(paths, id);
        if (!u || u.type !== 'CU') throw new UsageError(`user ${id} is not a crypto user`);
        await withHandles(overrides, async (store) => {
          const m = await store.meta(handle);
          if (m.owner !== 0) throw new KmuError(RC.ACCESS_DENIED, { detail: `key ${handle} already has an owner (user ${m.owner})` });
          await store.setMeta(handle, { ...m, owner: id, shared: m.shared.filter((x) => x !== id) });
        });
        process.stdout.write(`Key ${handle} is now owned by user ${id} (${u.name})\n`);
        return 0;
      }
      default:
        throw new UsageError(USERS_USAGE);
    }
  } catch (e) {
    if (!(e instanceof KmuError)) throw e;
    process.stderr.write(`Error: ${e.message}${e.detail ? ` (${e.detail})` : ''}\n`);
    return 1;
  }
}
