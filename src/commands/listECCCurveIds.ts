import { CKM } from '../p11/index.js';
import { CURVES, oidToDer, type Curve } from '../kmu/curves.js';
import type { Backend } from '../backend/index.js';
import { ok, type Command } from './types.js';

export interface ListECCCurveIdsData {
  supported: Array<{ id: number; nid: string }>;
  unsupported: Array<{ id: number; nid: string }>;
}

/** The curves this token makes (the backend tries each once). */
async function supportedCurves(backend: Backend): Promise<Curve[]> {
  if (!(await backend.mechanisms()).includes(CKM.EC_KEY_PAIR_GEN)) return [];
  const ok: Curve[] = [];
  for (const c of CURVES) {
    if (c.cloudhsmForbidden && backend.kind === 'cloudhsm') continue;
    if (await backend.makesCurve(oidToDer(c.oid))) ok.push(c);
  }
  return ok;
}

export const listECCCurveIds: Command<Record<string, never>, ListECCCurveIdsData> = {
  name: 'listECCCurveIds',
  description: 'List HSM supported ECC CurveIds',
  op: 'listECCCurveIds',
  syntax: 'listECCCurveIds -h\n\nlistECCCurveIds',
  flags: [],
  async run(ctx) {
    const supported = await supportedCurves(ctx.backend);
    const brief = (c: Curve) => ({ id: c.id, nid: c.nid });
    return ok(listECCCurveIds, {
      supported: supported.map(brief),
      unsupported: CURVES.filter((c) => !supported.includes(c)).map(brief),
    });
  },
};
