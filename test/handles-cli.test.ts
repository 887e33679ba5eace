// Handles that hold across processes, through the CLI as operators use it: keys made by five
// kmu11 processes, other keys made and deleted by pkcs11-tool in between, and batches of 500
// generations killed with SIGKILL at random points.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome, startKmu11 } from './helpers/cli.js';
import { embeddedToken, keyCount, pkcs11Tool, type TokenRef } from './helpers/oracle.js';

let h: ReturnType<typeof makeHome>;
let token: TokenRef;

beforeAll(() => {
  h = makeHome();
  expect(kmu11(['singlecmd', ...LOGIN], { env: h.env }).status).toBe(0);
  token = embeddedToken(h.env);
});
afterAll(() => h.cleanup());

/** Runs commands in one process with --json; returns each command's result object. */
function json(words: string[]): Array<{ command: string; code: string; result: any }> {
  const r = kmu11(['--json', 'singlecmd', ...LOGIN, ...words], { env: h.env });
  // One object a command: the login's and each of `words`' (anything else: say what happened).
  expect(r.stdout.trim().split('\n').length, `exit ${r.status}\n${r.stdout}\n${r.stderr}`).toBeGreaterThan(1);
  return r.stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l));
}

interface Printed {
  handle: number;
  label: string;
  id: string;
  /** OBJ_ATTR_KCV: the SHA-1 of the pair's public key, the same on both halves. */
  kcv: string;
}

/** What getAttribute says about a handle now: label, id and KCV, or its return code. */
function describeHandles(handles: number[]): Map<number, Printed | string> {
  const out = new Map<number, Printed | string>();
  const results = json(handles.flatMap((k) => ['getAttribute', '-o', String(k), '-a', '512']));
  handles.forEach((k, i) => {
    const r = results[i]!;
    if (r.code !== '0x00') return void out.set(k, r.code);
    const get = (n: string) => r.result.attributes.find((a: { name: string }) => a.name === n)?.value ?? '';
    out.set(k, { handle: k, label: get('OBJ_ATTR_LABEL'), id: get('OBJ_ATTR_ID'), kcv: get('OBJ_ATTR_KCV') });
  });
  return out;
}

describe('handles across processes', () => {
  it('200 keys from 5 processes, with pkcs11-tool making and deleting keys in between: every printed handle names the same key', () => {
    const printed = new Map<number, Printed>();
    const deleted = new Set<number>();
    let foreign = 0;
    for (let p = 0; p < 5; p++) {
      const words: string[] = [];
      for (let i = 0; i < 20; i++) {
        // Half without -id and with repeated labels: identical-looking apart from the key itself.
        const label = i % 2 ? `p${p}-k${i}` : 'shared label';
        words.push('genECCKeyPair', '-i', i % 3 ? '2' : '14', '-l', label, ...(i % 2 ? ['-id', `p${p}-${i}`] : []));
      }
      const results = json(words);
      const made: number[] = [];
      for (const r of results) {
        expect(r.code).toBe('0x00');
        made.push(r.result.publicKey, r.result.privateKey);
      }
      // What each new handle names, as the process that printed it says.
      for (const [k, v] of describeHandles(made)) {
        expect(typeof v).toBe('object');
        printed.set(k, v as Printed);
      }
      // Other tools change the token between kmu11 runs.
      const hexId = Buffer.from(`p${p}-1`).toString('hex');
      pkcs11Tool(token, ['--delete-object', '--type', 'privkey', '--id', hexId]);
      // Command 1 (i = 1) made the pair with this id: its private key is the fourth handle.
      expect(printed.get(made[3]!)!.id).toBe(`p${p}-1`);
      deleted.add(made[3]!);
      pkcs11Tool(token, ['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'shared label']);
      pkcs11Tool(token, ['--keypairgen', '--key-type', 'EC:prime256v1', '--label', `tool-${p}`, '--id', `ee0${p}`]);
      foreign += 4;
    }
    expect(printed.size).toBe(200);
    expect(deleted.size).toBe(5);
    // A later process: every handle printed earlier names the same key, or is reported deleted.
    const now = describeHandles([...printed.keys()]);
    for (const [k, before] of printed) {
      if (deleted.has(k)) expect(now.get(k), `handle ${k}`).toBe('0xa8');
      else expect(now.get(k), `handle ${k}`).toEqual(before);
    }
    // findKey lists every key on the token once: kmu11's 195 live ones and the tools' 20.
    const all = json(['findKey'])[0]!.result.handles as number[];
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(keyCount(token));
    expect(all.length).toBe(200 - 5 + foreign);
    for (const k of deleted) expect(all).not.toContain(k);
    // pkcs11-tool's five 'shared label' pairs (no ID): their public keys are told apart by their
    // points, their private keys by nothing kmu11 may use (no CKA_PUBLIC_KEY_INFO, no public
    // half of their own label and ID; kmu11 never signs with a key to find out): refused.
    const theirs = all.filter((k) => !printed.has(k));
    const codes = describeHandles(theirs);
    const refused = theirs.filter((k) => codes.get(k) === '0xa8');
    expect(refused.length).toBe(5);
    for (const k of theirs) if (!refused.includes(k)) expect(typeof codes.get(k), `handle ${k}`).toBe('object');
  });
});

describe('kill -9 in the middle of a batch of 500 generations', () => {
  // A home of its own: every key on it is kmu11's, so every listed handle must resolve.
  beforeAll(() => {
    h.cleanup();
    h = makeHome();
    expect(kmu11(['singlecmd', ...LOGIN], { env: h.env }).status).toBe(0);
    token = embeddedToken(h.env);
  });
  it('leaves one handle for every key and the next command working (10 trials)', async () => {
    const lines = [LOGIN.join(' '), ...Array.from({ length: 500 }, (_, i) => `genECCKeyPair -i 2 -l batch -id b${i}-${Math.random().toString(36).slice(2, 8)}`)];
    for (let trial = 0; trial < 10; trial++) {
      const batch = startKmu11([], { env: h.env });
      batch.child.stdin!.write(lines.join('\n') + '\n');
      // Kill at a random moment: while opening, logging in, or in the middle of generating.
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 900));
      batch.child.kill('SIGKILL');
      const out = (await batch.done).stdout;
      const all = json(['findKey'])[0]!.result.handles as number[];
      expect(new Set(all).size, `trial ${trial}`).toBe(all.length);
      expect(all.length, `trial ${trial}`).toBe(keyCount(token));
      // A handle is durable before it is printed: every one the killed batch printed is listed.
      for (const m of out.matchAll(/public key handle: (\d+)\s+private key handle: (\d+)/g))
        for (const k of [Number(m[1]), Number(m[2])]) expect(all, `trial ${trial}, handle ${k}`).toContain(k);
      // Every listed handle resolves; the next generation works.
      const again = json(['genECCKeyPair', '-i', '2', '-l', `after kill ${trial}`]);
      expect(again[0]!.code).toBe('0x00');
    }
    const all = json(['findKey'])[0]!.result.handles as number[];
    const described = describeHandles(all);
    for (const [k, v] of described) expect(typeof v, `handle ${k}: ${v}`).toBe('object');
  });
});
