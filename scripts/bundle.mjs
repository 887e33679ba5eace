// Bundles what ships beside tsc's dist/: the CLI as one file (dist/kmu11.cjs: a one-shot run
// loads one file instead of ~80 modules) and the library for require() (dist/index.cjs).
// CommonJS because Node 20 starts a CommonJS main script faster than an ES module one.
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
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
  build({ ...common, entryPoints: ['src/cli/bin.ts'], write: false, outfile: 'dist/kmu11.cjs', banner: { js: `${common.banner.js}\n${LAZY_HELPER}` } }),
  build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.cjs' }),
]);
const file = cli.outputFiles[0];
writeFileSync(file.path, lazyBuiltins(file.text));
chmodSync(file.path, 0o755);
