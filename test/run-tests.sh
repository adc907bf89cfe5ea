#!/usr/bin/env bash
# The README's test command (`npm test`): installs and starts what the tests need (python3-ase, git-lfs, LAMMPS;
# a real sshd, munge and single-node Slurm on 127.0.0.1), builds, type-checks, runs the whole suite, stops the
# services.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/env/install-packages.sh
bash test/env/cluster.sh start
trap 'bash test/env/cluster.sh stop || true' EXIT
npm run -s build
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"
