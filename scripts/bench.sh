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
if stale "$addon" native binding.gyp || stale "$api" src tsconfig.json || stale dist/kmu11.cjs src tsconfig.json; then
  log "building kmu11 (npm run build)"
  # node-gyp needs a configured build/ first (npm's install script does that).
  [ -f build/Makefile ] || npm run --silent install >&2 || true
  buildlog=$(mktemp)
  if ! npm run --silent build >"$buildlog" 2>&1; then
    # npm run build is `node-gyp build && tsc`; tsc still emits when some
    # unrelated file has type errors, so only a node-gyp failure or a
    # missing dist/p11 keeps kmu11 out of the run.
    if grep -q 'gyp ERR!' "$buildlog"; then
      export KMU11_BENCH_SKIP="addon build failed (npm run build)"
    elif [ ! -f "$api" ]; then
      export KMU11_BENCH_SKIP="TypeScript build failed (npm run build)"
    fi
  fi
  cat "$buildlog" >&2
  rm -f "$buildlog"
fi

mkdir -p .bench
if stale .bench/raw bench/raw.c; then
  log "compiling bench/raw.c"
  cc -O2 -Wall -pthread -o .bench/raw bench/raw.c -ldl >&2
fi

exec node bench/run.mjs "$@"
