// What `npm pack` ships, installed as a user installs it: the tarball carries the linux-x64
// prebuild, installs with --ignore-scripts on a PATH with no make, g++ or cc, and runs; without
// the addon it says in one line what to run (exit 2); import and require both work; its types
// check in a TypeScript project that has no @types/node, and hold only the public API.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let dir: string;
let bin: string; // a PATH holding node, npm and sh only
let project: string;
let files: string[];

function npmCache(): string {
  return execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
}

/** A process in the temp project with nothing from this machine's PATH but node, npm and sh. */
function run(cmd: string, args: string[], extra: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, {
    cwd: project,
    env: { PATH: bin, HOME: join(dir, 'user'), KMU11_HOME: join(dir, 'kmu11-home'), ...extra },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-package-'));
  bin = join(dir, 'bin');
  mkdirSync(bin);
  mkdirSync(join(dir, 'user'));
  for (const tool of ['node', 'npm', 'sh']) {
    const path = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    symlinkSync(path, join(bin, tool));
  }
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  ) as Array<{ filename: string; files: Array<{ path: string }> }>;
  files = packed[0]!.files.map((f) => f.path);
  project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // The dependencies come from npm's cache (npm ci filled it): the test needs no network.
  const install = run('npm', [
    'install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--cache', npmCache(), join(dir, packed[0]!.filename),
  ]);
  expect(install.stderr).not.toMatch(/ERR!/);
  expect(install.status).toBe(0);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the linux-x64 prebuild, the bundles and the types, and no build tree', () => {
    expect(files).toContain('prebuilds/linux-x64/kmu11_pkcs11.napi.glibc.node');
    for (const f of ['dist/kmu11.cjs', 'dist/kmu11-cli.cjs', 'dist/kmu11-cli.cjs.v8cache', 'dist/index.cjs', 'dist/index.js', 'dist/index.d.ts', 'dist/api.d.ts', 'binding.gyp', 'native/addon.cc'])
      expect(files).toContain(f);
    expect(files.filter((f) => /^(build|test|bench|scripts)\//.test(f) || f.endsWith('.map'))).toEqual([]);
  });
});

describe('installed from the tarball with --ignore-scripts, no compiler on PATH', () => {
  it('has no compiler to fall back on', () => {
    expect(run('sh', ['-c', 'command -v make g++ cc gcc c++ || echo none']).stdout.trim()).toBe('none');
    expect(existsSync(join(project, 'node_modules/kmu11/build'))).toBe(false);
  });

  it('runs kmu11 info and --version', () => {
    const info = run('node_modules/.bin/kmu11', ['info']);
    expect(info.stderr).toBe('');
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/^backend:\s+embedded$/m);
    expect(info.stdout).toContain(`home:          ${join(dir, 'kmu11-home')}`);
    const version = run('node_modules/.bin/key_mgmt_util', ['--version']);
    expect(version).toEqual({ status: 0, stdout: `kmu11 ${PKG.version}\n`, stderr: '' });
  });

  it('makes a key in one singlecmd run', () => {
    const r = run('node_modules/.bin/kmu11', ['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'password', 'genECCKeyPair', '-i', '2', '-l', 'pkg']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/public key handle: \d+\s+private key handle: \d+/);
  });

  it('is reachable by import and by require', () => {
    const body = `const k = MOD; const kmu = await k.Kmu.open(); const i = await kmu.info(); await kmu.close();
      console.log(JSON.stringify({ backend: i.backend, curves: k.CURVES.length, usage: new k.UsageError('x') instanceof Error, methods: typeof kmu.deleteKey }));`;
    const expected = { backend: 'embedded', curves: 15, usage: true, methods: 'function' };
    const esm = run('node', ['--input-type=module', '-e', body.replace('MOD', "await import('kmu11')")]);
    expect(esm.stderr).toBe('');
    expect(JSON.parse(esm.stdout)).toEqual(expected);
    const cjs = run('node', ['-e', `(async () => { ${body.replace('MOD', "require('kmu11')")} })()`]);
    expect(cjs.stderr).toBe('');
    expect(JSON.parse(cjs.stdout)).toEqual(expected);
  });

  it('without a loadable addon: one line saying what to run, exit 2; the library throws AddonLoadError', () => {
    const prebuilds = join(project, 'node_modules/kmu11/prebuilds');
    renameSync(prebuilds, prebuilds + '.away');
    try {
      const r = run('node_modules/.bin/kmu11', ['info']);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^kmu11: the native addon is not built for linux-x64: run `npm rebuild kmu11` [^\n]*\n$/);
      const lib = run('node', ['-e', "try { require('kmu11') } catch (e) { console.log(e.name + ': ' + e.message) }"]);
      expect(lib.stdout).toMatch(/^AddonLoadError: kmu11: the native addon is not built for linux-x64: run `npm rebuild kmu11`/);
      // A file that is there but is no addon: the loader's reason, still one line.
      mkdirSync(join(prebuilds, 'linux-x64'), { recursive: true });
      writeFileSync(join(prebuilds, 'linux-x64', 'kmu11_pkcs11.napi.glibc.node'), 'not an ELF file');
      const bad = run('node_modules/.bin/kmu11', ['singlecmd', 'help']);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/^kmu11: the native addon \S+ does not load \([^\n]*\): run `npm rebuild kmu11`[^\n]*\n$/);
    } finally {
      rmSync(prebuilds, { recursive: true, force: true });
      renameSync(prebuilds + '.away', prebuilds);
    }
  });
});

