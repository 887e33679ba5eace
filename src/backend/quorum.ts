// Quorum authentication (M of N) on the embedded token, as quorum-authentication.md describes:
// a user gets a quorum token for one operation on one key, other users sign the token outside
// the token with the key they registered (openssl), the requester presents the signatures, and
// kmu11 verifies them against the registered public keys. An approved token allows the operation
// once, for the user who asked for it; tokens expire ten minutes after they are made.
// Kept in <home>/quorum.json (0600), changed under the home's lock.
import { randomBytes, verify as verifySignature } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KmuError, SetupError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { writeFileAtomic } from './fsutil.js';
import { withLock } from './lock.js';
import { QUORUM_OPS, type QuorumOp } from '../kmu/access.js';

/** The page: "By default, tokens expire ten minutes after their creation". */
const TOKEN_LIFETIME_MS = 10 * 60 * 1000;
/** The page: "The HSM can store up to 1024 quorum tokens". */
const MAX_TOKENS = 1024;

interface StoredToken {
  id: string;
  handle: number;
  op: QuorumOp;
  requester: number;
  created: number;
  expires: number;
  nonce: string;
  /** Users whose signature over the token verified. */
  approvals: number[];
  used: boolean;
}

interface QuorumFile {
  version: 1;
  tokens: StoredToken[];
}

export interface QuorumPaths {
  quorum: string;
  lock: string;
}

/** The exact bytes users sign (and getToken writes to its file). */
function tokenText(t: Pick<StoredToken, 'id' | 'handle' | 'op' | 'requester' | 'expires' | 'nonce'>): string {
  return [
    'kmu11 quorum token v1',
    `id: ${t.id}`,
    `key: ${t.handle}`,
    `operation: ${t.op}`,
    `requester: ${t.requester}`,
    `expires: ${new Date(t.expires).toISOString()}`,
    `nonce: ${t.nonce}`,
    '',
  ].join('\n');
}

function bad(path: string, why: string): SetupError {
  return new SetupError(`quorum store ${path} is damaged: ${why}`);
}

async function readFile(path: string): Promise<QuorumFile> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, tokens: [] };
    throw new SetupError(`cannot read quorum store ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`, { cause: e });
  }
  let data: QuorumFile;
  try {
    data = JSON.parse(text) as QuorumFile;
  } catch {
    throw bad(path, 'not valid JSON');
  }
  if (data?.version !== 1 || !Array.isArray(data.tokens)) throw bad(path, 'unexpected layout');
  for (const t of data.tokens) {
    if (typeof t?.id !== 'string' || !Number.isSafeInteger(t.handle) || !QUORUM_OPS.includes(t.op) || !Array.isArray(t.approvals))
      throw bad(path, 'a token record is malformed');
  }
  return data;
}

export interface ApprovalOutcome {
  /** Users whose approval the token now holds. */
  approvals: number[];
}

/** Verifies a signature over `data` with a PEM public key (RSA PKCS#1 v1.5 or ECDSA, SHA-256, as `openssl dgst -sha256 -sign` makes). */
function signatureValid(pem: string, data: Buffer, signature: Buffer): boolean {
  try {
    return verifySignature('sha256', data, pem, signature);
  } catch {
    return false;
  }
}

export class QuorumStore {
  /** The time tokens are made, checked and expire by (tests set their own: KmuOptions.clock). */
  now: () => number = Date.now;

  constructor(private readonly paths: QuorumPaths) {}

  private update<T>(fn: (f: QuorumFile, now: number) => T): Promise<T> {
    return withLock(this.paths.lock, async () => {
      const f = await readFile(this.paths.quorum);
      const now = this.now();
      const out = fn(f, now);
      await writeFileAtomic(this.paths.quorum, JSON.stringify(f, null, 1) + '\n');
      return out;
    });
  }

