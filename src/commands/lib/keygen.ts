// What genECCKeyPair and genDSAKeyPair share: their common flags and rules, the kmu → PKCS#11
// template (DESIGN.md's contract table), and generation that leaves nothing behind on failure.
import { CKA, CKK, CKM, CKO, CKR, ckaName, type AttributeRead, type Mechanism, type Template } from '../../p11/index.js';
import type { KeyPairRequest } from '../../backend/index.js';
import { KmuError, UsageError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import * as v from '../../kmu/values.js';
import type { CommandContext, FlagSpec } from '../types.js';
import { checkInterrupt } from './context.js';
import { checkShareTargets } from './ownership.js';
import { keyUris, templateKeyUri } from './uri.js';

export interface KeyPairOptions {
  label: string;
  id?: string;
  minSrv?: number;
  mValue?: number;
  nex?: boolean;
  sess?: boolean;
  timeout?: number;
  users?: number[];
  attest?: boolean;
  /** kmu11's -uri: print each key's PKCS#11 URI (always in --json). */
  uri?: boolean;
}

export const KEY_PAIR_FLAGS: readonly FlagSpec[] = [
  { flag: '-l', key: 'label', parse: v.label, required: true, metavar: '<label>' },
  { flag: '-id', key: 'id', parse: v.keyId, metavar: '<key ID>' },
  { flag: '-min_srv', key: 'minSrv', parse: v.integer(1, 32), metavar: '<minimum number of servers>' },
  { flag: '-m_value', key: 'mValue', parse: v.integer(0, 8), metavar: '<0..8>' },
  { flag: '-nex', key: 'nex' },
  { flag: '-sess', key: 'sess' },
  { flag: '-timeout', key: 'timeout', parse: v.integer(0, 86_400), metavar: '<number of seconds>' },
  { flag: '-u', key: 'users', parse: v.userIds, metavar: '<user-ids>' },
  { flag: '-attest', key: 'attest' },
  { flag: '-uri', key: 'uri' },
];

/** The flags every generation has, as the pages' syntax blocks list them after the command's own. */
const KEY_PAIR_SYNTAX = ['[-id <key ID>]', '[-min_srv <minimum number of servers>]', '[-m_value <0..8>]', '[-nex]', '[-sess]', '[-timeout <number of seconds> ]', '[-u <user-ids>]', '[-attest]'];

/** A generator's syntax block as its page prints it: `own` flags, then the common ones, each under the first. */
export function keyPairSyntax(name: string, own: string[]): string {
  return `${name} -h\n\n${name} ${[...own, ...KEY_PAIR_SYNTAX].join(`\n${' '.repeat(name.length + 1)}`)}`;
}

/** Generations overlap in a parallel batch; two with the same -id keep their order (the second gets 0x07). */
export const KEY_PAIR_PARALLEL = { group: 'create' as const, key: (o: KeyPairOptions) => (o.id === undefined ? undefined : `id:${o.id}`) };

/** The page's parameter rules that need no token. */
export function validateKeyPairOptions(o: KeyPairOptions): void {
  if (o.timeout !== undefined && o.minSrv === undefined)
    throw new UsageError('-timeout is valid only together with -min_srv');
  if (o.mValue && o.mValue > 0) {
    const users = (o.users?.length ?? 0) + 1; // the owner counts toward the quorum
    if (users < o.mValue)
      throw new UsageError(
        `-m_value ${o.mValue} needs the key shared (-u) with at least ${o.mValue - 1} other user(s); ${o.users?.length ?? 0} given`,
      );
  }
}

/**
 * Cluster features: checked against the logged-in user and the backend before anything is
 * made. A feature the backend lacks is refused, naming the flag, never ignored.
 */
function checkClusterFlags(ctx: CommandContext, o: KeyPairOptions): void {
  const { backend } = ctx;
  const user = backend.user!;
  if (o.users?.includes(user.id))
    throw new UsageError(`-u must not include the current user (${user.id}); the owner can always use the key`);
  const refuse = (flag: string, what: string) =>
    new KmuError(RC.FEATURE_UNAVAILABLE, { detail: `${flag} (${what}) is not available on the ${backend.kind} backend` });
  if (o.users?.length && !backend.capabilities.sharing) throw refuse('-u', 'sharing the key with other users');
  if (o.mValue && !backend.capabilities.quorum) throw refuse('-m_value', 'quorum authentication');
  // Each backend says how many HSMs it spans (a single token: 1); more is never met.
  backend.requireServers(o.minSrv);
  if (o.attest && !backend.capabilities.attestation) throw refuse('-attest', 'firmware attestation');
}

/** The pair as the backend's policy sees it; the algorithm from the command's options. */
function keyPairRequest(o: KeyPairOptions): KeyPairRequest {
  const x = o as KeyPairOptions & { curve?: { id: number; nid: string }; publicExponent?: unknown; modulusBits?: unknown };
  const algorithm = x.curve ? 'ec' : x.publicExponent !== undefined ? 'rsa' : 'dsa';
  return {
    algorithm,
    ...(x.curve ? { curve: { id: x.curve.id, nid: x.curve.nid } } : {}),
    label: o.label,
    ...(o.id !== undefined ? { id: o.id } : {}),
    nex: !!o.nex,
    sess: !!o.sess,
    users: o.users ?? [],
    mValue: o.mValue ?? 0,
  };
}

/**
 * An id already used by a key on the token (token or session object) is refused before
 * generation. One search for the ID, then the class of what it found (a certificate may share
 * it): each search makes SoftHSM look at every object on the token.
 */
async function checkIdFree(ctx: CommandContext, id: Buffer): Promise<void> {
  const { session } = ctx.backend;
  const keyClasses: unknown[] = [CKO.PUBLIC_KEY, CKO.PRIVATE_KEY, CKO.SECRET_KEY];
  for (const obj of await session.find([{ type: CKA.ID, value: id }])) {
    // Gone since the search (deleted meanwhile): not a key with the ID.
    const read = await session.getAttributes(obj, [CKA.CLASS]).catch((e: unknown) => {
      if ((e as { code?: unknown }).code === CKR.OBJECT_HANDLE_INVALID) return [];
      throw e;
    });
    const [cls] = read;
    if (cls && 'value' in cls && keyClasses.includes(cls.value))
      throw new KmuError(RC.KEY_ID_EXISTS, { detail: `a key with ID '${id.toString('utf8')}' is already on the token` });
  }
}

/** Explicit values for every usage, privacy and sensitivity attribute (tokens' defaults differ). */
export function pairTemplates(o: KeyPairOptions, keyType: number): { publicTemplate: Template; privateTemplate: Template } {
  const common: Template = [
    { type: CKA.KEY_TYPE, value: keyType },
    { type: CKA.TOKEN, value: !o.sess },
    { type: CKA.LABEL, value: o.label },
    ...(o.id !== undefined ? [{ type: CKA.ID, value: Buffer.from(o.id, 'utf8') }] : []),
    { type: CKA.DERIVE, value: false },
  ];
  return {
    publicTemplate: [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY },
      ...common,
      { type: CKA.PRIVATE, value: false },
      { type: CKA.VERIFY, value: true },
      { type: CKA.VERIFY_RECOVER, value: false },
      { type: CKA.ENCRYPT, value: false },
      { type: CKA.WRAP, value: false },
    ],
    privateTemplate: [
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY },
      ...common,
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: !o.nex },
      { type: CKA.SIGN, value: true },
      { type: CKA.SIGN_RECOVER, value: false },
      { type: CKA.DECRYPT, value: false },
      { type: CKA.UNWRAP, value: false },
    ],
  };
}

