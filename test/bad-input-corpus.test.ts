// The bad-input corpus: hundreds of malformed commands, each → one kmu-style `Error:` line, a
// failing return code, no stack trace, nothing created, and nothing from the input reaching the
// terminal raw (control, bidi and zero-width characters are refused or escaped). Lines run many
// to a process (batch mode, stdout and stderr on one pipe, cut at each `Command:` echo; the same
// lines again with --json for each one's return code); start-up cases (homes, modules, config
// files, global options) run one process each.
import { spawnSync } from 'node:child_process';
import { printableLine } from '../src/cli/output.js';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, LOGIN, kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { embeddedToken, objectCount, type TokenRef } from './helpers/oracle.js';

type Case = [name: string, line: string, error: RegExp];

const C0 = Array.from({ length: 32 }, (_, i) => i).filter((i) => i !== 0x0a && i !== 0x0d && i !== 0x09);
const C1 = Array.from({ length: 32 }, (_, i) => 0x80 + i);
const BIDI = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069];
const INVISIBLE = ['\u200b', '\u2060', '\ufeff', '\u00ad', '\u200b\u200b\u200b', '\u200c', '\u200d', '\u200c\u200d', ' ', '\u3000', '\u0301', '\u2800'];
const hex = (n: number) => n.toString(16).padStart(4, '0');
const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

/** Every command × the generic mistakes: unknown flag, value missing, flag twice, value without flag. */
const WITH_VALUE: Record<string, [flag: string, good: string]> = {
  genECCKeyPair: ['-i', '2'],
  genDSAKeyPair: ['-m', '2048'],
  getAttribute: ['-o', '1'],
  deleteKey: ['-k', '1'],
  getKeyInfo: ['-k', '1'],
  exportPubKey: ['-k', '1'],
  setAttribute: ['-o', '1'],
  findKey: ['-c', '2'],
  Error2String: ['-r', '0x01'],
  loginHSM: ['-u', 'CU'],
};
const NO_FLAGS = ['logoutHSM', 'listAttributes', 'listECCCurveIds', 'help'];

function genericCases(): Case[] {
  const out: Case[] = [];
  for (const [cmd, [flag, good]] of Object.entries(WITH_VALUE)) {
    out.push([`${cmd}: unknown flag`, `${cmd} ${flag} ${good} -bogus`, new RegExp(`^Error: ${cmd} has no flag -bogus`)]);
    out.push([`${cmd}: flag without its value`, `${cmd} ${flag}`, new RegExp(`^Error: ${cmd}: ${flag} needs a value`)]);
    out.push([`${cmd}: flag twice`, `${cmd} ${flag} ${good} ${flag} ${good}`, new RegExp(`^Error: ${cmd}: ${flag} is given twice`)]);
    out.push([`${cmd}: value before its flag`, `${cmd} ${good} ${flag}`, new RegExp(`^Error: ${cmd}: unexpected '${good}'`)]);
    out.push([`${cmd}: single-dash typo`, `${cmd} -${flag}`, new RegExp(`^Error: ${cmd} has no flag --`)]);
    out.push([`${cmd}: upper-case flag`, `${cmd} ${flag.toUpperCase()}X ${good}`, new RegExp(`^Error: ${cmd} has no flag`)]);
  }
  for (const cmd of NO_FLAGS) {
    out.push([`${cmd}: a stray word`, `${cmd} extra`, new RegExp(`^Error: ${cmd}: unexpected 'extra'`)]);
    out.push([`${cmd}: a flag it lacks`, `${cmd} -l x`, new RegExp(`^Error: ${cmd} has no flag -l`)]);
  }
  for (const name of ['genEccKeyPair', 'GENECCKEYPAIR', 'genECCKeyPair2', 'gen', 'loginhsm', '-i', '"genECCKeyPair', "'", '\\', 'ｇｅｎＥＣＣＫｅｙＰａｉｒ', 'genECCKeyPair\u200b', '\u202egenECCKeyPair'])
    out.push([`unknown command ${JSON.stringify(name)}`, `${name} -i 2 -l x`, /^Error: (unknown command|unterminated)/]);
  return out;
}

