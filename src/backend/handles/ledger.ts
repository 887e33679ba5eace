// The base of the handle store: one operation at a time per store; the token read afresh by
// each (other processes change it, and SoftHSM even gives a number to another object later);
// appends under the journal's lock after rereading it, so that two processes never give one
// key two handles.
import { join } from 'node:path';
import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidHandle } from '../../kmu/errors.js';
import { CKA, CKO, CKR, tokenCheckValue, type AttributeRead, type AttributeValue, type Session, type Template } from '../../p11/index.js';
import { acquireLock } from '../lock.js';
import { FIRST_READ, describe, halfMade, readsOf, type ObjInfo } from './fingerprint.js';
import { Journal, SESSION_INSTANCE, applyChange, recordOf, type Entry, type KeyMeta, type Rec } from './journal.js';
import { reconcile, type Match } from './reconcile.js';

export interface HandleStoreOptions {
  /** First handle number when the store is created (default 262145, kmu-like). */
  firstHandle?: number;
  /** True while the session sees every object (a user is logged in): keys gone are tombstoned. */
  fullView?: () => boolean;
  /** Wait at most this long for another process's turn at the journal (default 30 s). */
  lockTimeoutMs?: number;
  /** Tombstone foreign deletions only for records older than this (default 10 s). */
  tombstoneAfterMs?: number;
  /** The token reports CKA_UNIQUE_ID (PKCS#11 3.0). */
  uniqueId?: boolean;
  /** Compact the journal at open past this many lines and twice the live records (default 4096). */
  compactLines?: number;
}

export const ZERO_META: KeyMeta = { owner: 0, shared: [], mValue: 0 };
const code = (e: unknown) => (e as { code?: unknown } | undefined)?.code;
/** Codes SoftHSM gives for a moment while another process rewrites the token, or for an object gone. */
const FLEETING = new Set<unknown>([CKR.GENERAL_ERROR, CKR.FUNCTION_FAILED]);
const refused = (e: unknown) => {
  if (code(e) !== CKR.ATTRIBUTE_VALUE_INVALID) throw e;
  return false;
};

/**
 * One object read and described; undefined when it is gone. `kind`: the class and key type
 * expected (one read then asks for everything); `known`: what the caller read already.
 */
export async function readObject(session: Session, obj: number, uniqueId: boolean, kind?: { cls: number; kt: number }, known?: AttributeRead[]): Promise<ObjInfo | undefined> {
  const attrs = new Map<number, AttributeValue>();
  const fill = (reads: AttributeRead[]) => reads.forEach((r) => 'value' in r && attrs.set(r.type, r.value));
  const get = async (types: number[]) => fill(await session.getAttributes(obj, types));
  const num = (t: number) => ((v) => (typeof v === 'number' ? v : -1))(attrs.get(t));
  try {
    const asked = known?.map((r) => r.type) ?? (kind ? readsOf(kind.cls, kind.kt, uniqueId) : FIRST_READ);
    if (known) fill(known);
    // Every attribute refused: SoftHSM's empty object file a kill -9 leaves ('unreadable').
    else if (!(await get(asked).then(() => true, refused))) return describe(obj, attrs);
    const more = readsOf(num(CKA.CLASS), num(CKA.KEY_TYPE), uniqueId).filter((t) => !asked.includes(t));
    if (more.length) await get(more).catch(refused);
    // SoftHSM leaves CKA_CHECK_VALUE empty on unwrapped keys.
    const kcv = attrs.get(CKA.CHECK_VALUE);
    if (num(CKA.CLASS) === CKO.SECRET_KEY && !(Buffer.isBuffer(kcv) && kcv.length)) {
      const own = await tokenCheckValue(session, obj, num(CKA.KEY_TYPE));
      if (own) attrs.set(CKA.CHECK_VALUE, own);
    }
  } catch (e) {
    if (code(e) === CKR.OBJECT_HANDLE_INVALID || FLEETING.has(code(e))) return undefined;
    throw e;
  }
  return describe(obj, attrs);
}

