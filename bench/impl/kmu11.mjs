// kmu11's own addon through its TypeScript API (built to dist/ by tsc; run.mjs
// points KMU11_BENCH_API at its snapshot of dist/p11).
import { pathToFileURL } from 'node:url';

import { CKR_USER_ALREADY_LOGGED_IN, mechanism, privateTemplate, publicTemplate } from '../template.mjs';

const api = process.env.KMU11_BENCH_API
  ? pathToFileURL(process.env.KMU11_BENCH_API)
  : new URL('../../dist/p11/index.js', import.meta.url);

export async function open({ module, label, pin, sessions: count }) {
  const { Module } = await import(api.href);
  const mod = await Module.load(module);
  const slot = await mod.findSlotByTokenLabel(label);
  if (!slot) throw new Error(`kmu11: no token labelled ${label}`);
  const sessions = [];
  for (let i = 0; i < count; i++) sessions.push(await slot.openSession({ rw: true }));
  try {
    await sessions[0].login(pin);
  } catch (e) {
    if (e.code !== CKR_USER_ALREADY_LOGGED_IN) throw e;
  }
  return {
    async pair(i) {
      const s = sessions[i];
      const { publicKey, privateKey } = await s.generateKeyPair(
        mechanism, publicTemplate, privateTemplate,
      );
      await s.destroyObject([publicKey, privateKey]);
    },
    async close() {
      for (const s of sessions) await s.close();
      await mod.close();
    },
  };
}