/** Flag values: numbers, handles, codes and lists out of range or not numbers at all. */
function valueCases(): Case[] {
  const out: Case[] = [];
  const numbers = ['0', '-1', '16', '99999999999999999999999', '1e3', '0x2', '2.0', '+2', '٢', '２', '2abc', '', 'NaN', 'Infinity', '-0'];
  for (const v of numbers) out.push([`-i ${JSON.stringify(v)}`, `genECCKeyPair -i ${q(v)} -l x`, /^Error: -i takes an EC curve id from 1 to 15/]);
  for (const v of ['1024', '3072', '0', '-2048', '2048.0', '02048', '2048bits', '99999999999999999999']) out.push([`DSA -m ${v}`, `genDSAKeyPair -m ${v} -l x`, /^Error: -m: the only valid modulus length is 2048/]);
  for (const v of ['9', '-1', '1.5', 'x', '99999999999999999999']) out.push([`-m_value ${v}`, `genECCKeyPair -i 2 -l x -m_value ${v}`, /^Error: -m_value (must be|takes)/]);
  for (const v of ['0', '33', '-5', 'all']) out.push([`-min_srv ${v}`, `genECCKeyPair -i 2 -l x -min_srv ${v}`, /^Error: -min_srv (must be|takes)/]);
  for (const v of ['-1', '86401', '1.5', 'soon']) out.push([`-timeout ${v}`, `genECCKeyPair -i 2 -l x -min_srv 1 -timeout ${v}`, /^Error: -timeout (must be|takes)/]);
  for (const v of ['', '0', '-1', 'abc', '1,2', '4,,6', ',', '4,4', '70000', '1e2', '4 6'])
    out.push([`-u ${JSON.stringify(v)}`, `genECCKeyPair -i 2 -l x -u ${q(v)}`, /^Error: -u (takes|lists|must not include the current user)/]);
  const handles = ['0', '-1', 'abc', '1.5', '0x10', '99999999999999999999', '9007199254740993', '', ' 7', '١'];
  for (const [cmd, flag, rest] of [
    ['getAttribute', '-o', '-a 512'],
    ['deleteKey', '-k', ''],
    ['getKeyInfo', '-k', ''],
    ['exportPubKey', '-k', '-out /tmp/kmu11-never'],
    ['setAttribute', '-o', '-a 1 -v 1'],
  ] as const)
    for (const v of handles) out.push([`${cmd} ${flag} ${JSON.stringify(v)}`, `${cmd} ${flag} ${q(v)} ${rest}`.trim(), new RegExp(`^Error: ${flag} takes a key handle`)]);
  for (const v of ['9999', '-1', 'abc', '0x03', '513', '']) out.push([`getAttribute -a ${JSON.stringify(v)}`, `getAttribute -o 1 -a ${q(v)}`, /^Error: -a takes an attribute constant/]);
  for (const v of ['0', '2', 'true', '-1']) out.push([`setAttribute -a 1 -v ${v}`, `setAttribute -o 1 -a 1 -v ${v}`, /^Error: -v: /]);
  for (const v of ['3', '0', '162', 'label']) out.push([`setAttribute -a ${v}`, `setAttribute -o 1 -a ${v} -v 1`, /^Error: -a: setAttribute changes only OBJ_ATTR_TOKEN/]);
  for (const v of ['5', '-1', 'secret', '']) out.push([`findKey -c ${JSON.stringify(v)}`, `findKey -c ${q(v)}`, /^Error: -c takes a key class/]);
  for (const v of ['2', '99', 'ec', '']) out.push([`findKey -t ${JSON.stringify(v)}`, `findKey -t ${q(v)}`, /^Error: -t takes a key type/]);
  for (const v of ['2', '-1', 'yes']) out.push([`findKey -sess ${v}`, `findKey -sess ${v}`, /^Error: -sess takes a session flag/]);
  for (const v of ['zz', '0x12345', '0x1234567', 'abcdefg', '']) out.push([`findKey -kcv ${JSON.stringify(v)}`, `findKey -kcv ${q(v)}`, /^Error: -kcv takes a 3-byte key check value/]);
  for (const v of ['db', '0x', '0xzz', '0x123456789', '-0x1', '219', '']) out.push([`Error2String -r ${JSON.stringify(v)}`, `Error2String -r ${q(v)}`, /^Error: -r takes a hexadecimal error code/]);
  out.push(['-timeout without -min_srv', 'genECCKeyPair -i 2 -l x -timeout 5', /^Error: -timeout is valid only together with -min_srv/]);
  out.push(['-m_value above the users', 'genECCKeyPair -i 2 -l x -m_value 3 -u 4', /^Error: -m_value 3 needs the key shared/]);
  for (const cmd of ['genECCKeyPair -l x', 'genECCKeyPair -i 2', 'genDSAKeyPair -l x', 'genDSAKeyPair -m 2048', 'getAttribute -o 1', 'getAttribute -a 512', 'deleteKey', 'getKeyInfo', 'exportPubKey -k 1', 'exportPubKey -out /tmp/x', 'Error2String', 'setAttribute -a 1 -v 1', 'loginHSM -s crypto_user -p x', 'loginHSM -u CU -p x'])
    out.push([`required flag missing: ${cmd}`, cmd, / is required$/]);
  out.push(['login without a password', 'loginHSM -u CU -s crypto_user', /^Error: loginHSM needs a password/]);
  out.push(['-p and -hpswd', 'loginHSM -u CU -s crypto_user -p x -hpswd', /^Error: give either -p or -hpswd/]);
  return out;
}

