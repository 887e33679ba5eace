// Generations, all or nothing even across kill -9: an intent is made durable (intend), the
// token objects are created, their records are made durable (register, tagged with the
// intent), the handles are printed, then the intent is settled. The next process that finds an
// intent whose process is gone keeps the keys if it recorded handles (and reports them: they
// may not have been printed), and else destroys what it left (its label and id, no record).
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { CKA, CKO, CKR, pairSpki, type AttributeRead, type Session } from '../../p11/index.js';
import { fpFor, halfMade, readsOf, type ObjInfo } from './fingerprint.js';
import { SESSION_INSTANCE, sessionAlive, type Entry, type Intent, type KeyMeta } from './journal.js';
import { Ledger, readObject } from './ledger.js';

export interface CreatedObject {
  object: number;
  meta: KeyMeta;
  /** The other half of a pair generated together, in the same session. */
  partner?: number;
  /** Its attributes as registerReads() lists them, read in the job that made it: not read again. */
  read?: AttributeRead[];
}

export abstract class Generations extends Ledger {
  /** This process's generations announced and not yet settled, per command (scope()). */
  private readonly mine: string[] = [];
  private readonly scopes = new AsyncLocalStorage<string[]>();
  /** Killed generations finished here, done once the warnings reporting them are shown. */
  private readonly recovered: string[] = [];
  private warnings: string[] = [];

  /** What register() needs read of a new object of this class and key type (CreatedObject.read). */
  registerReads(cls: number, kt: number): number[] {
    return readsOf(cls, kt, this.opts.uniqueId ?? false);
  }

  /** Handles for objects just made (read on `session`), durable before it returns; same order. */
  async register(created: CreatedObject[], session?: Session): Promise<number[]> {
    // Read before the store's turn: commands running at once then wait for each other only for the journal.
    const infos = await this.readNew(session ?? this.session, created);
    return this.write(async () => {
      for (const obj of created.flatMap((c) => [c.object, c.partner ?? c.object])) {
        const i = infos.get(obj) ?? (await this.readSettled(obj));
        if (!i) throw new Error(`kmu11: object ${obj} to register is not on the token`);
        infos.set(obj, i);
      }
      // Usually nothing can name the new objects yet; else another process saw them first and
      // gave them handles (owner 0): adopted, with the creator's metadata.
      const m = created.some((c) => this.couldBeRecorded(infos.get(c.object)!)) ? (await this.scan([], infos))?.m : undefined;
      const handles = new Map<number, number>();
      let next = this.journal.next;
      for (const c of created) handles.set(c.object, ((p) => (p && !p.ambiguous ? p.h : next++))(m?.byObj.get(c.object)));
      const entries: Entry[] = [];
      for (const c of created) {
        const [h, i] = [handles.get(c.object)!, infos.get(c.object)!];
        const partner = c.partner === undefined ? undefined : (handles.get(c.partner) ?? m?.byObj.get(c.partner)?.h);
        const existing = this.rec(h);
        if (!existing) entries.push(this.addEntry(h, i, c.meta, true, partner, this.mineNow().at(-1)));
        else entries.push({ t: 'meta', h, ...c.meta, shared: [...c.meta.shared] });
        if (existing && !existing.fp && i.fp) entries.push({ t: 'fp', h, fp: i.fp, pm: i.cls === CKO.PRIVATE_KEY ? i.pub : undefined });
        this.resolved.set(h, i);
      }
      await this.record(entries);
      return created.map((c) => handles.get(c.object)!);
    });
  }

  /**
   * register()'s reads, each new object once (none given CreatedObject.read): a pair's second
   * half in one read, its kind known from the first. A generated private key's public value is
   * its partner's: written on it as CKA_PUBLIC_KEY_INFO, so that it says which public key it has
   * from now on, to every process and tool (a token that refuses keeps it in the record only).
   */
  private async readNew(session: Session, created: CreatedObject[]): Promise<Map<number, ObjInfo>> {
    const out = new Map<number, ObjInfo>();
    const given = new Map(created.map((c) => [c.object, c.read]));
    const readOne = async (obj: number, kind?: { cls: number; kt: number }) => {
      const i = await readObject(session, obj, this.opts.uniqueId ?? false, kind, given.get(obj)).catch(() => undefined);
      if (i && !halfMade(i)) out.set(obj, i);
      return out.get(obj);
    };
    for (const c of created) {
      const i = out.get(c.object) ?? (await readOne(c.object));
      if (!i || c.partner === undefined || out.has(c.partner)) continue;
      const isPub = i.cls === CKO.PUBLIC_KEY;
      const p = await readOne(c.partner, { cls: isPub ? CKO.PRIVATE_KEY : CKO.PUBLIC_KEY, kt: i.kt });
      const [pub, priv] = isPub ? [i, p] : [p, i];
      if (pub?.cls !== CKO.PUBLIC_KEY || priv?.cls !== CKO.PRIVATE_KEY || !pub.pub || pub.fam !== priv.fam || priv.fp) continue;
      const spki = pairSpki(priv, Buffer.from(pub.pub, 'hex'))!;
      await session.setAttributes(priv.obj, [{ type: CKA.PUBLIC_KEY_INFO, value: spki }]).catch(() => undefined);
      out.set(priv.obj, { ...priv, pub: pub.pub, fp: fpFor(priv, pub.pub) });
    }
    return out;
  }

