// The backend's interface for the layers above: the command runner opens a backend and its
// handle store here (connect), the commands see them only through their context (types from
// here), and the CLI's own modes (info, passwd, users, attest) reach the embedded token's users
// and configuration here. Nothing above imports another file of src/backend/.
// Everything that keeps kmu11 from starting is a SetupError with a one-line message and no
// "kmu11: " prefix (the CLI adds it), e.g. "SoftHSMv2 not found (looked in …); install it with: …".
import type { Backend, HandleStore } from './backend.js';
import { SetupError } from '../kmu/errors.js';
import { parseTokenUri, tokenMatches } from './uri.js';
import { describeLibrary, describeToken, tokenFileTurn } from './tokenAccess.js';
import { resolveConfig, type ConfigOverrides, type Kmu11Config } from './config.js';
import { openCloudHsm } from './cloudhsm.js';
import { embeddedPaths, openEmbedded } from './embedded.js';
import { openGeneric } from './generic.js';
import { openHandleStore } from './handles/store.js';
import { DIR_MODE, makeDirsSync, missing } from './fsutil.js';

export type { Backend, BackendInfo, HandleStore, KeyMeta, KeyPairRequest, UserListEntry } from './backend.js';
export { CLOUDHSM_MODULE, PROFILES, resolveConfig, type ConfigOverrides } from './config.js';
export { findSoftHsmModule } from './softhsm.js';
export { changePassword, embeddedPaths, listUsers, resetPassword } from './embedded.js';
export { authenticateOfficer, createUser, deleteUser, registerQuorumKey, userById } from './userAdmin.js';
export { FileHandleStore } from './handles/store.js';

/** The embedded token by label, or by a PKCS#11 URI naming it (token= required, the rest checked). */
async function openEmbeddedByUri(config: Kmu11Config, env: NodeJS.ProcessEnv): Promise<Backend> {
  if (!config.token?.startsWith('pkcs11:')) return openEmbedded(config, env);
  const attrs = parseTokenUri(config.token);
  if (attrs.token === undefined) throw new SetupError(`the embedded token is chosen by its label: ${config.token} needs token=…`);
  const backend = await openEmbedded({ ...config, token: attrs.token }, env);
  const [library, candidate] = await Promise.all([describeLibrary(backend.module), tokenFileTurn(backend.module, backend.home, 'read', () => describeToken(backend.slot))]);
  if (!tokenMatches(attrs, candidate, library)) {
    await backend.close();
    throw new SetupError(`the embedded token ${JSON.stringify(candidate.label)} (serial ${candidate.serialNumber}) does not match ${config.token}`);
  }
  return backend;
}

/** Open a backend from an already resolved configuration. */
async function openBackendWith(config: Kmu11Config, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  switch (config.backend) {
    case 'embedded': {
      // The config file's "servers" and "attest" pins apply to the embedded token as to any.
      const backend = await openEmbeddedByUri(config, env);
      if (config.extra?.servers !== undefined) backend.capabilities.servers = config.extra.servers;
      if (config.extra?.attest) (backend as { attestPins?: unknown }).attestPins = config.extra.attest;
      return backend;
    }
    case 'cloudhsm':
      return openCloudHsm(config);
    case 'generic':
      return openGeneric({ ...config, module: config.module! });
  }
}

/**
 * Resolve the configuration (overrides > env > config file > defaults) and open its backend.
 * Throws SetupError (one line) when kmu11 cannot start.
 */
export async function openBackend(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  return openBackendWith(resolveConfig(overrides, env), env);
}

/**
 * The handle store for a backend's token (every backend's: PKCS#11 object handles, SDK 5's too,
 * are per session), where the backend keeps it.
 */
async function handleStoreFor(backend: Backend, home: string): Promise<HandleStore> {
  const uniqueId = (await backend.module.getInfo()).cryptokiVersion.major >= 3;
  // Logged in, a scan sees every key: one that is gone was deleted (tombstone it).
  return openHandleStore(await backend.handleStoreDir(home), backend.session, { fullView: () => backend.user !== null, uniqueId });
}

/** The backend the configuration names and its handle store. Closes the backend again if the store cannot open. */
export async function connect(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<{ backend: Backend; handles: HandleStore }> {
  const backend = await openBackend(overrides, env);
  try {
    return { backend, handles: await handleStoreFor(backend, resolveConfig(overrides, env).home) };
  } catch (e) {
    await backend.close();
    throw e;
  }
}

/** kmu11's home for these overrides, made (0700) when missing: the shell keeps its history there. */
export function ensureHome(overrides: ConfigOverrides = {}): string {
  const home = resolveConfig(overrides).home;
  makeDirsSync(home, DIR_MODE);
  return home;
}

/** Whether kmu11 has made the embedded token's user store in `home` yet (its first run does). */
export async function hasUserStore(home: string): Promise<boolean> {
  return !(await missing(embeddedPaths(home).users));
}