/** Labels and IDs: control, C1, bidi, invisible-only, separators, overlong, empty, broken UTF-8. */
function labelCases(): Case[] {
  const out: Case[] = [];
  for (const c of C0) out.push([`label with C0 U+${hex(c)}`, `genECCKeyPair -i 2 -l ${q(`a${String.fromCharCode(c)}b`)}`, /^Error: -l: the label contains a control character/]);
  out.push(['label with DEL', `genECCKeyPair -i 2 -l ${q('a\u007fb')}`, /^Error: -l: the label contains a control character/]);
  out.push(['label with a tab (quoted)', `genECCKeyPair -i 2 -l "a\tb"`, /^Error: -l: the label contains a control character/]);
  for (const c of C1) out.push([`label with C1 U+${hex(c)}`, `genECCKeyPair -i 2 -l ${q(`a${String.fromCharCode(c)}b`)}`, /^Error: -l: the label contains a control character/]);
  for (const c of BIDI) {
    out.push([`label with bidi U+${hex(c)}`, `genECCKeyPair -i 2 -l ${q(`pay${String.fromCharCode(c)}txt.exe`)}`, /^Error: -l: the label contains a bidirectional control character/]);
    out.push([`key ID with bidi U+${hex(c)}`, `genDSAKeyPair -m 2048 -l x -id ${q(`k${String.fromCharCode(c)}1`)}`, /^Error: -id: the key ID contains a bidirectional control character/]);
  }
  for (const s of INVISIBLE) out.push([`label of only ${JSON.stringify(s)}`, `genECCKeyPair -i 2 -l ${q(s)}`, /^Error: -l: the label (contains an invisible formatting character|has no visible character)/]);
  for (const s of ['a\u200bb', 'x\u2060y', '\ufeffkey', 'soft\u00adhyphen']) out.push([`label hiding ${JSON.stringify(s)}`, `genECCKeyPair -i 2 -l ${q(s)}`, /^Error: -l: the label contains an invisible formatting character/]);
  out.push(['label with U+2028', `genECCKeyPair -i 2 -l ${q('a\u2028b')}`, /^Error: -l: the label contains a line or paragraph separator/]);
  out.push(['label with U+2029', `genECCKeyPair -i 2 -l ${q('a\u2029b')}`, /^Error: -l: the label contains a line or paragraph separator/]);
  out.push(['label with U+FFFF', `genECCKeyPair -i 2 -l ${q('a\uffffb')}`, /^Error: -l: the label contains a Unicode noncharacter/]);
  out.push(['label with U+FDD0', `genECCKeyPair -i 2 -l ${q('a\ufdd0b')}`, /^Error: -l: the label contains a Unicode noncharacter/]);
  out.push(['label with U+FFFD', `genECCKeyPair -i 2 -l ${q('a\ufffdb')}`, /^Error: -l: the label is not valid UTF-8/]);
  for (const [what, s, bytes] of [
    ['128 ASCII', 'x'.repeat(128), 128],
    ['1000 ASCII', 'y'.repeat(1000), 1000],
    ['64 two-byte', 'é'.repeat(64), 128],
    ['43 three-byte', '鍵'.repeat(43), 129],
    ['32 emoji', '🔑'.repeat(32), 128],
    ['127 ASCII + one é', 'z'.repeat(126) + 'é', 128],
  ] as const) {
    out.push([`overlong label: ${what}`, `genECCKeyPair -i 2 -l ${s}`, new RegExp(`^Error: -l: the label is ${bytes} bytes long; at most 127`)]);
    out.push([`overlong key ID: ${what}`, `genECCKeyPair -i 2 -l x -id ${s}`, new RegExp(`^Error: -id: the key ID is ${bytes} bytes long; at most 127`)]);
  }
  out.push(['overlong findKey label', `findKey -l ${'w'.repeat(300)}`, /^Error: -l: the label is 300 bytes long/]);
  out.push(['empty label', 'genECCKeyPair -i 2 -l ""', /^Error: -l needs a non-empty label/]);
  out.push(["empty label ('')", "genECCKeyPair -i 2 -l ''", /^Error: -l needs a non-empty label/]);
  out.push(['empty key ID', 'genECCKeyPair -i 2 -l x -id ""', /^Error: -id needs a non-empty key ID/]);
  for (const c of [0x01, 0x1b, 0x85, 0x9b]) out.push([`findKey label with U+${hex(c)}`, `findKey -l ${q(`a${String.fromCharCode(c)}`)}`, /^Error: -l: the label contains a control character/]);
  for (const c of [0x07, 0x1b, 0x9b, 0x202e]) out.push([`user name with U+${hex(c)}`, `loginHSM -u CU -s ${q(`crypto${String.fromCharCode(c)}user`)} -p x`, /^Error: -s: the username contains a control or invisible character/]);
  out.push(['terminal escape in a label', `genECCKeyPair -i 2 -l ${q('\u001b]0;owned\u0007\u001b[2J')}`, /^Error: -l: the label contains a control character/]);
  return out;
}

