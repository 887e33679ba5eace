// How a backend reaches its token: loading the module, choosing the token, the token file's
// turn (SoftHSM), the RW session commands run on.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { oneLine, SetupError } from '../kmu/errors.js';
import { CKF_TOKEN, Module, Pkcs11Error, type Session, type Slot } from '../p11/index.js';
import { ensurePrivateDir } from './fsutil.js';
import { TOKEN_LOCK, withSharedLock, withSoleLock } from './lock.js';
import { parseTokenUri, tokenMatches, type TokenCandidate } from './uri.js';

/**
 * Load a PKCS#11 module, turning every way that can fail into one SetupError line. With a home,
 * C_Initialize runs in a shared turn of token.lock: SoftHSM's reads every token.object
 * (tokenFileTurn), and which library is SoftHSM is known only after it. For any other library
 * the turn costs a mark file, and waits for nobody (only SoftHSM's writers take sole turns).
 * A home not made yet is not made here (a module that fails to load leaves nothing): no kmu11
 * has logged in through it.
 */
export async function loadModule(path: string, what = 'PKCS#11 module', home?: string): Promise<Module> {
  if (!existsSync(path)) throw new SetupError(`${what} not found: ${path}`);
  try {
    const turn = home !== undefined && existsSync(home);
    const module = await (turn ? inTokenTurn(home, 'read', () => Module.load(path)) : Module.load(path));
    // SoftHSM up to 2.6 loses objects written while another thread reads (p11/objectLock.ts).
    const { manufacturerID, libraryVersion: v } = await module.getInfo();
    if (isSoftHsm(manufacturerID) && v.major <= 2 && (v.major < 2 || v.minor <= 6)) module.serializeObjectWrites();
    return module;
  } catch (e) {
    if (e instanceof SetupError) throw e; // the turn's own (a holder that does not let go)
    throw new SetupError(`cannot load ${what} ${path}: ${loadFailure(e, path)}`, { cause: e });
  }
}

/**
 * Why a module did not load, without what the line says already: the addon's "cannot load
 * PKCS#11 module '<path>': " and dlerror()'s "<path>: " (a link's target or a missing
 * dependency's name stays).
 */
function loadFailure(e: unknown, path: string): string {
  if (e instanceof Pkcs11Error) return `${e.fn} returned ${e.ckr}`;
  const why = oneLine((e as Error)?.message ?? String(e)).replace(`cannot load PKCS#11 module '${path}': `, '');
  if (/^no C_GetFunctionList \(/.test(why)) return 'not a PKCS#11 library (it has no C_GetFunctionList)';
  return why.startsWith(`${path}: `) ? why.slice(path.length + 2) : why;
}

const isSoftHsm = (manufacturerID: string): boolean => /^SoftHSM/i.test(manufacturerID);

/**
 * Runs a call that reads or rewrites the token's own file. SoftHSM 2.6 rewrites token.object
 * on every C_Login (it stores the token flags). Another process that reads the file meanwhile
 * gets a torn copy: its C_GetTokenInfo fails with CKR_GENERAL_ERROR; its C_Initialize sees no
 * initialized token, or a token whose C_Login says the user PIN is not initialized; and a
 * C_Login that overlaps another's leaves its process with no view of the token (every later
 * call fails although C_Login itself succeeded). kmu11 processes sharing a home take turns at
 * <home>/token.lock: readers together, a writer alone. Other modules need no lock.
 */
export async function tokenFileTurn<T>(module: Module, home: string | undefined, use: TokenFileUse, fn: () => Promise<T>, warnings: string[] = []): Promise<T> {
  if (home === undefined || !isSoftHsm((await module.getInfo()).manufacturerID)) return fn();
  return inTokenTurn(home, use, fn, warnings);
}

/** C_Initialize and C_GetTokenInfo read the token's file; C_Login and making the token write it. */
export type TokenFileUse = 'read' | 'write';

/**
 * `fn` in its turn at token.lock (the home made if missing, as the handle store would). A home
 * that cannot be made leaves nowhere to meet: run unlocked.
 */
export async function inTokenTurn<T>(home: string, use: TokenFileUse, fn: () => Promise<T>, warnings: string[] = []): Promise<T> {
  try {
    await ensurePrivateDir(home, warnings);
  } catch {
    return fn();
  }
  return (use === 'read' ? withSharedLock : withSoleLock)(join(home, TOKEN_LOCK), fn);
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

/** Open the backend's RW session, as a SetupError if the token refuses. */
export async function openRwSession(slot: Slot, label: string): Promise<Session> {
  try {
    return await slot.openSession({ rw: true });
  } catch (e) {
    const why = e instanceof Pkcs11Error ? e.ckr : oneLine((e as Error)?.message ?? String(e));
    throw new SetupError(`cannot open a session on token ${JSON.stringify(label)}: ${why}`, { cause: e });
  }
}
