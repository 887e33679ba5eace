// Generation is all or nothing: batches of EC and DSA generations interrupted at random points
// by SIGINT, SIGTERM (the command rolls back, fails, kmu11 exits 128+n) and SIGKILL (the next
// process finishes or rolls back what the killed one left, and says so). Afterwards every key
// object on the token has exactly one handle, and that handle was printed (by the killed batch,
// or in the next process's report); nothing else is on the token. KMU11_LONG=1: 100 kills each.
import { afterAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome, startKmu11 } from './helpers/cli.js';
import { embeddedToken, keyCount, pkcs11Tool } from './helpers/oracle.js';

const KILLS = process.env.KMU11_LONG ? 100 : 20;
const homes: Array<ReturnType<typeof makeHome>> = [];
afterAll(() => homes.forEach((h) => h.cleanup()));

const handlesIn = (text: string): number[] => [
  ...[...text.matchAll(/public key handle: (\d+)\s+private key handle: (\d+)/g)].flatMap((m) => [Number(m[1]), Number(m[2])]),
  // A later process's report of a killed generation it finished.
  ...[...text.matchAll(/they are kept: key handles? ([\d, ]+)/g)].flatMap((m) => m[1]!.split(/,\s*/).map(Number)),
];

/** Resolves once the child has written `text` to stdout (or after 20 s). */
function seen(child: ReturnType<typeof startKmu11>['child'], text: string): Promise<void> {
  return new Promise((resolve) => {
    let out = '';
    const timer = setTimeout(resolve, 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function sweep(signal: NodeJS.Signals, gen: string, window: number): Promise<{ kills: number; interrupted: number }> {
  const h = makeHome();
  homes.push(h);
  expect(kmu11(['singlecmd', ...LOGIN], { env: h.env }).status).toBe(0);
  const token = embeddedToken(h.env);
  const printed: number[] = [];
  let interrupted = 0;
  let reports = '';
  for (let k = 0; k < KILLS; k++) {
    const lines = [LOGIN.join(' '), ...Array.from({ length: 100 }, (_, i) => `${gen} -l ${signal}-${k}-${i} -id ${signal}-${k}-${i}`)];
    const batch = startKmu11([], { env: h.env });
    batch.child.stdin!.on('error', () => undefined);
    batch.child.stdin!.write(lines.join('\n') + '\n');
    // After the login (which settles the last kill) and a first pair: anywhere in the next ones.
    await seen(batch.child, 'key handle:');
    await new Promise((r) => setTimeout(r, Math.random() * window));
    batch.child.kill(signal);
    const r = await batch.done;
    printed.push(...handlesIn(r.stdout + r.stderr));
    reports += r.stderr;
    if (signal !== 'SIGKILL') {
      // Caught: exit 128 + n, after the interrupted command's failure (or killed before the
      // handlers were installed, when nothing had been opened yet).
      expect([signal === 'SIGINT' ? 130 : 143, null], r.stderr).toContain(r.status);
      if (r.status !== null) {
        expect(r.stderr).toMatch(new RegExp(`interrupted by ${signal}`));
        interrupted++;
      }
    }
  }
  // One more command: it settles what the last kill left.
  const after = kmu11(['--json', 'singlecmd', ...LOGIN, 'findKey'], { env: h.env });
  expect(after.status, after.stderr).toBe(0);
  const [login, find] = after.stdout.trim().split('\n').map((l) => JSON.parse(l));
  reports += [...login.warnings, ...find.warnings].join('\n');
  printed.push(...handlesIn([...login.warnings, ...find.warnings].join('\n')));
  const listed: number[] = find.result.handles;
  expect(new Set(listed).size).toBe(listed.length);
  const extra = listed.filter((x) => !printed.includes(x));
  if (extra.length > 0) {
    // Rare (once in CI): say what the unreported object is, and what the kills printed.
    const attrs = kmu11(['singlecmd', ...LOGIN, ...extra.flatMap((x) => ['getAttribute', '-o', String(x), '-a', '512', '-out', '/dev/stdout'])], { env: h.env });
    console.log(`${signal} ${gen}: unreported ${extra}\n${attrs.stdout}\n${reports}\n${pkcs11Tool(token, ['--list-objects'])}`);
  }
  expect([...listed].sort((a, b) => a - b), `${signal} ${gen}`).toEqual([...new Set(printed)].sort((a, b) => a - b));
  expect(keyCount(token), `${signal} ${gen}: key objects on the token`).toBe(listed.length);
  const count = (re: RegExp) => (reports.match(re) ?? []).length;
  console.log(
    `${signal} ${gen}: ${KILLS} kills, ${listed.length} keys left, all printed; ${interrupted} caught; ` +
      `after kill -9: ${count(/they are kept/g)} finished, ${count(/it left .* destroyed/g)} rolled back`,
  );
  return { kills: KILLS, interrupted };
}

describe('generation interrupted at random points', () => {
  for (const [gen, window] of [['genECCKeyPair -i 2', 150], ['genDSAKeyPair -m 2048', 1200]] as const) {
    it(`${gen.split(' ')[0]}: SIGINT, SIGTERM and SIGKILL leave only keys whose handles were printed (${KILLS} kills each)`, async () => {
      const results = await Promise.all((['SIGINT', 'SIGTERM', 'SIGKILL'] as const).map((s) => sweep(s, gen, window)));
      for (const r of results) expect(r.kills).toBe(KILLS);
      // Every SIGINT and SIGTERM came after the login: caught, each one.
      expect(results[0]!.interrupted + results[1]!.interrupted).toBe(2 * KILLS);
    }, KILLS * 15_000);
  }
});