/** Quoting, NUL bytes, escape sequences and carriage returns in the line itself. */
function lineCases(): Case[] {
  return [
    ['unterminated "', 'genECCKeyPair -i 2 -l "x', /^Error: unterminated " quote/],
    ["unterminated '", "genECCKeyPair -i 2 -l 'x", /^Error: unterminated ' quote/],
    ['unterminated quote at the start', '"genECCKeyPair -i 2', /^Error: unterminated " quote/],
    ['quote inside a word left open', 'genECCKeyPair -i 2 -l ab"cd', /^Error: unterminated " quote/],
    ['NUL in a label', 'genECCKeyPair -i 2 -l a\u0000b', /^Error: -l: the label contains a control character/],
    ['NUL as the command', '\u0000 -i 2', /^Error: unknown command/],
    ['NUL after a flag', 'findKey -c\u0000 2', /^Error: findKey has no flag -c\\x00/],
    ['ESC sequence as the command', '\u001b[31mgenECCKeyPair -i 2 -l x', /^Error: unknown command '\\x1b\[31mgenECCKeyPair'/],
    ['ESC sequence as a flag', 'findKey -\u001b[2J', /^Error: findKey has no flag -\\x1b\[2J/],
    ['OSC title escape as a value', 'findKey -c \u001b]0;x\u0007', /^Error: -c takes a key class .*\\x1b\]0;x\\x07/],
    ['C1 CSI as a value', 'Error2String -r \u009b31m', /^Error: -r takes a hexadecimal error code .*\\x9b31m/],
    ['bidi override in a value', 'getAttribute -o \u202e1 -a 512', /^Error: -o takes a key handle .*\\u\{202e\}1/],
    ['form feed as a value', 'findKey -t \f', /^Error: (findKey: -t needs a value|-t takes a key type)/],
    ['vertical tab inside a word', 'findKey -c 2\u000b3', /^Error: findKey: unexpected '3'/],
    ['backspaces hiding a word', 'findKey -c 2\b\b\b', /^Error: -c takes a key class .*\\x08/],
    ['CRLF line with a bad value', 'findKey -c 9\r', /^Error: -c takes a key class \(2, 3, 4\), not '9'/],
    ['invalid UTF-8 as the command', 'gen\ufffd -i 2', /^Error: unknown command 'gen\ufffd'/],
    ['a lone backslash word', 'findKey \\', /^Error: findKey: unexpected '\\'/],
    ['many words', 'findKey ' + '-c 2 '.repeat(200), /^Error: findKey: -c is given twice/],
    ['a 100 KB line', 'findKey -l ' + 'q'.repeat(100_000), /^Error: -l: the label is 100000 bytes long/],
  ];
}

/** With a key on the token: files that cannot be read or written, and refusals after login. */
function fileCases(dir: string, handle: number): Case[] {
  return [
    ['findKey -m missing file', `findKey -m ${dir}/missing.txt`, /^Error: cannot read .*missing\.txt: ENOENT/],
    ['findKey -m a directory', `findKey -m ${dir}`, /^Error: cannot read .*: EISDIR/],
    ['findKey -m /proc/kmu11', 'findKey -m /proc/kmu11-none', /^Error: cannot read \/proc\/kmu11-none: ENOENT/],
    ['getAttribute -out into /proc', `getAttribute -o ${handle} -a 512 -out /proc/kmu11-attr`, /^Error: /],
    ['getAttribute -out a directory', `getAttribute -o ${handle} -a 512 -out ${dir}`, /^Error: /],
    ['getAttribute -out under a missing directory', `getAttribute -o ${handle} -a 512 -out ${dir}/no/such/file`, /^Error: /],
    ['getAttribute -out under a file', `getAttribute -o ${handle} -a 512 -out ${dir}/file/x`, /^Error: /],
    ['exportPubKey -out into /sys', `exportPubKey -k ${handle} -out /sys/kmu11.pem`, /^Error: /],
    ['exportPubKey -out a directory', `exportPubKey -k ${handle} -out ${dir}`, /^Error: /],
    ['exportPubKey -out a dangling symlink dir', `exportPubKey -k ${handle} -out ${dir}/dangling/x.pem`, /^Error: /],
    ['duplicate -id', 'genECCKeyPair -i 2 -l x -id taken', /^Error: a key with ID 'taken' is already on the token/],
    ['duplicate -id for DSA', 'genDSAKeyPair -m 2048 -l x -id taken', /^Error: a key with ID 'taken' is already on the token/],
    ['-u naming no user', 'genECCKeyPair -i 2 -l x -u 3', /^Error: user 3 does not exist/],
    ['-u naming a CO', 'genECCKeyPair -i 2 -l x -u 1', /^Error: user 1 \(admin\) is CO; keys are shared with crypto users only/],
    ['-min_srv 2', 'genECCKeyPair -i 2 -l x -min_srv 2', /^Error: -min_srv 2: the embedded backend spans 1 HSM/],
    ['-u with the own id', 'genECCKeyPair -i 2 -l x -u 2', /^Error: -u must not include the current user/],
    ['unknown handle', 'getAttribute -o 999999 -a 512', /^Error: /],
    ['delete an unknown handle', 'deleteKey -k 999999', /^Error: /],
    ['login again', LOGIN.join(' '), /^Error: |^$/],
    ['setAttribute without -v in batch', `setAttribute -o ${handle} -a 1`, /^Error: setAttribute needs -v 1/],
  ];
}

const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2069\ufeff]/;

interface Answer {
  /** What text mode printed on stdout for the line (after its echo). */
  text: string;
  /** The JSON run's return code and the one Error: line text mode prints for it ('' if none). */
  code: string;
  error: string;
}

/**
 * Runs the lines in one batch process in text mode, and again with --json; one answer per
 * line, in order. Text mode's stderr must hold exactly the Error: lines the JSON answers imply.
 */
function batch(env: NodeJS.ProcessEnv, prefix: string[], lines: string[]): { answers: Answer[]; status: number | null } {
  const input = [...prefix, ...lines].join('\n') + '\n';
  const text = spawnSync(process.execPath, [CLI], { env: { ...process.env, ...env }, input, encoding: 'utf8', timeout: 120_000 });
  const json = spawnSync(process.execPath, [CLI, '--json'], { env: { ...process.env, ...env }, input, encoding: 'utf8', timeout: 120_000 });
  const sections = text.stdout.split(/^Command: /m).slice(1 + prefix.length);
  const objects = json.stdout.trim().split('\n').slice(prefix.length).map((l) => JSON.parse(l));
  expect(sections.length, text.stdout.slice(-2000)).toBe(lines.length);
  expect(objects.length).toBe(lines.length);
  const errors = objects.map((o) => {
    const why: string | undefined = o.error?.usage ?? o.error?.detail;
    return why === undefined ? '' : `Error: ${printableLine(why)}`;
  });
  const skipped = prefix.length ? text.stderr.split('\n').findIndex((l) => l.startsWith('Warning')) + 1 : 0;
  const stderrErrors = text.stderr.split('\n').slice(skipped).filter((l) => l !== '' && !l.startsWith('Warning'));
  expect(stderrErrors).toEqual(errors.filter((e) => e !== ''));
  expect(text.stderr).not.toMatch(/^\s+at /m);
  expect(UNPRINTABLE.test(text.stderr)).toBe(false);
  return {
    answers: sections.map((s, i) => ({ text: s.slice(s.indexOf('\n') + 1), code: objects[i]!.code, error: errors[i]! })),
    status: text.status,
  };
}

function check(c: Case, a: Answer) {
  const [name, , error] = c;
  expect.soft(a.code, name).not.toBe('0x00');
  expect.soft(a.text, name).not.toMatch(/^\s+at |internal error/m);
  expect.soft(a.error, `${name}:\n${a.text}`).toMatch(error);
  expect.soft(UNPRINTABLE.test(a.text), `${name}: raw control character in\n${JSON.stringify(a.text)}`).toBe(false);
}

let h: ReturnType<typeof makeHome>;
let token: TokenRef;
let dir: string;
let handle: number;
beforeAll(() => {
  h = makeHome();
  dir = mkdtempSync(join(tmpdir(), 'kmu11-corpus-'));
  writeFileSync(join(dir, 'file'), 'x');
  symlinkSync('/nonexistent/kmu11', join(dir, 'dangling'));
  const r = kmu11(['singlecmd', ...LOGIN, 'genECCKeyPair', '-i', '2', '-l', 'corpus', '-id', 'taken'], { env: h.env });
  expect(r.status, r.stderr).toBe(0);
  handle = pairHandles(r.stdout).pub;
  token = embeddedToken(h.env);
});
afterAll(() => {
  h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const LOGGED_IN: Case[] = [...genericCases(), ...valueCases(), ...labelCases(), ...lineCases()];

describe('bad-input corpus', () => {
  it('holds at least 300 lines and 30 start-up cases', () => {
    expect(LOGGED_IN.length + 20).toBeGreaterThanOrEqual(300);
    expect(STARTUP.length).toBeGreaterThanOrEqual(30);
    expect(LOGGED_IN.length + 20 + STARTUP.length).toBeGreaterThanOrEqual(350);
  });

  it('every line, logged in: one kmu error line, a failing code, no trace, nothing created', () => {
    const before = objectCount(token);
    const cases = [...LOGGED_IN, ...fileCases(dir, handle)];
    const { answers, status } = batch(h.env, [LOGIN.join(' ')], cases.map((c) => c[1]));
    cases.forEach((c, i) => check(c, answers[i]!));
    expect(status).toBe(1);
    expect(objectCount(token)).toBe(before);
    for (const p of ['/proc/kmu11-attr', '/sys/kmu11.pem', join(dir, 'no'), '/tmp/kmu11-never']) expect(existsSync(p), p).toBe(false);
  });

  it('the same lines before any login still fail cleanly, and create nothing', () => {
    const before = objectCount(token);
    const cases = LOGGED_IN.filter((c) => !c[0].startsWith('login') && !/password|-p and/.test(c[0]));
    const { answers } = batch(h.env, [], cases.map((c) => c[1]));
    cases.forEach((c, i) => {
      expect(answers[i]!.code).not.toBe('0x00');
      expect(answers[i]!.text).not.toMatch(/^\s+at /m);
      expect(UNPRINTABLE.test(answers[i]!.text), c[0]).toBe(false);
    });
    expect(objectCount(token)).toBe(before);
  });

  it.each(STARTUP_CASES())('start-up: %s', (_name, args, env, error) => {
    const r = kmu11(args, { env: { ...h.env, ...env } });
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(error);
    expect(lines[0]!.startsWith('kmu11: ')).toBe(true);
    expect(UNPRINTABLE.test(r.stderr + r.stdout)).toBe(false);
  });

  it('kill-free: a home on /proc fails at once instead of spinning', () => {
    const started = Date.now();
    const r = kmu11(['--home', '/proc/kmu11', 'singlecmd', ...LOGIN], { env: h.env });
    expect(r.status).toBe(2);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

type Startup = [name: string, args: string[], env: NodeJS.ProcessEnv, error: RegExp];
var STARTUP: Startup[] = [];
function STARTUP_CASES(): Startup[] {
  if (STARTUP.length) return STARTUP;
  const base = mkdtempSync(join(tmpdir(), 'kmu11-homes-'));
  const file = join(base, 'a-file');
  writeFileSync(file, 'not a directory');
  symlinkSync('/nonexistent/kmu11-home', join(base, 'dangling'));
  symlinkSync(join(base, 'loop-b'), join(base, 'loop-a'));
  symlinkSync(join(base, 'loop-a'), join(base, 'loop-b'));
  mkdirSync(join(base, 'open-home'), { mode: 0o755 });
  chmodSync(join(base, 'open-home'), 0o755);
  writeFileSync(join(base, 'bad.json'), '{ not json');
  writeFileSync(join(base, 'array.json'), '[]');
  writeFileSync(join(base, 'unknown-key.json'), '{"pin": "1234"}');
  writeFileSync(join(base, 'empty-module.json'), '{"module": ""}');
  writeFileSync(join(base, 'generic-no-module.json'), '{"backend": "generic"}');
  writeFileSync(join(base, 'fake.so'), 'ELF? no');
  const q = ['singlecmd', 'findKey'];
  const home = (h: string): string[] => ['--home', h, ...q];
  STARTUP = [
    ['home on /proc', home('/proc/kmu11'), {}, /on \/proc, a kernel file system/],
    ['home deep in /proc', home('/proc/kmu11/a/b'), {}, /on \/proc/],
    ['home = /proc/self', home('/proc/self'), {}, /on \/proc/],
    ['home = /proc', home('/proc'), {}, /on \/proc/],
    ['home on /sys', home('/sys/kmu11'), {}, /on \/sys, a kernel file system/],
    ['home = /sys/kernel', home('/sys/kernel'), {}, /on \/sys/],
    ['home from KMU11_HOME on /proc', q, { KMU11_HOME: '/proc/kmu11' }, /on \/proc/],
    ['home is a file', home(file), {}, /is not a directory/],
    ['home under a file', home(join(file, 'sub')), {}, /is not a directory/],
    ['home is /dev/null', home('/dev/null'), {}, /is not a directory/],
    ['home is a dangling symlink', home(join(base, 'dangling')), {}, /is a symbolic link to \/nonexistent\/kmu11-home, which does not exist/],
    ['home under a dangling symlink', home(join(base, 'dangling', 'x')), {}, /is a symbolic link to/],
    ['home is a symlink loop', home(join(base, 'loop-a')), {}, /too many levels of symbolic links/],
    ['home open to others', home(join(base, 'open-home')), {}, /is mode 0755: .*fix it with: chmod 700/],
    ['home with a newline', home(join(base, 'new\nline')), {}, /must not contain a newline/],
    ['--home without a value', ['--home'], {}, /--home needs a value/],
    ['--home empty', ['--home', '', ...q], {}, /--home needs a value/],
    ['--module without a value', ['--module'], {}, /--module needs a value/],
    ['--token empty', ['--token', '', ...q], {}, /--token needs a value/],
    ['module missing', ['--module', '/nonexistent/lib.so', ...q], {}, /not found: \/nonexistent\/lib\.so/],
    ['module is a text file', ['--module', join(base, 'fake.so'), ...q], {}, /cannot load PKCS#11 module/],
    ['module is a directory', ['--module', base, ...q], {}, /cannot load PKCS#11 module/],
    ['module on /proc', ['--module', '/proc/self/status', ...q], {}, /cannot load PKCS#11 module/],
    ['config file missing', q, { KMU11_CONFIG: join(base, 'missing.json') }, /cannot read config file .*: no such file/],
    ['config file is a directory', q, { KMU11_CONFIG: base }, /is a directory/],
    ['config file not JSON', q, { KMU11_CONFIG: join(base, 'bad.json') }, /is not valid JSON/],
    ['config file an array', q, { KMU11_CONFIG: join(base, 'array.json') }, /must hold a JSON object/],
    ['config file unknown key', q, { KMU11_CONFIG: join(base, 'unknown-key.json') }, /unknown key "pin"/],
    ['config file empty module', q, { KMU11_CONFIG: join(base, 'empty-module.json') }, /"module" must be a non-empty string/],
    ['config generic without module', q, { KMU11_CONFIG: join(base, 'generic-no-module.json') }, /needs a "module" path/],
    ['SoftHSM missing', q, { KMU11_SOFTHSM_MODULE: '/nonexistent/libsofthsm2.so', KMU11_HOME: join(base, 'h1') }, /SoftHSMv2 not found/],
    ['unknown global option', ['--bogus', ...q], {}, /unknown option --bogus/],
    ['unknown global option with ESC', ['--\u001b[2J', ...q], {}, /unknown option --\\x1b\[2J/],
    ['unknown mode', ['frobnicate'], {}, /unknown mode 'frobnicate'/],
    ['unknown mode with bidi', ['\u202eedom'], {}, /unknown mode '\\u\{202e\}edom'/],
  ];
  return STARTUP;
}
