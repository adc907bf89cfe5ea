import { describe, expect, it } from "vitest";
import {
  distanceKernelBytes, filterSlack, quantizedLength, quantizedUsed, quantizerForRanges, quantizerParamBytes, quantizeRows, writeQuantizerParams,
  type CentroidRows, type ListRows, type NearestToSlots, type QuantizeRows, type SqdistRows,
} from "../../../src/core/select/distance-kernel.js";
import type { WasmApi } from "../../../src/core/select/fps-kernel.js";
import { seededRandom } from "./fps-oracle.js";
import { fitQuantizer } from "./fit-quantizer.js";

const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Squared distance between row `a` of A and row `b` of B (element offsets), in the summation order the kernel documents:
 * the reference the WebAssembly passes must equal bit for bit.
 */
function squaredDistance(
  A: Float32Array | Float64Array,
  a: number,
  B: Float32Array | Float64Array,
  b: number,
  D: number,
): number {
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  const full = D - (D & 7);
  let j = 0;
  for (; j < full; j += 8) {
    const t0 = A[a + j] - B[b + j], t1 = A[a + j + 1] - B[b + j + 1];
    const t2 = A[a + j + 2] - B[b + j + 2], t3 = A[a + j + 3] - B[b + j + 3];
    const t4 = A[a + j + 4] - B[b + j + 4], t5 = A[a + j + 5] - B[b + j + 5];
    const t6 = A[a + j + 6] - B[b + j + 6], t7 = A[a + j + 7] - B[b + j + 7];
    a0 += t0 * t0; a1 += t1 * t1; a2 += t2 * t2; a3 += t3 * t3;
    a4 += t4 * t4; a5 += t5 * t5; a6 += t6 * t6; a7 += t7 * t7;
  }
  let s = a0 + a2 + (a4 + a6) + (a1 + a3 + (a5 + a7));
  for (; j < D; j++) {
    const t = A[a + j] - B[b + j];
    s += t * t;
  }
  return s;
}

/** N rows of D features, their quantised copies and one pick (row `pick` of X, or `pickRow`). */
function setUp(X: Float32Array, N: number, D: number, options: { pick: number; pickRow?: Float32Array; fitTo?: Float32Array }) {
  const qLen = quantizedLength(D);
  const qRowBytes = qLen + 16;
  const qPickBytes = 2 * qLen + 16;
  let offset = 0;
  const take = (bytes: number): number => {
    const at = offset;
    offset += Math.ceil(bytes / 64) * 64;
    return at;
  };
  const at = {
    x: take(N * D * 4), pick: take(D * 4), qx: take(N * qRowBytes), qPick: take(qPickBytes),
    rows: take((N + 1) * 4), bounds: take(N * 8), roots: take(N * 8), out: take((N + 1) * 8),
  };
  const pages = Math.ceil(offset / 65536) + 1;
  const memory = new api.Memory({ initial: pages, maximum: pages, shared: false });
  // As the selection builds it: the halves of 16 values beyond D padded to 8 are skipped.
  const instance = new api.Instance(new api.Module(distanceKernelBytes(false, qLen, quantizedUsed(D))), { env: { memory } });
  const run = instance.exports.sqdist_rows as SqdistRows;
  const buffer = memory.buffer;
  new Float32Array(buffer, at.x, N * D).set(X);
  const pickRow = options.pickRow ?? X.subarray(options.pick * D, (options.pick + 1) * D);
  new Float32Array(buffer, at.pick, D).set(pickRow);
  const qz = fitQuantizer(D, options.fitTo ?? X);
  quantizeRows(qz, X, 0, N, buffer, at.qx, qRowBytes, false);
  quantizeRows(qz, Float32Array.from(pickRow), 0, 1, buffer, at.qPick, qPickBytes, true);
  const rows = new Int32Array(buffer, at.rows, N);
  const out = new Float64Array(buffer, at.out, N + 1);
  const bounds = new Float64Array(buffer, at.bounds, N);
  const roots = new Float64Array(buffer, at.roots, N);
  const exact = Array.from({ length: N }, (_, i) => squaredDistance(X, i * D, pickRow, 0, D));
  const call = (count: number, bounded: boolean): number =>
    run(at.x, D * 4, D * 4, at.rows, count, at.pick, bounded ? at.bounds : 0, bounded ? at.roots : 0, at.out,
      bounded ? 1 : 0, filterSlack(D), at.qx, qRowBytes, at.qPick, qLen, qz.scale, at.rows);
  return { rows, out, bounds, roots, exact, call };
}

