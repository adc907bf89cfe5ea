/**
 * One feature row per structure from a key of an extxyz frame: what `mace_eval_configs --return_descriptors` writes.
 * Per-atom descriptors (its default, an array `MACE_descriptors:R:F`) are averaged over the atoms, as its
 * `--descriptor_aggregation_method mean` does; that method's own output (an info vector) is taken as it is.
 */
import type { Frame } from "../structure.js";

/** The key mace_eval_configs writes descriptors under (its default `--info_prefix MACE_`). */
export const DEFAULT_FEATURES_KEY = "MACE_descriptors";

/** The structure's feature row from `key`, or why the frame has none usable (one line). */
export function structureFeatures(frame: Pick<Frame, "natoms" | "info" | "arrays">, key: string): Float64Array | string {
  const column = frame.arrays.get(key);
  if (column) {
    if (column.dtype !== "R" && column.dtype !== "I") return `the per-atom ${key} must be numbers (got type ${column.dtype})`;
    if (frame.natoms === 0) return `has no atoms to average ${key} over`;
    const { ncols, data } = column;
    const row = new Float64Array(ncols);
    for (let a = 0; a < frame.natoms; a++) for (let j = 0; j < ncols; j++) row[j] += data[a * ncols + j];
    for (let j = 0; j < ncols; j++) row[j] /= frame.natoms;
    return finiteOrProblem(row, key);
  }
  const value = frame.info.get(key);
  if (value === undefined) return `has no ${key} (per-atom array or info vector; mace_eval_configs writes it with --return_descriptors)`;
  if (value.kind === "float" || value.kind === "int") return finiteOrProblem(Float64Array.of(value.value), key);
  if (value.kind === "array" && value.dtype !== "bool" && value.shape.length === 1) return finiteOrProblem(Float64Array.from(value.data as number[]), key);
  if (value.kind === "json" && value.value !== null && typeof value.value === "object" && !Array.isArray(value.value)) {
    return `${key} is given per element (mace_eval_configs --descriptor_aggregation_method per_element_mean); rank takes one vector per structure: per-atom descriptors (its default) or --descriptor_aggregation_method mean`;
  }
  return `${key} must be a vector of numbers per structure or a per-atom array of numbers`;
}

function finiteOrProblem(row: Float64Array, key: string): Float64Array | string {
  const bad = row.findIndex((v) => !Number.isFinite(v));
  return bad < 0 ? row : `${key} value ${bad} is ${row[bad]}, not a finite number`;
}
