#!/usr/bin/env bash
# npm run bench [-- --json] [other bench/run.mjs options]
# Builds what is missing or stale (TypeScript, the kmu11 addon, bench/raw.c),
# then runs bench/run.mjs. Everything but the result goes to stderr, so
# `npm run bench -- --json` prints one JSON object on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "bench: $*" >&2; }

# True when $1 is missing or older than any file under the other arguments.
stale() {
  local target=$1; shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" -newer "$target" -type f -print -quit 2>/dev/null)" ]
}

addon=build/Release/kmu11_pkcs11.node
api=dist/p11/index.js
if [ -f binding.gyp ] && [ -n "$(ls -A native 2>/dev/null)" ]; then
  if stale "$addon" native binding.gyp || stale "$api" src tsconfig.json; then
    log "building kmu11 (npm run build)"
    [ -f build/Makefile ] || npx --no-install node-gyp configure >&2 || true
    # tsc emits even when some other file has type errors; what matters here
    # is whether the addon and dist/p11 are now up to date.
    npm run --silent build >&2 || log "npm run build failed"
    if stale "$api" src/p11; then npm run --silent build:ts >&2 || true; fi
    if stale "$addon" native binding.gyp; then
      export KMU11_BENCH_SKIP="addon build failed (npm run build)"
    elif stale "$api" src/p11; then
      export KMU11_BENCH_SKIP="TypeScript build of src/p11 failed (npm run build:ts)"
    fi
  fi
elif [ -n "$(find src -name '*.ts' -print -quit)" ] && stale "$api" src tsconfig.json; then
  log "no addon sources yet; compiling TypeScript only (npm run build:ts)"
  npm run --silent build:ts >&2 || log "tsc reported errors"
fi

mkdir -p .bench
if stale .bench/raw bench/raw.c; then
  log "compiling bench/raw.c"
  cc -O2 -Wall -pthread -o .bench/raw bench/raw.c -ldl >&2
fi

exec node bench/run.mjs "$@"
