#!/usr/bin/env bash
# Test double of `mace_run_train` (never shipped): writes what MACE 0.3.6 writes for a fine-tuning run (log,
# results/<tag>_train.txt JSON lines, a checkpoint, <name>.model) without training anything. Behaviour comes from
# the environment: DOUBLE_SLEEP seconds of "training", DOUBLE_EXIT != 0 fails like a CUDA out-of-memory crash.
set -eu
name=MACE_model seed=123 work_dir=.
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift ;;
    --seed) seed=$2; shift ;;
    --work_dir) work_dir=$2; shift ;;
  esac
  shift
done
tag="${name}_run-${seed}"
cd "$work_dir"
mkdir -p logs results checkpoints
echo "INFO: MACE version: 0.3.6 (test double)" | tee "logs/${tag}.log"
echo "INFO: Epoch None: loss=71.3685, RMSE_E_per_atom=6269.3 meV, RMSE_F=2604.0 meV / A" >>"logs/${tag}.log"
sleep "${DOUBLE_SLEEP:-0}"
if [ "${DOUBLE_EXIT:-0}" != 0 ]; then
  echo "Traceback (most recent call last):" >&2
  echo '  File "mace/cli/run_train.py", line 512, in run' >&2
  echo "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (test double)" >&2
  exit "$DOUBLE_EXIT"
fi
{
  echo '{"loss": 71.36851, "mae_e": 12.5, "mae_e_per_atom": 6.2, "rmse_e": 12.6, "rmse_e_per_atom": 6.269, "q95_e": 12.6, "mae_f": 2.1, "rel_mae_f": 98.1, "rmse_f": 2.604, "rel_rmse_f": 99.2, "q95_f": 4.8, "time": 1.2, "mode": "eval", "epoch": null}'
  echo '{"loss": 40.12, "time": 0.8, "mode": "opt", "epoch": 0}'
  echo '{"loss": 3.2, "mae_e": 0.05, "mae_e_per_atom": 0.02, "rmse_e": 0.06, "rmse_e_per_atom": 0.0275, "q95_e": 0.1, "mae_f": 0.06, "rel_mae_f": 7.9, "rmse_f": 0.0842, "rel_rmse_f": 9.35, "q95_f": 0.15, "time": 1.1, "mode": "eval", "epoch": 0}'
} >"results/${tag}_train.txt"
head -c 4096 /dev/urandom >"checkpoints/${tag}_epoch-0.pt"
head -c 32768 /dev/urandom >"${name}.model"
echo "INFO: Saved model to ${name}.model" >>"logs/${tag}.log"
