import { CKA, CKK, CKM, CKO, type Session } from '../p11/index.js';
import { CURVES, oidToDer, type Curve } from '../kmu/curves.js';
import type { Backend } from '../backend/backend.js';
import { ok, type Command } from './types.js';
import { mechanismsOf } from './lib/mechanisms.js';

export interface ListECCCurveIdsData {
  supported: Array<{ id: number; nid: string }>;
  unsupported: Array<{ id: number; nid: string }>;
}

const probed = new WeakMap<Backend, Promise<Curve[]>>();

/** A curve works when the token makes (and then destroys) a throwaway session pair on it. */
async function works(session: Session, curve: Curve): Promise<boolean> {
  try {
    const common = [
      { type: CKA.KEY_TYPE, value: CKK.EC },
      { type: CKA.TOKEN, value: false },
      { type: CKA.PRIVATE, value: false },
    ];
    const pair = await session.generateKeyPair(
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, ...common, { type: CKA.EC_PARAMS, value: oidToDer(curve.oid) }],
      [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, ...common],
    );
    await session.destroyObject([pair.publicKey, pair.privateKey]);
    return true;
  } catch {
    return false;
  }
}

export function supportedCurves(backend: Backend): Promise<Curve[]> {
  let p = probed.get(backend);
  if (!p) {
    p = (async () => {
      if (!(await mechanismsOf(backend)).includes(CKM.EC_KEY_PAIR_GEN)) return [];
      const ok: Curve[] = [];
      for (const c of CURVES) {
        if (c.cloudhsmForbidden && backend.kind === 'cloudhsm') continue;
        if (await works(backend.session, c)) ok.push(c);
      }
      return ok;
    })();
    probed.set(backend, p);
  }
  return p;
}

export const listECCCurveIds: Command<Record<string, never>, ListECCCurveIdsData> = {
  name: 'listECCCurveIds',
  description: 'List HSM supported ECC CurveIds',
  op: 'listECCCurveIds',
  syntax: 'listECCCurveIds -h\n\nlistECCCurveIds',
  flags: [],
  async run(ctx) {
    let supported: Curve[];
    supported = await supportedCurves(ctx.backend);
    const brief = (c: Curve) => ({ id: c.id, nid: c.nid });
    return ok(listECCCurveIds, {
      supported: supported.map(brief),
      unsupported: CURVES.filter((c) => !supported.includes(c)).map(brief),
    });
  },
};
