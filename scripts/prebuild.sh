#!/usr/bin/env bash
# npm pack's prepack: builds what is stale, then puts this platform's addon where node-gyp-build
# (the install script) and src/p11/load.ts look for a prebuild:
#   prebuilds/<platform>-<arch>/kmu11_pkcs11.napi[.glibc|.musl].node
# The addon is Node-API (NAPI_VERSION 8), so this one file serves every Node >= 20 on the
# platform; an install elsewhere finds no match and compiles (node-gyp-build → node-gyp rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."

newer_than() { # newer_than <file> <paths...>: some path is newer than file (or file missing)
  local f=$1; shift
  [ ! -e "$f" ] || [ -n "$(find "$@" -newer "$f" -print -quit 2>/dev/null)" ]
}
if newer_than build/Release/kmu11_pkcs11.node native binding.gyp; then
  echo "prebuild: building the addon" >&2
  npm run --silent build:addon >&2
fi
if newer_than dist/kmu11.cjs src tsconfig.json package.json scripts/bundle.mjs scripts/launcher.cjs; then
  echo "prebuild: compiling TypeScript" >&2
  npm run --silent build:ts >&2
fi

target=$(node -p 'process.platform + "-" + process.arch')
tag=napi
if [ "$(uname -s)" = Linux ]; then
  if [ -e /etc/alpine-release ]; then tag=napi.musl; else tag=napi.glibc; fi
fi
rm -rf "prebuilds/$target"
mkdir -p "prebuilds/$target"
out="prebuilds/$target/kmu11_pkcs11.$tag.node"
cp build/Release/kmu11_pkcs11.node "$out"
# Debug symbols are most of the file; the shipped copy does without them.
if command -v strip >/dev/null; then strip --strip-unneeded "$out"; fi
echo "prebuild: $out ($(wc -c <"$out") bytes)" >&2