/** A whole-token look. `trouble`: an object could not be read (nothing is tombstoned then);
 * `next`: journal.next when it began (records below it were on disk before it). */
interface Scan {
  m: Match;
  trouble: boolean;
  next: number;
}

const LEASE_MS = 10;
/** Session-key records per store directory: shared by this process's stores, as the session objects are. */
const SESSION_RECORDS = new Map<string, Map<number, Rec>>();

export abstract class Ledger {
  readonly journal: Journal;
  /** This process's session keys: they die with it, so the journal only reserves their numbers. */
  protected readonly sessionRecs: Map<number, Rec>;
  /** What each handle named when this store last resolved or registered it. */
  protected readonly resolved = new Map<number, ObjInfo>();
  /** Tombstone candidates a narrower look found still present. */
  private readonly notGone = new Set<number>();
  /** Whole-token looks made by this store. */
  scans = 0;
  protected closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** The lock while this store holds it (locked()). */
  private lease?: { since: number; release: () => Promise<void>; timer?: NodeJS.Timeout };
  /** The last append of the running operation, durable before it returns (run()). */
  private owed = 0;
  /** Generations settled whose "done" the next append carries (settle()). */
  protected readonly doneSoon: string[] = [];

  constructor(
    readonly dir: string,
    protected readonly session: Session,
    protected readonly opts: HandleStoreOptions = {},
  ) {
    this.journal = new Journal(dir, opts.firstHandle ?? 262145);
    this.sessionRecs = SESSION_RECORDS.get(dir) ?? SESSION_RECORDS.set(dir, new Map()).get(dir)!;
  }