/** Runs the bounded kernel over every row with bounds exact * factor(i); checks the kept set and values. */
function expectBoundedExact(X: Float32Array, N: number, D: number, factor: (i: number) => number, options: Parameters<typeof setUp>[3]): number {
  const k = setUp(X, N, D, options);
  for (let i = 0; i < N; i++) {
    k.rows[i] = i;
    k.bounds[i] = k.exact[i] * factor(i);
    k.roots[i] = Math.sqrt(k.bounds[i]);
  }
  const kept = k.call(N, true);
  const expected = k.exact.flatMap((d, i) => (d < k.bounds[i] ? [i] : []));
  expect(Array.from(k.rows.subarray(0, kept))).toEqual(expected);
  expected.forEach((i, t) => expect(k.out[t]).toBe(k.exact[i]));
  return kept;
}

describe("WebAssembly distance kernel", () => {
  it("equals the JS reference bit for bit, for every tail length", () => {
    const random = seededRandom(21);
    for (const D of [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 129]) {
      const N = 20;
      const X = new Float32Array(N * D);
      for (let i = 0; i < X.length; i++) X[i] = (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3);
      const k = setUp(X, N, D, { pick: 3 });
      k.rows.forEach((_, t) => (k.rows[t] = N - 1 - t));
      expect(k.call(N, false)).toBe(N);
      for (let t = 0; t < N; t++) {
        const row = N - 1 - t;
        expect(k.out[t]).toBe(k.exact[row]);
        // The reference itself against a plain sum (not bitwise: another order).
        let plain = 0;
        for (let j = 0; j < D; j++) plain += (X[row * D + j] - X[3 * D + j]) ** 2;
        expect(k.out[t]).toBeCloseTo(plain, 10);
      }
    }
  });

  it("with bounds, keeps exactly the rows closer than their bound, compacted, with exact distances", () => {
    const random = seededRandom(22);
    for (const D of [5, 100, 131]) {
      const N = 500;
      const X = Float32Array.from({ length: N * D }, () => random());
      // Bounds around the true values, some within the filters' rounding error of them.
      const factors = [0.5, 1 - 1e-7, 1 - 1e-15, 1, 1 + 1e-15, 1 + 1e-7, 2];
      const kept = expectBoundedExact(X, N, D, (i) => factors[i % factors.length], { pick: 0 });
      expect(kept).toBeGreaterThan(N / 4);
    }
  });

  it("stays exact when the quantised copies are coarse or clamped", () => {
    const random = seededRandom(23);
    const N = 400, D = 40;
    // Columns of very different ranges (one scale for all: narrow columns get few levels).
    const X = Float32Array.from({ length: N * D }, (_, p) => random() * 10 ** ((p % D) % 5 - 2));
    expectBoundedExact(X, N, D, (i) => [0.9, 1, 1.1][i % 3], { pick: 7 });
    // A quantiser fitted to a tenth of the range: most values are clamped, e is large.
    const narrow = X.map((v) => v / 10);
    expectBoundedExact(X, N, D, (i) => [0.9, 1, 1.1][i % 3], { pick: 7, fitTo: narrow });
    // A pick far outside the candidates' range (a labelled structure).
    const far = Float32Array.from({ length: D }, () => 50 + random());
    expectBoundedExact(X, N, D, (i) => [0.5, 1, 2][i % 3], { pick: 0, pickRow: far });
  });

  it("proves most far rows not closer from the quantised copies alone", () => {
    // Rows at distance >= 1 from the pick with bounds 0.25: the quantised lower bound rejects them all.
    const N = 64, D = 100;
    const X = new Float32Array(N * D);
    for (let i = 1; i < N; i++) X[i * D + (i % D)] = 1 + i / N;
    const k = setUp(X, N, D, { pick: 0 });
    for (let i = 0; i < N; i++) {
      k.rows[i] = i;
      k.bounds[i] = 0.25;
      k.roots[i] = 0.5;
    }
    expect(k.call(N, true)).toBe(1);
    expect(k.rows[0]).toBe(0);
    expect(k.out[0]).toBe(0);
  });
});

