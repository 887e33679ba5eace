// The handle store on disk: handles.log, append-only. Each line is "<check> <json>\n" (check:
// 16 hex digits of the json's SHA-256); a line that fails its check or has no newline yet is
// not a record, and the next append (under the lock) first ends such a torn tail with "\n".
//   snap {v, next}   where numbering continues (first line; session keys' reservations)
//   add  {handle, class, family, token, session?, hint, label, id, fingerprint?, publicValue?,
//         partner?, owner, shared, mValue, generation?}   the first add of a number claims it
//   rep (all key fields) | hint {hint, label, id} | fp {fingerprint, publicValue?}   changes
//   del | meta {owner, shared, mValue} | intent {g, sid, label, id, meta} | done {g}
// An append is one write() under the lock; its caller then waits, outside the lock, for an
// fdatasync begun after it (sync(): appends meanwhile share it). Compaction writes a new file
// and renames it over; other processes see the new inode and reread.
import { createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../fsutil.js';
import { processAlive, startTime } from '../proc.js';

export interface KeyMeta {
  owner: number;
  shared: number[];
  mValue: number;
}

/** What identifies a recorded key (fingerprint.ts); label and id (hex) as last recorded. */
interface KeyFields {
  cls: number;
  fam: string;
  tok: boolean;
  /** A session object's process (SESSION_INSTANCE). */
  sid?: string;
  hint: string;
  label?: string;
  id?: string;
  fp?: string;
  /** A private key's public value (hex). */
  pm?: string;
}

type Add = { t: 'add'; h: number; partner?: number; g?: string; ts: number } & KeyFields & KeyMeta;
/** A generation announced before it starts: what it will make, and who makes it. */
export type Intent = { t: 'intent'; g: string; sid: string; label: string; id: string; ts: number } & KeyMeta;
/** A record: its "add", with the changes since applied. */
export type Rec = Omit<Add, 't'> & { dead: boolean };

export type Entry =
  | { t: 'snap'; v: number; next: number; ts: number }
  | Add
  | Intent
  | { t: 'done'; g: string }
  | { t: 'del'; h: number; ts: number }
  | ({ t: 'rep'; h: number; ts: number } & KeyFields)
  | ({ t: 'meta'; h: number } & KeyMeta)
  | { t: 'hint'; h: number; hint: string; label?: string; id?: string }
  | { t: 'fp'; h: number; fp: string; pm?: string };

const KEY_FIELDS = ['cls', 'fam', 'tok', 'sid', 'hint', 'label', 'id', 'fp', 'pm'] as const;
const check = (json: string) => createHash('sha256').update(json).digest('hex').slice(0, 16);
// Version 2 writes these fields by their names; version 1 wrote the short ones. Both are read.
const LONG: Readonly<Record<string, string>> = {
  h: 'handle', cls: 'class', fam: 'family', tok: 'token', sid: 'session', fp: 'fingerprint', pm: 'publicValue', g: 'generation',
};
const SHORT: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(LONG).map(([s, l]) => [l, s]));
function rename(o: object, names: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in o) out[names[k] ?? k] = (o as Record<string, unknown>)[k];
  return out;
}

function encode(entries: Entry[]): Buffer {
  return Buffer.from(entries.map((e) => JSON.stringify(rename(e, LONG))).map((j) => `${check(j)} ${j}\n`).join(''), 'utf8');
}

function decodeLine(line: string): Entry | undefined {
  const json = line.slice(17);
  if (line[16] !== ' ' || check(json) !== line.slice(0, 16)) return undefined;
  try {
    const e = JSON.parse(json) as Entry;
    return typeof e?.t === 'string' ? (rename(e, SHORT) as unknown as Entry) : undefined;
  } catch {
    return undefined;
  }
}

const metaOf = (e: KeyMeta): KeyMeta => ({ owner: e.owner, shared: e.shared ?? [], mValue: e.mValue ?? 0 });
export function recordOf(e: Add): Rec {
  const { t: _t, ...r } = e;
  return { ...r, ...metaOf(e), dead: false };
}

/** A change entry (rep, hint, fp) applied to a record: rep sets every key field, the others theirs. */
export function applyChange(r: Rec, e: Entry & { h: number }): void {
  const fields = e.t === 'rep' ? KEY_FIELDS : KEY_FIELDS.filter((k) => k in e);
  for (const k of fields) (r as unknown as Record<string, unknown>)[k] = (e as Partial<KeyFields>)[k];
}

/** This process: its session objects (CKA_TOKEN=false) die with it. */
export const SESSION_INSTANCE = `${process.pid}-${startTime(process.pid)}-${randomBytes(4).toString('hex')}`;

export function sessionAlive(sid: string): boolean {
  const [pid, start] = sid.split('-');
  const n = Number(pid);
  return Number.isSafeInteger(n) && n > 0 && processAlive(n, start ?? '');
}

export class Journal {
  readonly path: string;
  readonly records = new Map<number, Rec>();
  /** Generations announced and not yet done. */
  readonly intents = new Map<string, Intent>();
  next: number;
  /** Valid lines applied (the compaction decision). */
  lines = 0;
  /** While this process holds the lock nobody else appends: once reread, current. */
  private held = false;
  private current = false;
  private fh?: fs.FileHandle;
  private ino = -1;
  /** Bytes applied, and the size last seen (past `pos`: a line not yet whole). */
  private pos = 0;
  private size = 0;
  private written = 0;
  private synced = 0;
  private syncing?: Promise<void>;

