// The handle store's API: kmu handles kept in a journal beside the token, matched to the
// token's objects again in every process by what the objects are. Crash order (kill -9 at any
// moment leaves journal and token consistent):
//  - generation: generations.ts; allocation, tombstones, meta changes: ledger.ts.
//  - deletion: resolve, C_DestroyObject, remove(). A crash in between leaves a record whose key
//    is gone: reported deleted, never matched to another key.
//  - session -> token: C_CopyObject(CKA_TOKEN=true), replace(), C_DestroyObject(original). A
//    crash before replace() is durable leaves the copy without a record (first seen: new handle).
// resolve() and list() look near the objects concerned first (the objects of their label and
// id); the whole token is read and matched only when that look leaves doubt.
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidHandle } from '../../kmu/errors.js';
import { CKA, CKO, type Session } from '../../p11/index.js';
import type { HandleStore, HandleStoreOptions, KeyMeta } from './api.js';
import { halfMade, type ObjInfo } from './fingerprint.js';
import { Generations } from './generations.js';
import { SESSION_INSTANCE, type Rec } from './journal.js';
import { ZERO_META } from './ledger.js';
import { reconcile, type Match, type Pairing } from './reconcile.js';

export type { CreatedObject, HandleStore, HandleStoreOptions, KeyMeta } from './api.js';
export { SESSION_INSTANCE } from './journal.js';

const bucket = (x: Pick<Rec, 'cls' | 'tok' | 'fam' | 'hint'>) => `${x.cls}|${x.tok}|${x.fam}|${x.hint}`;
/** Past this many C_FindObjects (each a pass over the token in the module), one scan is cheaper. */
const NEAR_FINDS = 32;
/** A look near some objects: `complete`, the hints whose every object is in view. */
interface Near {
  m: Match;
  complete: Set<string>;
  retired: Map<number, number>;
  withFp?: Set<string>;
}

