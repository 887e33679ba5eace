// Which module, token and home kmu11 uses. Sources, highest first:
//   1. explicit overrides (CLI --module / --token / --home, or the API's options)
//   2. environment: KMU11_MODULE, KMU11_TOKEN, KMU11_HOME
//   3. a JSON config file: KMU11_CONFIG, else $KMU11_HOME/config.json (home as resolved by 1-2)
//   4. defaults: home ~/.kmu11, no module (the embedded SoftHSM token)
// An empty value (KMU11_MODULE=) counts as unset.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { OpenOptions } from '../api.js';
import { oneLine, SetupError } from '../kmu/errors.js';
import type { BackendKind } from './backend.js';
import { homeProblem } from './fsutil.js';

export const CLOUDHSM_MODULE = '/opt/cloudhsm/lib/libcloudhsm_pkcs11.so';
const CLOUDHSM_MODULE_BASENAME = 'libcloudhsm_pkcs11.so';

/** Sources 1 above: the library's OpenOptions, the CLI's --module, --token, --home. */
export type ConfigOverrides = OpenOptions;

/** What the config file may hold. */
export interface ConfigFile {
  module?: string;
  token?: string;
  backend?: 'generic' | 'cloudhsm';
  /** cloudhsm: CloudHSM CLI executable (default /opt/cloudhsm/bin/cloudhsm-cli). */
  cloudhsmCli?: string;
  /** cloudhsm: SDK 5 client configuration, for the HSM count (default /opt/cloudhsm/etc/cloudhsm-pkcs11.cfg). */
  clientConfig?: string;
  /** cloudhsm: --cluster-id passed to CloudHSM CLI when several clusters are configured. */
  clusterId?: string;
  /** HSMs the backend spans, for -min_srv (embedded/generic: 1; cloudhsm: from the client configuration). */
  servers?: number;
  /** cloudhsm: kmu user id of a CloudHSM username, e.g. {"alice": 3}; others are numbered on first sight. */
  users?: Record<string, number>;
  /** -attest pins (as `kmu11 attest --show` prints them); absent: recorded in the home on first use. */
  attest?: Record<string, unknown>;
  /** kmu's output form: "kmu3" (what 3.x printed, scripts parse it) or "pages" (the reference pages). */
  profile?: 'kmu3' | 'pages';
}

export type ConfigSource = 'override' | 'env' | 'file' | 'default';

export interface Kmu11Config {
  backend: BackendKind;
  /** Absolute module path; undefined for the embedded backend (SoftHSM is located when opened). */
  module?: string;
  /** Token label; undefined means the backend's default (embedded: "kmu11"). */
  token?: string;
  /** Absolute path of kmu11's home. */
  home: string;
  /** The config file that was read, if any. */
  configFile?: string;
  /** Output form from the config file ("kmu3" unless it says "pages"); --profile and KMU11_PROFILE win. */
  profile: 'kmu3' | 'pages';
  /** Where module and token came from, for `kmu11 info` and error messages. */
  sources: { module: ConfigSource; token: ConfigSource; home: ConfigSource };
  /** The config file's backend settings (cloudhsmCli, clientConfig, servers, users, attest…), env applied. */
  extra: Omit<ConfigFile, 'module' | 'token' | 'backend'>;
}

const FILE_KEYS = ['module', 'token', 'backend', 'profile', 'cloudhsmCli', 'clientConfig', 'clusterId', 'servers', 'users', 'attest'] as const;
export const PROFILES = ['kmu3', 'pages'] as const;
const FILE_BACKENDS = ['generic', 'cloudhsm'] as const;

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Read and validate a config file. `required`: a file named explicitly must exist; the
 * default $KMU11_HOME/config.json may be absent (returns undefined).
 */
