/**
 * One feature row per structure from a key of an extxyz frame: what `mace_eval_configs --return_descriptors` writes.
 * Per-atom descriptors (its default, an array `MACE_descriptors:R:F`) are averaged over the atoms, as its
 * `--descriptor_aggregation_method mean` does; that method's own output (an info vector) is taken as it is.
 *
 * Per element instead: one block of F values per species of `species` (sorted), each species' mean descriptor times
 * its atom fraction. The blocks add up to the mean over all atoms, and a species a structure lacks gives zeros, the
 * limit of its fraction going to 0 (no sentinel value is needed). From per-atom descriptors, or from
 * `--descriptor_aggregation_method per_element_mean` (a dict per structure).
 */
import type { Frame } from "../structure.js";

/** The key mace_eval_configs writes descriptors under (its default `--info_prefix MACE_`). */
export const DEFAULT_FEATURES_KEY = "MACE_descriptors";

/**
 * The structure's feature row from `key`, or why the frame has none usable (one line). With `perElement` (the
 * species, sorted), the composition-weighted per-element means.
 */
export function structureFeatures(frame: Pick<Frame, "natoms" | "symbols" | "info" | "arrays">, key: string, perElement?: readonly string[]): Float64Array | string {
  const column = frame.arrays.get(key);
  if (column) {
    if (column.dtype !== "R" && column.dtype !== "I") return `the per-atom ${key} must be numbers (got type ${column.dtype})`;
    if (frame.natoms === 0) return `has no atoms to average ${key} over`;
    const { ncols, data } = column;
    const blockOf = perElement ? new Map(perElement.map((s, b) => [s, b])) : null;
    const row = new Float64Array(ncols * (perElement?.length ?? 1));
    for (let a = 0; a < frame.natoms; a++) {
      // An atom of a species not listed belongs to no candidate (its frame is matched to none).
      const block = blockOf ? blockOf.get(frame.symbols[a]) : 0;
      if (block === undefined) continue;
      for (let j = 0; j < ncols; j++) row[block * ncols + j] += data[a * ncols + j];
    }
    for (let j = 0; j < row.length; j++) row[j] /= frame.natoms;
    return finiteOrProblem(row, key);
  }
  const value = frame.info.get(key);
  if (value === undefined) return `has no ${key} (per-atom array or info vector; mace_eval_configs writes it with --return_descriptors)`;
  const isDict = value.kind === "json" && value.value !== null && typeof value.value === "object" && !Array.isArray(value.value);
  if (perElement) {
    if (!isDict) return `${key} is one vector per structure; per-element features need per-atom descriptors (mace_eval_configs' default) or --descriptor_aggregation_method per_element_mean`;
    return perElementRow(value.value as Record<string, unknown>, frame, key, perElement);
  }
  if (value.kind === "float" || value.kind === "int") return finiteOrProblem(Float64Array.of(value.value), key);
  if (value.kind === "array" && value.dtype !== "bool" && value.shape.length === 1) return finiteOrProblem(Float64Array.from(value.data as number[]), key);
  if (isDict) {
    return `${key} is given per element (mace_eval_configs --descriptor_aggregation_method per_element_mean): rank it with --features-per-element, or write per-atom descriptors (its default) or --descriptor_aggregation_method mean`;
  }
  return `${key} must be a vector of numbers per structure or a per-atom array of numbers`;
}

/** Each listed species' vector from the dict times the species' atom fraction in the frame. */
function perElementRow(dict: Record<string, unknown>, frame: Pick<Frame, "natoms" | "symbols">, key: string, species: readonly string[]): Float64Array | string {
  const counts = new Map<string, number>();
  for (const s of frame.symbols) counts.set(s, (counts.get(s) ?? 0) + 1);
  let width: number | undefined;
  const blocks: { b: number; values: number[]; fraction: number }[] = [];
  for (const [s, count] of counts) {
    const values = dict[s];
    if (!Array.isArray(values) || !values.every((v) => typeof v === "number")) return `${key} has no vector of numbers for ${s}, which the structure holds`;
    if (width !== undefined && values.length !== width) return `${key} has ${values.length} values for ${s} but ${width} for another element`;
    width = values.length;
    const b = species.indexOf(s);
    if (b >= 0) blocks.push({ b, values: values as number[], fraction: count / frame.natoms });
  }
  if (width === undefined) return `has no atoms to take ${key} per element for`;
  const row = new Float64Array(width * species.length);
  for (const { b, values, fraction } of blocks) for (let j = 0; j < width; j++) row[b * width + j] = values[j] * fraction;
  return finiteOrProblem(row, key);
}

function finiteOrProblem(row: Float64Array, key: string): Float64Array | string {
  const bad = row.findIndex((v) => !Number.isFinite(v));
  return bad < 0 ? row : `${key} value ${bad} is ${row[bad]}, not a finite number`;
}
