// The token as one handle-store operation sees it: objects read afresh (fingerprint.ts), the
// records they are matched to (match.ts), and sign-tests where matching alone is not sure.
// The journal side (ledger.ts), generations (generations.ts) and the API (store.ts) build on it.
import { setTimeout as sleep } from 'node:timers/promises';
import { CKO, CKR, type Session, type Template } from '../../p11/index.js';
import { forget, halfMade, readInfo, signChallenge, signTest, type ObjInfo } from './fingerprint.js';
import { Journal, SESSION_INSTANCE, type Rec } from './journal.js';
import { matchYielding, type MatchResult, type MObj, type MRec } from './match.js';
import type { HandleStoreOptions } from './api.js';

/** Known for sure (not only paired by label and id). */
export const certain = (info: ObjInfo) => info.fpSrc === 'attr' || info.fpSrc === 'gen' || info.fpSrc === 'sig' || info.fpSrc === 'record';
const pairKey = (i: ObjInfo) => `${i.fam}\n${i.label}\n${i.id.toString('hex')}`;
/** Session-key records, per store directory: shared by this process's stores, as the session objects are. */
const SESSION_RECORDS = new Map<string, Map<number, Rec>>();

export abstract class TokenView {
  readonly journal: Journal;
  protected readonly infos = new Map<number, ObjInfo>();
  protected current: number[] = [];
  /** Originals replaced by a copy (replace()): never given a handle of their own. */
  protected readonly retired = new Map<number, { h: number; readHash: string }>();
  protected result?: MatchResult;
  private resultKey = '';
  protected facts = 0;
  /** journal.next when the last scan began: records below it were on disk before the scan. */
  protected nextAtScan = 0;
  /** Sign-tests made by this instance (tests and benchmarks look at it). */
  signTests = 0;
  /** Full scans (C_FindObjects over the whole token) made by this instance. */
  scans = 0;
  /** The last scan found an object it then could not read (the token was changing). */
  protected scanTrouble = false;
  /**
   * This process's session keys (CKA_TOKEN=false, made here): they die with it, so the journal
   * only reserves their numbers (a snap line: every version reads it) and the records live here.
   */
  protected readonly sessionRecs: Map<number, Rec>;

  constructor(
    readonly dir: string,
    protected readonly session: Session,
    protected readonly opts: HandleStoreOptions = {},
  ) {
    this.journal = new Journal(dir, opts.firstHandle ?? 262145);
    this.sessionRecs = SESSION_RECORDS.get(dir) ?? SESSION_RECORDS.set(dir, new Map()).get(dir)!;
  }

  /**
   * Read an object's attributes now. Nothing read is trusted past the operation that read it:
   * other processes change the token under us, and SoftHSM can even give a number that named
   * one object to another one later in the same process (its handle table is keyed by the
   * object's address, which the allocator reuses). What was learned about an object at some
   * cost (a sign-test, the partner at generation) is carried over while every attribute read
   * is unchanged.
   */
  protected async read(obj: number): Promise<ObjInfo | undefined> {
    let i: ObjInfo;
    try {
      i = await readInfo(this.session, obj, this.opts.uniqueId);
    } catch (e) {
      // Gone between C_FindObjects and here (CKR_OBJECT_HANDLE_INVALID), or SoftHSM failing
      // for a moment while another process rewrites the token; anything else is an error.
      const code = (e as { code?: unknown }).code;
      if (code !== CKR.OBJECT_HANDLE_INVALID && code !== CKR.GENERAL_ERROR && code !== CKR.FUNCTION_FAILED) throw e;
      this.infos.delete(obj);
      return undefined;
    }
    return this.remember(obj, i);
  }

  /** What `i` (just read) adds to what this store knew of the object. */
  protected remember(obj: number, i: ObjInfo): ObjInfo {
    const old = this.infos.get(obj);
    if (old && old.readHash === i.readHash) {
      if (i.fpSrc !== 'attr' && (old.fpSrc === 'gen' || old.fpSrc === 'sig' || old.fpSrc === 'record')) {
        i.fp = old.fp;
        i.pub = old.pub;
        i.fpSrc = old.fpSrc;
      }
      i.tested = old.tested;
      i.excluded = old.excluded;
    }
    this.infos.set(obj, i);
    return i;
  }

