// The only place kmu11 talks to AWS CloudHSM CLI (cloudhsm-cli, Client SDK 5). Single-command
// mode: one process per call, credentials in its environment (CLOUDHSM_PIN=user:password,
// CLOUDHSM_ROLE), never in argv. CloudHSM CLI answers every command with a JSON envelope
// {error_code, data}; its exit status on failure is undocumented, so error_code decides.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SetupError } from '../kmu/errors.js';

const CLOUDHSM_CLI = '/opt/cloudhsm/bin/cloudhsm-cli';

/** CloudHSM CLI answered error_code != 0 (data is its message), or could not be run/read. */
export class CloudHsmCliError extends Error {
  constructor(
    message: string,
    readonly errorCode: number | undefined,
    readonly command: string,
  ) {
    super(message);
    this.name = 'CloudHsmCliError';
  }
}

export interface CliCredentials {
  username: string;
  password: string;
  role: 'crypto-user' | 'admin';
}

/** One user of `user list`. */
export interface CliUser {
  username: string;
  role: string;
  locked: boolean;
  mfa: boolean;
  quorum: boolean;
}

/** `key-info` of a key (key list --verbose, key generate-*). */
export interface CliKeyInfo {
  owners: string[];
  shared: string[];
  manageQuorum: number;
  useQuorum: number;
  /** "full", or whatever else CloudHSM CLI reports (e.g. "inconsistent", partial counts). */
  clusterCoverage: string;
}

export interface CliKey {
  reference: string;
  info?: CliKeyInfo;
  attributes: Record<string, unknown>;
}

export interface CliHsm {
  vendor: string;
  model: string;
  serial: string;
  hardware: string;
  firmware: string;
  firmwareId: string;
  fipsState: string;
}

export interface EcPairRequest {
  curve: 'prime256v1' | 'secp224r1' | 'secp384r1' | 'secp521r1';
  label: string;
  /** CKA_ID as CloudHSM CLI's id attribute (the value text as given). */
  id: string;
  extractable: boolean;
  session: boolean;
  shareUsers: string[];
  /** Both quorum values (kmu's single -m_value covers use and management); 0 = none. */
  quorum: number;
}

export interface CloudHsmCliOptions {
  path?: string;
  clusterId?: string;
  /** Environment for the child besides the credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

function parseKeyInfo(ki: unknown): CliKeyInfo | undefined {
  if (!ki || typeof ki !== 'object') return undefined;
  const k = ki as Record<string, any>;
  const names = (a: unknown) => (Array.isArray(a) ? a.map((u) => str(u?.username)).filter((u) => u !== '') : []);
  const q = (k['key-quorum-values'] ?? {}) as Record<string, unknown>;
  return {
    owners: names(k['key-owners']),
    shared: names(k['shared-users']),
    manageQuorum: Number(q['manage-key-quorum-value'] ?? 0),
    useQuorum: Number(q['use-key-quorum-value'] ?? 0),
    clusterCoverage: str(k['cluster-coverage']),
  };
}

function parseKey(k: unknown): CliKey {
  const o = (k ?? {}) as Record<string, any>;
  const reference = str(o['key-reference']);
  if (!/^0x[0-9a-f]+$/i.test(reference)) throw new CloudHsmCliError(`unexpected key-reference ${JSON.stringify(o['key-reference'])}`, undefined, 'key');
  return { reference, info: parseKeyInfo(o['key-info']), attributes: (o.attributes ?? {}) as Record<string, unknown> };
}

export class CloudHsmCli {
  readonly path: string;
  private credentials: CliCredentials | null = null;

  constructor(private readonly opts: CloudHsmCliOptions = {}) {
    this.path = opts.path ?? CLOUDHSM_CLI;
  }

  /** Whether the executable is there at all (features needing it are refused otherwise). */
  available(): boolean {
    return existsSync(this.path);
  }

  setCredentials(c: CliCredentials | null): void {
    this.credentials = c;
  }

