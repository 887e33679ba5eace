// AWS CloudHSM through Client SDK 5: its PKCS#11 library for keys, CloudHSM CLI for what that
// library cannot do (sharing, quorum values, attribute changes, users, coverage, HSM identities).
//
// SDK 5's PKCS#11 rules applied here, before anything is created: the PIN is "<CU>:<password>";
// sessions are RW only; no DSA; of kmu's curves only 2, 13, 14, 15 (id 1 is the page's 0xb3,
// 3-12 do not exist there); CKA_ID unique per pair (kmu11 makes one when -id is absent, so that
// CloudHSM CLI can name the key: `attr.id`); every attribute sent at SDK 5's own defaults where
// its firmware only accepts those (CKA_PRIVATE true on the public key), no SIGN/VERIFY_RECOVER.
// Object handles are per session in SDK 5: kmu11's handle store (kmu11.ts) gives stable ones.
import { randomBytes } from 'node:crypto';
import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { CKA, CKO, type Template } from '../p11/index.js';
import type { AttestFacts, AttestPins } from './attest.js';
import type { Backend, KeyAccess, KeyPairRequest, KmuUser, UserListEntry } from './backend.js';
import { CloudHsmCli, CloudHsmCliError, type CliKey } from './cloudhsmCli.js';
import { CloudHsmUserMap } from './cloudhsmUsers.js';
import { CLOUDHSM_CLIENT_CONFIG, readClientConfig, waitForServers, type ClientConfig } from './cluster.js';
import { CLOUDHSM_MODULE, type Kmu11Config } from './config.js';
import { checkUserType, TokenBackend, type TokenBackendParts } from './token.js';
import { chooseToken, loadModule, openRwSession, tokenFileTurn } from './tokenAccess.js';

/** The label CloudHSM's client gives its token (SDK 3: "cavium"); otherwise its only token is used. */
const CLOUDHSM_TOKEN_LABELS = ['cavium'];

/** kmu curve id → CloudHSM CLI curve name: the curves SDK 5 makes that kmu numbers. */
const SDK5_CURVES: Readonly<Record<number, 'prime256v1' | 'secp224r1' | 'secp384r1' | 'secp521r1'>> = {
  2: 'prime256v1',
  13: 'secp224r1',
  14: 'secp384r1',
  15: 'secp521r1',
};

/** With the key availability check on, SDK 5 itself makes a new key wait until it is on 2 HSMs. */
const AVAILABILITY_QUORUM = 2;
/** CloudHSM CLI's label limit (SDK 5.11 and later). */
const MAX_LABEL = 127;

/** CloudHSM's PKCS#11 PIN for a crypto user. */
function cloudHsmPin(name: string, password: string): string {
  return `${name}:${password}`;
}

const hexId = (id: Buffer) => '0x' + id.toString('hex');

function cliFailure(e: unknown, what: string): KmuError {
  if (e instanceof KmuError) return e;
  if (e instanceof CloudHsmCliError) {
    const quorum = /quorum/i.test(e.message);
    return new KmuError(quorum ? RC.ACCESS_DENIED : RC.GENERAL_ERROR, { detail: `${what}: ${e.message}`, cause: e });
  }
  return new KmuError(RC.GENERAL_ERROR, { detail: `${what}: ${(e as Error)?.message ?? String(e)}`, cause: e });
}

class CloudHsmBackend extends TokenBackend {
  readonly kind = 'cloudhsm' as const;

  constructor(
    parts: TokenBackendParts,
    readonly cli: CloudHsmCli,
    readonly users: CloudHsmUserMap,
    readonly client: ClientConfig,
  ) {
    super(parts);
  }

  async login(type: string, name: string, password: string): Promise<KmuUser> {
    checkUserType(type);
    if (this.currentUser) throw new KmuError(RC.ALREADY_LOGGED_IN);
    if (name === '' || name.includes(':')) throw new KmuError(RC.LOGIN_FAILED, { detail: 'invalid user name' });
    await this.tokenLogin(cloudHsmPin(name, password), false);
    // CloudHSM CLI gets the same credentials, through its environment only.
    this.cli.setCredentials({ username: name, password, role: 'crypto-user' });
    const [id] = await this.users.assign([name]);
    this.currentUser = { id: id!, name: name.toLowerCase(), type: 'CU' };
    return this.currentUser;
  }

  override async logout(): Promise<void> {
    await super.logout();
    this.cli.setCredentials(null);
  }