  /**
   * C_FindObjects, looked at again when SoftHSM fails it for a moment (CKR_GENERAL_ERROR /
   * CKR_FUNCTION_FAILED while another process rewrites the token's files).
   */
  protected async find(template?: Template): Promise<number[]> {
    for (let n = 0; ; n++) {
      try {
        return await this.session.find(template);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (n >= 4 || (code !== CKR.GENERAL_ERROR && code !== CKR.FUNCTION_FAILED)) throw e;
        await sleep(10 * (n + 1));
      }
    }
  }

  /** A fresh read, retried a little while the object looks half made (see fingerprint.ts). */
  protected async readSettled(obj: number): Promise<ObjInfo | undefined> {
    let i = await this.read(obj);
    for (const ms of [5, 20, 50, 100, 200]) {
      if (!i || !halfMade(i)) break;
      await sleep(ms);
      i = await this.read(obj);
    }
    return i;
  }

  /** C_FindObjects over everything, every object read afresh. */
  protected async scan(): Promise<void> {
    this.scans++;
    this.nextAtScan = this.journal.next;
    const found = await this.find();
    const current: number[] = [];
    this.scanTrouble = false;
    for (const o of found) {
      const i = await this.read(o);
      if (!i) {
        this.scanTrouble = true;
        continue;
      }
      const ret = this.retired.get(o);
      if (ret && ret.readHash === i.readHash) continue;
      if (ret) this.retired.delete(o);
      current.push(o);
    }
    const seen = new Set(found);
    for (const obj of this.infos.keys()) if (!seen.has(obj)) this.infos.delete(obj);
    for (const obj of this.retired.keys()) if (!seen.has(obj)) this.retired.delete(obj);
    this.current = current;
  }

  protected async sync(): Promise<void> {
    await this.journal.refresh();
    await this.scan();
    await this.compute();
  }

  /** A record: the journal's, or one of this process's session keys (kept here only). */
  protected rec(h: number): Rec | undefined {
    return this.journal.records.get(h) ?? this.sessionRecs.get(h);
  }

  protected liveRecords(): Rec[] {
    const out: Rec[] = [];
    for (const r of [...this.journal.records.values(), ...this.sessionRecs.values()]) {
      if (r.dead) continue;
      if (r.sid !== undefined && r.sid !== SESSION_INSTANCE) continue; // another process's session key
      out.push(r);
    }
    return out;
  }

  protected runMatch(): Promise<MatchResult> {
    const gk = (cls: number, tok: boolean, fam: string) => `${cls}|${tok ? 1 : 0}|${fam}`;
    const recs: MRec[] = this.liveRecords().map((r) => ({
      h: r.h,
      gk: gk(r.cls, r.tok, r.fam),
      fk: r.fp ? `${gk(r.cls, r.tok, '')}${r.fp}` : undefined,
      fp: r.fp,
      hint: r.hint,
    }));
    const objs: MObj[] = this.current.map((o) => {
      const i = this.infos.get(o)!;
      return {
        obj: o,
        gk: gk(i.cls, i.tok, i.fam),
        fk: i.fp ? `${gk(i.cls, i.tok, '')}${i.fp}` : undefined,
        hint: i.hint,
        excluded: i.excluded,
      };
    });
    return matchYielding(objs, recs);
  }

  /**
   * A private key placed by pairing alone, confirmed by one signature against the public value
   * it was paired with. null: not that key's (ruled out, forgotten); undefined: no test possible.
   */
  protected async confirmPair(i: ObjInfo): Promise<string | null | undefined> {
    const res = await signTest(this.session, i, [i.pub!]);
    this.signTests++;
    if (res === null) {
      i.excluded.add(i.fp!);
      forget(i);
      this.facts++;
    }
    return res;
  }