  /**
   * Runs `cloudhsm-cli <args…>` and returns its envelope's data. `login`: pass the stored
   * credentials (commands like `user list` and `cluster hsm-info` need none).
   */
  async run(args: string[], login = true): Promise<unknown> {
    const command = args.slice(0, 2).join(' ');
    if (!this.available()) throw new SetupError(`CloudHSM CLI not found: ${this.path}`);
    const env: NodeJS.ProcessEnv = { ...(this.opts.env ?? process.env) };
    delete env.CLOUDHSM_PIN;
    delete env.CLOUDHSM_ROLE;
    if (login) {
      if (!this.credentials) throw new CloudHsmCliError('not logged in', undefined, command);
      env.CLOUDHSM_PIN = `${this.credentials.username}:${this.credentials.password}`;
      env.CLOUDHSM_ROLE = this.credentials.role;
    }
    const argv = this.opts.clusterId ? [...args, '--cluster-id', this.opts.clusterId] : args;
    const { stdout, status, failed } = await new Promise<{ stdout: string; status: number | null; failed?: string }>((resolve) => {
      execFile(this.path, argv, { env, timeout: this.opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 }, (err, stdout) => {
        const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
        const failed = e && typeof e.code === 'string' ? e.code : e?.killed ? 'timed out' : undefined;
        resolve({ stdout: String(stdout ?? ''), status: e ? (typeof e.code === 'number' ? e.code : null) : 0, failed });
      });
    });
    if (failed) throw new CloudHsmCliError(`cloudhsm-cli ${command}: ${failed}`, undefined, command);
    let envelope: { error_code?: unknown; data?: unknown };
    try {
      // Single-command mode prints the envelope alone; take the outermost JSON object.
      const start = stdout.indexOf('{');
      envelope = JSON.parse(stdout.slice(start, stdout.lastIndexOf('}') + 1));
    } catch {
      throw new CloudHsmCliError(`cloudhsm-cli ${command}: no JSON answer (exit status ${status})`, undefined, command);
    }
    const code = Number(envelope.error_code);
    if (!Number.isInteger(code)) throw new CloudHsmCliError(`cloudhsm-cli ${command}: answer has no error_code`, undefined, command);
    if (code !== 0) {
      const d = envelope.data;
      const msg = typeof d === 'string' ? d : JSON.stringify(d);
      throw new CloudHsmCliError(`cloudhsm-cli ${command}: ${msg.replace(/\s+/g, ' ').slice(0, 300)}`, code, command);
    }
    return envelope.data;
  }

  /** `key generate-asymmetric-pair ec` with sign/verify set and every kmu flag, in one call. */
  async generateEcPair(r: EcPairRequest): Promise<{ publicKey: CliKey; privateKey: CliKey }> {
    const args = ['key', 'generate-asymmetric-pair', 'ec', '--curve', r.curve, '--public-label', r.label, '--private-label', r.label];
    if (r.session) args.push('--session');
    args.push('--public-attributes', 'verify=true', 'encrypt=false', 'wrap=false', 'derive=false', `id=${r.id}`);
    args.push('--private-attributes', 'sign=true', 'decrypt=false', 'unwrap=false', 'derive=false', `extractable=${r.extractable}`, `id=${r.id}`);
    if (r.shareUsers.length) args.push('--share-crypto-users', ...r.shareUsers);
    if (r.quorum > 0) args.push('--manage-private-key-quorum-value', String(r.quorum), '--use-private-key-quorum-value', String(r.quorum));
    const data = (await this.run(args)) as Record<string, unknown>;
    return { publicKey: parseKey(data?.public_key), privateKey: parseKey(data?.private_key) };
  }

  /** `key list --filter … --verbose`, every page (next_token) read. */
  async listKeys(filter: string[]): Promise<CliKey[]> {
    const out: CliKey[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const args = ['key', 'list', '--verbose', '--max-items', '100'];
      if (filter.length) args.push('--filter', ...filter);
      if (token !== undefined) args.push('--starting-token', token);
      const data = (await this.run(args)) as Record<string, unknown>;
      const keys = Array.isArray(data?.matched_keys) ? data.matched_keys : [];
      out.push(...keys.map(parseKey));
      token = data?.next_token === undefined || data.next_token === null ? undefined : str(data.next_token);
      if (token === undefined || keys.length === 0) break;
    }
    return out;
  }

  async setAttribute(reference: string, name: string, value: string): Promise<void> {
    await this.run(['key', 'set-attribute', '--filter', `key-reference=${reference}`, '--name', name, '--value', value]);
  }

  async share(reference: string, username: string, share: boolean): Promise<void> {
    const verb = share ? 'share' : 'unshare';
    await this.run(['key', verb, '--filter', `key-reference=${reference}`, '--username', username, '--role', 'crypto-user']);
  }

  async deleteKey(reference: string): Promise<void> {
    await this.run(['key', 'delete', '--filter', `key-reference=${reference}`]);
  }

  /** `user list` (no login needed). */
  async listUsers(): Promise<CliUser[]> {
    const data = (await this.run(['user', 'list'], false)) as Record<string, unknown>;
    const users = Array.isArray(data?.users) ? data.users : [];
    return users.map((u: Record<string, unknown>) => ({
      username: str(u.username),
      role: str(u.role),
      locked: str(u.locked) === 'true',
      mfa: Array.isArray(u.mfa) && u.mfa.length > 0,
      quorum: Array.isArray(u.quorum) && u.quorum.length > 0,
    }));
  }

  /** `cluster hsm-info` (no login needed): each HSM's identity and firmware. */
  async hsmInfo(): Promise<CliHsm[]> {
    const data = (await this.run(['cluster', 'hsm-info'], false)) as Record<string, unknown>;
    const hsms = Array.isArray(data?.hsms) ? data.hsms : [];
    return hsms.map((h: Record<string, unknown>) => ({
      vendor: str(h.vendor),
      model: str(h.model),
      serial: str(h['serial-number']),
      hardware: `${str(h['hardware-version-major'])}.${str(h['hardware-version-minor'])}`,
      firmware: `${str(h['firmware-version-major'])}.${str(h['firmware-version-minor'])}.${str(h['firmware-build-number'])}`,
      firmwareId: str(h['firmware-id']),
      fipsState: str(h['fips-state']),
    }));
  }
}
