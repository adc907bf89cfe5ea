import type { PlacedRows } from "../../../src/core/select/feature-matrix.js";

/**
 * Rows in blocks of 2, the blocks in reverse order, each after a gap of one row's values (7): the
 * shape of the selection's memory (thread regions), as PlacedRows.
 */
export function scatteredRows(rows: number, cols: number): PlacedRows {
  const blocks = Math.ceil(rows / 2);
  const data = new Float32Array(blocks * 3 * cols).fill(7);
  const start = (row: number): number => ((blocks - 1 - Math.floor(row / 2)) * 3 + 1 + (row % 2)) * cols;
  return { rows, cols, data, start };
}