/** A template as JSON: CKA name → value (Buffers as hex). */
export function templateJson(t: Template): Record<string, boolean | number | string> {
  const out: Record<string, boolean | number | string> = {};
  for (const a of t) out[ckaName(a.type)] = Buffer.isBuffer(a.value) ? a.value.toString('hex') : a.value;
  return out;
}

export interface GeneratedPair {
  publicKey: number;
  privateKey: number;
  token: boolean;
  /** HSMs the backend spans: kmu prints one "Node id N" line for each. */
  nodes?: number;
  /** -attest: "PASS" (the pins matched, or were recorded now). */
  attestation?: 'PASS';
  /** RFC 7512 URIs of the two keys; `showUri`: -uri asked for them in text. */
  publicUri: string;
  privateUri: string;
  showUri?: boolean;
  publicTemplate: Record<string, boolean | number | string>;
  privateTemplate: Record<string, boolean | number | string>;
}

/** The key type a pair mechanism makes (the store's reads depend on it). */
const PAIR_KEY_TYPE = new Map<number, number>([
  [CKM.EC_KEY_PAIR_GEN, CKK.EC],
  [CKM.DSA_KEY_PAIR_GEN, CKK.DSA],
  [CKM.RSA_PKCS_KEY_PAIR_GEN, CKK.RSA],
]);

/**
 * C_GenerateKeyPair, then handles from the store. If anything after generation fails, or the
 * operator interrupts, both halves are destroyed again (and their handles tombstoned): a failed
 * command leaves no object behind. Token keys are announced to the store first, so that a
 * process killed part way is finished or rolled back by the next one.
 */