function readConfigFile(path: string, required: boolean): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : oneLine((e as Error).message);
    throw new SetupError(`cannot read config file ${path}: ${why}`, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new SetupError(`config file ${path} is not valid JSON: ${oneLine((e as Error).message)}`, { cause: e });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new SetupError(`config file ${path} must hold a JSON object, e.g. {"module": "/path/to/module.so", "token": "label"}`);
  }
  const obj = data as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      throw new SetupError(`config file ${path}: unknown key "${key}" (allowed: ${FILE_KEYS.join(', ')})`);
    }
  }
  const out: ConfigFile = {};
  for (const key of ['module', 'token', 'cloudhsmCli', 'clientConfig', 'clusterId'] as const) {
    const v = obj[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') {
      throw new SetupError(`config file ${path}: "${key}" must be a non-empty string, not ${JSON.stringify(v)}`);
    }
    out[key] = v;
  }
  if (obj.servers !== undefined) {
    const v = obj.servers;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 32)
      throw new SetupError(`config file ${path}: "servers" must be an integer from 1 to 32, not ${JSON.stringify(v)}`);
    out.servers = v;
  }
  if (obj.users !== undefined) {
    const v = obj.users;
    const ok =
      typeof v === 'object' && v !== null && !Array.isArray(v) &&
      Object.values(v).every((id) => typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= 0xffff);
    if (!ok) throw new SetupError(`config file ${path}: "users" must map CloudHSM usernames to kmu user ids, e.g. {"alice": 3}`);
    const ids = Object.values(v as Record<string, number>);
    if (new Set(ids).size !== ids.length) throw new SetupError(`config file ${path}: "users" gives one kmu user id to two usernames`);
    out.users = Object.fromEntries(Object.entries(v as Record<string, number>).map(([k, id]) => [k.toLowerCase(), id]));
  }
  if (obj.attest !== undefined) {
    const v = obj.attest;
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new SetupError(`config file ${path}: "attest" must hold the pins as \`kmu11 attest --show\` prints them`);
    out.attest = v as Record<string, unknown>;
  }
  if (obj.backend !== undefined) {
    const v = obj.backend;
    if (typeof v !== 'string' || !(FILE_BACKENDS as readonly string[]).includes(v)) {
      throw new SetupError(`config file ${path}: "backend" must be "generic" or "cloudhsm", not ${JSON.stringify(v)}`);
    }
    out.backend = v as ConfigFile['backend'];
  }
  if (obj.profile !== undefined) {
    const v = obj.profile;
    if (typeof v !== 'string' || !(PROFILES as readonly string[]).includes(v))
      throw new SetupError(`config file ${path}: "profile" must be "kmu3" or "pages", not ${JSON.stringify(v)}`);
    out.profile = v as ConfigFile['profile'];
  }
  return out;
}

/** The backend a module path implies when nothing says otherwise. */
function backendForModule(modulePath: string): 'cloudhsm' | 'generic' {
  return basename(modulePath) === CLOUDHSM_MODULE_BASENAME ? 'cloudhsm' : 'generic';
}

export function resolveConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Kmu11Config {
  const homeOverride = nonEmpty(overrides.home);
  const homeEnv = nonEmpty(env.KMU11_HOME);
  const home = resolve(homeOverride ?? homeEnv ?? join(homedir(), '.kmu11'));
  const homeSource: ConfigSource = homeOverride ? 'override' : homeEnv ? 'env' : 'default';
  if (home.includes('\n')) throw new SetupError('the home directory path must not contain a newline');
  const problem = homeProblem(home);
  if (problem) throw new SetupError(`cannot use ${home} as kmu11's home: ${problem}`);

  const explicitFile = nonEmpty(overrides.config) ?? nonEmpty(env.KMU11_CONFIG);
  const configFile = explicitFile ? resolve(explicitFile) : join(home, 'config.json');
  const file = readConfigFile(configFile, explicitFile !== undefined);

  let module: string | undefined;
  let moduleSource: ConfigSource = 'default';
  const mo = nonEmpty(overrides.module);
  const me = nonEmpty(env.KMU11_MODULE);
  if (mo) [module, moduleSource] = [resolve(mo), 'override'];
  else if (me) [module, moduleSource] = [resolve(me), 'env'];
  // A relative module path in the file is relative to the file.
  else if (file?.module) [module, moduleSource] = [resolve(dirname(configFile), file.module), 'file'];

  let token: string | undefined;
  let tokenSource: ConfigSource = 'default';
  const to = nonEmpty(overrides.token);
  const te = nonEmpty(env.KMU11_TOKEN);
  if (to) [token, tokenSource] = [to, 'override'];
  else if (te) [token, tokenSource] = [te, 'env'];
  else if (file?.token) [token, tokenSource] = [file.token, 'file'];

  // The file's "backend" describes the file's module (or the default CloudHSM path when the file
  // names none); a module given on the command line or in the environment brings its own kind.
  let backend: BackendKind;
  if (file?.backend && (moduleSource === 'file' || moduleSource === 'default')) {
    backend = file.backend;
    if (!module) {
      if (backend === 'generic') {
        throw new SetupError(`config file ${configFile}: "backend": "generic" needs a "module" path`);
      }
      module = CLOUDHSM_MODULE;
    }
  } else if (module) {
    backend = backendForModule(module);
  } else {
    backend = 'embedded';
  }

  const { module: _m, token: _t, backend: _b, ...extra } = file ?? {};
  const cli = nonEmpty(env.KMU11_CLOUDHSM_CLI);
  if (cli) extra.cloudhsmCli = cli;
  else if (extra.cloudhsmCli) extra.cloudhsmCli = resolve(dirname(configFile), extra.cloudhsmCli);
  const clientConfig = nonEmpty(env.KMU11_CLOUDHSM_CONFIG);
  if (clientConfig) extra.clientConfig = clientConfig;
  else if (extra.clientConfig) extra.clientConfig = resolve(dirname(configFile), extra.clientConfig);

  return {
    backend,
    module,
    token,
    home,
    configFile: file ? configFile : undefined,
    profile: file?.profile ?? 'kmu3',
    sources: { module: moduleSource, token: tokenSource, home: homeSource },
    extra,
  };
}
