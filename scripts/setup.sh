#!/usr/bin/env bash
# Brings a fresh Debian machine (root, Node 20) to a runnable kmu11, doing only what is missing:
#   SoftHSMv2 (and with --tests the oracle tools) from Debian, node_modules (npm ci, which also
#   builds the addon), the addon when native/ changed, dist/ when src/ changed.
# Progress goes to stderr; with nothing to do it prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0
[ "${1:-}" = "--tests" ] && tests=1

softhsm_present() {
  for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
    [ -e "$p" ] && return 0
  done
  return 1
}

pkgs=()
softhsm_present && command -v softhsm2-util >/dev/null || pkgs+=(softhsm2)
if [ "$tests" = 1 ]; then
  command -v pkcs11-tool >/dev/null || pkgs+=(opensc)
  command -v p11tool >/dev/null || pkgs+=(gnutls-bin)
  command -v pkcs11-dump >/dev/null || pkgs+=(pkcs11-dump)
  # Debian's PyKCS11 is importable by the system interpreter, whatever python3 is first on PATH.
  /usr/bin/python3 -c 'import PyKCS11' 2>/dev/null || pkgs+=(python3-pykcs11)
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v cc >/dev/null || pkgs+=(gcc)
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "kmu11 setup: apt-get install ${pkgs[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

newer_than() { # newer_than <file> <paths...>: some path is newer than file (or file missing)
  local f=$1; shift
  [ ! -e "$f" ] || [ -n "$(find "$@" -newer "$f" -print -quit 2>/dev/null)" ]
}

if newer_than node_modules/.package-lock.json package-lock.json package.json; then
  echo "kmu11 setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
if newer_than build/Release/kmu11_pkcs11.node native binding.gyp; then
  echo "kmu11 setup: building the addon" >&2
  npm run --silent build:addon >&2
fi
if newer_than dist/cli/main.js src tsconfig.json; then
  echo "kmu11 setup: compiling TypeScript" >&2
  npm run --silent build:ts >&2
fi
# The tests' fault-injecting PKCS#11 module (test/helpers/faultmod.ts).
if [ "$tests" = 1 ]; then bash scripts/build-faultmod.sh >/dev/null; fi
