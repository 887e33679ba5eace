// The library's typed methods: one a command of the table, each typed in CommandMap (src/api.ts),
// options read by the flags' own rules (a value of the wrong JavaScript type is a UsageError
// naming the option, and nothing reaches the token); each entry's options checked against its
// command's flag table through the TypeScript checker; and the login hash's cost parameters.
import { createPrivateKey, createPublicKey, createVerify } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, findCommand } from '../src/commands/index.js';
import { readApiOptions } from '../src/commands/apiOptions.js';
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

/** Each CommandMap entry's options, as the TypeScript checker sees them: name, optional, type. */
function mappedOptions(): Map<string, Array<{ key: string; optional: boolean; type: ts.Type }>> & { checker: ts.TypeChecker } {
  const file = new URL('../src/api.ts', import.meta.url).pathname;
  const program = ts.createProgram([file], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts'], types: [] });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  const map = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'CommandMap')!;
  const out = new Map<string, Array<{ key: string; optional: boolean; type: ts.Type }>>();
  for (const entry of checker.getPropertiesOfType(checker.getTypeAtLocation(map))) {
    const options = checker.getTypeOfSymbol(checker.getPropertyOfType(checker.getTypeOfSymbol(entry), 'options')!);
    out.set(
      entry.name,
      checker.getPropertiesOfType(options).map((p) => ({
        key: p.name,
        optional: (p.flags & ts.SymbolFlags.Optional) !== 0,
        type: checker.getNonNullableType(checker.getTypeOfSymbol(p)),
      })),
    );
  }
  return Object.assign(out, { checker });
}

describe('CommandMap options are the flags, as strict as their readers', () => {
  // Where the library's options differ from the flags, on purpose.
  const NOT_OPTIONS: Record<string, string[]> = {
    loginHSM: ['hiddenPassword'], // -hpswd prompts an operator; a program passes the password
    findKey: ['uri'], // the method returns handles
    getCert: ['typeT'], // -t: the syntax block's spelling of -s
  };
  const REQUIRED: Record<string, Record<string, boolean>> = {
    loginHSM: { userType: false, password: true }, // the library logs in CUs; no prompt to fall back on
    genDSAKeyPair: { modulusBits: false }, // DEFAULTS in src/index.ts
    getCert: { type: true }, // -s or -t
    setAttribute: { value: true }, // without -v kmu prompts an operator
  };
  const mapped = mappedOptions();
  const { checker } = mapped;
  const probe = (name: string, key: string, value: unknown) => {
    try {
      readApiOptions(findCommand(name)!, { [key]: value });
      return true;
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return false;
    }
  };

  it.each([...mapped.keys()])('%s', (name) => {
    const command = findCommand(name)!;
    const options = mapped.get(name)!;
    expect(options.map((o) => o.key).sort()).toEqual(command.flags.map((f) => f.key).filter((k) => !NOT_OPTIONS[name]?.includes(k)).sort());
    for (const o of options) {
      const flag = command.flags.find((f) => f.key === o.key)!;
      const what = `${name} ${o.key} (${checker.typeToString(o.type)})`;
      expect(!o.optional, `${what} required`).toBe(REQUIRED[name]?.[o.key] ?? !!flag.required);
      const isBoolean = (o.type.flags & ts.TypeFlags.Boolean) !== 0 || checker.typeToString(o.type) === 'boolean';
      expect(isBoolean, `${what}: a switch is a boolean, a value is not`).toBe(!flag.parse);
      if (isBoolean) continue;
      // A closed set of numbers or strings: each one of them is taken, and no other small number is.
      const members = o.type.isUnion() ? o.type.types : [o.type];
      if (!members.every((m) => m.isLiteral())) continue;
      const values = members.map((m) => (m as ts.LiteralType).value);
      for (const v of values) expect(probe(name, o.key, v), `${what} takes ${String(v)}`).toBe(true);
      if (values.every((v) => typeof v === 'number'))
        for (let n = 0; n <= 70; n++) expect(probe(name, o.key, n), `${what} and ${n}`).toBe(values.includes(n));
    }
  });
});

describe('the key transfer and signing methods, on the embedded token', () => {
  it('genSymKey, exportPrivateKey (back into a PEM that matches exportPubKey), importPrivateKey, sign and verify', async () => {
    const aes = await kmu.genSymKey({ type: 31, size: 32, label: 'typed wrap', sess: true });
    expect(aes).toMatchObject({ type: 'AES', size: 32, token: false, template: { CKA_LABEL: 'typed wrap', CKA_VALUE_LEN: 32 } });
    expect(await kmu.findSingleKey({ handle: aes.handle })).toEqual({ handle: aes.handle, servers: 1 });

    const pair = await kmu.genECCKeyPair({ curve: 'P-256', label: 'typed export', sess: true });
    const keyFile = join(dir, 'typed-private.pem');
    expect(await kmu.exportPrivateKey({ key: pair.privateKey, wrapping: aes.handle, out: keyFile })).toEqual({ handle: pair.privateKey, file: keyFile, externalKey: false });
    const privateKey = createPrivateKey(readFileSync(keyFile));
    const pubFile = join(dir, 'typed-public.pem');
    await kmu.exportPubKey({ handle: pair.publicKey, out: pubFile });
    const spki = (k: Parameters<typeof createPublicKey>[0]) => createPublicKey(k).export({ type: 'spki', format: 'der' }).toString('hex');
    expect(spki(privateKey)).toBe(spki(readFileSync(pubFile)));
    expect(await kmu.IsValidKeyHandlefile({ file: keyFile })).toEqual({ file: keyFile, fake: false });

    const imported = await kmu.importPrivateKey({ file: keyFile, wrapping: aes.handle, label: 'typed import', sess: true });
    expect(imported).toMatchObject({ keyType: 'ec', token: false, template: { CKA_LABEL: 'typed import', CKA_SIGN: true } });

    // The imported key signs; the generated public key, and openssl's rules (Node's verifier), agree.
    const message = join(dir, 'typed-message');
    writeFileSync(message, 'pay 100 to bob\n');
    const sigFile = join(dir, 'typed-message.sig');
    const signed = await kmu.sign({ file: message, handle: imported.handle, mechanism: 17, out: sigFile });
    expect(signed).toMatchObject({ handle: imported.handle, mechanism: 'ECDSA_SHA256', file: sigFile });
    expect(readFileSync(sigFile).toString('hex')).toBe(signed.signature);
    expect(createVerify('sha256').update(readFileSync(message)).verify(readFileSync(pubFile), readFileSync(sigFile))).toBe(true);
    expect(await kmu.verify({ file: message, signature: sigFile, handle: pair.publicKey, mechanism: 17 })).toEqual({ handle: pair.publicKey, mechanism: 'ECDSA_SHA256', valid: true });

    writeFileSync(message, 'pay 900 to bob\n');
    const bad = await kmu.verify({ file: message, signature: sigFile, handle: pair.publicKey, mechanism: 17 }).catch((e) => e);
    expect(bad).toBeInstanceOf(KmuError);
    expect(bad.code).toBe(RC.BAD_PKCS_DATA);
  });

  it('aesWrapUnwrap round-trips a file, and getCert and genPBEKey refuse with KmuError', async () => {
    const aes = await kmu.genSymKey({ type: 31, size: 16, label: 'typed aes', sess: true });
    const plain = join(dir, 'typed-plain');
    writeFileSync(plain, Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
    const wrapped = await kmu.aesWrapUnwrap({ mode: 1, file: plain, wrapping: aes.handle, out: join(dir, 'typed-wrapped') });
    expect(wrapped).toMatchObject({ wrap: true, defaultIv: true });
    expect(readFileSync(wrapped.file).toString('hex')).toBe(wrapped.result);
    const back = await kmu.aesWrapUnwrap({ mode: 0, file: wrapped.file, wrapping: aes.handle, out: join(dir, 'typed-unwrapped') });
    expect(back.result).toBe('00112233445566778899aabbccddeeff');

    expect(await kmu.getCert({ file: join(dir, 'cert'), type: 4 }).catch((e) => e)).toBeInstanceOf(KmuError);
    const pbe = await kmu.genPBEKey({ label: 'pbe', password: 'secret', salt: 'salt', iterations: 1000 }).catch((e) => e);
    expect(pbe).toBeInstanceOf(KmuError);
    expect(pbe.code).toBe(RC.POLICY_VIOLATION);
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
    ['a key size as text', () => kmu.genSymKey({ type: 31, size: '32' as unknown as number, label: 'x' }), /genSymKey: option 'size' \(-s\) takes a number, not string "32"/],
    ['share: true', () => kmu.shareKey({ handle: 1, users: [3], share: true as unknown as 1 }), /shareKey: option 'share' \(-share\) takes a value, not boolean true/],
    ['a sign mechanism by name', () => kmu.sign({ file: 'm', handle: 1, mechanism: 'ECDSA_SHA256' as unknown as 17, out: 'o' }), /-m takes a signing mechanism/],
    ['an IV as a Buffer', () => kmu.wrapKey({ key: 1, wrapping: 2, out: 'o', mechanism: 5, noheader: true, iv: Buffer.alloc(8) as unknown as string }), /wrapKey: option 'iv' \(-i\) takes a value, not an object/],
    ['a wrapping handle as text', () => kmu.exportPrivateKey({ key: 1, wrapping: '2' as unknown as number, out: 'o' }), /exportPrivateKey: option 'wrapping' \(-w\) takes a number, not string "2"/],
    ['an aesWrapUnwrap mode as text', () => kmu.aesWrapUnwrap({ mode: '1' as unknown as 1, file: 'f', wrapping: 2 }), /aesWrapUnwrap: option 'mode' \(-m\) takes a number, not string "1"/],
  ];

  it.each(cases)('refuses %s with a UsageError naming the option, and makes nothing', async (_what, call, message) => {
    const before = await kmu.findKey();
    const e = (await call().catch((x: unknown) => x)) as UsageError;
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
