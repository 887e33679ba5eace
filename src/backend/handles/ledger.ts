// The journal's side of the handle store: one operation at a time per store, under the lock
// between processes, and what operations append (records of keys first seen, tombstones of keys
// other tools deleted, labels changed). Generations (generations.ts) and the API (store.ts) on it.
// Allocation for keys first seen, tombstones and meta changes happen under the lock, after
// rereading the journal, so two processes never give one key two handles. A process that lists
// while another is between generation and register() gives the new key a handle (owner 0);
// register() then finds that record and adopts it (its handle, the creator's metadata): still
// one handle.
import { invalidHandle } from '../../kmu/errors.js';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CKA, CKO } from '../../p11/index.js';
import { withLock } from '../lock.js';
import { type KeyMeta } from './api.js';
import { halfMade, type ObjInfo } from './fingerprint.js';
import { recordOf, SESSION_INSTANCE, type Entry, type Rec } from './journal.js';
import type { MatchResult } from './match.js';
import { certain, TokenView } from './view.js';

export const ZERO_META: KeyMeta = { owner: 0, shared: [], mValue: 0 };

/** The longest the lock is kept for operations queued behind the one that took it. */
const LEASE_MS = 10;
interface Lease {
  since: number;
  depth: number;
  timer?: NodeJS.Timeout;
  release: () => void;
  held: Promise<void>;
}

export abstract class Ledger extends TokenView {
  private queue: Promise<unknown> = Promise.resolve();
  protected closed = false;
  /** What resolve() last returned for a handle (remove() and replace() drop it from the caches). */
  protected readonly resolved = new Map<number, number>();
  /** Tombstone candidates a narrower look found still present (not asked again). */
  protected readonly notGone = new Set<number>();
  /** The last append of the running operation that must be durable before it returns (run()). */
  protected owed = 0;
  /** The lock between processes while this store holds it (see locked()). */
  private lease?: Lease;
  /** Generations settled whose "done" the next append carries (see settle()). */
  protected readonly doneSoon: string[] = [];
  /** Operations queued behind the running one (run()). */
  private waiting = 0;