  /** Read the journal; compact it when it has grown. */
  async open(): Promise<this> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.journal.refresh();
    const { lines, records } = this.journal;
    if (lines > (this.opts.compactLines ?? 4096) && lines > 2 * [...records.values()].filter((r) => !r.dead).length)
      await this.write(() => this.journal.compact());
    return this;
  }

  /**
   * Under <dir>/handles.lock, the journal reread first. Operations that follow within LEASE_MS
   * of its taking (a parallel batch) take it over without a release: taking the lock file costs
   * about ten file operations, and other processes wait that much longer at most.
   */
  protected async locked<T>(fn: () => Promise<T>): Promise<T> {
    const path = join(this.dir, 'handles.lock');
    if (!this.lease) {
      const release = await acquireLock(path, { timeoutMs: this.opts.lockTimeoutMs ?? 30_000 });
      this.lease = { since: Date.now(), release };
      this.journal.hold(true);
    }
    const lease = this.lease;
    clearTimeout(lease.timer);
    try {
      await this.journal.refresh();
      return await fn();
    } finally {
      if (!this.closed && Date.now() - lease.since < LEASE_MS) lease.timer = setTimeout(() => void this.unlock(lease), 5);
      else await this.unlock(lease);
    }
  }

  protected async unlock(lease = this.lease): Promise<void> {
    if (!lease || lease !== this.lease) return;
    clearTimeout(lease.timer);
    this.lease = undefined;
    this.journal.hold(false);
    await lease.release();
  }

  /** run(), under the lock. */
  protected write<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(() => this.locked(fn));
  }

  /**
   * One operation at a time per store, on the journal as others left it. What it appended is
   * made durable after its turn, so that operations queued meanwhile share one fdatasync; the
   * caller still gets its result only once its entries are on disk.
   */
  protected run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('handle store is closed'));
    let owed = 0;
    const turn = async () => {
      this.owed = 0;
      try {
        await this.journal.refresh();
        return await fn();
      } finally {
        owed = this.owed;
      }
    };
    const p = this.queue.then(turn, turn);
    this.queue = p.catch(() => undefined);
    return p.finally(() => owed && this.journal.sync(owed));
  }

  protected read(obj: number): Promise<ObjInfo | undefined> {
    return readObject(this.session, obj, this.opts.uniqueId ?? false);
  }

  /** A fresh read, retried a little while the object looks half made. */
  protected async readSettled(obj: number): Promise<ObjInfo | undefined> {
    let i = await this.read(obj);
    for (const ms of [5, 20, 50, 100, 200]) {
      if (!i || !halfMade(i)) break;
      await sleep(ms);
      i = await this.read(obj);
    }
    return i;
  }

  /** C_FindObjects, tried again when SoftHSM fails it for a moment. */
  protected async find(template?: Template): Promise<number[]> {
    for (let n = 0; ; n++) {
      try {
        return await this.session.find(template);
      } catch (e) {
        if (n >= 4 || !FLEETING.has(code(e))) throw e;
        await sleep(10 * (n + 1));
      }
    }
  }

  /** The whole token, with `also` (undefined if one of them is gone) and `known` (described already). */
  protected async scan(also: number[] = [], known = new Map<number, ObjInfo>()): Promise<Scan | undefined> {
    this.scans++;
    const next = this.journal.next;
    const found = new Set(await this.find());
    const objs: ObjInfo[] = [];
    let trouble = false;
    for (const o of new Set([...found, ...also, ...known.keys()])) {
      const i = known.get(o) ?? (await this.read(o));
      if (!i && !found.has(o)) return undefined;
      if (!i) trouble = true;
      else objs.push(i);
    }
    return { m: await reconcile(objs, this.liveRecords()), trouble, next };
  }

  protected rec(h: number): Rec | undefined {
    return this.journal.records.get(h) ?? this.sessionRecs.get(h);
  }

  protected liveRecords(): Rec[] {
    const live = (r: Rec) => !r.dead && (r.sid === undefined || r.sid === SESSION_INSTANCE);
    return [...this.journal.records.values(), ...this.sessionRecs.values()].filter(live);
  }

  /** The record of `handle`, or KmuError 0xa8 saying why it names no key now. */
  protected liveRecord(handle: number): Rec {
    const r = this.rec(handle);
    if (!r) throw invalidHandle(handle, 'unknown');
    if (r.dead) throw invalidHandle(handle, 'deleted');
    if (r.sid !== undefined && r.sid !== SESSION_INSTANCE) throw invalidHandle(handle, 'session key of an ended session (deleted)');
    return r;
  }

  /** Could a live record already name this object (same key material, or its bucket where either has none)? */
  protected couldBeRecorded(i: ObjInfo): boolean {
    return this.liveRecords().some((r) => r.cls === i.cls && (i.fp && r.fp === i.fp ? true : (!r.fp || !i.fp) && r.fam === i.fam && r.hint === i.hint));
  }

  /** `ours`: made by this process (register); only then is CKA_TOKEN=false a session object that dies with it. */
  protected addEntry(h: number, i: ObjInfo, meta: KeyMeta, ours: boolean, partner?: number, g?: string): Entry {
    const sid = ours && !i.tok ? SESSION_INSTANCE : undefined;
    const pm = i.cls === CKO.PRIVATE_KEY ? i.pub : undefined;
    const { cls, fam, tok, hint, label, fp } = i;
    const { owner, shared, mValue } = meta;
    return { ...(g ? { g } : {}), t: 'add', h, cls, fam, tok, sid, hint, label, id: i.id.toString('hex'), fp, pm, partner, owner, shared: [...shared], mValue, ts: Date.now() };
  }

  /**
   * Appends `entries` (under the lock), except what concerns this process's session keys: their
   * records change here, and only their numbers go to the journal (a snap line); one copied to
   * the token (a rep with token set) gets its full record then.
   */
  protected async record(entries: Entry[]): Promise<void> {
    const durable: Entry[] = [];
    let reserve = 0;
    for (const e of entries) {
      const r = 'h' in e ? this.sessionRecs.get(e.h) : undefined;
      if (e.t === 'add' && e.sid === SESSION_INSTANCE) {
        this.sessionRecs.set(e.h, recordOf(e));
        reserve = Math.max(reserve, e.h + 1);
      } else if (!r) durable.push(e);
      else if (e.t === 'rep' && e.tok) {
        durable.push({ ...e, t: 'add', partner: r.partner, g: r.g, owner: r.owner, shared: r.shared, mValue: r.mValue });
        this.sessionRecs.delete(e.h);
      } else if (e.t === 'del') r.dead = true;
      else if (e.t === 'meta') Object.assign(r, { owner: e.owner, shared: [...e.shared], mValue: e.mValue });
      else applyChange(r, e as Entry & { h: number });
    }
    if (reserve) durable.push({ t: 'snap', v: 2, next: reserve, ts: Date.now() });
    // Generations settled meanwhile go along (settle() writes them itself if nothing else does).
    const carried = this.doneSoon.splice(0);
    durable.push(...carried.map((g) => ({ t: 'done' as const, g })));
    const n = await this.journal.append(durable).catch((e: unknown) => {
      this.doneSoon.unshift(...carried);
      throw e;
    });
    // "done" alone is not waited for: kill -9 needs only the write; if an OS crash loses it, the
    // intent reads as a killed generation, whose recovery only repeats what was already done.
    if (n && durable.some((e) => e.t !== 'done')) this.owed = n;
  }

  /** Handles for keys first seen, tombstones of keys gone (with a full view), new labels; the match after. */
  protected async commit(scan: Scan, also: number[] = []): Promise<Match> {
    const gone = (m: Match) => {
      if (!this.opts.fullView?.() || scan.trouble) return [];
      const before = Date.now() - (this.opts.tombstoneAfterMs ?? 10_000);
      return m.unmatched.filter((h) => {
        const r = this.rec(h)!;
        return h < scan.next && r.ts < before && r.sid === undefined && !this.notGone.has(h);
      });
    };
    const relabelled = (m: Match) => [...m.byHandle.values()].filter((p) => !p.ambiguous && !p.weak && this.rec(p.h)!.hint !== m.info.get(p.obj)!.hint);
    let m = scan.m;
    if (!m.newObjects.length && !gone(m).length && !relabelled(m).length) return m;
    // A half-made object may be one another process is generating right now: look again later.
    if (m.newObjects.some((o) => halfMade(m.info.get(o)!))) {
      await sleep(100);
      m = (await this.scan(also))?.m ?? m;
    }
    return this.locked(async () => {
      m = await reconcile([...m.info.values()], this.liveRecords()); // another process may have recorded them
      let h = this.journal.next;
      const entries = m.newObjects.map((o) => this.addEntry(h++, m.info.get(o)!, ZERO_META, false));
      for (const d of await this.confirmGone(gone(m))) entries.push({ t: 'del', h: d, ts: Date.now() });
      for (const p of relabelled(m)) {
        const i = m.info.get(p.obj)!;
        entries.push({ t: 'hint', h: p.h, hint: i.hint, label: i.label, id: i.id.toString('hex') });
      }
      await this.record(entries);
      return reconcile([...m.info.values()], this.liveRecords());
    });
  }

  /** Those that a look by class, label and id confirms gone (a scan can miss an object while
   * another process rewrites SoftHSM's token). */
  private async confirmGone(handles: number[]): Promise<number[]> {
    const gone: number[] = [];
    for (const h of handles) {
      const r = this.rec(h)!;
      if (r.label === undefined || r.id === undefined) continue;
      const found = await this.find([{ type: CKA.CLASS, value: r.cls }, { type: CKA.LABEL, value: r.label }, { type: CKA.ID, value: Buffer.from(r.id, 'hex') }]);
      if (found.length === 0) gone.push(h);
      else this.notGone.add(h);
    }
    return gone;
  }
}