  /** A generation of token keys is about to start: durable before it does. */
  intend(what: { label: string; id?: Buffer; meta: KeyMeta }): Promise<void> {
    return this.write(async () => {
      const g = randomBytes(8).toString('hex');
      const { owner, shared, mValue } = what.meta;
      const id = (what.id ?? Buffer.alloc(0)).toString('hex');
      await this.record([{ t: 'intent', g, sid: SESSION_INSTANCE, label: what.label, id, owner, shared: [...shared], mValue, ts: Date.now() }]);
      this.mineNow().push(g);
    });
  }

  private mineNow(): string[] {
    return this.scopes.getStore() ?? this.mine;
  }

  /** Runs one command: the generations it announces are settled by its own settle(). */
  scope<T>(fn: () => Promise<T>): Promise<T> {
    return this.scopes.run([], fn);
  }

  /** The command could not destroy what it made: its generations stay open for the next process. */
  unsettled(): void {
    this.mineNow().length = 0;
  }

  /** The command's outcome is out (printed, or rolled back); `delivered`: its warnings were shown too. */
  settle(delivered: boolean): Promise<void> {
    const mine = this.mineNow();
    const done = [...mine, ...(delivered && this.warnings.length === 0 ? this.recovered : [])];
    if (done.length === 0) return Promise.resolve();
    // An append of an operation queued before this turn (a parallel batch) may carry them.
    this.doneSoon.push(...done);
    return this.run(async () => {
      if (done.some((g) => this.doneSoon.includes(g))) await this.locked(() => this.record([]));
      for (const list of [mine, this.recovered]) list.splice(0, list.length, ...list.filter((g) => !done.includes(g)));
    });
  }

  /** What a recovery did, for the operator; drained on read. */
  takeWarnings(): string[] {
    return this.warnings.splice(0);
  }

  /**
   * Finish or roll back the generations of processes gone (an intent without "done"). Only with
   * a full view (logged in), under the lock; objects that could be a live process's generation
   * in progress are left for a later look.
   */
  recover(): Promise<void> {
    const dead = () =>
      [...this.journal.intents.values()].filter((t) => !this.mine.includes(t.g) && !this.recovered.includes(t.g) && t.sid !== SESSION_INSTANCE && !sessionAlive(t.sid));
    return this.run(async () => {
      if (!this.opts.fullView?.() || dead().length === 0) return;
      await this.locked(async () => {
        const intents = dead();
        const m = intents.length ? (await this.scan())?.m : undefined;
        if (m) await this.finish(intents, m.newObjects.map((o) => m.info.get(o)!));
      });
    });
  }

  private async finish(intents: Intent[], orphans: ObjInfo[]): Promise<void> {
    const live = [...this.journal.intents.values()].filter((t) => !intents.includes(t));
    const fits = (i: ObjInfo, t: Intent) => (i.cls === CKO.PUBLIC_KEY || i.cls === CKO.PRIVATE_KEY) && i.label === t.label && i.id.toString('hex') === t.id;
    const killed = (t: Intent) => `kmu11: a kmu11 process (pid ${t.sid.split('-')[0]}) was killed while making keys labelled ${JSON.stringify(t.label)}; `;
    const entries: Entry[] = [];
    const destroyed: number[] = [];
    let next = this.journal.next;
    let rolledBack = false;
    for (const t of intents) {
      const left = orphans.filter((i) => fits(i, t));
      if (left.some((i) => live.some((l) => fits(i, l)))) continue;
      const handles = this.liveRecords().filter((r) => r.g === t.g).map((r) => r.h);
      if (handles.length > 0) {
        // Finished: a record torn off the same append is adopted with the generation's owner.
        for (const i of left) {
          entries.push(this.addEntry(next, i, t, false, undefined, t.g));
          handles.push(next++);
        }
        const s = handles.length > 1 ? 's' : '';
        this.warnings.push(killed(t) + `they are kept: key handle${s} ${handles.sort((a, b) => a - b).join(', ')}`);
        this.recovered.push(t.g); // done once this report is shown (settle)
        continue;
      }
      const gone = await this.destroyAll(left.map((i) => i.obj));
      destroyed.push(...gone);
      if (gone.length < left.length) continue;
      rolledBack = true;
      const n = left.length;
      if (n) this.warnings.push(killed(t) + `the ${n} object${n > 1 ? 's' : ''} it left ${n > 1 ? 'were' : 'was'} destroyed`);
      entries.push({ t: 'done', g: t.g });
    }
    // Unreadable or malformed remains of a generation killed inside C_GenerateKeyPair.
    if (rolledBack && live.length === 0) await this.destroyAll(orphans.filter((i) => halfMade(i) && !destroyed.includes(i.obj)).map((i) => i.obj));
    await this.record(entries);
  }

  /** Destroys what it can; returns those destroyed. */
  private async destroyAll(objects: number[]): Promise<number[]> {
    const done: number[] = [];
    for (const o of objects)
      if (await this.session.destroyObject(o).then(() => true, (e: { code?: unknown }) => e?.code === CKR.OBJECT_HANDLE_INVALID)) done.push(o);
    return done;
  }
}
