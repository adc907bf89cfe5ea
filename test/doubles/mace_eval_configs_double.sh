#!/usr/bin/env bash
# Test double of `mace_eval_configs` (never shipped): writes --output as MACE does, one frame with MACE_energy and
# MACE_forces, whatever --configs holds. DOUBLE_SLEEP and DOUBLE_EXIT as for the training double.
set -eu
output=
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output=$2; shift ;;
  esac
  shift
done
sleep "${DOUBLE_SLEEP:-0}"
if [ "${DOUBLE_EXIT:-0}" != 0 ]; then
  echo "RuntimeError: model file not found (test double)" >&2
  exit "$DOUBLE_EXIT"
fi
mkdir -p "$(dirname "$output")"
cat >"$output" <<'XYZ'
2
Lattice="5.0 0.0 0.0 0.0 5.0 0.0 0.0 0.0 5.0" Properties=species:S:1:pos:R:3:MACE_forces:R:3 MACE_energy=-6.512 pbc="T T T"
H        0.00000000       0.00000000       0.00000000       0.10000000       0.00000000       0.00000000
H        0.74000000       0.00000000       0.00000000      -0.10000000       0.00000000       0.00000000
XYZ
