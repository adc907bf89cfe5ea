#!/usr/bin/env bash
# The README's test command (`npm test`): prepares what the tests need, builds, type-checks, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/env/install-packages.sh
npx tsc -p tsconfig.build.json
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"
