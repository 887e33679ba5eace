import { CKA, CKK, CKM, CKO } from '../p11/index.js';
import { CURVES, oidToDer, type Curve } from '../kmu/curves.js';
import type { Backend } from '../backend/backend.js';
import { ok, type Command } from './types.js';
import { toKmuError } from './lib/context.js';
import { mechanismsOf } from './lib/mechanisms.js';

export interface ListECCCurveIdsData {
  supported: Array<{ id: number; nid: string }>;
  unsupported: Array<{ id: number; nid: string }>;
}

const probed = new WeakMap<Backend, Promise<Curve[]>>();

/**
 * A curve works when the token makes (and then destroys) a throwaway pair on it: session objects
 * where the token makes them, else token objects (tpm2-pkcs11), destroyed straight away.
 */
async function works(backend: Backend, curve: Curve): Promise<boolean> {
  const { session } = backend;
  const token = backend.tokenRules?.sessionObjects === false;
  const common = [
    { type: CKA.KEY_TYPE, value: CKK.EC },
    { type: CKA.TOKEN, value: token },
    ...(token ? [{ type: CKA.LABEL, value: 'kmu11-curve-probe' }] : [{ type: CKA.PRIVATE, value: false }]),
  ];
  const privateOnly = token
    ? [
        { type: CKA.SENSITIVE, value: true },
        { type: CKA.EXTRACTABLE, value: false },
        { type: CKA.SIGN, value: true },
      ]
    : [];
  let pair: { publicKey: number; privateKey: number };
  try {
    pair = await session.generateKeyPair(
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.CLASS, value: CKO.PUBLIC_KEY }, ...common, { type: CKA.EC_PARAMS, value: oidToDer(curve.oid) }],
      [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, ...common, ...privateOnly],
    );
  } catch {
    return false;
  }
  await session.destroyObject([pair.publicKey, pair.privateKey]);
  return true;
}

export function supportedCurves(backend: Backend): Promise<Curve[]> {
  let p = probed.get(backend);
  if (!p) {
    p = (async () => {
      if (!(await mechanismsOf(backend)).includes(CKM.EC_KEY_PAIR_GEN)) return [];
      const ok: Curve[] = [];
      for (const c of CURVES) {
        if (c.cloudhsmForbidden && backend.kind === 'cloudhsm') continue;
        if (await works(backend, c)) ok.push(c);
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
    try {
      supported = await supportedCurves(ctx.backend);
    } catch (e) {
      throw toKmuError(e);
    }
    const brief = (c: Curve) => ({ id: c.id, nid: c.nid });
    return ok(listECCCurveIds, {
      supported: supported.map(brief),
      unsupported: CURVES.filter((c) => !supported.includes(c)).map(brief),
    });
  },
};