  /** getToken: a new token for `op` on `handle`, asked for by `requester`. Returns the text to sign. */
  issue(handle: number, op: QuorumOp, requester: number): Promise<{ id: string; text: string; expires: number }> {
    return this.update((f, now) => {
      // Expired and used tokens go first; a store full of live ones refuses (the page purges only expired ones).
      f.tokens = f.tokens.filter((t) => !t.used && t.expires > now);
      if (f.tokens.length >= MAX_TOKENS)
        throw new KmuError(RC.QUORUM_REQUIRED, { detail: `${MAX_TOKENS} quorum tokens are pending; try again when some have expired` });
      const t: StoredToken = {
        id: randomBytes(8).toString('hex'),
        handle,
        op,
        requester,
        created: now,
        expires: now + TOKEN_LIFETIME_MS,
        nonce: randomBytes(32).toString('hex'),
        approvals: [],
        used: false,
      };
      f.tokens.push(t);
      return { id: t.id, text: tokenText(t), expires: t.expires };
    });
  }

  /**
   * approveToken: the requester presents the token and signatures over it. Each signature must
   * verify against the registered key of a user in `approvers` (the key's owner and the users it
   * is shared with), else the whole call is refused and nothing is recorded.
   */
  approve(
    text: string,
    signatures: Buffer[],
    requester: number,
    approvers: (handle: number) => Promise<Array<{ id: number; pem?: string }>>,
  ): Promise<ApprovalOutcome & { handle: number; op: QuorumOp }> {
    const id = /^id: ([0-9a-f]{16})$/m.exec(text)?.[1];
    if (!id) throw new UsageError('the token file is not a kmu11 quorum token (getToken writes one)');
    return withLock(this.paths.lock, async () => {
      const f = await readFile(this.paths.quorum);
      const now = this.now();
      const t = f.tokens.find((x) => x.id === id);
      if (!t || tokenText(t) !== text) throw new KmuError(RC.QUORUM_REQUIRED, { detail: 'unknown quorum token (or its file was changed)' });
      if (t.requester !== requester) throw new KmuError(RC.QUORUM_REQUIRED, { detail: `quorum token ${id} belongs to user ${t.requester}` });
      if (t.used) throw new KmuError(RC.QUORUM_REQUIRED, { detail: `quorum token ${id} was already used; get a new one` });
      if (t.expires <= now) throw new KmuError(RC.QUORUM_REQUIRED, { detail: `quorum token ${id} expired; get a new one` });
      const eligible = await approvers(t.handle);
      const data = Buffer.from(text, 'utf8');
      const found: number[] = [];
      signatures.forEach((sig, i) => {
        const who = eligible.find((u) => u.pem !== undefined && signatureValid(u.pem, data, sig));
        if (!who)
          throw new KmuError(RC.QUORUM_REQUIRED, {
            detail: `approval ${i + 1} does not verify against the registered key of any user who owns or shares key ${t.handle}`,
          });
        found.push(who.id);
      });
      for (const u of found) if (!t.approvals.includes(u)) t.approvals.push(u);
      await writeFileAtomic(this.paths.quorum, JSON.stringify(f, null, 1) + '\n');
      return { approvals: [...t.approvals], handle: t.handle, op: t.op };
    });
  }

  /**
   * Uses one approved token for `op` on `handle` by `requester`, if one holds `needed` approvals
   * from users still in `eligible`. Otherwise refuses, naming how many approvals are missing.
   */
  consume(handle: number, op: QuorumOp, requester: number, needed: number, eligible: number[]): Promise<void> {
    return this.update((f, now) => {
      const live = f.tokens.filter((t) => t.handle === handle && t.op === op && t.requester === requester && !t.used && t.expires > now);
      const count = (t: StoredToken) => t.approvals.filter((u) => eligible.includes(u)).length;
      const best = live.sort((a, b) => count(b) - count(a))[0];
      const have = best ? count(best) : 0;
      if (!best || have < needed) {
        throw new KmuError(RC.QUORUM_REQUIRED, {
          detail: `key ${handle} needs ${needed} quorum approvals to ${op}; ${needed - have} missing (${have} valid): getToken, then approveToken`,
        });
      }
      best.used = true;
    });
  }

  /** Drops tokens a deleted key or user can no longer use. */
  forget(pred: (t: { handle: number; requester: number }) => boolean): Promise<void> {
    return this.update((f) => {
      f.tokens = f.tokens.filter((t) => !pred(t));
    });
  }
}
