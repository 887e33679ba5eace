// Soak: many library sessions (Kmu) on one embedded token, each with many calls in flight —
// EC and DSA generation, findKey, getAttribute and deleteKey mixed — round after round, in a
// child process (a crash shows as its signal). Afterwards every key is accounted for: each
// handle printed is found exactly while it lives, findKey lists exactly the live ones, and the
// token (read by pkcs11-tool) holds exactly that many objects.
// Between rounds the whole token is accounted for and what the round kept is deleted, so every
// round starts empty: SoftHSM 2.6 re-reads every object file on each search, so a token that
// grew round after round made each round slower than the last (32 × 30 × 10 took hours).
// CI size: 4 sessions × 5 in flight × 2 rounds. KMU11_LONG=1 (npm test -- --long): 32 × 30 × 10.
// KMU11_SOAK=SxFxR: any other size. KMU11_SOAK_PROGRESS=<file>: a line per round appended there.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome } from './helpers/cli.js';
import { embeddedToken, objectCount } from './helpers/oracle.js';

const LONG = process.env.KMU11_LONG === '1';
// KMU11_SOAK=SxFxR picks another size (e.g. 32x30x1).
const custom = /^(\d+)x(\d+)x(\d+)$/.exec(process.env.KMU11_SOAK ?? '');
// Several Kmu instances are what makes SoftHSM's threads meet: one instance's calls share one
// PKCS#11 session, run one at a time. Before the p11 ObjectLock (src/p11/objectLock.ts), 4 × 5
// failed in 3 of 6 runs (SoftHSM 2.6 read an object file another thread was writing).
const SIZE = custom
  ? { sessions: Number(custom[1]), inFlight: Number(custom[2]), rounds: Number(custom[3]) }
  : LONG
    ? { sessions: 32, inFlight: 30, rounds: 10 }
    : { sessions: 4, inFlight: 5, rounds: 2 };
const API = fileURLToPath(new URL('../dist/index.js', import.meta.url));