export class FileHandleStore extends Generations implements HandleStore {
  /**
   * `objects` and, for those without key material of their own, every object of their label
   * and id, reconciled with the records that could pair with them. Undefined when one is gone
   * or half made (a whole-token look decides then).
   */
  private async near(objects: number[], complete = new Set<string>()): Promise<Near | undefined> {
    const view = new Map<number, ObjInfo>();
    const retired = new Map<number, number>();
    const look = async (obj: number): Promise<ObjInfo | undefined> => {
      const i = view.get(obj) ?? (await this.read(obj));
      if (!i || halfMade(i)) return undefined;
      const h = this.retiredHandle(i);
      if (h === undefined) view.set(obj, i);
      else retired.set(obj, h);
      return i;
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
    return { m: await reconcile(objs, records), complete, retired };
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
        const scan = (await this.scan())!;
        this.liveRecord(handle);
        const p = scan.m.byHandle.get(handle);
        if (!p && scan.trouble && attempt < 3) await sleep(20 * (attempt + 1));
        else if (!p) throw invalidHandle(handle, 'key not on the token (deleted)');
        else if (p.ambiguous) throw invalidHandle(handle, 'ambiguous: several keys on the token fit it, and neither CKA_PUBLIC_KEY_INFO nor a public half of their own tells them apart');
        else i = scan.m.info.get(p.obj);
      }
      this.resolved.set(handle, i);
      return i.obj;
    });
  }

  list(objects: number[]): Promise<number[]> {
    return this.run(async () => (await this.listNear(objects)) ?? (await this.listAll(objects)));
  }

  /** list() near the objects: each placed for sure, or new for sure (no record could name it). */
  private async listNear(objects: number[]): Promise<number[] | undefined> {
    const near = await this.near(objects);
    if (!near) return undefined;
    const handles = new Map(near.retired);
    const fresh: ObjInfo[] = [];
    for (const obj of objects) {
      const p = near.m.byObj.get(obj);
      const i = near.m.info.get(obj)!;
      if (this.sure(p, near)) handles.set(obj, p.h);
      else if (handles.has(obj) || fresh.includes(i)) continue;
      else if (p || this.couldBeRecorded(i)) return undefined;
      else fresh.push(i);
    }
    const ok =
      !fresh.length ||
      (await this.locked(async () => {
        if (fresh.some((i) => this.couldBeRecorded(i))) return false;
        const next = this.journal.next;
        await this.record(fresh.map((i, k) => this.addEntry(next + k, i, ZERO_META, false)));
        fresh.forEach((i, k) => handles.set(i.obj, next + k));
        return true;
      }));
    return ok ? objects.map((obj) => handles.get(obj)!) : undefined;
  }

  private async listAll(objects: number[]): Promise<number[]> {
    for (let attempt = 0; ; attempt++) {
      const scan = await this.scan(objects);
      if (scan) {
        const m = await this.commit(scan, objects);
        return objects.map((obj) => {
          const h = this.retired.get(obj)?.h ?? m.byObj.get(obj)?.h;
          if (h === undefined) throw new Error(`kmu11: no handle for object ${obj}`);
          return h;
        });
      }
      // Gone since the caller's C_FindObjects, or renumbered while another process changed the token.
      if (attempt >= 2) throw new Error(`kmu11: an object found is no longer on the token`);
      await sleep(20 * (attempt + 1));
    }
  }

  meta(handle: number): Promise<KeyMeta> {
    return this.run(async () => {
      const { owner, shared, mValue } = this.liveRecord(handle);
      return { owner, shared: [...shared], mValue };
    });
  }

  publicValue(handle: number): Promise<Buffer | undefined> {
    return this.run(async () => {
      const r = this.liveRecord(handle);
      const pub = r.cls === CKO.PRIVATE_KEY ? (r.pm ?? this.resolved.get(handle)?.pub) : undefined;
      return pub === undefined ? undefined : Buffer.from(pub, 'hex');
    });
  }

  /** Records the new label and id, so that later processes find the key by them at once. */
  updated(handle: number): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        const r = this.rec(handle);
        const was = this.resolved.get(handle);
        const i = r && !r.dead && was ? await this.read(was.obj) : undefined;
        if (!r || !i || i.cls !== r.cls || i.fam !== r.fam || (i.fp && r.fp && i.fp !== r.fp) || i.hint === r.hint) return;
        await this.record([{ t: 'hint', h: handle, hint: i.hint, label: i.label, id: i.id.toString('hex') }]);
      }),
    );
  }

  setMeta(handle: number, meta: KeyMeta): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        this.liveRecord(handle);
        await this.record([{ t: 'meta', h: handle, ...meta, shared: [...meta.shared] }]);
      }),
    );
  }

  replace(handle: number, newObject: number): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        const r = this.liveRecord(handle);
        const old = this.resolved.get(handle)?.obj ?? (await this.scan())?.m.byHandle.get(handle)?.obj;
        let i = await this.readSettled(newObject);
        if (!i) throw new Error(`kmu11: object ${newObject} is not on the token`);
        // A copy holds the same key: a private key's public value is the original's.
        if (i.cls === CKO.PRIVATE_KEY && !i.fp && r.cls === i.cls && r.fam === i.fam) i = { ...i, fp: r.fp, pub: r.pm };
        const { cls, fam, tok, hint, label, fp } = i;
        const sid = tok ? undefined : SESSION_INSTANCE; // a copy this process just made
        const pm = cls === CKO.PRIVATE_KEY ? i.pub : undefined;
        await this.record([{ t: 'rep', h: handle, cls, fam, tok, sid, hint, label, id: i.id.toString('hex'), fp: fp ?? r.fp, pm: pm ?? r.pm, ts: Date.now() }]);
        const o = old !== undefined && old !== newObject ? await this.read(old) : undefined;
        if (o) this.retired.set(o.obj, { h: handle, readHash: o.readHash });
        this.resolved.set(handle, i);
      }),
    );
  }

  remove(handle: number): Promise<void> {
    return this.run(() =>
      this.locked(async () => {
        const r = this.rec(handle);
        if (!r) throw invalidHandle(handle, 'unknown');
        this.resolved.delete(handle);
        if (!r.dead) await this.record([{ t: 'del', h: handle, ts: Date.now() }]);
        for (const [o, x] of this.retired) if (x.h === handle) this.retired.delete(o);
      }),
    );
  }

  /** Every handle not tombstoned (token keys, and this process's session keys), ascending. */
  handles(): Promise<number[]> {
    return this.run(async () => this.liveRecords().map((r) => r.h).sort((a, b) => a - b));
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
