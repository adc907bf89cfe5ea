import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import { copyRows, featureMatrixFromRows, validateFeatureMatrix } from "../../../src/core/select/feature-matrix.js";
import { scatteredRows } from "./placed-rows.js";

const ids = ["id-a", "id-b", "id-c"];

describe("user feature matrices", () => {
  it("stores rows as float32, row-major", () => {
    const m = featureMatrixFromRows([[1, 2], [3, 4], [5, 6.5]], ids, "features.csv");
    expect(m.rows).toBe(3);
    expect(m.cols).toBe(2);
    expect(Array.from(m.data)).toEqual([1, 2, 3, 4, 5, 6.5]);
  });

  it("refuses a row count other than the candidate count", () => {
    expect(() => featureMatrixFromRows([[1], [2]], ids, "features.csv")).toThrow(InputError);
    expect(() => featureMatrixFromRows([[1], [2]], ids, "features.csv")).toThrow("features.csv: has 2 feature rows, expected 3");
  });

  it("names the row and candidate of a non-finite or out-of-range value", () => {
    expect(() => featureMatrixFromRows([[1, 2], [3, NaN], [5, 6]], ids, "features.csv", (row) => row + 2)).toThrow(
      "features.csv:3: column 1 of candidate 1 (id-b) is NaN",
    );
    expect(() => featureMatrixFromRows([[1, 2], [3, 4], [1e39, 6]], ids, "features.csv")).toThrow(
      "features.csv: row 2: column 0 of candidate 2 (id-c) is 1e+39, expected a finite number within float32 range",
    );
    expect(() => validateFeatureMatrix({ rows: 3, cols: 1, data: Float32Array.of(0, Infinity, 0) }, ids, "f.npy")).toThrow(/candidate 1 \(id-b\)/);
  });

  it("refuses ragged rows", () => {
    expect(() => featureMatrixFromRows([[1, 2], [3], [5, 6]], ids, "features.csv")).toThrow("features.csv: row 1: has 1 values, expected 2 like the first row");
  });

  it("names the candidate of a non-finite value in placed rows too", () => {
    const placed = scatteredRows(3, 2);
    copyRows(Float32Array.of(1, 2, 3, 4, 5, 6), 0, 3, placed, 0);
    expect(() => validateFeatureMatrix(placed, ids, "f.npy")).not.toThrow();
    placed.data[placed.start(2) + 1] = Infinity;
    expect(() => validateFeatureMatrix(placed, ids, "f.npy")).toThrow("f.npy: row 2: column 1 of candidate 2 (id-c) is Infinity");
    expect(() => validateFeatureMatrix(placed, ["x"], "f.npy")).toThrow(/has 3 feature rows, expected 1/);
  });

  it("copies rows into placed rows, in runs of the rows that are contiguous there", () => {
    const into = scatteredRows(5, 3);
    const from = Float32Array.from({ length: 6 * 3 }, (_, i) => 100 + i);
    copyRows(from, 1, 4, into, 1);
    for (let row = 1; row < 5; row++) expect(Array.from(into.data.subarray(into.start(row), into.start(row) + 3))).toEqual([0, 1, 2].map((c) => 100 + 3 * row + c));
    // Row 0 and the 4 unused slots are untouched.
    expect(Array.from(into.data.subarray(into.start(0), into.start(0) + 3))).toEqual([7, 7, 7]);
    expect(into.data.filter((v) => v === 7)).toHaveLength(5 * 3);
  });
});
