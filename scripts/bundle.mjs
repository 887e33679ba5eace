// Bundles what ships beside tsc's dist/: the CLI as one file (dist/kmu11.mjs: one-shot runs load
// one file instead of ~80 modules) and the library for require() (dist/index.cjs).
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  define: { __KMU11_VERSION__: JSON.stringify(version) },
};

await Promise.all([
  build({ ...common, entryPoints: ['src/cli/bin.ts'], outfile: 'dist/kmu11.mjs', format: 'esm' }),
  build({
    ...common,
    entryPoints: ['src/index.ts'],
    outfile: 'dist/index.cjs',
    format: 'cjs',
    // The addon and package.json are found relative to this file.
    define: { ...common.define, 'import.meta.url': '__kmu11_url' },
    banner: { js: "const __kmu11_url = require('node:url').pathToFileURL(__filename).href;" },
  }),
]);
