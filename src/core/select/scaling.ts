/**
 * Feature scaling before selection. `standard`: per column (x - mean) / std with the population std
 * (divide by N), statistics in float64 over the candidate pool; a constant column is only centred
 * (becomes 0). Labelled rows are transformed with the pool's statistics (fit on the pool, apply to both).
 * Without scaling, volume per atom dominates the baseline descriptor's distances.
 */

import { rowsOf, type FeatureMatrix, type PlacedRows } from "./feature-matrix.js";

export type ScalingMode = "none" | "standard";

export interface Scaler {
  mode: ScalingMode;
  mean: Float64Array;
  /** Divisor per column: the std, or 1 for constant columns. */
  scale: Float64Array;
}

export function fitScaler(matrix: FeatureMatrix | PlacedRows, mode: ScalingMode): Scaler {
  const { rows, cols, data, start } = rowsOf(matrix);
  const mean = new Float64Array(cols);
  const scale = new Float64Array(cols).fill(1);
  if (mode === "none" || rows === 0) return { mode, mean, scale };
  const first = start(0);
  const constant = new Uint8Array(cols).fill(1);
  for (let i = 0; i < rows; i++) {
    for (let c = 0, p = start(i); c < cols; c++, p++) {
      mean[c] += data[p];
      if (data[p] !== data[first + c]) constant[c] = 0;
    }
  }
  for (let c = 0; c < cols; c++) mean[c] = constant[c] ? data[first + c] : mean[c] / rows;
  const sumSquares = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    for (let c = 0, p = start(i); c < cols; c++, p++) {
      const d = data[p] - mean[c];
      sumSquares[c] += d * d;
    }
  }
  for (let c = 0; c < cols; c++) {
    const std = Math.sqrt(sumSquares[c] / rows);
    if (!constant[c] && std > 0) scale[c] = std;
  }
  return { mode, mean, scale };
}

/** Scales the matrix in place (stored back as float32). */
export function applyScaler(scaler: Scaler, matrix: FeatureMatrix | PlacedRows): void {
  if (scaler.mode === "none") return;
  const { rows, cols, data, start } = rowsOf(matrix);
  if (cols !== scaler.mean.length) {
    throw new RangeError(`scaler fitted on ${scaler.mean.length} columns applied to a matrix of ${cols}`);
  }
  const { mean, scale } = scaler;
  for (let i = 0; i < rows; i++) for (let c = 0, p = start(i); c < cols; c++, p++) data[p] = (data[p] - mean[c]) / scale[c];
}