  constructor(
    readonly dir: string,
    private readonly firstHandle: number,
  ) {
    this.path = join(dir, 'handles.log');
    this.next = firstHandle;
  }

  hold(held: boolean): void {
    [this.held, this.current] = [held, false];
  }

  /** Read what other processes appended (or the whole file, if it was replaced). */
  async refresh(create = false): Promise<void> {
    if (this.current) return;
    let st = await fs.stat(this.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' && !create) return undefined;
      if (e.code !== 'ENOENT') throw e;
    });
    if (!st && !create) return;
    if (!this.fh || st?.ino !== this.ino) {
      await this.fh?.close();
      this.fh = await fs.open(this.path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
      if (!st) await fsyncDir(this.dir);
      st = await this.fh.stat();
      this.ino = st.ino;
      this.records.clear();
      this.intents.clear();
      [this.pos, this.lines, this.next] = [0, 0, this.firstHandle];
    }
    this.size = st!.size;
    this.current = this.held;
    if (this.size <= this.pos) return;
    const b = Buffer.alloc(this.size - this.pos);
    let got = 0;
    for (let n = 1; got < b.length && n > 0; got += n) n = (await this.fh.read(b, got, b.length - got, this.pos + got)).bytesRead;
    const end = b.subarray(0, got).lastIndexOf(0x0a);
    if (end < 0) return;
    this.pos += end + 1;
    // A long journal (a first read) gives the event loop a turn every 2 ms.
    let since = performance.now();
    for (const line of b.subarray(0, end).toString('utf8').split('\n')) {
      const e = decodeLine(line);
      if (e) this.apply(e);
      if (performance.now() - since >= 2) {
        await new Promise((r) => setImmediate(r));
        since = performance.now();
      }
    }
  }

  private apply(e: Entry): void {
    this.lines++;
    if (e.t === 'snap') this.next = Math.max(this.next, Number.isSafeInteger(e.next) ? e.next : 0);
    else if (e.t === 'intent') this.intents.set(e.g, { ...e, ...metaOf(e) });
    else if (e.t === 'done') this.intents.delete(e.g);
    else if (e.t === 'add') {
      if (!Number.isSafeInteger(e.h) || e.h <= 0 || this.records.has(e.h)) return;
      this.records.set(e.h, recordOf(e));
      this.next = Math.max(this.next, e.h + 1);
    } else {
      const r = this.records.get(e.h);
      if (!r || r.dead) return;
      if (e.t === 'del') r.dead = true;
      else if (e.t === 'meta') Object.assign(r, metaOf(e));
      else applyChange(r, e);
    }
  }

  /** Append entries (caller holds the lock): written, not yet durable; its number for sync(), or 0. */
  async append(entries: Entry[]): Promise<number> {
    if (entries.length === 0) return 0;
    await this.refresh(true);
    const first: Entry[] = this.size === 0 ? [{ t: 'snap', v: 2, next: this.firstHandle, ts: Date.now() }] : [];
    const data = Buffer.concat([Buffer.from(this.size > this.pos ? '\n' : ''), encode([...first, ...entries])]);
    for (let off = 0; off < data.length; ) off += (await this.fh!.write(data, off, data.length - off, null)).bytesWritten;
    const n = ++this.written;
    this.current = false;
    await this.refresh();
    // Each number claimed must now be ours (first claim wins): only a lock that failed to exclude
    // could make us lose one; never hand out such a number.
    for (const e of entries) {
      const r = e.t === 'add' ? this.records.get(e.h) : undefined;
      if (e.t === 'add' && (r?.ts !== e.ts || r.fam !== e.fam || r.hint !== e.hint || r.cls !== e.cls))
        throw new Error(`kmu11: handle ${e.h} was claimed by another process at the same time (handle-store lock not effective?)`);
    }
    return n;
  }

  /** Returns once append `n` is on disk: an fdatasync begun after it covers it. */
  async sync(n: number): Promise<void> {
    while (this.synced < n) {
      const upTo = this.written;
      this.syncing ??= this.fh!.datasync()
        .then(() => void (this.synced = Math.max(this.synced, upTo)))
        .finally(() => (this.syncing = undefined));
      await this.syncing;
    }
  }

  /** Rewrite without tombstones and ended processes' session records (caller holds the lock). */
  async compact(): Promise<void> {
    await this.refresh();
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[]))
      if (name.startsWith('.handles.log.tmp-')) await fs.rm(join(this.dir, name), { force: true }); // a crashed compaction's
    const keep: Entry[] = [{ t: 'snap', v: 2, next: this.next, ts: Date.now() }];
    keep.push(...this.intents.values());
    for (const { dead, g, ...r } of this.records.values())
      if (!dead && !(r.sid && !sessionAlive(r.sid))) keep.push({ t: 'add', ...r, ...(g && this.intents.has(g) ? { g } : {}) });
    await writeFileAtomic(this.path, encode(keep), 0o600);
    this.current = false;
    await this.refresh();
  }

  async close(): Promise<void> {
    // Appends no caller waited for ("done") are made durable at a clean exit.
    if (this.fh && this.synced < this.written) await this.sync(this.written).catch(() => undefined);
    await this.fh?.close();
    this.fh = undefined;
    this.ino = -1;
  }
}
