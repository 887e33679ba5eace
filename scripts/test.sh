#!/usr/bin/env bash
# The whole test suite against real SoftHSM tokens and Debian's oracle tools.
# Sets up what is missing first; writes vitest's JSON report to build/test-report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
mkdir -p build
# --long: the long kill loops and the soak at full size (KMU11_LONG=1), not a vitest flag.
args=()
for a in "$@"; do if [ "$a" = --long ]; then export KMU11_LONG=1; else args+=("$a"); fi; done
set -- "${args[@]+"${args[@]}"}"
exec npx --no-install vitest run --reporter=default --reporter=json --outputFile.json=build/test-report.json "$@"