const SCRIPT = `
const { Kmu } = await import(process.env.SOAK_API);
const { sessions, inFlight, rounds } = JSON.parse(process.env.SOAK_SIZE);
const kmus = [];
for (let s = 0; s < sessions; s++) {
  const k = await Kmu.open();
  await k.loginHSM({ user: 'crypto_user', password: 'password' });
  kmus.push(k);
}
const live = new Map(); // handle -> label
const made = [], deleted = [], problems = [];
let calls = 0;
const CURVES = [2, 14, 'P-384', 'P-521'];
const started = Date.now();
const { appendFileSync } = await import('node:fs');
const progress = (line) => process.env.KMU11_SOAK_PROGRESS && appendFileSync(process.env.KMU11_SOAK_PROGRESS, new Date().toISOString() + ' ' + line + '\\n');
for (let r = 0; r < rounds; r++) {
  await Promise.all(kmus.map((k, s) => Promise.all(Array.from({ length: inFlight }, async (_, j) => {
    const label = 'soak-' + r + '-' + s + '-' + j;
    const dsa = (s + j + r) % 15 === 0;
    const pair = dsa ? await k.genDSAKeyPair({ label }) : await k.genECCKeyPair({ curve: CURVES[(s + j) % 4], label, id: label });
    calls++;
    made.push(pair.publicKey, pair.privateKey);
    live.set(pair.publicKey, label); live.set(pair.privateKey, label);
    const found = await k.findKey({ label }); calls++;
    if (found.length !== 2 || !found.includes(pair.publicKey) || !found.includes(pair.privateKey)) problems.push('find ' + label + ': ' + found);
    const attrs = await k.getAttribute({ handle: pair.privateKey, attribute: 512 }); calls++;
    if (!JSON.stringify(attrs).includes(label)) problems.push('attributes of ' + pair.privateKey + ' lack ' + label);
    const one = await k.getAttribute({ handle: pair.publicKey, attribute: 3 }); calls++;
    if (!JSON.stringify(one).includes(label)) problems.push('label of ' + pair.publicKey);
    // Delete some pairs whole, some halves, keep the rest.
    const which = (s * 7 + j * 3 + r) % 4;
    const gone = which === 0 ? [pair.publicKey, pair.privateKey] : which === 1 ? [pair.publicKey] : [];
    for (const h of gone) { await k.run('deleteKey', { handle: h }); calls++; deleted.push(h); live.delete(h); }
    const after = await k.findKey({ label }); calls++;
    const want = [pair.publicKey, pair.privateKey].filter((h) => live.has(h)).sort((a, b) => a - b);
    if (JSON.stringify([...after].sort((a, b) => a - b)) !== JSON.stringify(want)) problems.push('after delete ' + label + ': ' + after + ' want ' + want);
  }))));
  progress('round ' + (r + 1) + '/' + rounds + ': ' + calls + ' calls, ' + live.size + ' live keys, ' + ((Date.now() - started) / 1000).toFixed(1) + ' s' + (problems.length ? ', problems: ' + problems.slice(0, 3).join('; ') : ''));
  if (r === rounds - 1) break;
  // Between rounds: the whole token is accounted for, then what the round kept is deleted
  // (every session deleting its share at once), so each round starts on an empty token.
  const listed = (await kmus[0].findKey()).sort((a, b) => a - b); calls++;
  const kept = [...live.keys()].sort((a, b) => a - b);
  if (JSON.stringify(listed) !== JSON.stringify(kept)) problems.push('round ' + r + ': findKey lists ' + listed.length + ', live ' + kept.length);
  await Promise.all(kmus.map((k, s) => (async () => {
    for (let i = s; i < kept.length; i += kmus.length) { await k.run('deleteKey', { handle: kept[i] }); calls++; deleted.push(kept[i]); live.delete(kept[i]); }
  })()));
}
const all = (await kmus[0].findKey()).sort((a, b) => a - b);
const want = [...live.keys()].sort((a, b) => a - b);
if (JSON.stringify(all) !== JSON.stringify(want)) problems.push('findKey lists ' + all.length + ', live ' + want.length);
if (new Set(made).size !== made.length) problems.push('a handle was given twice');
for (const k of kmus) await k.close();
console.log('SOAK ' + JSON.stringify({ calls, made: made.length, deleted: deleted.length, live: want.length, problems }));
`;

let h: ReturnType<typeof makeHome>;
beforeAll(() => {
  h = makeHome();
});
afterAll(() => h.cleanup());

describe(`soak: ${SIZE.sessions} sessions × ${SIZE.inFlight} in flight × ${SIZE.rounds} rounds`, () => {
  it('no crash, every key accounted for (by kmu11 and by pkcs11-tool)', async () => {
    const started = Date.now();
    const r = await new Promise<{ out: string; err: string; code: number | null; signal: string | null }>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], {
        env: { ...process.env, ...h.env, SOAK_API: API, SOAK_SIZE: JSON.stringify(SIZE) },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code, signal) => resolve({ out, err, code, signal }));
    });
    expect(r.signal, r.err).toBeNull();
    expect(r.code, r.out + r.err).toBe(0);
    const line = r.out.split('\n').find((l) => l.startsWith('SOAK '));
    const result = JSON.parse(line!.slice(5));
    expect(result.problems).toEqual([]);
    expect(result.made).toBe(2 * SIZE.sessions * SIZE.inFlight * SIZE.rounds);
    expect(result.live).toBe(result.made - result.deleted);
    // An independent reader: the token holds exactly the live keys.
    expect(objectCount(embeddedToken(h.env))).toBe(result.live);
    // And the next process sees the same set.
    const next = kmu11(['singlecmd', ...LOGIN, 'findKey'], { env: h.env });
    expect(next.stdout).toContain(`Total number of keys present: ${result.live}`);
    console.log(`soak ${JSON.stringify(SIZE)}: ${result.calls} calls in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, LONG || custom ? 4 * 3_600_000 : 120_000);
});
