// The durable handle store for modules whose object handles do not last (SoftHSM and most
// software tokens): kmu handles kept in a journal beside the token, matched to the token's
// objects again in every process by what the objects are (fingerprint.ts, match.ts).
//
// Crash order (kill -9 at any moment leaves journal and token consistent):
//  - generation: generations.ts.
//  - deletion: resolve, C_DestroyObject, then the tombstone (remove). A crash in between
//    leaves a record whose key is gone: reported deleted (resolve throws 0xa8), never matched
//    to another key, its number never reused.
//  - session -> token (setAttribute -a 1 -v 1): C_CopyObject(CKA_TOKEN=true), replace(), then
//    C_DestroyObject of the original (or destroy first: both orders work). A crash before
//    replace() is durable leaves the copy without a record (first seen: new handle) and the
//    original dies with the process.
//  - allocation for keys first seen, tombstones and meta changes: ledger.ts.
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
import { invalidHandle } from '../../kmu/errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { CKA, CKO, type Session } from '../../p11/index.js';
import { type HandleState, type HandleStore, type HandleStoreOptions, type KeyMeta } from './api.js';
import { forget, fpFor, halfMade, signTest, type ObjInfo } from './fingerprint.js';
import { SESSION_INSTANCE, type Rec } from './journal.js';
import { Generations } from './generations.js';
import { ZERO_META } from './ledger.js';
import type { MatchResult } from './match.js';
import { certain } from './view.js';

export type { CreatedObject, HandleState, HandleStore, HandleStoreOptions, KeyMeta } from './api.js';
export { SESSION_INSTANCE } from './journal.js';

export class FileHandleStore extends Generations implements HandleStore {
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
          if (i.fp === r.fp) forget(i);
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
          const res = await this.confirmPair(i);
          if (res !== undefined) i.tested = true;
          if (res === null) continue;
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
      // Not that public key's (null): the full look tests it against the others.
      const res = await this.confirmPair(i);
      if (res === null) return undefined;
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
      await this.unlock();
      await this.journal.close();
    });
  }
}

/** Open (creating if needed) the handle store in `dir` for the token `session` is on. */
export async function openHandleStore(dir: string, session: Session, opts: HandleStoreOptions = {}): Promise<FileHandleStore> {
  return new FileHandleStore(dir, session, opts).open();
}
