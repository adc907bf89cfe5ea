import { describe, expect, it } from "vitest";
import { distanceKernelBytes, filterSlack, type SqdistRows } from "../../../src/core/select/distance-kernel.js";
import { squaredDistance, type WasmApi } from "../../../src/core/select/fps-kernel.js";
import { seededRandom } from "./fps-oracle.js";

const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

function kernel(pages: number): { run: SqdistRows; buffer: ArrayBuffer | SharedArrayBuffer } {
  const memory = new api.Memory({ initial: pages, maximum: pages, shared: false });
  const instance = new api.Instance(new api.Module(distanceKernelBytes(false)), { env: { memory } });
  return { run: instance.exports.sqdist_rows as SqdistRows, buffer: memory.buffer };
}

describe("WebAssembly distance kernel", () => {
  it("equals the JS reference bit for bit, for every tail length", () => {
    const { run, buffer } = kernel(16);
    const random = seededRandom(21);
    for (const D of [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 129]) {
      const N = 20;
      const X = new Float32Array(buffer, 0, N * D);
      for (let i = 0; i < X.length; i++) X[i] = (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3);
      const rows = new Int32Array(buffer, 65536, N);
      rows.forEach((_, t) => (rows[t] = N - 1 - t));
      const out = new Float64Array(buffer, 2 * 65536, N + 1);
      run(0, D * 4, D * 4, 65536, N, 3 * D * 4, 0, 2 * 65536, 0, filterSlack(D));
      for (let t = 0; t < N; t++) {
        expect(out[t]).toBe(squaredDistance(X, rows[t] * D, X, 3 * D, D));
        // The reference itself against a plain sum (not bitwise: another order).
        let plain = 0;
        for (let j = 0; j < D; j++) plain += (X[rows[t] * D + j] - X[3 * D + j]) ** 2;
        expect(out[t]).toBeCloseTo(plain, 10);
      }
    }
  });

  it("with bounds, returns the exact distance below the bound and a value at or above it otherwise", () => {
    const { run, buffer } = kernel(64);
    const random = seededRandom(22);
    const N = 500, D = 100;
    const X = new Float32Array(buffer, 0, N * D);
    for (let i = 0; i < X.length; i++) X[i] = random();
    const rows = new Int32Array(buffer, 4 * 65536, N);
    rows.forEach((_, t) => (rows[t] = t));
    const bounds = new Float64Array(buffer, 5 * 65536, N);
    const exact = Array.from({ length: N }, (_, i) => squaredDistance(X, i * D, X, 0, D));
    // Bounds around the true values, some within the float32 filter's error of them.
    for (let i = 0; i < N; i++) bounds[i] = exact[i] * [0.5, 1 - 1e-7, 1, 1 + 1e-7, 2][i % 5];
    const out = new Float64Array(buffer, 6 * 65536, N + 1);
    run(0, D * 4, D * 4, 4 * 65536, N, 0, 5 * 65536, 6 * 65536, 1, filterSlack(D));
    for (let i = 0; i < N; i++) {
      if (exact[i] < bounds[i]) expect(out[i]).toBe(exact[i]);
      else expect(out[i]).toBeGreaterThanOrEqual(bounds[i]);
    }
  });
});
