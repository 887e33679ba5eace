// Every example of the two founding pages (genECCKeyPair, genDSAKeyPair), replayed through
// singlecmd, batch and the interactive shell, compared line by line with handles masked.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { openShell } from './helpers/shell.js';
import { normalize, pageBlocks, pageExamples, type PageExample } from './helpers/pages.js';
import { formatText } from '../src/cli/text.js';

const ecc = pageExamples('kmu-genECCKeyPair.md');
const dsa = pageExamples('kmu-genDSAKeyPair.md');
const byCommand = (list: PageExample[], prefix: string) => {
  const e = list.find((x) => x.command === prefix || x.command.startsWith(prefix + ' '));
  if (!e) throw new Error(`no example '${prefix}' on the page`);
  return e;
};

/** Our output for one command, split out of a batch or shell transcript at its echo line. */
function section(transcript: string, command: string): string[] {
  const lines = transcript.replace(/\r/g, '').split('\n');
  const start = lines.findIndex((l) => l.replace(/^Command:\s*/, '') === command && l.startsWith('Command:'));
  if (start < 0) throw new Error(`'${command}' not in transcript:\n${transcript}`);
  let end = lines.findIndex((l, i) => i > start && l.startsWith('Command:'));
  if (end < 0) end = lines.length;
  return lines.slice(start + 1, end);
}

function expectLike(ours: string[], page: string[], subst: Record<string, string> = {}) {
  const fix = (l: string) => Object.entries(subst).reduce((s, [a, b]) => s.split(a).join(b), l);
  const mask = (ls: string[]) => normalize(ls.map(fix)).map((l) => l.replace(/size \d+ attr cnt \d+/, 'size N attr cnt N'));
  expect(mask(ours)).toEqual(mask(page));
}

let h: ReturnType<typeof makeHome>;
beforeAll(() => {
  h = makeHome();
  // These tests compare with the pages' transcripts: the pages profile (the default is kmu 3.x's).
  h.env.KMU11_PROFILE = 'pages';
});
afterAll(() => h.cleanup());

describe('genECCKeyPair page', () => {
  it('creates and examines an ECC key pair (singlecmd, then getAttribute in a later process)', () => {
    const gen = byCommand(ecc, 'genECCKeyPair -i 12');
    const r = kmu11(['singlecmd', ...LOGIN, ...gen.command.split(' ')], { env: h.env });
    expect(r.status, r.stderr).toBe(0);
    const ours = r.stdout.split('\n');
    // loginHSM's own lines come first; the example's lines follow.
    expectLike(ours.slice(ours.findIndex((l) => l.includes('Cfm3GenerateKeyPair')) - 1), gen.output);
    const { pub, priv } = pairHandles(r.stdout);

    const get = byCommand(ecc, 'getAttribute -o 262177 -a 512');
    const subst = { '262177': String(priv), '262179': String(pub) };
    const cmd = get.command.split('262177').join(String(priv)).split(' ');
    const g = kmu11(['singlecmd', ...LOGIN, ...cmd], { env: h.env, cwd: h.home });
    expect(g.status, g.stderr).toBe(0);
    const gl = g.stdout.split('\n');
    expectLike(gl.slice(gl.findIndex((l) => l.startsWith('got all attributes'))), get.output, subst);

    // The dump file: the page's attributes in the page's order with the page's values for
    // everything but the label typo (ecc2), VALUE_LEN, KCV and the public point.
    const cat = pageBlocks('kmu-genECCKeyPair.md').find((b) => b.lines.some((l) => l.includes('cat attr_262177')))!;
    const pageDump = cat.lines.slice(cat.lines.findIndex((l) => l.includes('cat attr_')) + 1);
    const ourDump = readFileSync(join(h.home, `attr_${priv}`), 'utf8').split('\n');
    expect(ourDump[0]).toBe(pageDump[0]); // a dump of all attributes starts with an empty line
    const pairs = (ls: string[]) => {
      const out: Array<[string, string]> = [];
      const body = ls.slice(1);
      for (let i = 0; i + 1 < body.length; i += 2) out.push([body[i]!, body[i + 1]!]);
      return out;
    };
    const pagePairs = pairs(pageDump);
    const ourPairs = pairs(ourDump).slice(0, pagePairs.length);
    expect(ourPairs.map((p) => p[0])).toEqual(pagePairs.map((p) => p[0]));
    const variable = new Set(['OBJ_ATTR_LABEL', 'OBJ_ATTR_VALUE_LEN', 'OBJ_ATTR_KCV', 'OBJ_ATTR_MODULUS', 'OBJ_ATTR_MODULUS_BITS']);
    for (let i = 0; i < pagePairs.length; i++)
      if (!variable.has(pagePairs[i]![0])) expect(ourPairs[i], pagePairs[i]![0]).toEqual(pagePairs[i]);
    expect(Object.fromEntries(ourPairs)['OBJ_ATTR_LABEL']).toBe('ecc12');
    expect(Object.fromEntries(ourPairs)['OBJ_ATTR_KCV']).toMatch(/^0x[0-9a-f]{6}$/);
  });

  it('prints the invalid-curve refusal exactly as the page (the cloudhsm backend\'s 0xb3)', () => {
    const bad = byCommand(ecc, 'genECCKeyPair -i 1');
    const text = formatText({ command: 'genECCKeyPair', op: 'Cfm3GenerateKeyPair', code: 0xb3, warnings: [], data: {} });
    expectLike(text.split('\n'), bad.output);
  });
});