  /** Pairing, matching, and sign-tests where matching alone is not sure. */
  protected async compute(signTests = true): Promise<MatchResult> {
    const key = `${this.journal.version}|${this.facts}|${this.scans}|${this.current.join(',')}`;
    if (this.result && key === this.resultKey) return this.result;

    // Pairing: a sensitive EC/DSA private key and the one public key of its family with the
    // same label and id (and no other private key claiming that public key). Unconfirmed:
    // confirmed by a sign-test before the handle is resolved or first recorded.
    const pubs = new Map<string, ObjInfo[]>();
    const pubsByFam = new Map<string, ObjInfo[]>();
    const privs = new Map<string, number>();
    const infos = this.current.map((o) => this.infos.get(o)!);
    const push = <T>(m: Map<string, T[]>, k: string, v: T) => {
      const l = m.get(k);
      if (l) l.push(v);
      else m.set(k, [v]);
    };
    for (const i of infos) {
      if (i.cls === CKO.PUBLIC_KEY && i.pub && i.fp) {
        push(pubs, pairKey(i), i);
        push(pubsByFam, i.fam, i);
      }
      if (i.cls === CKO.PRIVATE_KEY && (i.ecParams || i.dsa)) privs.set(pairKey(i), (privs.get(pairKey(i)) ?? 0) + 1);
    }
    for (const i of infos) {
      if (i.cls !== CKO.PRIVATE_KEY || !(i.ecParams || i.dsa) || certain(i)) continue;
      forget(i);
      // A public key of the same family has the fingerprint the private half would have.
      const cands = (pubs.get(pairKey(i)) ?? []).filter((p) => !i.excluded.has(p.fp!));
      if (cands.length === 1 && privs.get(pairKey(i)) === 1) {
        i.pub = cands[0]!.pub;
        i.fp = cands[0]!.fp;
        i.fpSrc = 'pair';
      }
    }

    let m = await this.runMatch();

    // Sign-tests: private keys whose public value is unknown (or only paired) and that
    // matching could not place for sure. One signature each, verified first against the public
    // keys with its label and id and the records it might be, then against the other public
    // keys of its family that no private key has claimed.
    const needTest = infos.filter((i) => {
      if (!signTests || i.cls !== CKO.PRIVATE_KEY || !i.canSign || i.tested || certain(i)) return false;
      const p = m.byObj.get(i.obj);
      return !p || p.ambiguous || (p.weak && this.rec(p.h)?.fp !== undefined);
    });
    if (needTest.length) {
      const openRecs = new Map<string, Rec[]>();
      for (const r of this.liveRecords()) {
        const p = m.byHandle.get(r.h);
        if (r.cls !== CKO.PRIVATE_KEY || !r.pm || !r.fp || (p && !p.ambiguous && !p.weak)) continue;
        push(openRecs, r.fam, r);
      }
      const claimed = new Set<string>();
      for (const i of infos) if (i.cls === CKO.PRIVATE_KEY && certain(i) && i.fp) claimed.add(i.fp);
      for (const i of needTest) {
        const check = await signChallenge(this.session, i);
        this.signTests++;
        if (!check) continue;
        i.tested = true;
        const tried = new Set<string>();
        let found: { pub: string; fp: string } | undefined;
        const attempt = (pub: string | undefined, fp: string | undefined) => {
          if (found || !pub || !fp || tried.has(fp) || i.excluded.has(fp)) return;
          tried.add(fp);
          if (check(pub)) found = { pub, fp };
        };
        for (const p of pubs.get(pairKey(i)) ?? []) attempt(p.pub, p.fp);
        for (const r of openRecs.get(i.fam) ?? []) attempt(r.pm, r.fp);
        for (const p of pubsByFam.get(i.fam) ?? []) if (!claimed.has(p.fp!)) attempt(p.pub, p.fp);
        if (found) {
          i.pub = found.pub;
          i.fp = found.fp;
          i.fpSrc = 'sig';
          claimed.add(found.fp);
        } else {
          for (const fp of tried) i.excluded.add(fp);
          forget(i);
        }
      }
      this.facts++;
      m = await this.runMatch();
    }
    this.result = m;
    this.resultKey = `${this.journal.version}|${this.facts}|${this.scans}|${this.current.join(',')}`;
    return m;
  }

}
