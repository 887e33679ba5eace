// The library's typed methods: one a command of the table, each typed in CommandMap (src/api.ts),
// options read by the flags' own rules (a value of the wrong JavaScript type is a UsageError
// naming the option, and nothing reaches the token); and the login hash's cost parameters.
import { createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/commands/index.js';
import { hashPassword, verifyPassword } from '../src/backend/users.js';
import { Kmu, KmuError, RC, UsageError } from '../src/index.js';

let dir: string;
let kmu: Kmu;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-typed-'));
  kmu = await Kmu.open({ home: join(dir, 'home') });
  await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
});
afterAll(async () => {
  await kmu?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The members of CommandMap in src/api.ts, read by the TypeScript compiler. */
function commandMapKeys(): string[] {
  const file = new URL('../src/api.ts', import.meta.url);
  const source = ts.createSourceFile('api.ts', readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const map = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'CommandMap');
  return map!.members.map((m) => (m.name as ts.Identifier).text);
}

describe('one typed method a command', () => {
  const libraryCommands = COMMANDS.map((c) => c.name).filter((n) => n !== 'exit' && n !== 'help');

  it('every command of the table (but the shell\'s exit and help) has a CommandMap entry and a method', () => {
    expect(commandMapKeys().sort()).toEqual([...libraryCommands].sort());
    for (const name of libraryCommands) expect(typeof (kmu as unknown as Record<string, unknown>)[name]).toBe('function');
  });

  it('runs the commands that had no method before: getKeyInfo, exportPubKey, setAttribute, deleteKey, Error2String', async () => {
    const pair = await kmu.genECCKeyPair({ curve: 'P-256', label: 'typed', sess: true });
    expect(await kmu.getKeyInfo({ handle: pair.privateKey })).toMatchObject({ handle: pair.privateKey, owner: 2, shared: [], mValue: 0 });

    const out = join(dir, 'typed.pem');
    const exported = await kmu.exportPubKey({ handle: pair.publicKey, out });
    expect(exported.file).toBe(out);
    expect(createPublicKey(readFileSync(out)).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    expect(await kmu.findKey({ sess: 0 })).not.toContain(pair.privateKey);
    expect(await kmu.setAttribute({ handle: pair.privateKey, attribute: 1, value: 1 })).toMatchObject({ handle: pair.privateKey, value: 1 });
    expect(await kmu.findKey({ sess: 0 })).toContain(pair.privateKey);

    expect(await kmu.deleteKey({ handle: pair.privateKey })).toEqual({ handle: pair.privateKey });
    expect(await kmu.findKey({ label: 'typed' })).toEqual([pair.publicKey]);
    const gone = await kmu.getKeyInfo({ handle: pair.privateKey }).catch((e) => e);
    expect(gone).toBeInstanceOf(KmuError);

    expect(await kmu.Error2String({ code: 0xdb })).toEqual({ code: 0xdb, text: 'HSM Error: Invalid User Type.' });
    expect((await kmu.listAttributes()).attributes.length).toBeGreaterThan(10);
  });
});

describe('options read by the flag rules', () => {
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['a numeric label', () => kmu.genECCKeyPair({ curve: 2, label: 42 as unknown as string }), /genECCKeyPair: option 'label' \(-l\) takes a string, not number 42/],
    ["nex: 'yes'", () => kmu.genECCKeyPair({ curve: 2, label: 'x', nex: 'yes' as unknown as boolean }), /option 'nex' \(-nex\) is a switch: true or false, not string "yes"/],
    ['a handle as text', () => kmu.deleteKey({ handle: '5' as unknown as number }), /deleteKey: option 'handle' \(-k\) takes a number, not string "5"/],
    ['a fractional handle', () => kmu.getKeyInfo({ handle: 1.5 }), /-k takes a key handle/],
    ['users as text', () => kmu.genECCKeyPair({ curve: 2, label: 'x', users: '4,6' as unknown as number[] }), /option 'users' \(-u\) takes an array of numbers, not string "4,6"/],
    ['a curve object', () => kmu.genECCKeyPair({ curve: { id: 2 } as unknown as number, label: 'x' }), /option 'curve' \(-i\) takes a value, not an object/],
    ['null', () => kmu.genECCKeyPair({ curve: 2, label: null as unknown as string }), /option 'label' \(-l\) takes a value, not null/],
    ['a label array', () => kmu.genECCKeyPair({ curve: 2, label: ['a', 'b'] as unknown as string }), /option 'label' \(-l\) takes a string, not an array/],
    ['NaN', () => kmu.genECCKeyPair({ curve: 2, label: 'x', mValue: Number.NaN }), /option 'mValue' \(-m_value\) takes a finite number/],
    ['an unknown option', () => kmu.getKeyInfo({ key: 5 } as unknown as { handle: number }), /getKeyInfo has no option 'key'/],
    ['a missing required option', () => kmu.exportPubKey({ handle: 1 } as unknown as { handle: number; out: string }), /-out .*is required/],
    ['the same value rules as the flag', () => kmu.genECCKeyPair({ curve: 2, label: '' }), /-l needs a non-empty label/],
  ];

  it.each(cases)('refuses %s with a UsageError naming the option, and makes nothing', async (_what, call, message) => {
    const before = await kmu.findKey();
    const e = await call().catch((x) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.code).toBe(RC.INVALID_INPUT);
    expect(e.message).toMatch(message);
    expect(await kmu.findKey()).toEqual(before);
  });

  it('takes what the flags take: a curve by id or name, false switches left out, undefined options ignored', async () => {
    const a = await kmu.genECCKeyPair({ curve: 'secp384r1', label: 'ok', nex: false, id: undefined, sess: true });
    expect(a.curve.id).toBe(14);
    expect(a.privateTemplate).toMatchObject({ CKA_EXTRACTABLE: true, CKA_TOKEN: false });
  });
});

describe('require()', () => {
  it('loads the CommonJS bundle with the same API', () => {
    const cjs = join(process.cwd(), 'dist', 'index.cjs');
    expect(existsSync(cjs)).toBe(true);
    const out = execFileSync(
      process.execPath,
      ['-e', `const k = require(${JSON.stringify(cjs)}); (async () => { const kmu = await k.Kmu.open({ home: process.argv[1] }); await kmu.loginHSM({ user: 'crypto_user', password: 'password' }); const e = await kmu.deleteKey({ handle: 'x' }).catch((e) => e); console.log(JSON.stringify({ usage: e instanceof k.UsageError, methods: ['genECCKeyPair', 'getKeyInfo', 'exportPubKey', 'setAttribute'].map((m) => typeof kmu[m]) })); await kmu.close(); })();`, join(dir, 'cjs-home')],
      { encoding: 'utf8', env: { ...process.env, KMU11_MODULE: '', KMU11_TOKEN: '', KMU11_CONFIG: '' } },
    );
    expect(JSON.parse(out)).toEqual({ usage: true, methods: ['function', 'function', 'function', 'function'] });
  });
});

describe('login password hashes', () => {
  it('are made at scrypt 2^12 now, and the 2^15 hashes of older homes still verify', async () => {
    const now = await hashPassword('correct horse');
    expect(now).toMatch(/^\$scrypt\$ln=12,r=8,p=1\$/);
    expect(await verifyPassword('correct horse', now)).toBe(true);
    expect(await verifyPassword('wrong horse', now)).toBe(false);
    // Made by the previous release (N = 2^15, r = 8, p = 1) for the password "password".
    const { scryptSync, randomBytes } = await import('node:crypto');
    const salt = randomBytes(16);
    const old = `$scrypt$ln=15,r=8,p=1$${salt.toString('base64')}$${scryptSync('password', salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 2 ** 20 }).toString('base64')}`;
    expect(await verifyPassword('password', old)).toBe(true);
    expect(await verifyPassword('passwort', old)).toBe(false);
  });
});
