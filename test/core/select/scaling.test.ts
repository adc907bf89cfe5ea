import { describe, expect, it } from "vitest";
import { copyRows } from "../../../src/core/select/feature-matrix.js";
import { applyScaler, fitScaler } from "../../../src/core/select/scaling.js";
import { scatteredRows } from "./placed-rows.js";
import { seededRandom } from "./fps-oracle.js";

describe("feature scaling", () => {
  it("standardises with the population std and only centres constant columns", () => {
    // Column 0: 1, 2, 3, 6 -> mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5.
    // Column 1: constant 0.3 (not exact in float32: stays constant, becomes exactly 0).
    const data = Float32Array.of(1, 0.3, 2, 0.3, 3, 0.3, 6, 0.3);
    const m = { rows: 4, cols: 2, data };
    const scaler = fitScaler(m, "standard");
    expect(scaler.mean[0]).toBe(3);
    expect(scaler.scale[0]).toBeCloseTo(Math.sqrt(3.5), 12);
    expect(scaler.scale[1]).toBe(1);
    applyScaler(scaler, m);
    const s = Math.sqrt(3.5);
    [-2 / s, -1 / s, 0, 3 / s].forEach((v, i) => expect(data[2 * i]).toBeCloseTo(v, 6));
    expect([data[1], data[3], data[5], data[7]]).toEqual([0, 0, 0, 0]);
  });

  it("applies the pool's statistics to labelled rows, and leaves data alone with none", () => {
    const pool = { rows: 2, cols: 1, data: Float32Array.of(0, 2) };
    const labelled = { rows: 1, cols: 1, data: Float32Array.of(5) };
    const scaler = fitScaler(pool, "standard");
    applyScaler(scaler, labelled);
    expect(labelled.data[0]).toBe(4);
    const untouched = { rows: 2, cols: 1, data: Float32Array.of(0, 2) };
    applyScaler(fitScaler(untouched, "none"), untouched);
    expect(Array.from(untouched.data)).toEqual([0, 2]);
  });

  it("scales rows wherever they sit exactly as the same rows in a matrix", () => {
    const random = seededRandom(41);
    const rows = 9, cols = 4;
    // Column 2 is constant.
    const data = Float32Array.from({ length: rows * cols }, (_, i) => (i % cols === 2 ? 0.1 : random() * 10 - 3));
    const matrix = { rows, cols, data: data.slice() };
    const placed = scatteredRows(rows, cols);
    copyRows(data, 0, rows, placed, 0);
    const a = fitScaler(matrix, "standard");
    const b = fitScaler(placed, "standard");
    expect([Array.from(b.mean), Array.from(b.scale)]).toEqual([Array.from(a.mean), Array.from(a.scale)]);
    applyScaler(a, matrix);
    applyScaler(b, placed);
    for (let row = 0; row < rows; row++) {
      expect(Array.from(placed.data.subarray(placed.start(row), placed.start(row) + cols))).toEqual(Array.from(matrix.data.subarray(row * cols, (row + 1) * cols)));
    }
    // 5 blocks of 3 slots hold the 9 rows: 6 slots stay as they were.
    expect(placed.data.filter((v) => v === 7)).toHaveLength(6 * cols);
  });
});
