import { describe, expect, it } from "vitest";
import { applyScaler, fitScaler } from "../../../src/core/select/scaling.js";

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
});
