/**
 * The native selection kernels against the WebAssembly ones: the same picks and distances, bit for bit, on inputs
 * that reach every branch (dimensions around the 8-, 16- and 32-value chunks, labelled seeds, ties, lazy picking,
 * one and two threads). They run only where the CPU has AVX-512 VNNI; there, the first test requires them built.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "../../src/core/errors.js";
import {
  columnStatsBytes, distanceKernelBytes, quantizedLength, quantizerParamBytes, widenQuantizedRow, writeQuantizerParams,
  type QuantizeRows, type ScanColumns,
} from "../../src/core/select/distance-kernel.js";
import type { FeatureMatrix } from "../../src/core/select/feature-matrix.js";
import { catchUp, catchUpPositions, type WasmApi } from "../../src/core/select/fps-kernel.js";
import { allocateSelection, prepareSelection, type LazyPolicy, type SelectionInput } from "../../src/core/select/fps.js";
import { selectCandidatesThreaded } from "../../src/exec/fps-threads.js";
import { kernelChoiceFromEnv, nativeExtxyzFrames, nativeKernels } from "../../src/exec/native-kernels.js";
import { seededRandom } from "../core/select/fps-oracle.js";
import { fitQuantizer } from "../core/select/fit-quantizer.js";

const cpuFlags = existsSync("/proc/cpuinfo") ? (readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "") : "";
const hasVnni = process.arch === "x64" && ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"].every((flag) => cpuFlags.split(" ").includes(flag));
const builtModule = path.resolve(import.meta.dirname, "../../dist/native/selection-kernels.node");
const buildScript = path.resolve(import.meta.dirname, "../../scripts/build-native.mjs");
const scratch = mkdtempSync(path.join(tmpdir(), "native-kernels-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** N rows of D values: `clusters` groups (0: uniform), with every `duplicateEvery`-th row a copy of the one before. */
function features(seed: number, N: number, D: number, clusters: number, duplicateEvery = 0): FeatureMatrix {
  const random = seededRandom(seed);
  const data = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    if (duplicateEvery > 0 && i > 0 && i % duplicateEvery === 0) {
      data.copyWithin(i * D, (i - 1) * D, i * D);
      continue;
    }
    const offset = clusters > 0 ? (i % clusters) * 4 : 0;
    for (let j = 0; j < D; j++) data[i * D + j] = offset + random() * (j % 3 === 0 ? 10 : 1);
  }
  return { rows: N, cols: D, data };
}

const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const ids = (N: number, prefix = "c"): string[] => Array.from({ length: N }, (_, i) => `${prefix}${i}`);

async function bothKernels(input: SelectionInput, threads: number, lazy?: LazyPolicy) {
  const wasm = await selectCandidatesThreaded(input, { threads, lazy, kernels: "wasm" });
  const native = await selectCandidatesThreaded(input, { threads, lazy, kernels: "native" });
  return { wasm, native };
}

