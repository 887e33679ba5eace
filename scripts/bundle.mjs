// Bundles what ships beside tsc's dist/: the CLI as one file (dist/kmu11-cli.cjs, run by the
// launcher dist/kmu11.cjs with V8's code cache: a one-shot run loads one file instead of ~80
// modules, mostly precompiled) and the library for require() (dist/index.cjs).
// CommonJS because Node 20 starts a CommonJS main script faster than an ES module one.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  legalComments: 'none',
  // The addon and package.json are found relative to the bundle.
  define: { __KMU11_VERSION__: JSON.stringify(version), 'import.meta.url': '__kmu11_url' },
  banner: { js: "const __kmu11_url = require('node:url').pathToFileURL(__filename).href;" },
};

// Builtins that pull in dozens of Node's internal modules (crypto, streams, net, readline):
// in the CLI they load at first use, so `kmu11 singlecmd help` or `--version` never compiles them.
const LAZY = ['node:crypto', 'node:net', 'node:readline', 'node:timers/promises', 'node:child_process', 'node:fs/promises'];
const LAZY_HELPER = `const __kmu11_lazy = (id) => { let m; return new Proxy({}, { get: (_, k) => (m ??= require(id))[k], has: (_, k) => k in (m ??= require(id)) }); };
const __kmu11_lazyDefault = (id) => { let m; return { get default() { return (m ??= require(id)); } }; };`;

function lazyBuiltins(text) {
  let out = text;
  for (const id of LAZY) {
    const q = JSON.stringify(id);
    out = out.split(`__toESM(require(${q}), 1)`).join(`__kmu11_lazyDefault(${q})`);
    out = out.split(`__toESM(require(${q}))`).join(`__kmu11_lazyDefault(${q})`);
    out = out.split(`require(${q})`).join(`__kmu11_lazy(${q})`);
  }
  return out;
}

const [cli] = await Promise.all([
  build({ ...common, entryPoints: ['src/cli/bin.ts'], write: false, outfile: 'dist/kmu11-cli.cjs', banner: { js: `${common.banner.js}\n${LAZY_HELPER}` } }),
  build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.cjs' }),
]);
const file = cli.outputFiles[0];
// The launcher wraps it in a function: no #! line inside.
writeFileSync(file.path, lazyBuiltins(file.text).replace(/^#!.*\n/, ''));
copyFileSync('scripts/launcher.cjs', 'dist/kmu11.cjs');
chmodSync('dist/kmu11.cjs', 0o755);

// The code cache: what V8 compiled for `singlecmd help` (start-up, the command table, the
// formatters). Without a built addon the CLI cannot start; then there is simply no cache.
rmSync(`${file.path}.v8cache`, { force: true });
const home = mkdtempSync(join(tmpdir(), 'kmu11-bundle-'));
try {
  execFileSync(process.execPath, ['dist/kmu11.cjs', '--home', join(home, 'home'), 'singlecmd', 'help'], {
    env: { ...process.env, KMU11_WRITE_CODE_CACHE: '1' },
    stdio: 'ignore',
  });
} catch {
  rmSync(`${file.path}.v8cache`, { force: true });
  console.error('bundle: no code cache (the CLI did not run: is the addon built?)');
} finally {
  rmSync(home, { recursive: true, force: true });
}