describe("nearest_to_slots", () => {
  /** N rows and C centres of D features with their quantised copies, and the kernel's nearest_to_slots over them. */
  function setUpCentres(X: Float32Array, N: number, C: Float32Array, S: number, D: number) {
    const qLen = quantizedLength(D);
    const qRowBytes = qLen + 16;
    const qPickBytes = 2 * qLen + 16;
    const at = { x: 0, qx: N * D * 4, centres: 0, qCentres: 0, nearestSq: 0, nearest: 0 };
    at.qx = Math.ceil((N * D * 4) / 64) * 64;
    at.centres = at.qx + N * qRowBytes;
    at.qCentres = at.centres + Math.ceil((S * D * 4) / 64) * 64;
    at.nearestSq = at.qCentres + S * qPickBytes;
    at.nearest = at.nearestSq + N * 8;
    const loweredAt = at.nearest + N * 8;
    const pages = Math.ceil((loweredAt + 4) / 65536) + 1;
    const memory = new api.Memory({ initial: pages, maximum: pages, shared: false });
    const instance = new api.Instance(new api.Module(distanceKernelBytes(false, qLen, quantizedUsed(D))), { env: { memory } });
    const run = instance.exports.nearest_to_slots as NearestToSlots;
    const buffer = memory.buffer;
    new Float32Array(buffer, at.x, N * D).set(X);
    new Float32Array(buffer, at.centres, S * D).set(C);
    const qz = fitQuantizer(D, Float32Array.of(...X, ...C));
    quantizeRows(qz, X, 0, N, buffer, at.qx, qRowBytes, false);
    quantizeRows(qz, C, 0, S, buffer, at.qCentres, qPickBytes, true);
    const nearestSq = new Float64Array(buffer, at.nearestSq, N);
    const nearest = new Float64Array(buffer, at.nearest, N);
    const lowered = new Int32Array(buffer, loweredAt, 1);
    const call = (row: number, from: number, to: number): number =>
      run(at.x + row * D * 4, D * 4, D * 4, 0, to - from, at.centres + from * D * 4, at.nearestSq + 8 * row, at.nearest + 8 * row,
        loweredAt, 0, filterSlack(D), at.qx + row * qRowBytes, qPickBytes, at.qCentres + from * qPickBytes, qLen, qz.scale, 0);
    return { nearestSq, nearest, lowered, call };
  }

  it("lowers a row's nearest to its closest centre of a slot range, bit for bit, whatever the range's length, and names that centre", () => {
    const random = seededRandom(26);
    for (const D of [3, 16, 100, 131]) {
      const N = 40, S = 23;
      const X = Float32Array.from({ length: N * D }, () => random());
      // Some centres are copies of rows (distance 0), the others new points.
      const C = Float32Array.from({ length: S * D }, (_, v) => (Math.floor(v / D) % 4 === 0 ? X[(Math.floor(v / D) + 1) * D + (v % D)] : random()));
      const k = setUpCentres(X, N, C, S, D);
      for (let row = 0; row < N; row++) {
        const from = row % 5;
        const to = Math.min(S, from + (row % 17));
        const exact = Array.from({ length: to - from }, (_, c) => squaredDistance(X, row * D, C, (from + c) * D, D));
        // A start above every distance, at one of them, between them, or below all.
        const sorted = [...exact].sort((a, b) => a - b);
        const start = [Infinity, sorted[0] ?? 1, sorted[Math.floor(sorted.length / 2)] ?? 1, (sorted[0] ?? 1) * 0.5][row % 4];
        k.nearestSq[row] = start;
        k.nearest[row] = Math.sqrt(start);
        k.lowered[0] = 12345;
        k.call(row, from, to);
        const expected = Math.min(start, ...exact);
        expect(k.nearestSq[row], `D=${D}, row ${row}`).toBe(expected);
        expect(k.nearest[row]).toBe(Math.sqrt(expected));
        // The last centre strictly closer than the minimum before it (a tie keeps the earlier one), or -1.
        let last = -1;
        for (let c = 0, min = start; c < exact.length; c++) if (exact[c] < min) [min, last] = [exact[c], c];
        expect(k.lowered[0], `D=${D}, row ${row}`).toBe(last);
      }
    }
  });

  it("proves most centres not closer from the quantised copies alone", () => {
    const random = seededRandom(27);
    const N = 50, S = 400, D = 100;
    const X = Float32Array.from({ length: N * D }, () => random());
    const C = Float32Array.from({ length: S * D }, () => random());
    const k = setUpCentres(X, N, C, S, D);
    let inQuestion = 0;
    for (let row = 0; row < N; row++) {
      let nearestSq = Infinity;
      for (let c = 0; c < S; c++) nearestSq = Math.min(nearestSq, squaredDistance(X, row * D, C, c * D, D));
      // Already as near as the closest centre: every centre is "not closer", most proven by the int8 pass.
      k.nearestSq[row] = nearestSq;
      k.nearest[row] = Math.sqrt(nearestSq);
      inQuestion += k.call(row, 0, S);
      expect(k.nearestSq[row]).toBe(nearestSq);
    }
    expect(inQuestion).toBeLessThan(N * S * 0.1);
    expect(inQuestion).toBeGreaterThanOrEqual(N);
  });
});

