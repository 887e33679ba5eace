// The durable handle store for modules whose object handles do not last (SoftHSM and most
// software tokens): kmu handles kept in a journal beside the token, matched to the token's
// objects again in every process by what the objects are (fingerprint.ts, match.ts).
//
// Crash order (kill -9 at any moment leaves journal and token consistent):
//  - generation: an intent is made durable (intend), the token objects are created, their
//    records are made durable (register, tagged with the intent), the handles are printed,
//    then the intent is settled. The next process finds an intent whose process is gone: with
//    records, the keys stay and their handles are reported (they may not have been printed);
//    without, what the generation left (its label and id, no record) is destroyed
//    (recover()). A key made by another process in between gets a handle (owner 0).
//  - deletion: resolve, C_DestroyObject, then the tombstone (remove). A crash in between
//    leaves a record whose key is gone: reported deleted (resolve throws 0xa8), never matched
//    to another key, its number never reused.
//  - session -> token (setAttribute -a 1 -v 1): C_CopyObject(CKA_TOKEN=true), replace(), then
//    C_DestroyObject of the original (or destroy first: both orders work). A crash before
//    replace() is durable leaves the copy without a record (first seen: new handle) and the
//    original dies with the process.
//  - allocation for keys first seen, tombstones and meta changes happen under the lock
//    (../lock.ts), after rereading the journal, so two processes never give one key two handles.
//    A process that lists while another is between generation and register() gives the new
//    key a handle (owner 0); register() then finds that record and adopts it (its handle,
//    the creator's metadata): still one handle.
//
// In each process:
//  - list() and the slow path of resolve() scan: C_FindObjects over the token, one
//    C_GetAttributeValue per object (read afresh by every operation: SoftHSM can renumber
//    objects while other processes change the token), then match (match.ts). Sign-tests only
//    for private keys that matching cannot place; what a test proved is kept while the
//    object's attributes stay the same.
//  - resolve() first tries without a scan: the objects with the record's class, token flag,
//    label and id; one with the record's key material for sure (fingerprint, or a sign-test
//    against the recorded public value), and no other record with that key material, is it.
//  - register() needs no scan unless a record could already name the new objects.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CKA, CKO, CKR, type AttributeValue, type Session } from '../../p11/index.js';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import { describe, fpFor, halfMade, readAttrs, signTest, spkiFor, type ObjInfo } from './fingerprint.js';
import { recordOf, SESSION_INSTANCE, sessionAlive, type Entry, type Intent, type KeyMeta, type Rec } from './journal.js';
import { withLock } from '../lock.js';
import { join } from 'node:path';
import type { MatchResult } from './match.js';
import { certain, TokenView } from './view.js';

export type { KeyMeta } from './journal.js';

export interface CreatedObject {
  object: number;
  meta: KeyMeta;
  /** The other half of a pair generated together, in the same session. */
  partner?: number;
}

export interface HandleStore {
  /** Handles for objects just made by kmu11; durable before it returns; same order. */
  /** `session`: the caller's, where the new objects are read (the store's own when absent). */
  register(created: CreatedObject[], session?: Session): Promise<number[]>;
  /** The PKCS#11 object a handle names. Throws KmuError 0xa8 if unknown, deleted, gone or ambiguous. */
  resolve(handle: number): Promise<number>;
  /** kmu handles for objects C_FindObjects found (unseen keys get new handles), same order. */
  list(objects: number[]): Promise<number[]>;
  /** Owner, shared users, m_value. Throws KmuError 0xa8 for an unknown or deleted handle. */
  meta(handle: number): Promise<KeyMeta>;
  /**
   * A private key's public value: as recorded when kmu11 made the pair, else as the last
   * resolve()/list() learned it (CKA_PUBLIC_KEY_INFO, a sign-test, its one public key with the
   * same family, label and id): the uncompressed EC point, or DSA's y. Undefined when unknown;
   * throws like meta() for an unknown or deleted handle.
   */
  publicValue(handle: number): Promise<Buffer | undefined>;
  /** The key named `handle` is now `newObject` (a copy, e.g. session -> token). */
  replace(handle: number, newObject: number): Promise<void>;
  /** Change owner / shared users / m_value (shareKey, a CO's claim of a key of unknown owner). */
  setMeta(handle: number, meta: KeyMeta): Promise<void>;
  /** Record that the key was destroyed (call after a successful C_DestroyObject). */
  remove(handle: number): Promise<void>;
  /** The key's CKA_LABEL or CKA_ID was changed through this session (after setAttribute). */
  updated(handle: number): Promise<void>;
  /**
   * A generation of token keys labelled `label` (CKA_ID `id`) is about to start: durable before
   * it does, so that if this process is killed part way the next one finishes it (handles kept,
   * and reported) or rolls it back (the objects destroyed). Register tags its records with it.
   */
  intend(what: { label: string; id?: Buffer; meta: KeyMeta }): Promise<void>;
  /**
   * The command's outcome is out (printed, or rolled back): its generations are done. With
   * `delivered`, the warnings taken since were shown too: the killed generations they report are done.
   */
  settle(delivered: boolean): Promise<void>;
  /** Runs one command: the generations it announces (intend) are settled by its own settle(). */
  scope<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * The command could not destroy what it made (its rollback failed): its generations stay
   * announced, never settled by this process, so the next process rolls them back once this
   * one is gone (and not a later listing that would give the leftovers handles unreported).
   */
  unsettled(): void;
  /**
   * Finish or roll back generations whose process was killed before their outcome was shown
   * (the session calls it before each command; needs a full view, else does nothing).
   */
  recover(): Promise<void>;
  /** What a recovery did, for the operator (stderr, --json warnings). Drained on read. */
  takeWarnings(): string[];
  close(): Promise<void>;
}

