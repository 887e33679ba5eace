// The handle store (README "Key handles"): kmu handles kept in a journal beside the token and
// matched to its objects again in every process by what they are. Crash order, kill -9 at any
// moment leaving journal and token consistent: generations in generations.ts; deletion is
// resolve, C_DestroyObject, remove() (in between, the handle names a key gone: deleted);
// session -> token is C_CopyObject, replace() (a copy without a record is seen as new).
// resolve() and list() look near the objects concerned first (the objects of their label and
// id); the whole token is read and matched only when that look leaves doubt.
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidHandle } from '../../kmu/errors.js';
import { CKA, CKO, type Session } from '../../p11/index.js';
import { halfMade, type ObjInfo } from './fingerprint.js';
import { Generations } from './generations.js';
import { SESSION_INSTANCE, type KeyMeta, type Rec } from './journal.js';
import { ZERO_META, type HandleStoreOptions } from './ledger.js';
import { reconcile, type Match, type Pairing } from './reconcile.js';

export type { CreatedObject } from './generations.js';
export type { KeyMeta } from './journal.js';
export type { HandleStoreOptions } from './ledger.js';

/** What commands and the session use of the store. */
export type HandleStore = Pick<
  FileHandleStore,
  'register' | 'registerReads' | 'resolve' | 'list' | 'meta' | 'publicValue' | 'replace' | 'setMeta' | 'remove' | 'updated' | 'intend' | 'settle' | 'scope' | 'unsettled' | 'recover' | 'takeWarnings' | 'close'
>;

const bucket = (x: Pick<Rec, 'cls' | 'tok' | 'fam' | 'hint'>) => `${x.cls}|${x.tok}|${x.fam}|${x.hint}`;
/** Past this many C_FindObjects (each a pass over the token in the module), one scan is cheaper. */
const NEAR_FINDS = 32;
/** A look near some objects; `complete`: the hints whose every object is in view. */
type Near = { m: Match; complete: Set<string>; withFp?: Set<string> };

export class FileHandleStore extends Generations {
  /**
   * `objects` and, for those without key material of their own, every object of their label
   * and id, reconciled with the records that could pair with them. Undefined when one is gone
   * or half made (a whole-token look decides then).
   */
  private async near(objects: number[], complete = new Set<string>()): Promise<Near | undefined> {
    const view = new Map<number, ObjInfo>();
    const look = async (obj: number) => {
      const i = view.get(obj) ?? (await this.read(obj));
      if (i && !halfMade(i)) return view.set(obj, i).get(obj);
    };
    for (const obj of objects) {
      const i = await look(obj);
      if (!i) return undefined;
      if (i.fp || complete.has(i.hint)) continue;
      if (complete.size >= NEAR_FINDS) return undefined;
      complete.add(i.hint);
      for (const o of await this.find([{ type: CKA.LABEL, value: i.label }, { type: CKA.ID, value: i.id }])) if (!(await look(o))) return undefined;
    }
    const objs = [...view.values()];
    const [fps, hints] = [new Set(objs.map((o) => o.fp)), new Set(objs.map((o) => o.hint))];
    const records = this.liveRecords().filter((r) => hints.has(r.hint) || (r.fp !== undefined && fps.has(r.fp)));
    return { m: await reconcile(objs, records), complete };
  }

  /**
   * Would a whole-token match make this pairing too? Equal key material and hint; or (weak) a
   * bucket wholly in view in which nothing, object or record, has key material (a record that
   * has some could take an object elsewhere).
   */
  private sure(p: Pairing | undefined, near: Near): p is Pairing {
    const i = p && near.m.info.get(p.obj)!;
    if (!p || !i || p.ambiguous || this.rec(p.h)!.hint !== i.hint) return false;
    if (!p.weak) return true;
    near.withFp ??= new Set([...this.liveRecords(), ...near.m.info.values()].filter((x) => x.fp).map(bucket));
    return near.complete.has(i.hint) && !near.withFp.has(bucket(i));
  }

  /** The PKCS#11 object a handle names. Throws KmuError 0xa8 if unknown, deleted, gone or ambiguous. */
  resolve(handle: number): Promise<number> {
    return this.run(async () => {
      const r = this.liveRecord(handle);
      let i: ObjInfo | undefined;
      if (r.label !== undefined && r.id !== undefined) {
        // A private key may need its public half in view (reconcile.ts lends); others only their class.
        const kind = r.cls === CKO.PRIVATE_KEY ? [] : [{ type: CKA.CLASS, value: r.cls }, { type: CKA.TOKEN, value: r.tok }];
        const near = await this.near(await this.find([...kind, { type: CKA.LABEL, value: r.label }, { type: CKA.ID, value: Buffer.from(r.id, 'hex') }]), new Set([r.hint]));
        const p = near?.m.byHandle.get(handle);
        if (near && this.sure(p, near)) i = near.m.info.get(p.obj);
      }
      for (let attempt = 0; !i; attempt++) {
        const { m, trouble } = (await this.scan())!;
        this.liveRecord(handle);
        const p = m.byHandle.get(handle);
        if (!p && trouble && attempt < 3) await sleep(20 * (attempt + 1));
        else if (!p) throw invalidHandle(handle, 'key not on the token (deleted)');
        else if (p.ambiguous) throw invalidHandle(handle, 'ambiguous: several keys on the token fit it, and neither CKA_PUBLIC_KEY_INFO nor a public half of their own tells them apart');
        else i = m.info.get(p.obj);
      }
      this.resolved.set(handle, i);
      return i.obj;
    });
  }

  /** kmu handles for objects C_FindObjects found (unseen keys get new handles), same order. */
  list(objects: number[]): Promise<number[]> {
    return this.run(async () => (await this.listNear(objects)) ?? (await this.listAll(objects)));
  }

