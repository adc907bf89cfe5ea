#!/usr/bin/env bash
# Test double of a rendered stage's run.sh (never shipped): the same contract (status.json, logs/stdout.log,
# logs/stderr.log, FINISHED only on success), running the MACE doubles in bin/ as configured in double.env
# (MACE_DOUBLE_SLEEP seconds of work, MACE_DOUBLE_EXIT as their exit code).
set -u
cd "$(dirname "$0")" || exit 1
mkdir -p logs
rm -f FINISHED status.json
. ./double.env
export MACE_DOUBLE_SLEEP MACE_DOUBLE_EXIT
export PATH="$PWD/bin:$PATH"
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ "$KIND" = eval ]; then
  mkdir -p predictions
  cmd="mace_eval_configs --configs data/structures.extxyz --model model.model --output predictions/test.extxyz"
else
  cmd="mace_run_train --name model --seed 42 --train_file data/structures.extxyz --work_dir ."
fi
$cmd >logs/stdout.log 2>logs/stderr.log
code=$?
end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"exit_code": %d, "start": "%s", "end": "%s", "command": "%s"}\n' "$code" "$start" "$end" "$cmd" >status.json
# SKIP_FINISHED=1 imitates a job that "completes" without the stage having succeeded.
if [ "$code" -eq 0 ] && [ "$SKIP_FINISHED" != 1 ]; then touch FINISHED; fi
exit "$code"
