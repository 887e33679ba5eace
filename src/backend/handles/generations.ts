// Generations: a pair's records made durable (register) between its intent and its "done",
// and the generations of killed processes finished or rolled back (recover). Crash order:
// an intent is made durable (intend), the token objects are created, their records are made
// durable (register, tagged with the intent), the handles are printed, then the intent is
// settled. The next process finds an intent whose process is gone: with records, the keys stay
// and their handles are reported (they may not have been printed); without, what the
// generation left (its label and id, no record) is destroyed (recover()). A key made by
// another process in between gets a handle (owner 0).
// register() needs no scan unless a record could already name the new objects.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { CKA, CKO, CKR, type AttributeValue, type Session } from '../../p11/index.js';
import type { CreatedObject, KeyMeta } from './api.js';
import { describe, fpFor, halfMade, readAttrs, spkiFor, type ObjInfo } from './fingerprint.js';
import { SESSION_INSTANCE, sessionAlive, type Entry, type Intent } from './journal.js';
import { Ledger } from './ledger.js';
import type { MatchResult } from './match.js';
import { certain } from './view.js';

export abstract class Generations extends Ledger {
  /**
   * This process's generations announced and not yet settled; register() tags with the last.
   * Per command: scope() gives each command running at once (kmu11 --parallel) its own list.
   */
  protected readonly mine: string[] = [];
  protected readonly scopes = new AsyncLocalStorage<string[]>();
  /** Killed generations finished here, done once the warnings reporting them are shown. */
  protected readonly recovered: string[] = [];
  protected warnings: string[] = [];

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
  protected async readNew(session: Session, created: CreatedObject[], want: Set<number>): Promise<Map<number, ObjInfo>> {
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
  protected mineNow(): string[] {
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
    // An append of an operation queued before this turn (a parallel batch) may carry them.
    this.doneSoon.push(...done);
    return this.run(async () => {
      if (done.some((g) => this.doneSoon.includes(g))) await this.locked(() => this.record([]));
      for (const list of [mine, this.recovered]) list.splice(0, list.length, ...list.filter((g) => !done.includes(g)));
    });
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

  protected async recoverKilled(): Promise<void> {
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
  protected async destroyAll(objects: number[]): Promise<number[]> {
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
}
