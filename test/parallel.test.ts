// kmu11 --parallel N: independent batch lines on N sessions at once, output in input order,
// nothing observable reordered (src/batch.ts has the rule). Real embedded tokens.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Kmu } from '../src/index.js';
import { kmu11 } from './helpers/cli.js';

const homes: string[] = [];
const home = () => {
  const h = mkdtempSync(join(tmpdir(), 'kmu11-par-'));
  homes.push(h);
  return h;
};
afterAll(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

const LOGIN = 'loginHSM -u CU -s crypto_user -p password';
const mask = (s: string) => s.replace(/\b26\d{4}\b/g, 'H');
const handlesOf = (out: string) => [...out.matchAll(/key handle: (\d+)/g)].map((m) => Number(m[1]));

function batch(h: string, lines: string[], parallel?: number) {
  const args = ['--home', h, ...(parallel ? ['--parallel', String(parallel)] : [])];
  return kmu11(args, { input: lines.join('\n') + '\n' });
}

describe('kmu11 --parallel', () => {
  const gens = [
    ...Array.from({ length: 10 }, (_, i) => `genECCKeyPair -i ${[2, 3, 14][i % 3]} -l ec-${i}${i % 2 ? ' -nex' : ''}`),
    'genDSAKeyPair -m 2048 -l dsa-0 -id d0',
    'genECCKeyPair -i 2 -l idk -id k1',
    'genDSAKeyPair -m 2048 -l dsa-1',
    'genECCKeyPair -i 2 -l idk-again -id k1',
    'genECCKeyPair -i 99 -l bad-curve',
  ];
  const script = [LOGIN, ...gens, 'findKey', 'findKey -id k1', 'logoutHSM'];

  it('prints what the serial batch prints, handles aside, with the same exit status', () => {
    const serial = batch(home(), script);
    const parallel = batch(home(), script, 4);
    expect(parallel.status).toBe(serial.status);
    expect(serial.status).toBe(1); // the second -id k1 and the bad curve fail in both
    expect(mask(parallel.stdout)).toBe(mask(serial.stdout));
    // Both runs made the same 13 pairs (findKey sees all 26 keys: it waited for every generation).
    expect(serial.stdout).toContain('Total number of keys present: 26');
    expect(new Set(handlesOf(parallel.stdout)).size).toBe(26);
  });

  it('keeps two lines with the same -id in input order: the first makes it, the second gets 0x07', () => {
    const h = home();
    const lines = [LOGIN, ...Array.from({ length: 6 }, (_, i) => `genECCKeyPair -i 2 -l same-${i} -id shared`)];
    const r = batch(h, lines, 6);
    const codes = [...r.stdout.matchAll(/Cfm3GenerateKeyPair returned: (0x[0-9a-f]+)/g)].map((m) => m[1]);
    expect(codes).toEqual(['0x00', '0x07', '0x07', '0x07', '0x07', '0x07']);
    const find = batch(h, [LOGIN, 'findKey -id shared']);
    expect(find.stdout).toContain('Total number of keys present: 2');
  });

  it('deletes printed handles at once, and a later findKey sees every deletion', () => {
    const h = home();
    const made = batch(h, [LOGIN, ...Array.from({ length: 8 }, (_, i) => `genECCKeyPair -i 2 -l del-${i}`)], 4);
    const handles = handlesOf(made.stdout);
    expect(handles).toHaveLength(16);
    const del = batch(h, [LOGIN, ...handles.slice(0, 12).map((k) => `deleteKey -k ${k}`), 'findKey'], 4);
    expect([...del.stdout.matchAll(/Cfm3DeleteKey returned: 0x00/g)]).toHaveLength(12);
    expect(del.stdout).toContain('Total number of keys present: 4');
    // The output of each deleteKey line follows its own echo, in input order.
    const echoed = [...del.stdout.matchAll(/Command:\s+deleteKey -k (\d+)/g)].map((m) => Number(m[1]));
    expect(echoed).toEqual(handles.slice(0, 12));
  });

  it('runs nothing after exit, and nothing before a login it depends on', () => {
    const h = home();
    const r = batch(h, ['genECCKeyPair -i 2 -l before-login', LOGIN, 'genECCKeyPair -i 2 -l a', 'exit', 'genECCKeyPair -i 2 -l after-exit'], 4);
    expect(r.stdout).not.toContain('after-exit');
    const gen = [...r.stdout.matchAll(/Cfm3GenerateKeyPair returned: (0x[0-9a-f]+)/g)].map((m) => m[1]);
    expect(gen[0]).not.toBe('0x00'); // not logged in yet when it ran
    expect(gen[1]).toBe('0x00');
    const find = batch(h, [LOGIN, 'findKey']);
    expect(find.stdout).toContain('Total number of keys present: 2');
  });

  it('refuses a bad --parallel value before anything runs', () => {
    for (const v of ['0', '65', 'x', '-1']) {
      const r = kmu11(['--home', home(), '--parallel', v], { input: `${LOGIN}\n` });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^kmu11: --parallel needs a number of sessions from 1 to 64\n$/);
      expect(r.stdout).toBe('');
    }
  });

  it('is Kmu.batch in the library: results in input order, same as serial', async () => {
    const h = home();
    const kmu = await Kmu.open({ home: h });
    try {
      const lines = [LOGIN, ...Array.from({ length: 6 }, (_, i) => `genECCKeyPair -i 2 -l lib-${i} -sess`), 'findKey -sess 1'];
      const results = await kmu.batch(lines, { parallel: 3 });
      expect(results.map((r) => r.command)).toEqual(['loginHSM', ...Array(6).fill('genECCKeyPair'), 'findKey']);
      expect(results.every((r) => r.code === 0)).toBe(true);
      // Session keys made on the batch's own sessions live as long as the Kmu.
      expect(results[7]!.data.handles).toHaveLength(12);
      expect(await kmu.findKey({ sess: 1 })).toHaveLength(12);
    } finally {
      await kmu.close();
    }
  });
});