describe("quantised copies", () => {
  it("give a lower bound on every distance, with a finer step for narrower columns", () => {
    const random = seededRandom(24);
    const N = 300, D = 23;
    // Column ranges 1e3 / 2^j, j = 0..4 (rows 0 and 1 hold the ends): steps 16, 8, 4, 2, 1 times the finest.
    const half = (p: number): number => 500 / 2 ** ((p % D) % 5);
    const X = Float32Array.from({ length: N * D }, (_, p) => (p < D ? half(p) : p < 2 * D ? -half(p) : (2 * random() - 1) * half(p)));
    const qz = fitQuantizer(D, X);
    expect(Array.from(new Set(qz.weight)).sort((a, b) => a - b)).toEqual([1, 4, 16, 64, 256]);
    const stride = quantizedLength(D) + 16;
    const buffer = new ArrayBuffer(N * stride);
    quantizeRows(qz, X, 0, N, buffer, 0, stride, false);
    const q = new Int8Array(buffer);
    const tails = new Float64Array(buffer);
    const errorOf = (a: number): number => tails[(a * stride + quantizedLength(D)) / 8 + 1];
    for (let a = 0; a < N; a += 7) {
      for (let b = 0; b < N; b++) {
        let qd = 0;
        for (let c = 0; c < D; c++) qd += qz.weight[c] * (q[a * stride + c] - q[b * stride + c]) ** 2;
        const lower = qz.scale * Math.sqrt(qd) - errorOf(a) - errorOf(b);
        expect(lower).toBeLessThanOrEqual(Math.sqrt(squaredDistance(X, a * D, X, b * D, D)));
        expect(tails[(a * stride + quantizedLength(D)) / 8]).toBe(Array.from({ length: D }, (_, c) => qz.weight[c] * q[a * stride + c] ** 2).reduce((s, v) => s + v, 0));
      }
    }
    // One step for all columns (the widest's) would leave each row about twice the error (sqrt(5 / 1.33)).
    const widest = qz.scale * 16;
    let single = 0;
    let perColumn = 0;
    for (let a = 0; a < N; a++) {
      let e2 = 0;
      for (let c = 0; c < D; c++) e2 += (X[a * D + c] - qz.mid[c] - widest * Math.round((X[a * D + c] - qz.mid[c]) / widest)) ** 2;
      single += Math.sqrt(e2);
      perColumn += errorOf(a);
    }
    expect(perColumn * 1.8).toBeLessThan(single);
    // A centre's copy holds w*q as int16, and the same sum of w*q^2.
    const wide = new ArrayBuffer(2 * quantizedLength(D) + 16);
    quantizeRows(qz, X, 5, 1, wide, 0, wide.byteLength, true);
    const w16 = new Int16Array(wide);
    for (let c = 0; c < D; c++) expect(w16[c]).toBe(qz.weight[c] * q[5 * stride + c]);
    expect(new Float64Array(wide)[(2 * quantizedLength(D)) / 8]).toBe(tails[(5 * stride + quantizedLength(D)) / 8]);
  });

  it("are the same from the WebAssembly quantize_rows: q and sum(w*q^2) exactly, the error to rounding", () => {
    const random = seededRandom(25);
    // Pairs of columns go two per turn: even and odd counts of pairs, with and without an odd last column.
    for (const D of [1, 2, 3, 6, 7, 16, 17, 100, 102, 129]) {
      const N = 37;
      // Values spread over scales, and fitted to a narrower set so that some are clamped to +-127.
      const X = Float32Array.from({ length: N * D }, () => (random() - 0.5) * 10 ** Math.floor(random() * 4 - 1));
      const qz = fitQuantizer(D, X.subarray(0, 20 * D));
      const qLen = quantizedLength(D);
      const stride = qLen + 16;
      const expected = new ArrayBuffer(N * stride);
      quantizeRows(qz, X, 0, N, expected, 0, stride, false);
      const params = Math.ceil((64 + N * D * 4) / 16) * 16;
      const at = { x: 64, params, qx: params + quantizerParamBytes(D) };
      const memory = new api.Memory({ initial: 2, maximum: 2, shared: false });
      const instance = new api.Instance(new api.Module(distanceKernelBytes(false, qLen)), { env: { memory } });
      new Float32Array(memory.buffer, at.x, N * D).set(X);
      writeQuantizerParams(qz, memory.buffer, at.params);
      (instance.exports.quantize_rows as QuantizeRows)(at.x, D, N, at.qx, stride, qLen, at.params, qz.margin);
      const got = new Uint8Array(memory.buffer, at.qx, N * stride);
      let clamped = 0;
      for (let r = 0; r < N; r++) {
        const want = new Int8Array(expected, r * stride, qLen);
        expect(Array.from(new Int8Array(got.buffer, at.qx + r * stride, qLen))).toEqual(Array.from(want));
        clamped += want.filter((q) => Math.abs(q) === 127).length;
        const wantTail = new Float64Array(expected, r * stride + qLen, 2);
        const gotTail = new Float64Array(got.buffer, at.qx + r * stride + qLen, 2);
        expect(gotTail[0]).toBe(wantTail[0]);
        expect(Math.abs(gotTail[1] - wantTail[1])).toBeLessThanOrEqual(1e-13 * wantTail[1]);
      }
      if (D > 2) expect(clamped).toBeGreaterThan(0);
    }
  });

  it("keep the kernel's int32 sums in range for very long rows", () => {
    const D = 8000;
    const lo = new Float64Array(D).fill(-1);
    const hi = Float64Array.from({ length: D }, (_, c) => (c === 0 ? 100 : 1));
    const qz = quantizerForRanges(lo, hi);
    // With qLen products of 127 and 127*w kept within an int32, w stops at 16 here instead of 256.
    expect(Math.max(...qz.weight)).toBe(16);
    expect(quantizedLength(D) * 127 * 127 * 16).toBeLessThan(2 ** 31);
    expect(quantizedLength(D) * 127 * 127 * 64).toBeGreaterThanOrEqual(2 ** 31);
  });
});

