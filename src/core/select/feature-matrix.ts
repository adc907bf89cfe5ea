/** Candidate feature matrices: N x D float32, row-major, one row per candidate. */

import { InputError } from "../errors.js";

export interface FeatureMatrix {
  rows: number;
  cols: number;
  /** Row-major, length rows*cols. */
  data: Float32Array;
  /** Column names, when known (descriptors name theirs). */
  columns?: readonly string[];
}

export function createFeatureMatrix(rows: number, cols: number, columns?: readonly string[]): FeatureMatrix {
  return { rows, cols, data: new Float32Array(rows * cols), ...(columns ? { columns } : {}) };
}

/**
 * Feature rows wherever they sit in `data`: row i takes cols values from start(i). The selection's memory
 * holds its candidates this way (allocateSelection in fps.ts), so that they can be written there directly.
 */
export interface PlacedRows {
  rows: number;
  cols: number;
  data: Float32Array;
  start: (row: number) => number;
}

/** A matrix's rows as PlacedRows (one after the other when it is a FeatureMatrix). */
export function rowsOf(m: FeatureMatrix | PlacedRows): PlacedRows {
  if ("start" in m) return m;
  const { cols } = m;
  return { rows: m.rows, cols, data: m.data, start: (row) => row * cols };
}

/** Rows first .. first + count - 1 of `rows` as runs that lie one after the other in `data`: [first row, rows in the run]. */
export function* rowRuns(rows: PlacedRows, first: number, count: number): Generator<[number, number]> {
  const { cols, start } = rows;
  for (let r = first; r < first + count; ) {
    const at = start(r);
    let run = 1;
    while (r + run < first + count && start(r + run) === at + run * cols) run++;
    yield [r, run];
    r += run;
  }
}

/**
 * Copies `count` rows of `from` (row-major, `into.cols` values each, from row fromRow) to rows intoRow.. of
 * `into`, run by run; float64 values are rounded to float32.
 */
export function copyRows(from: Float32Array | Float64Array, fromRow: number, count: number, into: PlacedRows, intoRow: number): void {
  const { cols, data, start } = into;
  for (const [row, run] of rowRuns(into, intoRow, count)) {
    const r = fromRow + row - intoRow;
    data.set(from.subarray(r * cols, (r + run) * cols), start(row));
  }
}

/** What a user-supplied matrix's rows stand for, as its errors name them. */
export interface MatrixRows {
  /** One row's structure: "candidate". */
  one: string;
  /** The rows' order in words: "candidate order". */
  order: string;
}

export const CANDIDATE_ROWS: MatrixRows = { one: "candidate", order: "candidate order" };

const ROW_NUMBER = (row: number): string => `row ${row}`;
/** NaN and Infinity as Python's json module writes them (read as strings by parseFeatureFile). */
const BARE_NON_FINITE = /^(-?Infinity|NaN)$/;

/**
 * Builds and validates a user-supplied matrix (`--features FILE`): one row per candidate (per `ids`), in their
 * order, all rows of the same length, every value finite and within float32 range.
 * `where(i)` locates row i in `source` (e.g. its line); by default `row i` (counted from 0, as NumPy does).
 */
export function featureMatrixFromRows(
  rows: ArrayLike<ArrayLike<unknown>>,
  ids: readonly string[],
  source: string,
  where: (row: number) => string | number = ROW_NUMBER,
  names = CANDIDATE_ROWS,
): FeatureMatrix {
  checkFeatureRowCount(rows.length, ids, source, names);
  const cols = rows.length > 0 ? rows[0].length : 0;
  if (rows.length > 0 && cols === 0) throw new InputError(source, where(0), "empty feature row");
  const matrix = createFeatureMatrix(rows.length, cols);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (row.length !== cols) {
      throw new InputError(source, where(i), `has ${row.length} values, expected ${cols} like the first row`);
    }
    for (let c = 0; c < cols; c++) {
      const v = row[c];
      // Checked here, before float32 rounding: 1e39 would become Infinity, null or "1.5" NaN.
      if (typeof v !== "number" || !Number.isFinite(Math.fround(v))) {
        throw new InputError(source, where(i), `column ${c} of ${names.one} ${i} (${ids[i]}) is ${typeof v === "number" || BARE_NON_FINITE.test(String(v)) ? v : JSON.stringify(v)}, expected a finite number within float32 range`);
      }
      matrix.data[i * cols + c] = v;
    }
  }
  validateFeatureMatrix(matrix, ids, source, where, names);
  return matrix;
}

/** One feature row per candidate (per `ids`). */
export function checkFeatureRowCount(rows: number, ids: readonly string[], source: string, names = CANDIDATE_ROWS): void {
  if (rows !== ids.length) {
    throw new InputError(source, undefined, `has ${rows} feature rows, expected ${ids.length} (one per ${names.one}, in ${names.order})`);
  }
}

/** Checks the shape: one row per candidate (per `ids`). */
export function checkFeatureRows(matrix: FeatureMatrix, ids: readonly string[], source: string, names = CANDIDATE_ROWS): void {
  const { rows, cols, data } = matrix;
  checkFeatureRowCount(rows, ids, source, names);
  if (data.length !== rows * cols) {
    throw new InputError(source, undefined, `holds ${data.length} values, expected ${rows} x ${cols}`);
  }
}

/** Checks the row count against the candidates (`ids`) and that every stored value is finite. */
export function validateFeatureMatrix(
  matrix: FeatureMatrix | PlacedRows,
  ids: readonly string[],
  source: string,
  where: (row: number) => string | number = ROW_NUMBER,
  names = CANDIDATE_ROWS,
): void {
  if ("start" in matrix) checkFeatureRowCount(matrix.rows, ids, source, names);
  else checkFeatureRows(matrix, ids, source, names);
  const { rows, cols, data, start } = rowsOf(matrix);
  for (let i = 0; i < rows; i++) {
    for (let c = 0, p = start(i); c < cols; c++, p++) {
      if (!Number.isFinite(data[p])) {
        throw new InputError(source, where(i), `column ${c} of ${names.one} ${i} (${ids[i]}) is ${data[p]}, expected a finite number within float32 range`);
      }
    }
  }
}
