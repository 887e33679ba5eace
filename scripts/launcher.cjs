#!/usr/bin/env node
// The `kmu11` / `key_mgmt_util` command (copied to dist/kmu11.cjs by scripts/bundle.mjs): runs the
// bundled CLI (kmu11-cli.cjs) with V8's code cache for it, made at build time, so a one-shot run
// skips most of compiling it. A cache from another Node or V8 is rejected by V8 and the bundle
// compiles as usual.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');
const { wrap } = require('node:module');

const file = join(__dirname, 'kmu11-cli.cjs');
let cachedData;
try {
  cachedData = readFileSync(`${file}.v8cache`);
} catch {}
const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
// The build runs `singlecmd help` once with this set and keeps what V8 compiled on the way.
if (process.env.KMU11_WRITE_CODE_CACHE === '1') process.once('exit', () => writeFileSync(`${file}.v8cache`, script.createCachedData()));
script.runInThisContext()(exports, require, module, file, __dirname);