describe('genDSAKeyPair page', () => {
  const plain = () => byCommand(dsa, 'genDSAKeyPair -m 2048 -l DSA');
  const temp = () => byCommand(dsa, 'genDSAKeyPair -m 2048 -l DSA-temp');
  const find = () => byCommand(dsa, 'findKey -sess 1');

  it('replays through singlecmd', () => {
    const r = kmu11(['singlecmd', ...LOGIN, ...plain().command.split(' ')], { env: h.env });
    expect(r.status, r.stderr).toBe(0);
    const ours = r.stdout.split('\n');
    expectLike(ours.slice(ours.findIndex((l) => l.includes('Cfm3GenerateKeyPair')) - 1), plain().output);

    // The session pair and findKey -sess 1 in one singlecmd: session keys live as long as it.
    const s = kmu11(['singlecmd', ...LOGIN, ...temp().command.split(' '), ...find().command.split(' ')], { env: h.env });
    expect(s.status, s.stderr).toBe(0);
    const sl = s.stdout.split('\n');
    const genAt = sl.findIndex((l) => l.includes('Cfm3GenerateKeyPair')) - 1;
    const findAt = sl.findIndex((l) => l.startsWith('Total number of keys')) - 1;
    expectLike(sl.slice(genAt, findAt), temp().output);
    expectLike(sl.slice(findAt), find().output);
    const { pub, priv } = pairHandles(s.stdout);
    expect(sl.find((l) => /^\d+, \d+$/.test(l))).toBe(`${Math.min(pub, priv)}, ${Math.max(pub, priv)}`);
  });

  it('replays through batch (standard input)', () => {
    const input = [LOGIN.join(' '), plain().command, temp().command, find().command, 'exit', ''].join('\n');
    const r = kmu11([], { env: h.env, input });
    expect(r.status, r.stderr).toBe(0);
    for (const e of [plain(), temp(), find()]) expectLike(section(r.stdout, e.command), e.output);
  });

  it('replays through the interactive shell (a real terminal)', async () => {
    const sh = await openShell(h.env);
    await sh.send(LOGIN.join(' '));
    for (const e of [plain(), temp(), find()]) expectLike(await sh.send(e.command), e.output);
    expect(await sh.exit()).toBe(0);
  });

  it('replays the sharing and quorum examples (users 3-6 made first), with getKeyInfo as the page shows it', () => {
    for (const name of ['user3', 'user4', 'user5', 'user6']) {
      const u = kmu11(['users', 'create', 'CU', name], { env: h.env, input: 'password\nuser-pass-1\nuser-pass-1\n' });
      expect(u.status, u.stderr).toBe(0);
    }
    const as = (id: number, ...words: string[]) =>
      kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', `user${id}`, '-p', 'user-pass-1', ...words], { env: h.env });
    const shared = byCommand(dsa, 'genDSAKeyPair -m 2048 -l DSA -id DSA_shared_pair');
    // -u 3,5,6 names three other users: the page's caller is one of the rest (here user 4).
    const r = as(4, ...shared.command.split(' '));
    expect(r.status, r.stderr).toBe(0);
    const ours = r.stdout.split('\n');
    expectLike(ours.slice(ours.findIndex((l) => l.includes('Cfm3GenerateKeyPair')) - 1), shared.output);
    const info = as(4, 'getKeyInfo', '-k', String(pairHandles(r.stdout).priv));
    expect(info.stdout).toMatch(/Owned by user 4\n\n\s+also, shared to following 3 user\(s\):\n\n\s+3\n\s+5\n\s+6\s*$/);

    // The quorum example, as user 3 (the page's getKeyInfo: "Owned by user 3"), -attest included:
    // the first -attest on a home pins the SoftHSM library and token and passes.
    const quorum = byCommand(dsa, 'genDSAKeyPair -m 2048 -l DSA-mV2');
    const q = as(3, ...quorum.command.split(' '));
    expect(q.status, q.stderr).toBe(0);
    const ql = q.stdout.split('\n');
    expectLike(ql.slice(ql.findIndex((l) => l.includes('Cfm3GenerateKeyPair')) - 1), quorum.output);
    const { priv } = pairHandles(q.stdout);
    const get = byCommand(dsa, 'getKeyInfo -k 17');
    const g = as(3, 'getKeyInfo', '-k', String(priv));
    expect(g.status, g.stderr).toBe(0);
    const gl = g.stdout.split('\n');
    expectLike(gl.slice(gl.findIndex((l) => l.includes('Cfm3GetKey')) - 1), get.output);
    // Users the key is shared with see the same; a user it is not shared with cannot tell it exists.
    expectLike(as(4, 'getKeyInfo', '-k', String(priv)).stdout.split('\n').slice(5), get.output);
    expect(as(5, 'getKeyInfo', '-k', String(priv)).stdout).toContain('Cfm3GetKey returned: 0xa8');
  });
});
