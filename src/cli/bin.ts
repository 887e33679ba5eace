#!/usr/bin/env node
// The installed `kmu11` / `key_mgmt_util` (bundled into dist/kmu11-cli.cjs, run by dist/kmu11.cjs): loads the CLI, and when
// the native addon cannot load, says in one line what to run (exit 2) instead of a stack trace.
import('./main.js').catch((e: unknown) => {
  if ((e as Error)?.name !== 'AddonLoadError') throw e;
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 2;
});