/** What a handle is now, as seen by this process (diagnostics and tests). */
export type HandleState = 'live' | 'ambiguous' | 'missing' | 'deleted' | 'unknown';

export interface HandleStoreOptions {
  /** First handle number when the store is created (default 262145, kmu-like). */
  firstHandle?: number;
  /**
   * True while the session sees every object on the token (a user is logged in). Then keys
   * that other tools deleted get a tombstone once they have been gone from a full scan.
   * Without it they are simply never matched again (reported deleted) and stay in the journal.
   */
  fullView?: () => boolean;
  /** Wait at most this long for another process's allocation (default 30 s). */
  lockTimeoutMs?: number;
  /** Tombstone foreign deletions only for records older than this (default 10 s). */
  tombstoneAfterMs?: number;
  /** The token reports CKA_UNIQUE_ID (PKCS#11 3.0): objects are identified by it. */
  uniqueId?: boolean;
  /** Compact the journal at open when it has more lines than this and twice the live records (default 4096). */
  compactLines?: number;
}

const ZERO_META: KeyMeta = { owner: 0, shared: [], mValue: 0 };
export { SESSION_INSTANCE } from './journal.js';

export function invalidHandle(handle: number, why: string): KmuError {
  return new KmuError(RC.INVALID_HANDLE, { detail: `key handle ${handle}: ${why}` });
}

export class FileHandleStore extends TokenView implements HandleStore {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** What resolve() last returned for a handle (remove() and replace() drop it from the caches). */
  private readonly resolved = new Map<number, number>();
  /** Tombstone candidates a narrower look found still present (not asked again). */
  private readonly notGone = new Set<number>();
  /**
   * This process's generations announced and not yet settled; register() tags with the last.
   * Per command: scope() gives each command running at once (kmu11 --parallel) its own list.
   */
  private readonly mine: string[] = [];
  private readonly scopes = new AsyncLocalStorage<string[]>();
  /** Killed generations finished here, done once the warnings reporting them are shown. */
  private readonly recovered: string[] = [];
  private warnings: string[] = [];
  /** The last append of the running operation that must be durable before it returns (run()). */
  private owed = 0;

  constructor(
    readonly dir: string,
    session: Session,
    opts: HandleStoreOptions = {},
  ) {
    super(dir, session, opts);
  }

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