it("loads where the CPU has AVX-512 VNNI, and is refused with the reason elsewhere or when asked for WebAssembly", () => {
  expect(nativeKernels("wasm")).toBeUndefined();
  if (hasVnni) {
    expect(existsSync(builtModule), "dist/native/selection-kernels.node is missing: npm run build builds it").toBe(true);
    expect(nativeKernels("auto")?.path).toBe(builtModule);
    expect(nativeKernels("native")?.path).toBe(builtModule);
  } else {
    expect(nativeKernels("auto")).toBeUndefined();
    expect(() => nativeKernels("native")).toThrow(UsageError);
  }
  const missing = path.join(scratch, "missing.node");
  expect(nativeKernels("auto", missing)).toBeUndefined();
  expect(() => nativeKernels("native", missing)).toThrow(/RELABEL_KERNELS=native: the native kernels are not built \(.*missing\.node/);
});

it("has the extxyz frame reader on any x86-64 CPU (it needs no AVX-512), and none when asked for WebAssembly or not built", () => {
  expect(nativeExtxyzFrames("wasm")).toBeUndefined();
  expect(nativeExtxyzFrames("auto", path.join(scratch, "missing.node"))).toBeUndefined();
  if (process.platform === "linux" && process.arch === "x64") {
    expect(existsSync(builtModule), "dist/native/selection-kernels.node is missing: npm run build builds it").toBe(true);
    expect(nativeExtxyzFrames("auto")).toBeTypeOf("function");
    // Bound once per module: every scanner shares the reader.
    expect(nativeExtxyzFrames("native")).toBe(nativeExtxyzFrames("auto"));
  }
});

it("reads RELABEL_KERNELS, refusing anything but auto, native and wasm", () => {
  expect(kernelChoiceFromEnv({})).toBe("auto");
  expect(kernelChoiceFromEnv({ RELABEL_KERNELS: "wasm" })).toBe("wasm");
  expect(() => kernelChoiceFromEnv({ RELABEL_KERNELS: "fast" })).toThrow(new UsageError('RELABEL_KERNELS must be auto, native or wasm (got "fast")'));
});

it("builds with the machine's compiler, and without one says so in a line and leaves no module, not even an older one", () => {
  const out = path.join(scratch, "built.node");
  const built = spawnSync(process.execPath, [buildScript, out], { encoding: "utf8" });
  const noCompiler = path.join(scratch, "none.node");
  writeFileSync(noCompiler, "an older build");
  utimesSync(noCompiler, new Date(0), new Date(0));
  const skipped = spawnSync(process.execPath, [buildScript, noCompiler], { encoding: "utf8", env: { ...process.env, CC: "/nonexistent/cc" } });
  if (process.platform === "linux" && process.arch === "x64") {
    expect(built.status, built.stderr).toBe(0);
    expect(built.stderr).toBe("");
    const loaded = { exports: {} as { supported?: boolean } };
    process.dlopen(loaded, out);
    expect(loaded.exports.supported).toBe(hasVnni);
  }
  expect(skipped.status).toBe(0);
  expect(skipped.stderr.trim().split("\n")).toHaveLength(1);
  expect(skipped.stderr).toMatch(/^native selection kernels not built: .*; `relabel rank` uses its WebAssembly kernels/);
  expect(existsSync(noCompiler)).toBe(false);
});

describe.runIf(hasVnni)("native kernels (this CPU has AVX-512 VNNI)", () => {
  it("give the WebAssembly kernels' picks and distances exactly, for dimensions around every chunk size", async () => {
    for (const D of [1, 7, 8, 9, 16, 17, 31, 32, 33, 64, 100, 130]) {
      for (const clusters of [0, 6]) {
        const N = 1500;
        const input = { features: features(D * 10 + clusters, N, D, clusters), ids: ids(N), k: 120 };
        for (const threads of [1, 2]) {
          const { wasm, native } = await bothKernels(input, threads);
          expect(native.picks, `D=${D} clusters=${clusters} threads=${threads}`).toEqual(wasm.picks);
          expect(Array.from(native.distanceToCovered)).toEqual(Array.from(wasm.distanceToCovered));
        }
      }
    }
  });

  it("agree when every pick is lazy, or lazy and by passes in turn, with labelled seeds, exclusions, disagreement and duplicate rows", async () => {
    const N = 4000;
    const D = 20;
    const random = seededRandom(5);
    const labelled = features(6, 300, D, 3);
    const input: SelectionInput = {
      features: features(7, N, D, 3, 7),
      ids: ids(N),
      k: 400,
      labelled: { features: labelled, ids: ids(300, "l") },
      excluded: Uint8Array.from({ length: N }, () => (random() < 0.05 ? 1 : 0)),
      disagreement: Float64Array.from({ length: N }, () => random()),
      rule: { kind: "uwfps", alpha: 1, beta: 2 },
    };
    for (const lazy of [undefined, { passes: 1, minShare: 0 }, { passes: 1, minShare: 0, resumeShare: 2 }]) {
      for (const threads of [1, 2]) {
        const { wasm, native } = await bothKernels(input, threads, lazy);
        if (lazy) expect(native.lazyFrom).toBe(1);
        expect(native.picks).toEqual(wasm.picks);
        expect(Array.from(native.distanceToCovered)).toEqual(Array.from(wasm.distanceToCovered));
      }
    }
  });

  it("agree with columns in all five weight groups, each padded to whole quads, by passes and lazily", async () => {
    for (const D of [5, 13, 37]) {
      const N = 2000;
      const random = seededRandom(D);
      // Column c spans 2^(c mod 5): steps of 4^0 .. 4^4 times the finest.
      const data = Float32Array.from({ length: N * D }, (_, p) => ((p % 7) + random()) * 2 ** ((p % D) % 5));
      const input = { features: { rows: N, cols: D, data }, ids: ids(N), k: 100 };
      const { qWeight } = prepareSelection(input, 1, nativeKernels("native")!.kernels);
      expect(new Set(qWeight).size, `D=${D}`).toBe(Math.min(D, 5));
      for (const lazy of [undefined, { passes: 1, minShare: 0 }]) {
        for (const threads of [1, 2]) {
          const { wasm, native } = await bothKernels(input, threads, lazy);
          expect(native.picks, `D=${D} threads=${threads} lazy=${lazy !== undefined}`).toEqual(wasm.picks);
          expect(Array.from(native.distanceToCovered)).toEqual(Array.from(wasm.distanceToCovered));
        }
      }
    }
  });

  it("agree under each rule, whether the native pass loop keeps the cells (plain scores) or JavaScript does (a power)", async () => {
    const N = 3000;
    const random = seededRandom(23);
    const base = {
      features: features(29, N, 24, 5, 11),
      ids: ids(N),
      k: 150,
      excluded: Uint8Array.from({ length: N }, () => (random() < 0.1 ? 1 : 0)),
      disagreement: Float64Array.from({ length: N }, () => random()),
    };
    const rules: SelectionInput["rule"][] = [
      { kind: "weighted", wDiv: 1, wDis: 0 },
      { kind: "weighted", wDiv: 0.5, wDis: 2 },
      { kind: "uwfps", alpha: 1, beta: 1 },
      { kind: "uwfps", alpha: 2, beta: 3 },
    ];
    for (const rule of rules) {
      for (const threads of [1, 2]) {
        const { wasm, native } = await bothKernels({ ...base, rule }, threads);
        expect(native.picks, `${JSON.stringify(rule)} threads=${threads}`).toEqual(wasm.picks);
        expect(Array.from(native.distanceToCovered)).toEqual(Array.from(wasm.distanceToCovered));
      }
    }
  });

  it("move the rows that got closer as scanPass does: cells left and joined, bests, radii, scores and the moved list", () => {
    const { kernels } = nativeKernels("native")!;
    for (const [kind, wDiv, scores] of [[0, 2, [2.5, 2.5, 4]], [1, 0, [0.5, 0.5, 0]]] as const) {
      // Candidates 0 and 1 in cell 0 (0 its best), 2 and 3 in cell 1 (2 its best, 3 not pickable); 0, 1 and 3 move to cell 2.
      const c = {
        size: Int32Array.of(2, 2, 0), radius: Float64Array.of(5, 5, 0), cellScore: Float64Array.of(9, 9, -Infinity),
        cellIndex: Int32Array.of(1, 2, -1), cellPosition: Int32Array.of(0, 2, -1), dirtyStamp: new Int32Array(3),
        moved: new Int32Array(8), counts: Int32Array.of(0, 0),
      };
      const r = {
        nearestSq: new Float64Array(4).fill(25), nearest: new Float64Array(4).fill(5), cellOf: Int32Array.of(0, 0, 1, 1),
        score: new Float64Array(4), weight: Float64Array.of(0.5, 0.5, 0.25, 0), status: Uint8Array.of(0, 0, 0, 1), index: Int32Array.of(1, 0, 2, 3),
      };
      const moveRows = kernels.moves(
        c.size, c.radius, c.cellScore, c.cellIndex, c.cellPosition, c.dirtyStamp, c.moved, c.counts,
        r.nearestSq, r.nearest, r.cellOf, r.score, r.weight, r.status, r.index, Int32Array.of(0, 1, 3), Float64Array.of(1, 1, 4, 0), kind, wDiv,
      );
      moveRows(3, 2, 7);
      // Three moved; one cell (0) lost its best.
      expect(Array.from(c.counts)).toEqual([3, 1]);
      expect(Array.from(c.moved.subarray(0, 6))).toEqual([0, 0, 1, 0, 3, 1]);
      expect(Array.from(c.dirtyStamp)).toEqual([7, 0, 0]);
      expect(Array.from(c.size)).toEqual([0, 1, 3]);
      expect(Array.from(c.radius)).toEqual([5, 5, 2]);
      // Candidates 0 and 1 tie on score: the lower candidate index (1's, 0) is the cell's best.
      expect([c.cellScore[2], c.cellIndex[2], c.cellPosition[2]]).toEqual([scores[0], 0, 1]);
      expect(Array.from(r.cellOf)).toEqual([2, 2, 1, 2]);
      expect(Array.from(r.nearestSq)).toEqual([1, 1, 25, 4]);
      expect(Array.from(r.nearest)).toEqual([1, 1, 5, 2]);
      expect([r.score[0], r.score[1], r.score[3]]).toEqual(scores);
    }
  });

  it("refuse a pass loop over rows or cells out of range", () => {
    const { kernels } = nativeKernels("native")!;
    const cells = 4;
    const region = { count: 3 };
    const int32 = (n: number, fill = 0) => new Int32Array(n).fill(fill);
    const float64 = (n: number) => new Float64Array(n);
    const rows = Int32Array.of(0, 1, 2);
    const out = Float64Array.of(1, 4, 9, 0);
    const args = (moved: Int32Array = int32(2 * region.count)): Parameters<typeof kernels.moves> => [
      int32(cells), float64(cells), float64(cells).fill(-Infinity), int32(cells, -1), int32(cells, -1), int32(cells), moved, int32(2),
      float64(region.count).fill(Infinity), float64(region.count).fill(Infinity), int32(region.count, 0), float64(region.count),
      float64(region.count), new Uint8Array(region.count), Int32Array.of(0, 1, 2), rows, out, 0, 1,
    ];
    const make = (moved?: Int32Array) => kernels.moves(...args(moved));
    expect(() => make()(3, 1, 2)).not.toThrow();
    expect(() => make()(4, 1, 2)).toThrow(RangeError);
    expect(() => make()(3, cells, 2)).toThrow(RangeError);
    expect(() => make(int32(2))(3, 1, 2)).toThrow(/full moved list/);
    rows[1] = 3;
    expect(() => make()(3, 1, 2)).toThrow(/out of range/);
    rows[1] = 1;
    // Arrays of the wrong length or type, and a rule kind other than 0 and 1.
    const shortRadius = args();
    shortRadius[1] = float64(cells - 1);
    const floatIndex = args() as unknown[];
    floatIndex[14] = float64(region.count);
    const kind = args();
    kind[17] = 2;
    for (const bad of [shortRadius, floatIndex, kind]) expect(() => kernels.moves(...(bad as Parameters<typeof kernels.moves>))).toThrow(TypeError);
  });

  it("agree when all candidates are equally far apart (every distance a tie)", async () => {
    const N = 64;
    const D = 64;
    const data = new Float32Array(N * D);
    for (let i = 0; i < N; i++) data[i * D + i] = 1;
    const { wasm, native } = await bothKernels({ features: { rows: N, cols: D, data }, ids: ids(N), k: 40 }, 1, { passes: 1, minShare: 0 });
    expect(native.picks.map((pick) => pick.index)).toEqual(wasm.picks.map((pick) => pick.index));
    expect(native.picks).toEqual(wasm.picks);
  });

  it("leave in question only the centres the quantised bound cannot rule out, with columns of several weights", () => {
    // 40 clusters far apart, 8 members each; columns on scales 1, 8 and 64 get weights 4^g of three groups or more.
    const { kernels } = nativeKernels("native")!;
    const random = seededRandom(17);
    const [C, members, D] = [40, 8, 21];
    const scale = (c: number): number => 8 ** (c % 3);
    const centreOf = Array.from({ length: C }, () => Array.from({ length: D }, (_, c) => random() * 100 * scale(c)));
    const data = new Float32Array(C * members * D);
    for (let i = 0; i < C * members; i++) {
      for (let c = 0; c < D; c++) data[i * D + c] = centreOf[i % C][c] + (random() - 0.5) * 0.1 * scale(c);
    }
    const prepared = prepareSelection({ features: { rows: C * members, cols: D, data }, k: C }, 1, kernels);
    expect(new Set(prepared.qWeight).size).toBeGreaterThanOrEqual(3);
    const { layout, main } = prepared;
    const region = prepared.regions[0];
    const at = layout.regions[0];
    const bytes = new DataView(prepared.memory.buffer);
    // Centre slot j: the first member of cluster j (candidate j).
    for (let j = 0; j < C; j++) {
      const p = region.index.indexOf(j);
      new Float32Array(prepared.memory.buffer, layout.centres + j * layout.rowBytes, D).set(region.X.subarray(p * D, (p + 1) * D));
      widenQuantizedRow(bytes, at.qx + p * layout.qRowBytes, layout.qCentres + j * layout.qPickBytes, layout.qLen, prepared.qWeight);
    }
    region.nearestSq.fill(Infinity);
    region.nearest.fill(Infinity);
    const nearest = (p: number, from: number, to: number): number =>
      main.native!.nearest(at.x + p * layout.rowBytes, at.qx + p * layout.qRowBytes, at.nearestSq + 8 * p, at.nearest + 8 * p, main.rowsPtr, from, to);
    for (let p = 0; p < at.count; p++) {
      const own = region.index[p] % C;
      expect(nearest(p, own, own + 1)).toBe(1);
      expect(main.rows[0]).toBe(0);
      const bound = region.nearestSq[p];
      expect(bound).toBeLessThan((0.1 * 64) ** 2 * D);
      // Against every centre, with the own one's distance as the bound: only that one is left in question.
      expect(nearest(p, 0, C), `candidate ${region.index[p]}`).toBe(1);
      expect(main.rows[0]).toBe(-1);
      expect(region.nearestSq[p]).toBe(bound);
    }
  });

  it("catch a range of candidates up as catchUp does one by one: nearest, cell, score and fresh, under both plain rules", () => {
    const { kernels } = nativeKernels("native")!;
    const N = 600;
    const D = 19;
    const random = seededRandom(31);
    const data = features(37, N, D, 4).data;
    const disagreement = Float64Array.from({ length: N }, () => random());
    for (const rule of [{ kind: "weighted", wDiv: 0.7, wDis: 1.3 }, { kind: "uwfps", alpha: 1, beta: 1 }] as const) {
      const [range, oneByOne] = [0, 1].map(() => prepareSelection({ features: { rows: N, cols: D, data }, k: 30, disagreement, rule }, 1, kernels));
      const fresh = Int32Array.from({ length: N }, (_, p) => (p % 7 === 0 ? 30 : p % 3 === 0 ? 0 : 1 + (p % 20)));
      for (const prepared of [range, oneByOne]) {
        const { layout, regions } = prepared;
        const at = layout.regions[0];
        const bytes = new DataView(prepared.memory.buffer);
        // Centre slot j: candidate 17 j's row; every candidate starts 1e9 away, in no cell.
        for (let j = 0; j < 30; j++) {
          const p = 17 * j;
          new Float32Array(prepared.memory.buffer, layout.centres + j * layout.rowBytes, D).set(regions[0].X.subarray(p * D, (p + 1) * D));
          widenQuantizedRow(bytes, at.qx + p * layout.qRowBytes, layout.qCentres + j * layout.qPickBytes, layout.qLen, prepared.qWeight);
        }
        regions[0].nearestSq.fill(1e18);
        regions[0].nearest.fill(1e9);
        regions[0].cellOf.fill(-1);
        regions[0].fresh.set(fresh);
      }
      catchUpPositions(range.main, range.layout.regions[0], range.regions[0], 50, 550, 30);
      const { main, layout, regions } = oneByOne;
      for (let p = 50; p < 550; p++) {
        if (regions[0].fresh[p] >= 30) continue;
        catchUp(main, layout.regions[0], regions[0], p, regions[0].fresh[p], 30);
        regions[0].fresh[p] = 30;
      }
      for (const name of ["nearestSq", "nearest", "cellOf", "score", "fresh"] as const) {
        expect(Array.from(range.regions[0][name]), `${rule.kind} ${name}`).toEqual(Array.from(regions[0][name]));
      }
      // Candidates outside [50, 550) were left alone; those inside met the centres.
      expect(range.regions[0].fresh[0]).toBe(30);
      expect(range.regions[0].fresh[3]).toBe(0);
      expect(range.regions[0].cellOf.subarray(50, 550).some((c) => c > 0)).toBe(true);
      expect(range.regions[0].nearest[51]).toBeLessThan(1e9);
      // A candidate claimed by another thread (fresh -1) is refused, not caught up.
      range.regions[0].fresh[560] = -1;
      expect(() => catchUpPositions(range.main, range.layout.regions[0], range.regions[0], 555, 565, 30)).toThrow(/claimed by another thread/);
    }
  });

  it("scan and quantise rows as the WebAssembly kernel does: ranges, sums and q exactly, the error to rounding", () => {
    const { kernels } = nativeKernels("native")!;
    const random = seededRandom(41);
    for (const D of [1, 2, 7, 8, 9, 16, 17, 100, 129]) {
      const N = 53;
      // Values over several scales, columns of signed zeros (lo and hi keep the first of equal values), a repeated row.
      const zeros = (c: number, first: boolean): number => (first === (c === 3) ? -0 : 0);
      const X = Float32Array.from({ length: N * D }, (_, p) =>
        p % D === 3 || p % D === 4 ? zeros(p % D, p < D) : (random() - 0.5) * 10 ** Math.floor(random() * 4 - 1));
      X.copyWithin(5 * D, 4 * D, 5 * D);
      const qLen = quantizedLength(D);
      const stride = qLen + 16;
      const statsBytes = columnStatsBytes(D);
      const at = { x: 64, stats: 64 + Math.ceil((N * D * 4) / 16) * 16 };
      const params = at.stats + Math.ceil(statsBytes / 16) * 16;
      const qx = params + quantizerParamBytes(D);
      const run = (native: boolean, values: Float32Array): Uint8Array => {
        const memory = new api.Memory({ initial: 2, maximum: 2, shared: false });
        const kernel = new api.Instance(new api.Module(distanceKernelBytes(false, qLen)), { env: { memory } }).exports;
        const bytes = new Uint8Array(memory.buffer);
        new Float32Array(memory.buffer, at.x, N * D).set(values);
        const stats = new Float64Array(memory.buffer, at.stats, statsBytes / 8);
        stats.fill(Infinity, 0, D).fill(-Infinity, D, 2 * D).fill(0, 2 * D);
        // In two calls, as the selection scans block by block.
        for (const [from, count] of [[0, 20], [20, N - 20]]) {
          if (native) kernels.scanColumns(bytes, at.x + 4 * D * from, D, count, at.stats);
          else (kernel.scan_columns as ScanColumns)(at.x + 4 * D * from, D, count, at.stats);
        }
        if (stats[3 * D] !== 0 || stats[3 * D + 1] !== 0) return bytes;
        // Fitted to the first rows only, so that later values are clamped to +-127.
        const qz = fitQuantizer(D, values.subarray(0, 10 * D));
        writeQuantizerParams(qz, memory.buffer, params);
        if (native) kernels.quantizeRows(bytes, at.x, D, N, qx, stride, qLen, params, qz.margin);
        else (kernel.quantize_rows as QuantizeRows)(at.x, D, N, qx, stride, qLen, params, qz.margin);
        return bytes;
      };
      const [wasm, native] = [run(false, X), run(true, X)];
      expect(native.subarray(at.stats, at.stats + statsBytes), `D=${D}`).toEqual(wasm.subarray(at.stats, at.stats + statsBytes));
      expect(new Float64Array(native.buffer, at.stats + 8 * D * 3, 2).every((v) => v === 0)).toBe(true);
      let clamped = 0;
      for (let r = 0; r < N; r++) {
        const q = (bytes: Uint8Array) => new Int8Array(bytes.buffer, qx + r * stride, qLen);
        expect(Array.from(q(native)), `D=${D} row ${r}`).toEqual(Array.from(q(wasm)));
        clamped += q(wasm).filter((v) => Math.abs(v) === 127).length;
        const [nativeTail, wasmTail] = [native, wasm].map((bytes) => new Float64Array(bytes.buffer, qx + r * stride + qLen, 2));
        expect(nativeTail[0]).toBe(wasmTail[0]);
        expect(Math.abs(nativeTail[1] - wasmTail[1])).toBeLessThanOrEqual(1e-13 * wasmTail[1]);
      }
      if (D > 3) expect(clamped).toBeGreaterThan(0);
      // A value that is not finite shows in the two values after the sums, in any column.
      for (const bad of [NaN, Infinity, -Infinity]) {
        const Y = X.slice();
        Y[Y.length - 1] = bad;
        expect(Array.from(new Float64Array(run(true, Y).buffer, at.stats + 24 * D, 2)).some((v) => v !== 0), `D=${D} ${bad}`).toBe(true);
      }
    }
  });

  it("refuses offsets outside the selection's memory instead of reading them", () => {
    const { kernels } = nativeKernels("native")!;
    const { memory, layout } = allocateSelection(100, 10, 0, 10, 1);
    const bytes = new Uint8Array(memory.buffer);
    const bind = (centres: number, qCentres: number, quantizer: number) =>
      kernels.bind(bytes, centres, qCentres, layout.slots, 10, layout.rowBytes, layout.qLen, layout.qPickBytes, 1, 1, quantizer);
    // Column weights other than 4^g (g < 5) are refused: 0 (nothing written yet), then 2.
    expect(() => bind(layout.centres, layout.qCentres, layout.quantizer)).toThrow(/column weights/);
    const qz = fitQuantizer(10, Float32Array.from({ length: 20 }, (_, i) => i % 7));
    writeQuantizerParams({ ...qz, weight: qz.weight.map((w, c) => (c === 9 ? 2 : w)) }, memory.buffer, layout.quantizer);
    expect(() => bind(layout.centres, layout.qCentres, layout.quantizer)).toThrow(/column weights/);
    writeQuantizerParams(qz, memory.buffer, layout.quantizer);
    const sweep = bind(layout.centres, layout.qCentres, layout.quantizer);
    expect(() => sweep.nearest(bytes.length, 0, 0, 8, 16, 0, 1)).toThrow(RangeError);
    expect(() => sweep.nearest(0, 0, 0, 8, bytes.length - 2, 0, 1)).toThrow(RangeError);
    expect(() => sweep.nearest(0, 0, 0, 8, 16, 0, layout.slots + 1)).toThrow(RangeError);
    expect(() => sweep.rows(0, bytes.length - 4, 2, 0, 0, 0, 0, 0, layout.qRowBytes, layout.qCentres, 0)).toThrow(RangeError);
    const at = layout.regions[0];
    expect(sweep.prefetch(at.x, at.qx, at.nearestSq, at.nearest, at.score, at.fresh)).toBeUndefined();
    expect(() => sweep.prefetch(bytes.length - 8, at.qx, at.nearestSq, at.nearest, at.score, at.fresh)).toThrow(RangeError);
    expect(() => sweep.prefetch(at.x, at.qx, at.nearestSq, at.nearest, at.score, bytes.length - 2)).toThrow(RangeError);
    expect(() => bind(0, bytes.length, layout.quantizer)).toThrow(/outside the memory/);
    expect(() => bind(layout.centres, layout.qCentres, bytes.length - 64)).toThrow(RangeError);
    expect(() => kernels.scanColumns(bytes, bytes.length - 40, 10, 2, 0)).toThrow(RangeError);
    expect(() => kernels.scanColumns(bytes, 0, 10, 2, bytes.length - 8)).toThrow(RangeError);
    expect(() => kernels.quantizeRows(bytes, 0, 10, 3, bytes.length - 100, 48, 32, 0, 0)).toThrow(RangeError);
    expect(() => kernels.quantizeRows(bytes, 0, 10, 3, 0, 48, 32, bytes.length - 64, 0)).toThrow(RangeError);
    expect(() => kernels.quantizeRows(bytes, 0, 40, 3, 0, 48, 32, 0, 0)).toThrow(/room for each copy/);
  });
});