describe("list_rows", () => {
  it("lists exactly the positions with reach[cellOf + 1] < limit*nearest, from `first` on", () => {
    const n = 1001;
    const cells = 37;
    const first = 4096;
    const limit = 2 * (1 + 1e-9);
    const next = seededRandom(11);
    const at = { cellOf: 0, nearest: 4096, reach: 12288, rows: 16384 };
    const memory = new api.Memory({ initial: 1, maximum: 1, shared: false });
    const instance = new api.Instance(new api.Module(distanceKernelBytes(false, 16)), { env: { memory } });
    const list = instance.exports.list_rows as ListRows;
    const cellOf = new Int32Array(memory.buffer, at.cellOf, n);
    const nearest = new Float64Array(memory.buffer, at.nearest, n);
    const reach = new Float64Array(memory.buffer, at.reach, cells + 1);
    reach[0] = Infinity;
    for (let c = 0; c < cells; c++) reach[c + 1] = c % 5 === 0 ? Infinity : next() * 4;
    for (let p = 0; p < n; p++) {
      cellOf[p] = Math.floor(next() * cells);
      // Some rows at distance 0, some exactly on the boundary (not listed), one with no cell (never listed).
      nearest[p] = p % 17 === 0 ? 0 : p % 13 === 0 ? reach[cellOf[p] + 1] / limit : next() * 3;
    }
    cellOf[5] = -1;
    const expected: number[] = [];
    for (let p = 0; p < n; p++) if (reach[cellOf[p] + 1] < limit * nearest[p]) expected.push(first + p);
    const count = list(at.cellOf, at.nearest, at.reach, n, first, limit, at.rows);
    expect(count).toBe(expected.length);
    expect(Array.from(new Int32Array(memory.buffer, at.rows, count))).toEqual(expected);
    expect(count).toBeGreaterThan(n / 4);
    expect(count).toBeLessThan(n);
    expect(list(at.cellOf, at.nearest, at.reach, 0, first, limit, at.rows)).toBe(0);
  });
});

describe("centroid_rows", () => {
  it("gives each row's squared distance to a float64 vector bit for bit as the reference order, for every tail length", () => {
    const random = seededRandom(31);
    for (const D of [1, 7, 8, 9, 100]) {
      const N = 23;
      const X = Float32Array.from({ length: N * D }, () => (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3));
      const centroid = Float64Array.from({ length: D }, () => random() - 0.5);
      const at = { x: 64, centroid: 64 + Math.ceil((N * D * 4) / 16) * 16 };
      const out = at.centroid + D * 8 + 16;
      const memory = new api.Memory({ initial: 1, maximum: 1, shared: false });
      const instance = new api.Instance(new api.Module(distanceKernelBytes(false, quantizedLength(D))), { env: { memory } });
      new Float32Array(memory.buffer, at.x, N * D).set(X);
      new Float64Array(memory.buffer, at.centroid, D).set(centroid);
      (instance.exports.centroid_rows as CentroidRows)(at.x, D, N, at.centroid, out);
      const got = Array.from(new Float64Array(memory.buffer, out, N));
      expect(got).toEqual(Array.from({ length: N }, (_, i) => squaredDistance(X, i * D, centroid, 0, D)));
    }
  });
});