  /** Create or read the journal; compact it when it has grown (under the lock). */
  async open(): Promise<this> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (!(await this.journal.initialized())) await this.locked(() => this.journal.create());
    await this.journal.refresh();
    const limit = this.opts.compactLines ?? 4096;
    if (this.journal.lines > limit && this.journal.lines > 2 * this.journal.liveCount()) {
      await this.locked(async () => {
        await this.journal.removeTempFiles();
        await this.journal.compact();
      });
    }
    return this;
  }

  /**
   * Under <dir>/handles.lock, kmu11's one lock between processes (../lock.ts). Operations
   * queued behind this one (a parallel batch) take the lock over without releasing it, for at
   * most LEASE_MS (taking a lock file costs ~10 file operations; other processes wait that
   * much longer at most). Every operation still rereads the journal under it.
   */
  protected async locked<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lease) clearTimeout(this.lease.timer);
    else this.lease = await this.takeLock();
    const lease = this.lease;
    lease.depth++;
    try {
      return await fn();
    } finally {
      if (--lease.depth === 0) {
        if (!this.closed && Date.now() - lease.since < LEASE_MS) lease.timer = setTimeout(() => void this.unlock(lease), 5);
        else await this.unlock(lease);
      }
    }
  }

  private async takeLock(): Promise<Lease> {
    let taken!: () => void;
    let release!: () => void;
    const got = new Promise<void>((r) => (taken = r));
    const held = withLock(join(this.dir, 'handles.lock'), () => (taken(), new Promise<void>((r) => (release = r))), {
      timeoutMs: this.opts.lockTimeoutMs ?? 30_000,
    });
    await Promise.race([got, held]);
    this.journal.exclusive = true;
    return { since: Date.now(), depth: 0, release, held };
  }

  protected async unlock(lease: Lease | undefined = this.lease): Promise<void> {
    if (!lease || lease !== this.lease || lease.depth > 0) return;
    clearTimeout(lease.timer);
    this.lease = undefined;
    this.journal.exclusive = false;
    lease.release();
    await lease.held.catch(() => undefined);
  }

  /**
   * One operation at a time per store (they share the session and the caches). What an
   * operation appended is made durable after its turn, outside the queue and the lock, so the
   * appends of operations running meanwhile share one fdatasync (journal.ts sync()); the caller
   * still gets its result only once its entries are on disk.
   */
  protected run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('handle store is closed'));
    let owed = 0;
    this.waiting++;
    const turn = async () => {
      this.waiting--;
      this.owed = 0;
      try {
        return await fn();
      } finally {
        owed = this.owed;
      }
    };
    const p = this.queue.then(turn, turn);
    this.queue = p.catch(() => undefined);
    const durable = () => (owed ? this.journal.sync(owed) : undefined);
    return p.then(
      async (v) => (await durable(), v),
      async (e: unknown) => {
        await durable();
        throw e;
      },
    );
  }

  /**
   * `ours`: made by this process (register). Only then is an object with CKA_TOKEN=false taken
   * for a session object that dies with this process; any other object this process can see
   * is on the token for everyone (SoftHSM even shows CKA_TOKEN=false on the remains of a
   * generation killed half way).
   */
  protected addEntry(h: number, i: ObjInfo, meta: KeyMeta, ours: boolean, partner?: number, g?: string): Entry {
    return {
      ...(g ? { g } : {}),
      t: 'add',
      h,
      cls: i.cls,
      fam: i.fam,
      tok: i.tok,
      sid: ours && !i.tok ? SESSION_INSTANCE : undefined,
      hint: i.hint,
      label: i.label,
      id: i.id.toString('hex'),
      fp: i.fp,
      pm: i.cls === CKO.PRIVATE_KEY ? i.pub : undefined,
      partner,
      owner: meta.owner,
      shared: [...meta.shared],
      mValue: meta.mValue,
      ts: Date.now(),
    };
  }

  /**
   * Appends `entries` to the journal, except what concerns this process's session keys: their
   * records change here, and only their numbers go to the journal (reserved by a snap line).
   * A session key copied to the token (replace) gets its full record in the journal then.
   */
  protected async record(entries: Entry[]): Promise<void> {
    const durable: Entry[] = [];
    let reserve = 0;
    for (const e of entries) {
      const r = 'h' in e ? this.sessionRecs.get(e.h) : undefined;
      if (e.t === 'add' && e.sid === SESSION_INSTANCE) {
        this.sessionRecs.set(e.h, recordOf(e, 0));
        reserve = Math.max(reserve, e.h + 1);
      } else if (!r) durable.push(e);
      else if (e.t === 'rep' && e.tok) {
        durable.push({ ...e, t: 'add', partner: r.partner, g: r.g, ...r.meta });
        this.sessionRecs.delete(e.h);
      } else if (e.t === 'del') r.dead = true;
      else if (e.t === 'meta') r.meta = { owner: e.owner, shared: [...e.shared], mValue: e.mValue };
      else if (e.t === 'hint' || e.t === 'fp' || e.t === 'rep') {
        const { t: _t, h: _h, ...change } = e;
        Object.assign(r, e.t === 'rep' ? { ...change, ts: r.ts } : change);
      }
    }
    if (reserve) durable.push({ t: 'snap', v: 2, next: reserve, ts: Date.now() });
    // Generations settled meanwhile go along (settle() writes them itself if nothing else does).
    const carried = this.doneSoon.splice(0);
    for (const g of carried) durable.push({ t: 'done', g });
    let n: number;
    try {
      n = await this.journal.append(durable);
    } catch (e) {
      this.doneSoon.unshift(...carried);
      throw e;
    }
    // "done" alone is not waited for: the kill -9 contract needs only the write (the page cache
    // outlives the process), and if an OS crash loses it, the intent reads as a killed
    // generation: with records, its handles are kept and reported again; without, there is
    // nothing of it left to roll back (its command rolled back, or made nothing), and recovery
    // destroys only objects with its label and id that no record names, as after a kill -9
    // just before the "done". A later sync of anyone (or close()) makes it durable anyway.
    if (n && durable.some((e) => e.t !== 'done')) this.owed = n;
  }

  /** Records no object matched that may be tombstoned now (see HandleStoreOptions.fullView). */
  protected tombstonable(m: MatchResult): number[] {
    if (!this.opts.fullView?.() || this.scanTrouble) return [];
    const before = Date.now() - (this.opts.tombstoneAfterMs ?? 10_000);
    return m.unmatched.filter((h) => {
      const r = this.rec(h)!;
      return h < this.nextAtScan && r.ts < before && r.sid === undefined && !this.notGone.has(h);
    });
  }

  /**
   * Of the tombstone candidates, those that a second, narrower look confirms gone: no object
   * with the record's class, label and id exists at all (SoftHSM can miss an object in a scan
   * while another process rewrites the token; a key is never declared deleted on one look).
   */
  protected async confirmGone(handles: number[]): Promise<number[]> {
    const gone: number[] = [];
    for (const h of handles) {
      const r = this.rec(h)!;
      if (r.label === undefined || r.id === undefined) continue;
      const found = await this.find([
        { type: CKA.CLASS, value: r.cls },
        { type: CKA.LABEL, value: r.label },
        { type: CKA.ID, value: Buffer.from(r.id, 'hex') },
      ]);
      if (found.length === 0) gone.push(h);
      else this.notGone.add(h);
    }
    return gone;
  }

  /** Records whose key was placed for sure but whose label or id changed (another tool, setAttribute). */
  protected relabelled(m: MatchResult): Entry[] {
    const out: Entry[] = [];
    for (const p of m.byHandle.values()) {
      if (p.ambiguous || p.weak) continue;
      const r = this.rec(p.h)!;
      const i = this.infos.get(p.obj)!;
      if (certain(i) && r.hint !== i.hint) out.push({ t: 'hint', h: p.h, hint: i.hint, label: i.label, id: i.id.toString('hex') });
    }
    return out;
  }

  /** Give handles to keys first seen; tombstone keys gone; note new labels. Under the lock. */
  protected async commit(): Promise<void> {
    // An object that looks half made may be one another process is generating right now:
    // look again a little later before giving it a handle of its own.
    const half = this.result!.newObjects.some((o) => halfMade(this.infos.get(o)!));
    if (half) {
      await sleep(100);
      await this.scan();
      await this.compute();
    }
    await this.locked(async () => {
      await this.journal.refresh();
      let m = await this.compute(); // another process may have just recorded them
      const entries: Entry[] = [];
      let h = this.journal.next;
      for (const obj of m.newObjects) entries.push(this.addEntry(h++, this.infos.get(obj)!, ZERO_META, false));
      for (const d of await this.confirmGone(this.tombstonable(m))) entries.push({ t: 'del', h: d, ts: Date.now() });
      entries.push(...this.relabelled(m));
      await this.record(entries);
      m = await this.compute();
    });
  }

  /**
   * Could a live record already name this object? (Another process may have seen the key
   * between its generation and this register(), and given it a handle.) Only records with the
   * same key material, or weak records of its family and label/id, could.
   */
  protected couldBeRecorded(i: ObjInfo): boolean {
    for (const r of this.liveRecords()) {
      if (r.cls !== i.cls) continue;
      if (i.fp && r.fp === i.fp) return true;
      if ((!r.fp || !i.fp) && r.fam === i.fam && r.hint === i.hint) return true;
    }
    return false;
  }

  /** The journal's record of `handle`, or KmuError 0xa8 saying why it names no key now. */
  protected liveRecord(handle: number): Rec {
    const r = this.rec(handle);
    if (!r) throw invalidHandle(handle, 'unknown');
    if (r.dead) throw invalidHandle(handle, 'deleted');
    if (r.sid !== undefined && r.sid !== SESSION_INSTANCE) throw invalidHandle(handle, 'session key of an ended session (deleted)');
    return r;
  }
}
