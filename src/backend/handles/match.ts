// Which stored handle names which object on the token, in this process. Pure: objects and
// records in, assignment out. See fingerprint.ts for what the keys below are made of.
//
//   gk  "group key"  class | token-or-session | family (key type + domain: curve, DSA p/q/g,
//                    RSA size, secret type/length/check value)
//   fk  "full key"   class | token-or-session | fingerprint of the key material
//                    (known for every public key, RSA private key, readable secret; for an
//                    EC/DSA private key only once its public half is known)
//   hint             hash of CKA_LABEL + CKA_ID: mutable, so only a tie-breaker
//
// Step A (strong): objects and records with the same fk hold the same key material. Pair
// them by equal hint; a single leftover object and record of the same fk are paired too (the
// label was changed elsewhere). Several leftovers with different hints are copies of one key
// that nothing can tell apart: paired, but marked ambiguous.
// Step B (weak): what step A left, within a gk, paired only on equal hint, and only where the
// record could be the object's key: a record with a fingerprint never pairs with an object
// whose fingerprint is known (it differs) or was ruled out by a sign-test. One object and one
// record for a hint: paired (the best unambiguous assignment). More: paired in a fixed order
// but marked ambiguous, so resolve() refuses them.
// Objects left over are keys seen for the first time; records left over name keys that are
// not on the token (deleted, or invisible to this session).

export interface MObj {
  obj: number;
  gk: string;
  fk?: string;
  hint: string;
  /** Fingerprints a sign-test proved this object is not. */
  excluded: ReadonlySet<string>;
}

export interface MRec {
  h: number;
  gk: string;
  fk?: string;
  fp?: string;
  hint: string;
}

export interface Pairing {
  h: number;
  obj: number;
  /** Several candidates that nothing can tell apart: listed, but resolve() refuses. */
  ambiguous: boolean;
  /** Made on labels/ids only (step B). */
  weak: boolean;
}

export interface MatchResult {
  byObj: Map<number, Pairing>;
  byHandle: Map<number, Pairing>;
  /** Objects without a handle, in input order. */
  newObjects: number[];
  /** Records without an object. */
  unmatched: number[];
}

function groupBy<T>(items: T[], key: (t: T) => string | undefined): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    if (k === undefined) continue;
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

const byHintObj = (a: MObj, b: MObj) => (a.hint < b.hint ? -1 : a.hint > b.hint ? 1 : a.obj - b.obj);
const byHintRec = (a: MRec, b: MRec) => (a.hint < b.hint ? -1 : a.hint > b.hint ? 1 : a.h - b.h);

/** match() all at once (tests, small inputs). */
export function match(objects: MObj[], records: MRec[]): MatchResult {
  const steps = matchSteps(objects, records);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/**
 * match() giving the event loop a turn whenever it has run `sliceMs` (a whole token of
 * thousands of objects would otherwise hold it for tens of ms); the same result.
 */
export async function matchYielding(objects: MObj[], records: MRec[], sliceMs = 2): Promise<MatchResult> {
  const steps = matchSteps(objects, records);
  let since = performance.now();
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    if (performance.now() - since >= sliceMs) {
      await new Promise((r) => setImmediate(r));
      since = performance.now();
    }
  }
}

/** The matching, yielding between groups (nothing it reads or builds is shared while it waits). */
function* matchSteps(objects: MObj[], records: MRec[]): Generator<void, MatchResult> {
  const byObj = new Map<number, Pairing>();
  const byHandle = new Map<number, Pairing>();
  const pair = (o: MObj, r: MRec, ambiguous: boolean, weak: boolean) => {
    const p: Pairing = { h: r.h, obj: o.obj, ambiguous, weak };
    byObj.set(o.obj, p);
    byHandle.set(r.h, p);
  };

  // Step A.
  const recsByFk = groupBy(records, (r) => r.fk);
  for (const [fk, objs] of groupBy(objects, (o) => o.fk)) {
    const recs = recsByFk.get(fk);
    if (!recs) continue;
    const os = [...objs].sort(byHintObj);
    const rs = [...recs].sort(byHintRec);
    const restO: MObj[] = [];
    const restR = new Set(rs);
    for (const o of os) {
      const r = rs.find((x) => restR.has(x) && x.hint === o.hint);
      if (r) {
        restR.delete(r);
        pair(o, r, false, false);
      } else restO.push(o);
    }
    const leftR = rs.filter((r) => restR.has(r));
    if (restO.length === 1 && leftR.length === 1) pair(restO[0]!, leftR[0]!, false, false);
    else for (let i = 0; i < Math.min(restO.length, leftR.length); i++) pair(restO[i]!, leftR[i]!, true, false);
    yield;
  }

  // Step B.
  const restObjs = objects.filter((o) => !byObj.has(o.obj));
  const restRecs = records.filter((r) => !byHandle.has(r.h));
  const recsByBucket = groupBy(restRecs, (r) => `${r.gk}\n${r.hint}`);
  for (const [bucket, objs] of groupBy(restObjs, (o) => `${o.gk}\n${o.hint}`)) {
    const recs = recsByBucket.get(bucket);
    if (!recs) continue;
    const fits = (o: MObj, r: MRec) => (r.fp === undefined ? true : o.fk === undefined && !o.excluded.has(r.fp));
    const os = [...objs].sort(byHintObj);
    const rs = [...recs].sort(byHintRec);
    const candidates = os.filter((o) => rs.some((r) => fits(o, r)));
    const recCandidates = rs.filter((r) => os.some((o) => fits(o, r)));
    yield;
    if (candidates.length === 0) continue;
    if (candidates.length === 1 && recCandidates.length === 1) {
      pair(candidates[0]!, recCandidates[0]!, false, true);
      continue;
    }
    // Ambiguous: every object that might be one of these keys stays tied to one of their
    // handles (so none of them gets a second handle), but none can be resolved. The pairing
    // is a maximum matching (augmenting paths; buckets are small), in a fixed order.
    const owner = new Map<MRec, MObj>();
    const tryAssign = (o: MObj, seen: Set<MRec>): boolean => {
      for (const r of rs) {
        if (seen.has(r) || !fits(o, r)) continue;
        seen.add(r);
        const cur = owner.get(r);
        if (!cur || tryAssign(cur, seen)) {
          owner.set(r, o);
          return true;
        }
      }
      return false;
    };
    for (const o of candidates) tryAssign(o, new Set());
    for (const [r, o] of owner) pair(o, r, true, true);
    // Objects of an ambiguous bucket left without a handle are new keys, but which of them
    // is unknown: the handles they get are ambiguous too (the bucket stays ambiguous).
  }

  const newObjects = objects.filter((o) => !byObj.has(o.obj)).map((o) => o.obj);
  const unmatched = records.filter((r) => !byHandle.has(r.h)).map((r) => r.h);
  return { byObj, byHandle, newObjects, unmatched };
}