  /** list() near the objects: each placed for sure, or new for sure (no record could name it). */
  private async listNear(objects: number[]): Promise<number[] | undefined> {
    const near = await this.near(objects);
    if (!near) return undefined;
    const handles = new Map<number, number>();
    const fresh = new Set<ObjInfo>();
    for (const obj of objects) {
      const [p, i] = [near.m.byObj.get(obj), near.m.info.get(obj)!];
      if (this.sure(p, near)) handles.set(obj, p.h);
      else if (p || this.couldBeRecorded(i)) return undefined;
      else fresh.add(i);
    }
    const added = async () => {
      if ([...fresh].some((i) => this.couldBeRecorded(i))) return false;
      let h = this.journal.next;
      for (const i of fresh) handles.set(i.obj, h++);
      await this.record([...fresh].map((i) => this.addEntry(handles.get(i.obj)!, i, ZERO_META, false)));
      return true;
    };
    return !fresh.size || (await this.locked(added)) ? objects.map((obj) => handles.get(obj)!) : undefined;
  }

  private async listAll(objects: number[]): Promise<number[]> {
    for (let attempt = 0; ; attempt++) {
      const scan = await this.scan(objects);
      if (scan) {
        const m = await this.commit(scan, objects);
        const hs = objects.map((obj) => m.byObj.get(obj)?.h);
        if (hs.includes(undefined)) throw new Error(`kmu11: no handle for object ${objects[hs.indexOf(undefined)]}`);
        return hs as number[];
      }
      // Gone since the caller's C_FindObjects, or renumbered while another process changed the token.
      if (attempt >= 2) throw new Error(`kmu11: an object found is no longer on the token`);
      await sleep(20 * (attempt + 1));
    }
  }

  /** Owner, shared users, m_value. Throws KmuError 0xa8 for an unknown or deleted handle. */
  meta(handle: number): Promise<KeyMeta> {
    return this.run(async () => {
      const { owner, shared, mValue } = this.liveRecord(handle);
      return { owner, shared: [...shared], mValue };
    });
  }

  /** A private key's public value (EC point, DSA y): as recorded, else as resolve() learned it. */
  publicValue(handle: number): Promise<Buffer | undefined> {
    return this.run(async () => {
      const r = this.liveRecord(handle);
      const pub = r.cls === CKO.PRIVATE_KEY ? (r.pm ?? this.resolved.get(handle)?.pub) : undefined;
      return pub === undefined ? undefined : Buffer.from(pub, 'hex');
    });
  }

  /** The key's CKA_LABEL or CKA_ID was changed here: recorded, so that later processes find it at once. */
  updated(handle: number): Promise<void> {
    return this.write(async () => {
      const r = this.rec(handle);
      const was = this.resolved.get(handle);
      const i = r && !r.dead && was ? await this.read(was.obj) : undefined;
      if (!r || !i || i.cls !== r.cls || i.fam !== r.fam || (i.fp && r.fp && i.fp !== r.fp) || i.hint === r.hint) return;
      await this.record([{ t: 'hint', h: handle, hint: i.hint, label: i.label, id: i.id.toString('hex') }]);
    });
  }

  setMeta(handle: number, meta: KeyMeta): Promise<void> {
    return this.write(async () => {
      this.liveRecord(handle);
      await this.record([{ t: 'meta', h: handle, ...meta, shared: [...meta.shared] }]);
    });
  }

  /**
   * The key named `handle` is now `copy` (session -> token); then `original`, a session object
   * of this process that nobody else sees, is destroyed in the same turn (it would die with the
   * session anyway, so failing to destroy it changes nothing).
   */
  replace(handle: number, copy: number, original: number): Promise<void> {
    return this.write(async () => {
      const r = this.liveRecord(handle);
      let i = await this.readSettled(copy);
      if (!i) throw new Error(`kmu11: object ${copy} is not on the token`);
      // A copy holds the same key: a private key's public value is the original's.
      if (i.cls === CKO.PRIVATE_KEY && !i.fp && r.cls === i.cls && r.fam === i.fam) i = { ...i, fp: r.fp, pub: r.pm };
      const { cls, fam, tok, hint, label, fp } = i;
      const sid = tok ? undefined : SESSION_INSTANCE; // a copy this process just made
      const pm = cls === CKO.PRIVATE_KEY ? i.pub : undefined;
      await this.record([{ t: 'rep', h: handle, cls, fam, tok, sid, hint, label, id: i.id.toString('hex'), fp: fp ?? r.fp, pm: pm ?? r.pm, ts: Date.now() }]);
      this.resolved.set(handle, i);
      await this.session.destroyObject(original).catch(() => undefined);
    });
  }

  /** The key was destroyed (after a successful C_DestroyObject). */
  remove(handle: number): Promise<void> {
    return this.write(async () => {
      const r = this.rec(handle);
      if (!r) throw invalidHandle(handle, 'unknown');
      this.resolved.delete(handle);
      if (!r.dead) await this.record([{ t: 'del', h: handle, ts: Date.now() }]);
    });
  }

  /** Every handle not tombstoned (token keys, and this process's session keys), ascending. */
  handles(): Promise<number[]> {
    return this.run(async () => this.liveRecords().map((r) => r.h).sort((a, b) => a - b));
  }

  close(): Promise<void> {
    return this.run(async () => {
      this.closed = true;
      await this.unlock();
      await this.journal.close();
    });
  }
}

/** Open (creating if needed) the handle store in `dir` for the token `session` is on. */
export async function openHandleStore(dir: string, session: Session, opts: HandleStoreOptions = {}): Promise<FileHandleStore> {
  return new FileHandleStore(dir, session, opts).open();
}