describe('the published types', () => {
  /** Every .d.ts the entry reaches through relative imports and re-exports. */
  function reachable(entry: string): string[] {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g))
        visit(resolve(dirname(file), m[1]!.replace(/\.js$/, '.d.ts')));
    };
    visit(entry);
    return [...seen];
  }

  it('reach only the API: nothing of p11, backend or the command internals, and no Node types', () => {
    const dist = join(project, 'node_modules/kmu11/dist');
    const reached = reachable(join(dist, 'index.d.ts')).map((f) => f.slice(dist.length + 1)).sort();
    expect(reached.filter((f) => /^(p11|backend|commands|cli)\//.test(f))).toEqual([]);
    expect(reached).toContain('api.d.ts');
    for (const f of reached) expect(readFileSync(join(dist, f), 'utf8')).not.toMatch(/\bBuffer\b|\bNodeJS\b|node:/);
  });

  it('type-check a consumer without @types/node, and catch options of the wrong type', () => {
    expect(existsSync(join(project, 'node_modules/@types'))).toBe(false);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'], types: [], noEmit: true, skipLibCheck: false },
        files: ['consumer.mts'],
      }),
    );
    writeFileSync(
      join(project, 'consumer.mts'),
      `import { Kmu, KmuError, UsageError, RC, CURVES, type CommandMap, type KeyPairResult } from 'kmu11';
const kmu = await Kmu.open({ home: '/tmp/x' });
await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
const pair: KeyPairResult = await kmu.genECCKeyPair({ curve: 'P-256', label: 'signer', id: 'k1', nex: true, users: [4, 6] });
const dsa = await kmu.genDSAKeyPair({ label: 'd' });
const handles: number[] = await kmu.findKey({ label: 'signer' });
const info = await kmu.getKeyInfo({ handle: pair.privateKey });
const owner: number = info.owner;
const pem: string = (await kmu.exportPubKey({ handle: pair.publicKey, out: 'pub.pem' })).pem;
await kmu.setAttribute({ handle: dsa.privateKey, attribute: 1, value: 1 });
const dump = await kmu.getAttribute({ handle: pair.privateKey, attribute: 512 });
await kmu.deleteKey({ handle: pair.publicKey });
const text: string | null = (await kmu.Error2String({ code: 0xdb })).text;
const r = await kmu.run('findKey', { cls: 3 });
const n: number = r.code + handles.length + owner + pem.length + dump.size + CURVES.length + RC.SUCCESS + (text?.length ?? 0) + r.data.handles.length;
const o: CommandMap['deleteKey']['options'] = { handle: 1 };
let why: string | undefined = String(n);
try { await kmu.deleteKey(o); } catch (e) { if (e instanceof KmuError) why = e.ckr ?? String(e.code); else if (e instanceof UsageError) why = e.message; }
export { why };
await kmu.close();
`,
    );
    const good = run('node', [TSC, '-p', 'tsconfig.json']);
    expect(good.stdout + good.stderr).toBe('');
    expect(good.status).toBe(0);

    // A CommonJS consumer (require) gets the same types.
    writeFileSync(
      join(project, 'consumer.cts'),
      `import kmu11 = require('kmu11');
async function main(): Promise<number> {
  const kmu = await kmu11.Kmu.open();
  const { handle } = await kmu.deleteKey({ handle: 1 });
  return handle + kmu11.RC.SUCCESS;
}
export = main;
`,
    );
    const options = { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'], types: [], noEmit: true, skipLibCheck: false };
    writeFileSync(join(project, 'tsconfig.cjs.json'), JSON.stringify({ compilerOptions: options, files: ['consumer.cts'] }));
    const cjs = run('node', [TSC, '-p', 'tsconfig.cjs.json']);
    expect(cjs.stdout + cjs.stderr).toBe('');
    expect(cjs.status).toBe(0);

    writeFileSync(
      join(project, 'consumer.mts'),
      `import { Kmu } from 'kmu11';
const kmu = await Kmu.open();
await kmu.deleteKey({ handle: '5' });
await kmu.genECCKeyPair({ curve: 2, label: 42 });
await kmu.genECCKeyPair({ curve: 2, label: 'x', nex: 'yes' });
await kmu.getKeyInfo({ key: 5 });
`,
    );
    const bad = run('node', [TSC, '-p', 'tsconfig.json']);
    expect(bad.status).not.toBe(0);
    const errors = bad.stdout.split('\n').filter((l) => /error TS/.test(l));
    expect(errors.map((l) => /consumer\.mts\((\d+),/.exec(l)?.[1])).toEqual(['3', '4', '5', '6']);
  });
});
