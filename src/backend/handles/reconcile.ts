// Which stored handle names which object on the token: pure, objects and records in, the
// assignment out.
//   fk      class | token flag | fingerprint (fingerprint.ts)
//   bucket  class | token flag | family | hint
// Lending: a private EC/DSA key without a fingerprint takes its one public key's (same family,
// label and id), when it is the only such private key there.
// Step A (strong): same fk, paired by equal hint; one leftover object and record pair too
// (relabelled elsewhere); more leftovers are copies nothing tells apart: paired, ambiguous.
// Step B (weak): the rest within a bucket, where the record could be the object's key (known
// fingerprints must agree). One object and one record: paired; more: paired as far as they go
// but ambiguous, so that resolve() refuses them and none gets a second handle.
// Objects left over are seen for the first time; records left over name keys not on the token.
import { CKO } from '../../p11/index.js';
import type { ObjInfo } from './fingerprint.js';

export interface RecKey {
  h: number;
  cls: number;
  tok: boolean;
  fam: string;
  fp?: string;
  hint: string;
}

export interface Pairing {
  h: number;
  obj: number;
  /** Several candidates that nothing can tell apart: listed, but resolve() refuses. */
  ambiguous: boolean;
  /** Made on family, label and id only (step B). */
  weak: boolean;
}

export interface Match {
  byObj: Map<number, Pairing>;
  byHandle: Map<number, Pairing>;
  /** Objects without a handle, and records without an object, in input order. */
  newObjects: number[];
  unmatched: number[];
  /** The objects as matched (fingerprints lent included). */
  info: Map<number, ObjInfo>;
}

function groupBy<T>(items: T[], key: (t: T) => string | undefined): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    if (k !== undefined) (m.get(k) ?? m.set(k, []).get(k)!).push(it);
  }
  return m;
}

type Keyed = Omit<RecKey, 'h'>;
const fk = (x: Keyed) => (x.fp ? `${x.cls}|${x.tok ? 1 : 0}|${x.fp}` : undefined);
const bucket = (x: Keyed) => `${x.cls}|${x.tok ? 1 : 0}|${x.fam}|${x.hint}`;
const byHint = <T extends { hint: string }>(n: (t: T) => number) => (a: T, b: T) =>
  a.hint < b.hint ? -1 : a.hint > b.hint ? 1 : n(a) - n(b);

function lend(objects: ObjInfo[]): ObjInfo[] {
  const key = (i: ObjInfo) => `${i.fam}\n${i.hint}`;
  const pubs = groupBy(objects.filter((i) => i.cls === CKO.PUBLIC_KEY && i.fp && i.pub), key);
  const privs = groupBy(objects.filter((i) => i.cls === CKO.PRIVATE_KEY && (i.ec || i.dsa)), key);
  return objects.map((i) => {
    const p = pubs.get(key(i));
    if (i.cls !== CKO.PRIVATE_KEY || i.fp || p?.length !== 1 || privs.get(key(i))?.length !== 1) return i;
    return { ...i, fp: p[0]!.fp, pub: p[0]!.pub, paired: true };
  });
}

/** The assignment, giving the event loop a turn after every `sliceMs` (a whole token takes tens of ms). */
export async function reconcile(objects: ObjInfo[], records: RecKey[], sliceMs = 2): Promise<Match> {
  let since = performance.now();
  const tick = async () => {
    if (performance.now() - since < sliceMs) return;
    await new Promise((r) => setImmediate(r));
    since = performance.now();
  };
  const objs = lend(objects);
  const byObj = new Map<number, Pairing>();
  const byHandle = new Map<number, Pairing>();
  const pair = (o: ObjInfo, r: RecKey, ambiguous: boolean, weak: boolean) => {
    const p: Pairing = { h: r.h, obj: o.obj, ambiguous, weak };
    byObj.set(o.obj, p);
    byHandle.set(r.h, p);
  };

  // Step A.
  const recsByFk = groupBy(records, fk);
  for (const [k, os] of groupBy(objs, fk)) {
    const rest = [...(recsByFk.get(k) ?? [])].sort(byHint((r) => r.h));
    if (rest.length === 0) continue;
    const left: ObjInfo[] = [];
    for (const o of [...os].sort(byHint((x) => x.obj))) {
      const at = rest.findIndex((r) => r.hint === o.hint);
      if (at >= 0) pair(o, rest.splice(at, 1)[0]!, false, false);
      else left.push(o);
    }
    const one = left.length === 1 && rest.length === 1;
    left.slice(0, rest.length).forEach((o, n) => pair(o, rest[n]!, !one, false));
    await tick();
  }

  // Step B.
  const recsByBucket = groupBy(records.filter((r) => !byHandle.has(r.h)), bucket);
  for (const [k, os] of groupBy(objs.filter((o) => !byObj.has(o.obj)), bucket)) {
    const rs = [...(recsByBucket.get(k) ?? [])].sort((a, b) => a.h - b.h);
    const fits = (o: ObjInfo, r: RecKey) => !o.fp || !r.fp;
    const cands = [...os].sort((a, b) => a.obj - b.obj).filter((o) => rs.some((r) => fits(o, r)));
    const recCands = rs.filter((r) => cands.some((o) => fits(o, r)));
    if (cands.length === 1 && recCands.length === 1) pair(cands[0]!, recCands[0]!, false, true);
    else {
      // A maximum matching: objects with a fingerprint fit fewer records, so they go first.
      const free = new Set(recCands);
      for (const o of [...cands.filter((x) => x.fp), ...cands.filter((x) => !x.fp)]) {
        const r = recCands.find((x) => free.has(x) && fits(o, x));
        if (!r) continue;
        free.delete(r);
        pair(o, r, true, true);
      }
    }
    await tick();
  }

  const newObjects = objs.filter((o) => !byObj.has(o.obj)).map((o) => o.obj);
  const unmatched = records.filter((r) => !byHandle.has(r.h)).map((r) => r.h);
  return { byObj, byHandle, newObjects, unmatched, info: new Map(objs.map((o) => [o.obj, o])) };
}