  checkKeyPair(req: KeyPairRequest): void {
    if (req.algorithm === 'dsa')
      throw new KmuError(RC.NOT_SUPPORTED, { detail: 'CloudHSM Client SDK 5 makes no DSA keys (no CKM_DSA_KEY_PAIR_GEN, no CloudHSM CLI command)' });
    if (req.algorithm === 'ec' && req.curve) {
      if (req.curve.id === 1)
        throw new KmuError(RC.POLICY_VIOLATION, { detail: `${req.curve.nid} is not allowed by the HSM's FIPS policy` });
      if (!(req.curve.id in SDK5_CURVES))
        throw new KmuError(RC.MECHANISM_NOT_SUPPORTED, {
          detail: `${req.curve.nid} (id ${req.curve.id}) does not exist on CloudHSM Client SDK 5; it makes curve ids 2, 13, 14 and 15 (P-256, P-224, P-384, P-521)`,
        });
    }
    if (Buffer.byteLength(req.label, 'utf8') > MAX_LABEL)
      throw new UsageError(`-l: CloudHSM allows labels of at most ${MAX_LABEL} bytes`);
    const shared = req.users.length > 0 || req.mValue > 0;
    if (shared) {
      if (req.algorithm !== 'ec') throw new KmuError(RC.NOT_SUPPORTED, { detail: '-u/-m_value: kmu11 makes shared pairs on CloudHSM for EC keys only' });
      if (req.sess)
        throw new KmuError(RC.NOT_SUPPORTED, {
          detail: '-sess with -u/-m_value: CloudHSM CLI makes the shared pair in its own session, which ends before kmu11 could use the key',
        });
      if (req.mValue === 1)
        throw new KmuError(RC.NOT_SUPPORTED, { detail: '-m_value 1: CloudHSM CLI accepts key quorum values of 2 to 8 (or none)' });
      if (!this.cli.available())
        throw new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `-u/-m_value need CloudHSM CLI, not found at ${this.cli.path}` });
    }
  }

  private pairId(req: KeyPairRequest): Buffer {
    // Unique per pair: CloudHSM refuses a second pair with one CKA_ID, and CloudHSM CLI finds keys by it.
    return req.id !== undefined ? Buffer.from(req.id, 'utf8') : Buffer.from(`kmu11-${randomBytes(8).toString('hex')}`, 'utf8');
  }

  keyPairTemplates(req: KeyPairRequest, pub: Template, priv: Template): { publicTemplate: Template; privateTemplate: Template } {
    const id = this.pairId(req);
    const fix = (t: Template, isPublic: boolean): Template => [
      ...t
        .filter((a) => a.type !== CKA.ID && a.type !== CKA.SIGN_RECOVER && a.type !== CKA.VERIFY_RECOVER)
        .map((a) => (isPublic && a.type === CKA.PRIVATE ? { type: CKA.PRIVATE, value: true } : a)),
      { type: CKA.ID, value: id },
    ];
    return { publicTemplate: fix(pub, true), privateTemplate: fix(priv, false) };
  }

  async generateSharedKeyPair(req: KeyPairRequest): Promise<{ publicKey: number; privateKey: number }> {
    const curve = SDK5_CURVES[req.curve!.id]!;
    const id = this.pairId(req);
    const names = await Promise.all(req.users.map((u) => this.users.nameOf(u)));
    let made: { publicKey: CliKey; privateKey: CliKey };
    try {
      made = await this.cli.generateEcPair({
        curve,
        label: req.label,
        id: hexId(id),
        extractable: !req.nex,
        session: false,
        shareUsers: names,
        quorum: req.mValue,
      });
    } catch (e) {
      throw cliFailure(e, 'CloudHSM CLI key generate-asymmetric-pair ec');
    }
    try {
      const find = async (cls: number) => {
        const found = await this.session.find([
          { type: CKA.CLASS, value: cls },
          { type: CKA.ID, value: id },
        ]);
        if (found.length !== 1) throw new KmuError(RC.GENERAL_ERROR, { detail: `the pair CloudHSM CLI made is not visible through PKCS#11 (${found.length} objects with its ID)` });
        return found[0]!;
      };
      return { publicKey: await find(CKO.PUBLIC_KEY), privateKey: await find(CKO.PRIVATE_KEY) };
    } catch (e) {
      // Not usable here: the pair is not left behind.
      await this.cli.deleteKey(made.privateKey.reference).catch(() => undefined);
      await this.cli.deleteKey(made.publicKey.reference).catch(() => undefined);
      throw e;
    }
  }

  /** The CloudHSM CLI key a PKCS#11 object is, by class, label and CKA_ID (unique per pair). */
  private async cliKey(object: number): Promise<CliKey> {
    const [cls, label, id] = await this.session.getAttributes(object, [CKA.CLASS, CKA.LABEL, CKA.ID]);
    const v = (a: typeof cls) => (a && 'value' in a ? a.value : undefined);
    const klass = v(cls) === CKO.PRIVATE_KEY ? 'private-key' : v(cls) === CKO.PUBLIC_KEY ? 'public-key' : 'secret-key';
    const filter = [`attr.class=${klass}`];
    const l = v(label);
    if (typeof l === 'string' || Buffer.isBuffer(l)) filter.push(`attr.label=${l.toString()}`);
    const i = v(id);
    if (Buffer.isBuffer(i) && i.length > 0) filter.push(`attr.id=${hexId(i)}`);
    let keys: CliKey[];
    try {
      keys = await this.cli.listKeys(filter);
    } catch (e) {
      throw cliFailure(e, 'CloudHSM CLI key list');
    }
    if (keys.length === 1) return keys[0]!;
    throw new KmuError(keys.length === 0 ? RC.INVALID_HANDLE : RC.GENERAL_ERROR, {
      detail:
        keys.length === 0
          ? 'CloudHSM CLI does not see this key (a session key belongs to the PKCS#11 session that made it)'
          : `CloudHSM CLI finds ${keys.length} keys with this key's class, label and ID; give them unique IDs`,
    });
  }

  async waitForServers(pair: { publicKey: number; privateKey: number }, minSrv: number, timeout: number | undefined, signal?: AbortSignal): Promise<void> {
    this.requireServers(minSrv);
    if (minSrv <= 1 || (minSrv <= AVAILABILITY_QUORUM && this.client.keyAvailabilityCheck)) return;
    // "full" coverage means every HSM of the cluster has the key: at least minSrv of them.
    await waitForServers({
      minSrv,
      timeout,
      signal,
      intervalMs: Number(process.env.KMU11_SYNC_POLL_MS) || 1000,
      synced: async () => {
        for (const o of [pair.privateKey, pair.publicKey]) {
          const k = await this.cliKey(o);
          if (k.info?.clusterCoverage !== 'full') return false;
        }
        return true;
      },
    });
  }

  async keyInfo(object: number): Promise<KeyAccess> {
    const k = await this.cliKey(object);
    if (!k.info) throw new KmuError(RC.GENERAL_ERROR, { detail: 'CloudHSM CLI did not report the key-info of this key' });
    const all = [...k.info.owners, ...k.info.shared];
    const ids = await this.users.assign(all);
    return {
      owner: ids[0] ?? 0,
      shared: ids.slice(k.info.owners.length).sort((a, b) => a - b),
      mValue: Math.max(k.info.manageQuorum, k.info.useQuorum),
    };
  }

  async shareKey(object: number, users: number[], share: boolean): Promise<void> {
    const k = await this.cliKey(object);
    for (const u of users) {
      const name = await this.users.nameOf(u);
      try {
        await this.cli.share(k.reference, name, share);
      } catch (e) {
        throw cliFailure(e, `CloudHSM CLI key ${share ? 'share' : 'unshare'} (user ${u})`);
      }
    }
  }

  async makeTokenKey(object: number): Promise<void> {
    const k = await this.cliKey(object);
    try {
      await this.cli.setAttribute(k.reference, 'token', 'true');
    } catch (e) {
      throw cliFailure(e, 'CloudHSM CLI key set-attribute');
    }
  }

  async listUsers(): Promise<UserListEntry[]> {
    let users;
    try {
      users = await this.cli.listUsers();
    } catch (e) {
      throw cliFailure(e, 'CloudHSM CLI user list');
    }
    const ids = await this.users.assign(users.map((u) => u.username));
    const type = (role: string): UserListEntry['type'] => (role === 'admin' ? 'CO' : role === 'crypto-user' ? 'CU' : 'AU');
    return users
      .map((u, i) => ({ id: ids[i]!, type: type(u.role), name: u.username.toLowerCase(), mofnPubKey: u.quorum, loginFailureCnt: 0, twoFA: u.mfa }))
      .sort((a, b) => a.id - b.id);
  }

  override async attestationFacts(): Promise<AttestFacts> {
    const facts = await super.attestationFacts();
    let hsms;
    try {
      hsms = await this.cli.hsmInfo();
    } catch (e) {
      throw cliFailure(e, 'CloudHSM CLI cluster hsm-info');
    }
    facts.hsms = hsms
      .map(({ vendor, model, serial, hardware, firmware, firmwareId }) => ({ vendor, model, serial, hardware, firmware, firmwareId }))
      .sort((a, b) => a.serial.localeCompare(b.serial));
    return facts;
  }
}

export async function openCloudHsm(config: Pick<Kmu11Config, 'module' | 'token' | 'home'> & { extra?: Kmu11Config['extra'] }): Promise<Backend> {
  const extra = config.extra ?? {};
  const path = config.module ?? CLOUDHSM_MODULE;
  const module = await loadModule(path, 'CloudHSM PKCS#11 library', config.home);
  try {
    const client = readClientConfig(extra.clientConfig ?? CLOUDHSM_CLIENT_CONFIG);
    const cli = new CloudHsmCli({ path: extra.cloudhsmCli, clusterId: extra.clusterId });
    const users = CloudHsmUserMap.inHome(config.home, extra.clusterId ?? 'default', extra.users);
    const { slot, label } = await tokenFileTurn(module, config.home, 'read', () => chooseToken(module, config.token, CLOUDHSM_TOKEN_LABELS));
    const session = await openRwSession(slot, label);
    const capabilities = { sharing: true, quorum: true, servers: extra.servers ?? client.servers, attestation: true };
    const parts = { module, slot, session, home: config.home, capabilities, attestPins: extra.attest as AttestPins | undefined };
    return new CloudHsmBackend(parts, cli, users, client);
  } catch (e) {
    await module.close().catch(() => undefined);
    throw e;
  }
}