export async function generatePair(
  ctx: CommandContext,
  o: KeyPairOptions,
  mechanism: Mechanism,
  publicTemplate: Template,
  privateTemplate: Template,
): Promise<GeneratedPair> {
  const { backend } = ctx;
  const { session, user } = backend;
  const req = keyPairRequest(o);
  if (backend.keyPairTemplates) ({ publicTemplate, privateTemplate } = backend.keyPairTemplates(req, publicTemplate, privateTemplate));
  const meta = { owner: user!.id, shared: o.users ?? [], mValue: o.mValue ?? 0 };
  checkInterrupt(ctx);
  if (!o.sess) await ctx.handles.intend({ label: o.label, id: o.id === undefined ? undefined : Buffer.from(o.id, 'utf8'), meta });
  // -u / -m_value where the HSM keeps them (cloudhsm): made shared in one step, or not at all.
  const shared = (req.users.length > 0 || req.mValue > 0) && backend.generateSharedKeyPair !== undefined;
  // The store's reads of the new pair ride in the generation's job (one hand-off, reads on
  // guessed buffers). A read that fails there is left to the store, which reads in its turn.
  const kt = PAIR_KEY_TYPE.get(mechanism.mechanism);
  let read: { publicKey?: AttributeRead[]; privateKey?: AttributeRead[] } = {};
  let pair: { publicKey: number; privateKey: number };
  if (shared) {
    pair = await backend.generateSharedKeyPair!(req);
  } else if (kt === undefined) {
    pair = await session.generateKeyPair(mechanism, publicTemplate, privateTemplate);
  } else {
    const reads = { publicKey: ctx.handles.registerReads(CKO.PUBLIC_KEY, kt), privateKey: ctx.handles.registerReads(CKO.PRIVATE_KEY, kt) };
    const r = await session.generateKeyPairAndRead(mechanism, publicTemplate, privateTemplate, reads);
    pair = r;
    read = { publicKey: r.publicAttributes, privateKey: r.privateAttributes };
  }
  let handles: number[] = [];
  try {
    if (o.minSrv !== undefined && backend.waitForServers) await backend.waitForServers(pair, o.minSrv, o.timeout, ctx.signal);
    checkInterrupt(ctx);
    handles = await ctx.handles.register(
      [
        { object: pair.publicKey, meta, partner: pair.privateKey, read: read.publicKey },
        { object: pair.privateKey, meta, partner: pair.publicKey, read: read.privateKey },
      ],
      session,
    );
    checkInterrupt(ctx);
    const [publicKey, privateKey] = handles;
    // Made from our templates, the keys carry their label and ID: no read. (CloudHSM CLI's
    // shared generation makes them from its own arguments: read back.)
    const [publicUri, privateUri] = shared
      ? await keyUris(ctx, [pair.publicKey, pair.privateKey])
      : await Promise.all([templateKeyUri(ctx, 'public', publicTemplate), templateKeyUri(ctx, 'private', privateTemplate)]);
    return {
      publicKey: publicKey!,
      privateKey: privateKey!,
      publicUri: publicUri!,
      privateUri: privateUri!,
      ...(o.uri ? { showUri: true } : {}),
      token: !o.sess,
      nodes: Math.max(1, backend.capabilities.servers),
      ...(o.attest ? { attestation: 'PASS' as const } : {}),
      publicTemplate: templateJson(publicTemplate),
      privateTemplate: templateJson(privateTemplate),
    };
  } catch (e) {
    const undone = await session.destroyObject([pair.publicKey, pair.privateKey]).then(
      () => true,
      () => false,
    );
    for (const h of handles) await ctx.handles.remove(h).catch(() => undefined);
    if (!undone) ctx.handles.unsettled();
    throw e;
  }
}

/** -attest: PASS (or the first pins recorded) goes on; a mismatch is kmu11's 0x0c. */
async function requireAttestation(ctx: CommandContext): Promise<void> {
  const r = await ctx.backend.attest();
  if (r.result === 'FAIL')
    throw new KmuError(RC.ATTESTATION_FAILED, {
      detail: `attestation: ${r.differences.join(', ')} differ from the pins (${r.pinsFrom === 'config' ? 'config file' : r.path}); after an intended upgrade run kmu11 attest --repin`,
    });
}

/**
 * Every command that makes a key (a pair, a secret key, an import, an unwrap) runs `create`
 * through here, after kmu's checks in kmu's order: cluster flags, the users shared with, the
 * backend's rules, -attest, ID uniqueness. With -id, the ID check and `create` are one step
 * for kmu11 processes sharing a home (the backend's generation lock), so two cannot both pass it.
 */
export async function createAfterChecks<T>(ctx: CommandContext, o: KeyPairOptions, create: () => Promise<T>): Promise<T> {
  checkClusterFlags(ctx, o);
  await checkShareTargets(ctx, o.users);
  ctx.backend.checkKeyPair?.(keyPairRequest(o));
  // -attest before anything is made: a mismatch is 0x0c and nothing is created.
  if (o.attest) await requireAttestation(ctx);
  const id = o.id;
  if (id === undefined) return create();
  const checked = async () => {
    await checkIdFree(ctx, Buffer.from(id, 'utf8'));
    return create();
  };
  return ctx.backend.exclusive(Buffer.from(id, 'utf8'), checked);
}