  /** Under <dir>/handles.lock, kmu11's one lock between processes (../lock.ts). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, 'handles.lock'), fn, { timeoutMs: this.opts.lockTimeoutMs ?? 30_000 });
  }

  /**
   * One operation at a time per store (they share the session and the caches). What an
   * operation appended is made durable after its turn, outside the queue and the lock, so the
   * appends of operations running meanwhile share one fdatasync (journal.ts sync()); the caller
   * still gets its result only once its entries are on disk.
   */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('handle store is closed'));
    let owed = 0;
    const turn = async () => {
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

  // ---- journal side ---------------------------------------------------------------------

  /**
   * `ours`: made by this process (register). Only then is an object with CKA_TOKEN=false taken
   * for a session object that dies with this process; any other object this process can see
   * is on the token for everyone (SoftHSM even shows CKA_TOKEN=false on the remains of a
   * generation killed half way).
   */
  private addEntry(h: number, i: ObjInfo, meta: KeyMeta, ours: boolean, partner?: number, g?: string): Entry {
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
  private async record(entries: Entry[]): Promise<void> {
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
    const n = await this.journal.append(durable);
    // "done" alone is not waited for: the kill -9 contract needs only the write (the page cache
    // outlives the process), and if an OS crash loses it, the intent reads as a killed
    // generation: with records, its handles are kept and reported again; without, there is
    // nothing of it left to roll back (its command rolled back, or made nothing), and recovery
    // destroys only objects with its label and id that no record names, as after a kill -9
    // just before the "done". A later sync of anyone
    // (or close()) makes it durable anyway.
    if (n && durable.some((e) => e.t !== 'done')) this.owed = n;
  }

  /** Records no object matched that may be tombstoned now (see HandleStoreOptions.fullView). */
  private tombstonable(m: MatchResult): number[] {
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
  private async confirmGone(handles: number[]): Promise<number[]> {
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
  private relabelled(m: MatchResult): Entry[] {
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
  private async commit(): Promise<void> {
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

  // ---- the interface --------------------------------------------------------------------

  /**
   * Could a live record already name this object? (Another process may have seen the key
   * between its generation and this register(), and given it a handle.) Only records with the
   * same key material, or weak records of its family and label/id, could.
   */
  private couldBeRecorded(i: ObjInfo): boolean {
    for (const r of this.liveRecords()) {
      if (r.cls !== i.cls) continue;
      if (i.fp && r.fp === i.fp) return true;
      if ((!r.fp || !i.fp) && r.fam === i.fam && r.hint === i.hint) return true;
    }
    return false;
  }

  async register(created: CreatedObject[], session?: Session): Promise<number[]> {
    const want = new Set<number>();
    for (const c of created) {
      want.add(c.object);
      if (c.partner !== undefined) want.add(c.partner);
    }
    // The new objects' attributes are read, and a generated private key told its public key,
    // on the caller's own session before the store's turn: commands running at once (a
    // parallel batch) then wait for each other only for the journal.
    const early = await this.readNew(session ?? this.session, created, want);
    return this.run(async () => {
      return this.locked(async () => {
        await this.journal.refresh();
        for (const obj of want) {
          const pre = early.get(obj);
          if (pre) this.remember(obj, pre);
          else if (!(await this.readSettled(obj))) throw new Error(`kmu11: object ${obj} to register is not on the token`);
        }
        // The public value of a generated private key is its partner's (readNew told the key
        // itself where the token lets it; a token that refuses keeps the recorded value).
        for (const c of created) {
          const i = this.infos.get(c.object)!;
          const p = c.partner !== undefined ? this.infos.get(c.partner) : undefined;
          if (i.cls === CKO.PRIVATE_KEY && p?.cls === CKO.PUBLIC_KEY && p.pub && p.fam === i.fam && i.fpSrc !== 'attr') {
            i.pub = p.pub;
            i.fp = fpFor(i, p.pub);
            i.fpSrc = 'gen';
            i.tested = true;
            this.facts++;
          }
        }
        // Usually nothing can name the new objects yet, and no scan is needed; otherwise match
        // them against the whole token first and adopt what is there.
        let m: MatchResult | undefined;
        if (created.some((c) => this.couldBeRecorded(this.infos.get(c.object)!))) {
          await this.scan();
          for (const obj of want) if (!this.current.includes(obj)) this.current.push(obj);
          m = await this.compute();
        }
        const entries: Entry[] = [];
        const handles: number[] = [];
        let next = this.journal.next;
        const byObj = new Map<number, number>();
        for (const c of created) {
          const p = m?.byObj.get(c.object);
          const h = p && !p.ambiguous ? p.h : next++;
          handles.push(h);
          byObj.set(c.object, h);
        }
        for (let k = 0; k < created.length; k++) {
          const c = created[k]!;
          const h = handles[k]!;
          const i = this.infos.get(c.object)!;
          const partner = c.partner !== undefined ? (byObj.get(c.partner) ?? m?.byObj.get(c.partner)?.h) : undefined;
          const existing = this.rec(h);
          if (!existing) {
            entries.push(this.addEntry(h, i, c.meta, true, partner, this.mineNow().at(-1)));
          } else {
            // Another process saw the key between its generation and now, and gave it this
            // handle (owner 0): adopt it, with the creator's metadata.
            entries.push({ t: 'meta', h, owner: c.meta.owner, shared: [...c.meta.shared], mValue: c.meta.mValue });
            if (!existing.fp && i.fp && certain(i)) entries.push({ t: 'fp', h, fp: i.fp, pm: i.cls === CKO.PRIVATE_KEY ? i.pub : undefined });
          }
        }
        await this.record(entries);
        if (m) await this.compute();
        created.forEach((c, k) => this.resolved.set(handles[k]!, c.object));
        return handles;
      });
    });
  }

  /**
   * register()'s token reads on the caller's session, each new object read once: a pair's
   * public half first, then the private half in one C_GetAttributeValue (its kind is known
   * from the partner), then CKA_PUBLIC_KEY_INFO written on it from the partner's public value
   * — the key says which public key it has from now on, to every process and tool — and taken
   * as written, not read back. What cannot be read here is read in the store's turn instead.
   * (All reads of new objects happen here: one place for a native "generate and read" job.)
   */
  private async readNew(session: Session, created: CreatedObject[], want: Set<number>): Promise<Map<number, ObjInfo>> {
    const out = new Map<number, ObjInfo>();
    const raw = new Map<number, Map<number, AttributeValue>>();
    const partnerOf = new Map(created.filter((c) => c.partner !== undefined).map((c) => [c.object, c.partner!]));
    const readOne = async (obj: number, kind?: { cls: number; kt: number }) => {
      const attrs = await readAttrs(session, obj, this.opts.uniqueId, kind).catch(() => undefined);
      const i = attrs && describe(obj, attrs);
      if (!i || halfMade(i)) return undefined;
      raw.set(obj, attrs);
      out.set(obj, i);
      return i;
    };
    for (const obj of want) {
      if (out.has(obj)) continue;
      const i = await readOne(obj);
      const other = partnerOf.get(obj);
      if (!i || other === undefined || !want.has(other) || out.has(other)) continue;
      const isPub = i.cls === CKO.PUBLIC_KEY;
      const p = await readOne(other, { cls: isPub ? CKO.PRIVATE_KEY : CKO.PUBLIC_KEY, kt: i.kt });
      const [pub, priv] = isPub ? [i, p] : [p, i];
      if (!pub || !priv || pub.cls !== CKO.PUBLIC_KEY || priv.cls !== CKO.PRIVATE_KEY || !pub.pub || pub.fam !== priv.fam || priv.fpSrc === 'attr') continue;
      const spki = spkiFor(priv, pub.pub);
      if (!spki || !(await session.setAttributes(priv.obj, [{ type: CKA.PUBLIC_KEY_INFO, value: spki }]).then(() => true, () => false))) continue;
      raw.get(priv.obj)!.set(CKA.PUBLIC_KEY_INFO, spki);
      out.set(priv.obj, describe(priv.obj, raw.get(priv.obj)!));
    }
    return out;
  }

  /**
   * resolve() without a scan of the whole token: the objects with the record's class, token
   * flag, label and id, one of which has the record's key material for sure (fingerprint, or a
   * sign-test against the recorded public value), when no other live record has that key
   * material. Undefined when that does not settle it.
   */
  private async resolveFast(r: Rec): Promise<number | undefined> {
    if (r.label === undefined || r.id === undefined || !r.fp) return undefined;
    for (const o of this.liveRecords()) if (o !== r && o.cls === r.cls && o.fp === r.fp) return undefined;
    const found = await this.find([
      { type: CKA.CLASS, value: r.cls },
      { type: CKA.TOKEN, value: r.tok },
      { type: CKA.LABEL, value: r.label },
      { type: CKA.ID, value: Buffer.from(r.id, 'hex') },
    ]);
    let hit: number | undefined;
    for (const obj of found) {
      const i = await this.read(obj);
      if (!i || i.fam !== r.fam) continue;
      if (this.retired.get(obj)?.readHash === i.readHash) continue;
      if (!certain(i) && !i.tested && i.canSign && r.pm && !i.excluded.has(r.fp)) {
        const res = await signTest(this.session, i, [r.pm]);
        this.signTests++;
        if (res) {
          i.pub = res;
          i.fp = fpFor(i, res);
          i.fpSrc = 'sig';
          i.tested = true;
        } else if (res === null) {
          // Not this key; the test against every candidate is still to come in a full match.
          i.excluded.add(r.fp);
          if (i.fp === r.fp) Object.assign(i, { fp: undefined, pub: undefined, fpSrc: undefined });
        }
        this.facts++;
      }
      if (i.fp === r.fp && certain(i)) {
        if (hit !== undefined) return undefined;
        hit = obj;
      }
    }
    return hit;
  }

  /** The journal's record of `handle`, or KmuError 0xa8 saying why it names no key now. */
  private liveRecord(handle: number): Rec {
    const r = this.rec(handle);
    if (!r) throw invalidHandle(handle, 'unknown');
    if (r.dead) throw invalidHandle(handle, 'deleted');
    if (r.sid !== undefined && r.sid !== SESSION_INSTANCE) throw invalidHandle(handle, 'session key of an ended session (deleted)');
    return r;
  }

  resolve(handle: number): Promise<number> {
    return this.run(async () => {
      await this.journal.refresh();
      const rec = this.liveRecord(handle);
      const fast = await this.resolveFast(rec);
      if (fast !== undefined) {
        this.resolved.set(handle, fast);
        return fast;
      }
      for (let attempt = 0; ; attempt++) {
        await this.sync();
        this.liveRecord(handle);
        const p = this.result!.byHandle.get(handle);
        if (!p && this.scanTrouble && attempt < 3) {
          await sleep(20 * (attempt + 1));
          continue;
        }
        if (!p) throw invalidHandle(handle, 'key not on the token (deleted)');
        if (p.ambiguous) throw invalidHandle(handle, 'ambiguous: several keys on the token fit this handle');
        const i = this.infos.get(p.obj)!;
        // A private key placed by pairing alone is confirmed before anything acts on it.
        if (i.fpSrc === 'pair' && i.canSign && !i.tested && attempt < 3) {
          const res = await signTest(this.session, i, [i.pub!]);
          this.signTests++;
          if (res !== undefined) i.tested = true;
          if (res === null) {
            i.excluded.add(i.fp!);
            i.fp = undefined;
            i.pub = undefined;
            i.fpSrc = undefined;
            this.facts++;
            continue;
          }
          if (res) i.fpSrc = 'sig';
          this.facts++;
        }
        this.resolved.set(handle, p.obj);
        return p.obj;
      }
    });
  }

  /**
   * list() without a scan of the whole token, when the journal already knows the objects (or
   * they are plainly new): each object read once; a private key known only by its family,
   * label and id brings in the objects of its label and id (two C_FindObjects) so that it is
   * paired as a full scan would pair it. Every object must come out placed for sure (equal
   * key material and label/id: what a full match would say too) or new for sure (certain key
   * material no record could name); anything else, undefined: the full scan decides.
   */
  private async listFast(objects: number[]): Promise<number[] | undefined> {
    await this.journal.refresh();
    const view = new Set<number>();
    const look = async (obj: number) => {
      if (view.has(obj)) return true;
      const i = this.retired.has(obj) ? undefined : await this.read(obj);
      if (!i || halfMade(i)) return false;
      view.add(obj);
      return true;
    };
    for (const obj of objects) if (!(await look(obj))) return undefined;
    // Keys known only by family, label and id: every object of their class, label and id
    // (and a private key's public keys) joins the view, so they pair as in a full scan.
    const complete = new Set<string>();
    for (const obj of objects) {
      const i = this.infos.get(obj)!;
      const bucket = `${i.cls}\n${i.label}\n${i.id.toString('hex')}`;
      if (certain(i) || complete.has(bucket)) continue;
      complete.add(bucket);
      for (const cls of i.cls === CKO.PRIVATE_KEY ? [CKO.PRIVATE_KEY, CKO.PUBLIC_KEY] : [i.cls]) {
        const found = await this.find([{ type: CKA.CLASS, value: cls }, { type: CKA.LABEL, value: i.label }, { type: CKA.ID, value: i.id }]);
        for (const o of found) if (!(await look(o))) return undefined;
      }
    }
    this.current = [...view];
    const m = await this.compute(false);
    // A pairing on label and id alone (weak) stands as a full scan would make it when the view
    // holds the whole bucket and nothing in it, object or record, has known key material.
    const bucketOf = (x: { cls: number; tok: boolean; fam: string; hint: string }) => `${x.cls}|${x.tok}|${x.fam}|${x.hint}`;
    const withFp = new Set<string>();
    for (const r of this.liveRecords()) if (r.fp) withFp.add(bucketOf(r));
    for (const o of view) if (this.infos.get(o)!.fp) withFp.add(bucketOf(this.infos.get(o)!));
    const weakOk = (i: ObjInfo) => complete.has(`${i.cls}\n${i.label}\n${i.id.toString('hex')}`) && !withFp.has(bucketOf(i));
    const fresh: ObjInfo[] = [];
    const out: Array<number | ObjInfo> = [];
    for (const obj of objects) {
      const i = this.infos.get(obj)!;
      const p = m.byObj.get(obj);
      if (p && !p.ambiguous && (!p.weak || weakOk(i)) && this.rec(p.h)?.hint === i.hint) out.push(p.h);
      else if (!p && i.fp && (certain(i) || i.fpSrc === 'pair') && !this.couldBeRecorded(i)) fresh.push(i), out.push(i);
      else return undefined;
    }
    for (const i of fresh) {
      // First seen and placed by pairing alone: confirmed by one signature, as a full look would.
      if (i.fpSrc !== 'pair' || !i.canSign || i.tested) continue;
      const res = await signTest(this.session, i, [i.pub!]);
      this.signTests++;
      if (res === null) {
        // Not that public key's: the full look tests it against the others.
        i.excluded.add(i.fp!);
        Object.assign(i, { fp: undefined, pub: undefined, fpSrc: undefined });
        this.facts++;
        return undefined;
      }
      i.tested = true;
      if (res) i.fpSrc = 'sig';
    }
    if (fresh.length) {
      const ok = await this.locked(async () => {
        await this.journal.refresh();
        if (fresh.some((i) => this.couldBeRecorded(i))) return false;
        let h = this.journal.next;
        const entries = fresh.map((i) => this.addEntry(h++, i, ZERO_META, false));
        await this.record(entries);
        entries.forEach((e, k) => out.splice(out.indexOf(fresh[k]!), 1, (e as { h: number }).h));
        return true;
      });
      if (!ok) return undefined;
    }
    return out as number[];
  }

  list(objects: number[]): Promise<number[]> {
    return this.run(async () => {
      const fast = await this.listFast(objects);
      if (fast) return fast;
      let m: MatchResult;
      for (let attempt = 0; ; attempt++) {
        await this.sync();
        const cur = new Set(this.current);
        let added = false;
        let lost: number | undefined;
        for (const obj of objects) {
          if (this.retired.has(obj) || cur.has(obj)) continue;
          if (!(await this.read(obj))) {
            lost = obj;
            break;
          }
          this.current.push(obj);
          cur.add(obj);
          added = true;
        }
        if (lost !== undefined) {
          // Gone since the caller's C_FindObjects, or renumbered while another process
          // changed the token: look again, then give up.
          if (attempt < 2) {
            await sleep(20 * (attempt + 1));
            continue;
          }
          throw new Error(`kmu11: object ${lost} is no longer on the token`);
        }
        m = added ? await this.compute() : this.result!;
        break;
      }
      if (m.newObjects.length || this.tombstonable(m).length || this.relabelled(m).length) {
        await this.commit();
        m = this.result!;
      }
      return objects.map((obj) => {
        const h = this.retired.get(obj)?.h ?? m.byObj.get(obj)?.h;
        if (h === undefined) throw new Error(`kmu11: no handle for object ${obj}`);
        return h;
      });
    });
  }

  meta(handle: number): Promise<KeyMeta> {
    return this.run(async () => {
      await this.journal.refresh();
      const r = this.liveRecord(handle);
      return { owner: r.meta.owner, shared: [...r.meta.shared], mValue: r.meta.mValue };
    });
  }

  publicValue(handle: number): Promise<Buffer | undefined> {
    return this.run(async () => {
      await this.journal.refresh();
      const r = this.liveRecord(handle);
      if (r.cls !== CKO.PRIVATE_KEY) return undefined;
      if (r.pm) return Buffer.from(r.pm, 'hex');
      // Else what this operation learned of the key (its CKA_PUBLIC_KEY_INFO, a sign-test, or
      // the one public key with its family, label and id).
      const obj = this.resolved.get(handle) ?? this.result?.byHandle.get(handle)?.obj;
      const i = obj !== undefined ? this.infos.get(obj) : undefined;
      return i?.pub && (certain(i) || i.fpSrc === 'pair') ? Buffer.from(i.pub, 'hex') : undefined;
    });
  }

  /**
   * The key's CKA_LABEL or CKA_ID was just changed through this session (setAttribute): record
   * the new ones, so that later processes find it by them at once. (Without this call they
   * still find it, by its key material, except a private key that nothing identifies but its
   * label and id: see fingerprint.ts.)
   */
  updated(handle: number): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        await this.journal.refresh();
        const r = this.rec(handle);
        const obj = this.resolved.get(handle);
        if (!r || r.dead || obj === undefined) return;
        const i = await this.read(obj);
        if (!i || i.cls !== r.cls || i.fam !== r.fam || (i.fpSrc === 'attr' && r.fp !== undefined && i.fp !== r.fp)) return;
        if (i.hint !== r.hint) await this.record([{ t: 'hint', h: handle, hint: i.hint, label: i.label, id: i.id.toString('hex') }]);
      }),
    );
  }

  intend(what: { label: string; id?: Buffer; meta: KeyMeta }): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        const g = randomBytes(8).toString('hex');
        const { owner, shared, mValue } = what.meta;
        const id = (what.id ?? Buffer.alloc(0)).toString('hex');
        await this.record([{ t: 'intent', g, sid: SESSION_INSTANCE, label: what.label, id, owner, shared: [...shared], mValue, ts: Date.now() }]);
        this.mineNow().push(g);
      }),
    );
  }

  /** The generations of the command running in this async context (see scope()). */
  private mineNow(): string[] {
    return this.scopes.getStore() ?? this.mine;
  }

  scope<T>(fn: () => Promise<T>): Promise<T> {
    return this.scopes.run([], fn);
  }

  unsettled(): void {
    this.mineNow().length = 0;
  }

  settle(delivered: boolean): Promise<void> {
    const mine = this.mineNow();
    const done = [...mine, ...(delivered && this.warnings.length === 0 ? this.recovered : [])];
    if (done.length === 0) return Promise.resolve();
    return this.run(() =>
      this.locked(async () => {
        await this.record(done.map((g): Entry => ({ t: 'done', g })));
        for (const list of [mine, this.recovered]) list.splice(0, list.length, ...list.filter((g) => !done.includes(g)));
      }),
    );
  }

  takeWarnings(): string[] {
    const w = this.warnings;
    this.warnings = [];
    return w;
  }

  /**
   * Generations whose process was killed before their outcome was printed (an intent without
   * "done", its process gone). Those that recorded handles are finished: the handles stay, and
   * the operator is told them (they may never have been printed). Those that recorded none are
   * rolled back: the objects they left (their label and id, no handle; and unreadable remains)
   * are destroyed. Only with a full view (logged in), under the lock; objects that could also
   * be a live process's generation in progress are left for a later look.
   */
  recover(): Promise<void> {
    return this.run(async () => {
      await this.journal.refresh();
      await this.recoverKilled();
    });
  }

  private async recoverKilled(): Promise<void> {
    const dead = () =>
      [...this.journal.intents.values()].filter(
        (t) => !this.mine.includes(t.g) && !this.recovered.includes(t.g) && t.sid !== SESSION_INSTANCE && !sessionAlive(t.sid),
      );
    if (!this.opts.fullView?.() || dead().length === 0) return;
    await this.locked(async () => {
      await this.journal.refresh();
      const intents = dead();
      if (intents.length === 0) return;
      await this.scan();
      const m = await this.compute();
      const live = [...this.journal.intents.values()].filter((t) => !intents.includes(t));
      const orphans = m.newObjects.map((o) => this.infos.get(o)!);
      const fits = (i: ObjInfo, t: Intent) =>
        (i.cls === CKO.PUBLIC_KEY || i.cls === CKO.PRIVATE_KEY) && i.label === t.label && i.id.toString('hex') === t.id;
      const pid = (t: Intent) => t.sid.split('-')[0];
      const entries: Entry[] = [];
      const destroyed: number[] = [];
      let next = this.journal.next;
      let rolledBack = false;
      for (const t of intents) {
        const left = orphans.filter((i) => fits(i, t));
        if (left.some((i) => live.some((l) => fits(i, l)))) continue;
        const recs = this.liveRecords().filter((r) => r.g === t.g);
        if (recs.length > 0) {
          // Finished: a record torn off the same append is adopted with the generation's owner.
          const handles = recs.map((r) => r.h);
          for (const i of left) {
            entries.push(this.addEntry(next, i, t.meta, false, undefined, t.g));
            handles.push(next++);
          }
          this.warnings.push(
            `kmu11: a kmu11 process (pid ${pid(t)}) was killed while making keys labelled ${JSON.stringify(t.label)}; ` +
              `they are kept: key handle${handles.length > 1 ? 's' : ''} ${handles.sort((a, b) => a - b).join(', ')}`,
          );
          // Done once this report is shown (settle): a process killed before that reports it again.
          this.recovered.push(t.g);
          continue;
        }
        const gone = await this.destroyAll(left.map((i) => i.obj));
        destroyed.push(...gone);
        if (gone.length < left.length) continue;
        rolledBack = true;
        if (left.length)
          this.warnings.push(
            `kmu11: a kmu11 process (pid ${pid(t)}) was killed while making keys labelled ${JSON.stringify(t.label)}; ` +
              `the ${left.length} object${left.length > 1 ? 's' : ''} it left ${left.length > 1 ? 'were' : 'was'} destroyed`,
          );
        entries.push({ t: 'done', g: t.g });
      }
      // Unreadable or malformed remains of a generation killed inside C_GenerateKeyPair.
      if (rolledBack && live.length === 0) {
        const junk = orphans.filter((i) => halfMade(i) && !destroyed.includes(i.obj));
        destroyed.push(...(await this.destroyAll(junk.map((i) => i.obj))));
      }
      await this.record(entries);
      this.current = this.current.filter((o) => !destroyed.includes(o));
      for (const o of destroyed) this.infos.delete(o);
      this.facts++;
    });
  }

  /** Destroys what it can; returns those destroyed. */
  private async destroyAll(objects: number[]): Promise<number[]> {
    const done: number[] = [];
    for (const o of objects) {
      try {
        await this.session.destroyObject(o);
        done.push(o);
      } catch (e) {
        if ((e as { code?: unknown }).code === CKR.OBJECT_HANDLE_INVALID) done.push(o);
      }
    }
    return done;
  }

  /** Change owner / shared users / m_value (sharing, quorum). */
  setMeta(handle: number, meta: KeyMeta): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        await this.journal.refresh();
        const r = this.rec(handle);
        if (!r || r.dead) throw invalidHandle(handle, r ? 'deleted' : 'unknown');
        await this.record([{ t: 'meta', h: handle, owner: meta.owner, shared: [...meta.shared], mValue: meta.mValue }]);
      }),
    );
  }

  replace(handle: number, newObject: number): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        await this.journal.refresh();
        const r = this.liveRecord(handle);
        let old = this.resolved.get(handle);
        if (old === undefined) {
          await this.scan();
          old = (await this.compute()).byHandle.get(handle)?.obj;
        }
        const i = await this.readSettled(newObject);
        if (!i) throw new Error(`kmu11: object ${newObject} is not on the token`);
        if (i.cls === CKO.PRIVATE_KEY && i.fpSrc !== 'attr' && r.fp && r.cls === i.cls && r.fam === i.fam) {
          // A copy holds the same key: its public value is the original's.
          i.fp = r.fp;
          i.pub = r.pm;
          i.fpSrc = 'record';
        }
        await this.record([
          {
            t: 'rep',
            h: handle,
            cls: i.cls,
            fam: i.fam,
            tok: i.tok,
            sid: i.tok ? undefined : SESSION_INSTANCE, // a copy this process just made
            hint: i.hint,
            label: i.label,
            id: i.id.toString('hex'),
            fp: i.fp ?? r.fp,
            pm: i.cls === CKO.PRIVATE_KEY ? (i.pub ?? r.pm) : undefined,
            ts: Date.now(),
          },
        ]);
        if (old !== undefined && old !== newObject) {
          this.retired.set(old, { h: handle, readHash: this.infos.get(old)?.readHash ?? (await this.read(old))?.readHash ?? '' });
          this.current = this.current.filter((o) => o !== old);
        }
        this.resolved.set(handle, newObject);
        if (!this.current.includes(newObject)) this.current.push(newObject);
        this.facts++;
        await this.compute();
      }),
    );
  }

  remove(handle: number): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        await this.journal.refresh();
        const r = this.rec(handle);
        if (!r) throw invalidHandle(handle, 'unknown');
        const obj = this.resolved.get(handle) ?? this.result?.byHandle.get(handle)?.obj;
        this.resolved.delete(handle);
        if (!r.dead) await this.record([{ t: 'del', h: handle, ts: Date.now() }]);
        if (obj !== undefined) {
          this.current = this.current.filter((o) => o !== obj);
          this.infos.delete(obj);
        }
        for (const [o, x] of this.retired) if (x.h === handle) this.retired.delete(o);
      }),
    );
  }

  /** Every handle not tombstoned (token keys, and this process's session keys). */
  handles(): Promise<number[]> {
    return this.run(async () => {
      await this.journal.refresh();
      return this.liveRecords().map((r) => r.h).sort((a, b) => a - b);
    });
  }

  /** What `handle` names for this process now. */
  async state(handle: number): Promise<HandleState> {
    return (await this.states([handle])).get(handle)!;
  }

  /** state() of many handles (default: every handle ever recorded), after one scan. */
  states(handles?: number[]): Promise<Map<number, HandleState>> {
    return this.run(async () => {
      await this.sync();
      const out = new Map<number, HandleState>();
      for (const handle of handles ?? [...this.journal.records.keys(), ...this.sessionRecs.keys()]) {
        const r = this.rec(handle);
        const p = this.result!.byHandle.get(handle);
        out.set(
          handle,
          !r ? 'unknown'
          : r.dead || (r.sid !== undefined && r.sid !== SESSION_INSTANCE) ? 'deleted'
          : !p ? 'missing'
          : p.ambiguous ? 'ambiguous'
          : 'live',
        );
      }
      return out;
    });
  }

  close(): Promise<void> {
    return this.run(async () => {
      this.closed = true;
      await this.journal.close();
    });
  }
}

/** Open (creating if needed) the handle store in `dir` for the token `session` is on. */
export async function openHandleStore(dir: string, session: Session, opts: HandleStoreOptions = {}): Promise<FileHandleStore> {
  return new FileHandleStore(dir, session, opts).open();
}
