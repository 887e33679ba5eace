// Configuration precedence and config-file errors, and the generic backend against a real
// SoftHSM token made by softhsm2-util (see helpers/softhsm.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmuError, SetupError } from '../src/kmu/errors.js';
import { RC } from '../src/kmu/returnCodes.js';
import type { Backend } from '../src/backend/backend.js';
import { CLOUDHSM_MODULE, openBackend, resolveConfig } from '../src/backend/index.js';
import { cleanEnv, runChild } from './helpers/child.js';
import { makeToken, notPkcs11Library, softhsmModule, type TestToken } from './helpers/softhsm.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

/** A SetupError whose message is one line (the CLI prints it as "kmu11: <message>") and matches `re`. */
function expectSetup(e: unknown, re: RegExp): void {
  expect(e).toBeInstanceOf(SetupError);
  const msg = (e as Error).message;
  expect(msg).not.toContain('\n');
  expect(msg).not.toMatch(/^kmu11: /);
  expect(msg).toMatch(re);
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kmu11-config-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('config', () => {
  it('defaults: embedded backend, home ~/.kmu11, no token', () => {
    const c = resolveConfig({}, cleanEnv());
    expect(c).toMatchObject({ backend: 'embedded', home: join(homedir(), '.kmu11'), module: undefined, token: undefined });
    expect(c.sources).toEqual({ module: 'default', token: 'default', home: 'default' });
  });

  it('overrides beat env, env beats the config file', () => {
    const home = tempDir();
    writeFileSync(join(home, 'config.json'), JSON.stringify({ module: '/file/libx.so', token: 'file-token' }));
    const fileOnly = resolveConfig({}, cleanEnv({ KMU11_HOME: home }));
    expect(fileOnly).toMatchObject({ backend: 'generic', module: '/file/libx.so', token: 'file-token', home, configFile: join(home, 'config.json') });
    expect(fileOnly.sources).toEqual({ module: 'file', token: 'file', home: 'env' });

    const env = cleanEnv({ KMU11_HOME: home, KMU11_MODULE: '/env/liby.so', KMU11_TOKEN: 'env-token' });
    expect(resolveConfig({}, env)).toMatchObject({ module: '/env/liby.so', token: 'env-token' });

    const over = resolveConfig({ module: '/cli/libz.so', token: 'cli-token' }, env);
    expect(over).toMatchObject({ module: '/cli/libz.so', token: 'cli-token' });
    expect(over.sources).toEqual({ module: 'override', token: 'override', home: 'env' });

    // --home moves where the config file is looked for.
    const other = tempDir();
    expect(resolveConfig({ home: other }, cleanEnv({ KMU11_HOME: home }))).toMatchObject({ home: other, module: undefined, backend: 'embedded' });
    // Empty values count as unset.
    expect(resolveConfig({ module: '' }, cleanEnv({ KMU11_HOME: home, KMU11_MODULE: '' }))).toMatchObject({ module: '/file/libx.so' });
  });

  it('KMU11_CONFIG names the file; a named file must exist, the default one need not', () => {
    const d = tempDir();
    const file = join(d, 'kmu.json');
    writeFileSync(file, JSON.stringify({ token: 't1' }));
    expect(resolveConfig({}, cleanEnv({ KMU11_CONFIG: file, KMU11_HOME: d }))).toMatchObject({ token: 't1', configFile: file });
    expect(resolveConfig({ config: file }, cleanEnv({ KMU11_HOME: d }))).toMatchObject({ token: 't1' });
    expectSetup(caught(() => resolveConfig({}, cleanEnv({ KMU11_CONFIG: join(d, 'nope.json') }))), /cannot read config file .*nope\.json: no such file$/);
    expect(resolveConfig({}, cleanEnv({ KMU11_HOME: join(d, 'empty-home') })).configFile).toBeUndefined();
  });

  it('picks the backend from the module, or from "backend" in the file', () => {
    expect(resolveConfig({ module: '/x/libsofthsm2.so' }, cleanEnv()).backend).toBe('generic');
    expect(resolveConfig({ module: CLOUDHSM_MODULE }, cleanEnv()).backend).toBe('cloudhsm');
    expect(resolveConfig({ module: '/elsewhere/libcloudhsm_pkcs11.so' }, cleanEnv()).backend).toBe('cloudhsm');
    const d = tempDir();
    writeFileSync(join(d, 'config.json'), JSON.stringify({ backend: 'cloudhsm' }));
    expect(resolveConfig({}, cleanEnv({ KMU11_HOME: d }))).toMatchObject({ backend: 'cloudhsm', module: CLOUDHSM_MODULE });
    writeFileSync(join(d, 'config.json'), JSON.stringify({ backend: 'cloudhsm', module: '/opt/x/renamed.so' }));
    expect(resolveConfig({}, cleanEnv({ KMU11_HOME: d }))).toMatchObject({ backend: 'cloudhsm', module: '/opt/x/renamed.so' });
    // A module from env/CLI brings its own kind; the file's "backend" described the file's module.
    expect(resolveConfig({ module: '/x/libsofthsm2.so' }, cleanEnv({ KMU11_HOME: d })).backend).toBe('generic');
    writeFileSync(join(d, 'config.json'), JSON.stringify({ backend: 'generic' }));
    expectSetup(caught(() => resolveConfig({}, cleanEnv({ KMU11_HOME: d }))), /"backend": "generic" needs a "module" path/);
  });

  it('resolves a relative module path against the config file, others against the cwd', () => {
    const d = tempDir();
    writeFileSync(join(d, 'config.json'), JSON.stringify({ module: 'lib/mod.so' }));
    expect(resolveConfig({}, cleanEnv({ KMU11_HOME: d })).module).toBe(join(d, 'lib/mod.so'));
    expect(resolveConfig({}, cleanEnv({ KMU11_MODULE: 'rel.so' })).module).toBe(resolve('rel.so'));
  });

  it('rejects bad config files with one line naming the file and the problem', () => {
    const d = tempDir();
    const file = join(d, 'config.json');
    const env = cleanEnv({ KMU11_HOME: d });
    const cases: [string, RegExp][] = [
      ['{"module": "/x.so",', /config file .*config\.json is not valid JSON: /],
      ['', /config file .*config\.json is not valid JSON: /],
      ['[1, 2]', /config file .*config\.json must hold a JSON object/],
      ['null', /config file .*config\.json must hold a JSON object/],
      ['{"modul": "/x.so"}', /config file .*config\.json: unknown key "modul" \(allowed: module, token, backend, profile, cloudhsmCli, clientConfig, clusterId, servers, users, attest\)$/],
      ['{"module": 5}', /config file .*config\.json: "module" must be a non-empty string, not 5$/],
      ['{"token": ""}', /config file .*config\.json: "token" must be a non-empty string, not ""$/],
      ['{"backend": "embedded"}', /config file .*config\.json: "backend" must be "generic" or "cloudhsm", not "embedded"$/],
    ];
    for (const [text, re] of cases) {
      writeFileSync(file, text);
      expectSetup(caught(() => resolveConfig({}, env)), re);
    }
    rmSync(file);
    mkdirSync(file);
    expectSetup(caught(() => resolveConfig({}, env)), /cannot read config file .*config\.json: is a directory$/);
  });
});

describe('generic backend (SoftHSM token made by softhsm2-util)', () => {
  let tok: TestToken;
  let backend: Backend;

  beforeAll(async () => {
    tok = makeToken('kmu11-test');
    // A second token, so that choosing needs a label. Made before this process loads SoftHSM.
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'second', '--so-pin', '11112222', '--pin', '33334444'], {
      env: tok.env,
      stdio: 'pipe',
    });
    backend = await openBackend({ module: tok.module, token: tok.label }, cleanEnv());
  });
  afterAll(async () => {
    await backend?.close();
    tok?.cleanup();
  });

  it('opens the labelled token', async () => {
    expect(backend.kind).toBe('generic');
    expect(backend.capabilities).toEqual({ sharing: false, quorum: false, servers: 1, attestation: true });
    expect(backend.listUsers).toBeUndefined();
    const info = await backend.info();
    expect(info).toMatchObject({ backend: 'generic', modulePath: tok.module, token: { label: 'kmu11-test' } });
    expect(info.home).toBeUndefined();
    expect(info.library.cryptokiVersion).toMatch(/^\d+\.\d+$/);
  });

  it('loginHSM -u CU -s <name> -p <user PIN>', async () => {
    expect(await backend.login('CU', 'app', tok.userPin)).toEqual({ id: 0, name: 'app', type: 'CU' });
    expect(backend.user).toEqual({ id: 0, name: 'app', type: 'CU' });
    expect(backend.takeWarnings()).toEqual([]);
    const again = await rejected(backend.login('CU', 'app', tok.userPin));
    expect(again).toBeInstanceOf(KmuError);
    expect((again as KmuError).code).toBe(RC.ALREADY_LOGGED_IN);
    await backend.logout();
    expect(backend.user).toBeNull();
    const none = await rejected(backend.logout());
    expect((none as KmuError).code).toBe(RC.NOT_LOGGED_IN);
  });

  it('wrong PIN is 0xa5 with the CKR name; other user types are 0xdb', async () => {
    const wrong = await rejected(backend.login('CU', 'app', '00000000'));
    expect(wrong).toBeInstanceOf(KmuError);
    expect((wrong as KmuError).code).toBe(RC.LOGIN_FAILED);
    expect((wrong as KmuError).ckr).toBe('CKR_PIN_INCORRECT');
    const type = await rejected(backend.login('CO', 'app', tok.soPin));
    expect((type as KmuError).code).toBe(RC.INVALID_USER_TYPE);
    expect(backend.user).toBeNull();
    // Still usable afterwards.
    await backend.login('CU', 'app', tok.userPin);
    await backend.logout();
  });

  it('needs a label when the module has several tokens, and names them', async () => {
    expectSetup(await rejected(openBackend({ module: tok.module }, cleanEnv())), /has 2 tokens \("kmu11-test" serial \w+ slot \d+, "second" serial \w+ slot \d+\); choose one with KMU11_TOKEN/);
    expectSetup(await rejected(openBackend({ module: tok.module, token: 'absent' }, cleanEnv())), /no token labelled "absent" in .*\(tokens: "kmu11-test" serial \w+ slot \d+, "second" serial \w+ slot \d+\)$/);
    const viaEnv = await openBackend({}, cleanEnv({ KMU11_MODULE: tok.module, KMU11_TOKEN: 'second' }));
    expect((await viaEnv.info()).token.label).toBe('second');
    await viaEnv.close();
  });

  it('uses the only token when no label is given (own process)', async () => {
    const one = makeToken('only-one', { setProcessEnv: false });
    try {
      const r = await runChild(
        `const b = await kmu.openBackend({ module: input.module });
         const info = await b.info();
         const u = await b.login('CU', 'x', input.pin);
         await b.close();
         return { label: info.token.label, u };`,
        { module: one.module, pin: one.userPin },
        cleanEnv({ SOFTHSM2_CONF: one.conf }),
      );
      expect(r).toEqual({ label: 'only-one', u: { id: 0, name: 'x', type: 'CU' } });
    } finally {
      one.cleanup();
    }
  });

  it('a missing or unloadable module is one SetupError line naming the path', async () => {
    expectSetup(await rejected(openBackend({ module: '/nonexistent/libfoo.so' }, cleanEnv())), /^PKCS#11 module not found: \/nonexistent\/libfoo\.so$/);
    const notLib = join(tempDir(), 'not-a-library.so');
    writeFileSync(notLib, 'this is not an ELF file\n');
    expectSetup(await rejected(openBackend({ module: notLib }, cleanEnv())), new RegExp(`^cannot load PKCS#11 module ${notLib}: (file too short|invalid ELF header)$`));
    const lib = notPkcs11Library();
    expectSetup(await rejected(openBackend({ module: lib }, cleanEnv())), new RegExp(`^cannot load PKCS#11 module ${lib}: not a PKCS#11 library \\(it has no C_GetFunctionList\\)$`));
  });
});

describe('cloudhsm backend', () => {
  it('refuses clearly when the library is missing', async () => {
    expectSetup(
      await rejected(openBackend({ module: '/nonexistent/libcloudhsm_pkcs11.so' }, cleanEnv())),
      /^CloudHSM PKCS#11 library not found: \/nonexistent\/libcloudhsm_pkcs11\.so$/,
    );
  });
});

// Guard against a SoftHSM install path the helper and the backend disagree on.
it('finds the same SoftHSM module as the test helper', async () => {
  const { findSoftHsmModule } = await import('../src/backend/index.js');
  expect(findSoftHsmModule(cleanEnv())).toBe(softhsmModule());
});
