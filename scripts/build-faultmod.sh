#!/usr/bin/env bash
# Builds the tests' fault-injecting PKCS#11 module (test/fixtures/faultmod) into
# build/faultmod/libp11fault.so when its sources are newer. Prints the library's path.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/faultmod/libp11fault.so
src=test/fixtures/faultmod
if [ ! -e "$out" ] || [ -n "$(find "$src" native/pkcs11.h -newer "$out" -print -quit)" ]; then
  mkdir -p build/faultmod
  cc -shared -fPIC -O2 -Wall -Wextra -fvisibility=hidden -o "$out.tmp.$$" "$src/faultmod.c" -ldl -lpthread
  mv "$out.tmp.$$" "$out"
fi
echo "$PWD/$out"
