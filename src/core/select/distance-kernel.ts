/**
 * Squared Euclidean distances between float32 feature rows, accumulated in float64, as a small
 * WebAssembly SIMD module (assembled here byte by byte: no toolchain, no dependency). The same module
 * holds the selection's other loops over whole rows: the column scan and quantisation of its setup
 * (scan_columns, quantize_rows, centroid_rows), the regrouping permutation (permute_rows), the listing of
 * rows a pick may concern (list_rows) and one row against many centres (nearest_to_slots); see distanceKernelBytes.
 *
 * Exported `sqdist_rows(x, rowBytes, dBytes, rows, count, pick, bounds, roots, out, useBound, slack, qx,
 * qRowBytes, qPick, qLen, qScale, kept)`: for t < count, with row = i32[rows + 4t], computes the squared
 * distance between the row at `x + row*rowBytes` and the row at `pick` (dBytes = 4*D bytes each).
 * - useBound = 0: writes it to f64[out + 8t] and returns count.
 * - useBound = 1: only rows closer than their bound f64[bounds + 8*row] are kept: the k-th of them gets
 *   its row to i32[kept + 4k] (`kept` may be `rows`) and its distance to f64[out + 8k]; returns k.
 *   rows needs room for count + 1 entries (the last is read, not used, when count is odd);
 *   f64[roots + 8*row] must be the bound's square root, correctly rounded (the row's `nearest`).
 * "Not closer" is proven by up to three passes, cheapest first:
 * 1. Quantised rows (see quantizeRows): row r has a copy at `qx + r*qRowBytes`, its features rounded to
 *    integers q = round((x - mid)/(qScale*2^k)), |q| <= 127, with a power-of-two step 2^k (k = 0..4) per
 *    column that fits the column's range, as qLen int8 values (D padded to 16), then sum(w*q^2) with
 *    w = 4^k and e, an upper bound on |x - (mid + qScale*2^k*q)|, as float64; the pick's copy at qPick
 *    holds int16 values w*q instead, so that its int32 dot products with a row's q give
 *    |q_row - q_pick|_w^2 = sum(w*(q_row - q_pick)^2) exactly, and by the triangle inequality
 *    |x_row - x_pick| >= qScale*|q_row - q_pick|_w - e_row - e_pick; once that lower bound (rounded down
 *    by 1e-12) squared reaches bound*slack, the row is not closer. The copies are contiguous and a quarter
 *    of the rows' size, so this pass reads two cache lines per row (D = 100) instead of seven. Steps per
 *    column keep e small when column ranges differ (standard-scaled descriptors: a few heavy-tailed
 *    columns would otherwise set one coarse step for all).
 * 2. A float32 pass sums (x - pick)^2 in single precision; its relative error is at most
 *    gamma(D+3) = (D+3)u/(1-(D+3)u), u = 2^-24, whatever the summation order, so once that sum reaches
 *    bound*slack (slack >= (1 + 1e-9)/(1 - 2*gamma), given by the caller) the row is not closer.
 * 3. Otherwise the exact float64 pass runs, which also stops once its partial sum reaches the bound
 *    (partial sums of squares never decrease).
 *
 * Exact summation order (the tests hold it to a plain JS loop in this order, so JS and WebAssembly agree
 * bit for bit): element j of each full chunk of 8 goes to accumulator j mod 8; then
 * s = ((a0 + a2) + (a4 + a6)) + ((a1 + a3) + (a5 + a7)); the D mod 8 trailing elements are added to s
 * in order. Differences and squares are float64 (exact differences of float32 values), no fused
 * multiply-add, so results are deterministic on every platform and thread.
 */

import {
  F32, F64, I32, V128, VOID_BLOCK, f64, get, i32, memarg, name, op, section, set, simd, simdOp, uleb, vec, whileBelow,
} from "./wasm-emit.js";

/** How often (in float32 elements) a pass compares its partial sum with the bound. */
const BOUND_CHECK_ELEMENTS = 32;

const P = {
  x: 0, rowBytes: 1, dBytes: 2, rows: 3, count: 4, pick: 5, bounds: 6, roots: 7, out: 8, useBound: 9, slack: 10,
  qx: 11, qRowBytes: 12, qPick: 13, qLen: 14, qScale: 15, kept: 16,
};
const L = {
  t: 17, j: 18, full8: 19, full16: 20, row: 21, a: 22, qa: 23, kept: 24, rowB: 25, qaB: 26, far: 27,
  s: 28, bound: 29, threshold: 30, diff: 31, qScale2: 32, rootSlack: 33,
  sf: 34, df: 35,
  acc: [36, 37, 38, 39], dv: 40, pv: 41, lhs: 42, rhs: 43,
  // The quantised filter's values that stay the same for every row (splats).
  minusTwo: 44, pickSq: 45, qScale2x2: 46, rootSlackx2: 47, pickError: 48, margin: 49,
};
const LOCALS: [number, number][] = [[11, I32], [6, F64], [2, F32], [14, V128]];
const PARAMS = [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F64, I32, I32, I32, I32, F64, I32];

const zeroF64x2 = L.acc.flatMap((acc) => [...f64(0), ...simd(simdOp.f64x2Splat), ...set(acc)]);
const zeroF32x4 = L.acc.flatMap((acc) => [op.f32Const, 0, 0, 0, 0, ...simd(simdOp.f32x4Splat), ...set(acc)]);

/** Exact pass, one chunk of 8: acc_q += (x[j+2q..] - pick[j+2q..])^2 lane-wise in float64. */
const exactChunk = [0, 1, 2, 3].flatMap((q) => [
  ...get(P.pick), ...get(L.j), op.i32Add, ...simd(simdOp.load64Zero), ...memarg(2, 8 * q),
  ...simd(simdOp.f64x2PromoteLowF32x4), ...set(L.pv),
  ...get(L.a), ...get(L.j), op.i32Add, ...simd(simdOp.load64Zero), ...memarg(2, 8 * q),
  ...simd(simdOp.f64x2PromoteLowF32x4), ...get(L.pv), ...simd(simdOp.f64x2Sub), ...set(L.dv),
  ...get(L.acc[q]), ...get(L.dv), ...get(L.dv), ...simd(simdOp.f64x2Mul), ...simd(simdOp.f64x2Add), ...set(L.acc[q]),
]);

/** Filter pass, one chunk of 16: acc_q += (x[j+4q..] - pick[j+4q..])^2 lane-wise in float32. */
const filterChunk = [0, 1, 2, 3].flatMap((q) => [
  ...get(L.acc[q]),
  ...get(L.a), ...get(L.j), op.i32Add, ...simd(simdOp.v128Load), ...memarg(2, 16 * q),
  ...get(P.pick), ...get(L.j), op.i32Add, ...simd(simdOp.v128Load), ...memarg(2, 16 * q),
  ...simd(simdOp.f32x4Sub), ...set(L.dv), ...get(L.dv), ...get(L.dv), ...simd(simdOp.f32x4Mul),
  ...simd(simdOp.f32x4Add), ...set(L.acc[q]),
]);

/** s = lane0 + lane1 of (acc0 + acc1) + (acc2 + acc3), float64 lanes. */
const exactSum = [
  ...get(L.acc[0]), ...get(L.acc[1]), ...simd(simdOp.f64x2Add),
  ...get(L.acc[2]), ...get(L.acc[3]), ...simd(simdOp.f64x2Add),
  ...simd(simdOp.f64x2Add), ...set(L.dv),
  ...get(L.dv), ...simd(simdOp.f64x2ExtractLane), 0,
  ...get(L.dv), ...simd(simdOp.f64x2ExtractLane), 1,
  op.f64Add, ...set(L.s),
];

/** sf = sum of the float32 lanes of all four accumulators. */
const filterSum = [
  ...get(L.acc[0]), ...get(L.acc[1]), ...simd(simdOp.f32x4Add),
  ...get(L.acc[2]), ...get(L.acc[3]), ...simd(simdOp.f32x4Add),
  ...simd(simdOp.f32x4Add), ...set(L.dv),
  ...[0, 1, 2, 3].flatMap((lane) => [...get(L.dv), ...simd(simdOp.f32x4ExtractLane), lane]),
  op.f32Add, op.f32Add, op.f32Add, ...set(L.sf),
];

/** Branches `depth` levels out when the float32 sum sf proves the row is not closer than its bound. */
const skipIfProvenFar = (depth: number): number[] => [
  ...get(L.sf), op.f64PromoteF32, ...get(L.threshold), op.f64Ge,
  ...get(L.sf), op.f64PromoteF32, ...f64(Infinity), op.f64Lt,
  op.i32And, op.brIf, depth,
];

/** Loop over elements j .. dBytes one float at a time, running `step`. */
const trailing = (step: number[]): number[] => whileBelow(L.j, get(P.dBytes), 4, step);

const checkEvery = BOUND_CHECK_ELEMENTS * 4 - 1;

/** Float32 filter, placed inside `if useBound` inside $skip; falls through when the exact pass is needed. */
function filterPass(): number[] {
  return [
    ...zeroF32x4, ...i32(0), ...set(L.j),
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
    ...get(L.j), ...get(L.full16), op.i32GeU, op.brIf, 1,
    ...filterChunk,
    ...get(L.j), ...i32(64), op.i32Add, ...set(L.j),
    ...get(L.j), ...i32(checkEvery), op.i32And, op.i32Eqz, op.if, VOID_BLOCK,
    ...filterSum, ...skipIfProvenFar(4), // if, loop, block, if, -> $skip
    op.end,
    op.br, 0,
    op.end, op.end,
    ...filterSum,
    ...trailing([
      ...get(L.a), ...get(L.j), op.i32Add, op.f32Load, ...memarg(2),
      ...get(P.pick), ...get(L.j), op.i32Add, op.f32Load, ...memarg(2),
      op.f32Sub, ...set(L.df),
      ...get(L.sf), ...get(L.df), ...get(L.df), op.f32Mul, op.f32Add, ...set(L.sf),
    ]),
    ...skipIfProvenFar(1), // if, -> $skip
  ];
}

/** Exact float64 pass into s; stops early (with s >= bound) once the partial sum reaches the bound. */
function exactPass(): number[] {
  return [
    ...zeroF64x2, ...i32(0), ...set(L.j),
    op.block, VOID_BLOCK, // $done: s is set
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
    ...get(L.j), ...get(L.full8), op.i32GeU, op.brIf, 1,
    ...exactChunk,
    ...get(L.j), ...i32(32), op.i32Add, ...set(L.j),
    ...get(L.j), ...i32(checkEvery), op.i32And, op.i32Eqz, op.if, VOID_BLOCK,
    ...exactSum, ...get(L.s), ...get(L.bound), op.f64Ge, op.brIf, 3, // if, loop, block, -> $done
    op.end,
    op.br, 0,
    op.end, op.end,
    ...exactSum,
    ...trailing([
      ...get(L.a), ...get(L.j), op.i32Add, op.f32Load, ...memarg(2), op.f64PromoteF32,
      ...get(P.pick), ...get(L.j), op.i32Add, op.f32Load, ...memarg(2), op.f64PromoteF32,
      op.f64Sub, ...set(L.diff),
      ...get(L.s), ...get(L.diff), ...get(L.diff), op.f64Mul, op.f64Add, ...set(L.s),
    ]),
    op.end, // $done
  ];
}

/** Relative margin on the quantised lower bound, far above its rounding error. */
const Q_MARGIN = 1e-12;

/** i8x16.shuffle lanes: int32 lanes 0, 1 of the first operand and 0, 1 of the second; then 2, 3 of each. */
const LOW_PAIRS = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const HIGH_PAIRS = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
/** int32 lanes 0 and 2 of the first operand, then lanes 1 and 3. */
const EVEN_ODD = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15];

/**
 * Two rows' (or centres') int32 dot products, accumulated in L.acc (a0 + a1 and b0 + b1), as float64x2
 * [dotA, dotB] on the stack: lanes 0+2 and 1+3 of each, then the two halves added.
 */
const pairedDots = ((): number[] => {
  const [a0, a1, b0, b1] = L.acc;
  return [
    ...get(a0), ...get(a1), ...simd(simdOp.i32x4Add), ...set(a0),
    ...get(b0), ...get(b1), ...simd(simdOp.i32x4Add), ...set(b0),
    ...get(a0), ...get(b0), ...simd(simdOp.i8x16Shuffle), ...LOW_PAIRS,
    ...get(a0), ...get(b0), ...simd(simdOp.i8x16Shuffle), ...HIGH_PAIRS,
    ...simd(simdOp.i32x4Add), ...set(a0), // [A0+A2, A1+A3, B0+B2, B1+B3]
    ...get(a0), ...get(a0), ...simd(simdOp.i8x16Shuffle), ...EVEN_ODD, ...set(a0), // [A02, B02, A13, B13]
    ...get(a0), ...simd(simdOp.f64x2ConvertLowI32x4S),
    ...get(a0), ...get(a0), ...simd(simdOp.i8x16Shuffle), ...HIGH_PAIRS.slice(0, 8), ...HIGH_PAIRS.slice(0, 8),
    ...simd(simdOp.f64x2ConvertLowI32x4S), ...simd(simdOp.f64x2Add),
  ];
})();

/**
 * First phase with bounds: the quantised filter over rows[0 .. count), two rows at a time (their
 * dependency chains interleave, and they share the pick's loads). Rows it cannot prove "not closer" are
 * compacted into rows[0 .. kept). Both rows' tests run in float64x2 lanes:
 * not closer when qScale^2 |q_row - q_pick|^2 >= (sqrt(bound*slack) + e_row + e_pick)^2, with
 * |q_row - q_pick|^2 = sum q_row^2 + sum q_pick^2 - 2 q_row.q_pick (integers, exact in float64),
 * sqrt(bound) = the row's root, and each side moved towards failing by 1e-12 (qScale2, rootSlack).
 * The kernel is built for one qLen, so the chunk loop is unrolled.
 */
function quantizedFilter(qLen: number, used: number): number[] {
  const [a0, a1, b0, b1] = L.acc;
  const chunk = (j: number): number[] => [
    ...get(P.qPick), ...simd(simdOp.v128Load), ...memarg(0, 2 * j), ...set(L.pv),
    ...(j + 8 < used ? [...get(P.qPick), ...simd(simdOp.v128Load), ...memarg(0, 2 * j + 16), ...set(L.lhs)] : []),
    ...[[L.qa, a0, a1], [L.qaB, b0, b1]].flatMap(([base, low, high]) => [
      ...get(base), ...simd(simdOp.v128Load), ...memarg(0, j), ...set(L.dv),
      ...get(low), ...get(L.dv), ...simd(simdOp.i16x8ExtendLowI8x16S), ...get(L.pv),
      ...simd(simdOp.i32x4DotI16x8S), ...simd(simdOp.i32x4Add), ...set(low),
      ...(j + 8 < used ? [
        ...get(high), ...get(L.dv), ...simd(simdOp.i16x8ExtendHighI8x16S), ...get(L.lhs),
        ...simd(simdOp.i32x4DotI16x8S), ...simd(simdOp.i32x4Add), ...set(high),
      ] : []),
    ]),
  ];
  const chunks: number[] = [];
  for (let j = 0; j < qLen; j += 16) chunks.push(...chunk(j));
  const rootOf = (row: number): number[] => [
    ...get(P.roots), ...get(row), ...i32(3), op.i32Shl, op.i32Add,
  ];
  const splat = (value: number[], local: number): number[] => [...value, ...simd(simdOp.f64x2Splat), ...set(local)];
  return [
    ...splat(f64(-2), L.minusTwo),
    ...splat([...get(P.qPick), op.f64Load, ...memarg(3, 2 * qLen)], L.pickSq),
    ...splat(get(L.qScale2), L.qScale2x2),
    ...splat(get(L.rootSlack), L.rootSlackx2),
    ...splat([...get(P.qPick), op.f64Load, ...memarg(3, 2 * qLen + 8)], L.pickError),
    ...splat(f64(1 + Q_MARGIN), L.margin),
    ...i32(0), ...set(L.t), ...i32(0), ...set(L.kept),
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
    ...get(L.t), ...get(P.count), op.i32GeU, op.brIf, 1,
    ...get(P.rows), ...get(L.t), ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2), ...set(L.row),
    // The second row, or the first again when count is odd.
    ...get(P.rows), ...get(L.t), ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2, 4), ...get(L.row),
    ...get(L.t), ...i32(1), op.i32Add, ...get(P.count), op.i32LtU, op.select, ...set(L.rowB),
    ...get(P.qx), ...get(L.row), ...get(P.qRowBytes), op.i32Mul, op.i32Add, ...set(L.qa),
    ...get(P.qx), ...get(L.rowB), ...get(P.qRowBytes), op.i32Mul, op.i32Add, ...set(L.qaB),
    ...[a0, a1, b0, b1].flatMap((acc) => [...i32(0), ...simd(simdOp.i32x4Splat), ...set(acc)]),
    ...chunks,
    ...pairedDots,
    ...get(L.minusTwo), ...simd(simdOp.f64x2Mul),
    // Each row's tail [sum(w*q^2), e] in one load; [sumA, sumB] and [eA, eB] by shuffles.
    ...get(L.qa), ...simd(simdOp.v128Load), ...memarg(3, qLen), ...set(L.dv),
    ...get(L.qaB), ...simd(simdOp.v128Load), ...memarg(3, qLen), ...set(L.pv),
    ...get(L.dv), ...get(L.pv), ...simd(simdOp.i8x16Shuffle), ...LOW_PAIRS, ...simd(simdOp.f64x2Add),
    ...get(L.pickSq), ...simd(simdOp.f64x2Add),
    ...get(L.qScale2x2), ...simd(simdOp.f64x2Mul), ...set(L.lhs),
    ...rootOf(L.row), op.f64Load, ...memarg(3), ...simd(simdOp.f64x2Splat),
    ...rootOf(L.rowB), op.f64Load, ...memarg(3), ...simd(simdOp.f64x2ReplaceLane), 1,
    ...get(L.rootSlackx2), ...simd(simdOp.f64x2Mul),
    ...get(L.dv), ...get(L.pv), ...simd(simdOp.i8x16Shuffle), ...HIGH_PAIRS,
    ...get(L.pickError), ...simd(simdOp.f64x2Add),
    ...get(L.margin), ...simd(simdOp.f64x2Mul),
    ...simd(simdOp.f64x2Add), ...set(L.rhs),
    ...get(L.lhs), ...get(L.rhs), ...get(L.rhs), ...simd(simdOp.f64x2Mul), ...simd(simdOp.f64x2Ge),
    ...simd(simdOp.i64x2Bitmask), ...set(L.far), // bit 0: first row not closer, bit 1: second
    // Branch-free compaction of the rows still in question into `kept` (when that is `rows`, kept <= t:
    // those entries have been read).
    ...get(P.kept), ...get(L.kept), ...i32(2), op.i32Shl, op.i32Add, ...get(L.row), op.i32Store, ...memarg(2),
    ...get(L.kept), ...get(L.far), ...i32(1), op.i32And, op.i32Eqz, op.i32Add, ...set(L.kept),
    ...get(L.t), ...i32(1), op.i32Add, ...get(P.count), op.i32LtU, op.if, VOID_BLOCK,
    ...get(P.kept), ...get(L.kept), ...i32(2), op.i32Shl, op.i32Add, ...get(L.rowB), op.i32Store, ...memarg(2),
    ...get(L.kept), ...get(L.far), ...i32(2), op.i32And, op.i32Eqz, op.i32Add, ...set(L.kept),
    op.end,
    ...get(L.t), ...i32(2), op.i32Add, ...set(L.t),
    op.br, 0,
    op.end, op.end,
  ];
}

/** One loop over the `count` rows listed at `rows` (locals): `body` runs with L.row set and falls through. */
function rowLoop(body: number[], rows: number, count: number): number[] {
  return [
    ...i32(0), ...set(L.t),
    ...whileBelow(L.t, get(count), 1, [
      ...get(rows), ...get(L.t), ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2), ...set(L.row),
      ...body,
    ]),
  ];
}

const rowAddress = [...get(P.x), ...get(L.row), ...get(P.rowBytes), op.i32Mul, op.i32Add, ...set(L.a)];

/** Second phase with bounds: the float32 filter and the exact pass; rows kept when closer. */
function boundedRow(): number[] {
  return [
    op.block, VOID_BLOCK, // $skip
    ...get(P.bounds), ...get(L.row), ...i32(3), op.i32Shl, op.i32Add, op.f64Load, ...memarg(3), ...set(L.bound),
    ...get(L.bound), ...get(P.slack), op.f64Mul, ...set(L.threshold),
    op.block, VOID_BLOCK, // the filter branches one level out of this block
    ...rowAddress,
    ...filterPass(),
    op.end,
    ...exactPass(),
    ...get(L.s), ...get(L.bound), op.f64Ge, op.brIf, 0, // not closer after all -> $skip
    // Keep: kept[k] = row (k <= t: that entry has been read), out[k] = s.
    ...get(P.kept), ...get(L.kept), ...i32(2), op.i32Shl, op.i32Add, ...get(L.row), op.i32Store, ...memarg(2),
    ...get(P.out), ...get(L.kept), ...i32(3), op.i32Shl, op.i32Add, ...get(L.s), op.f64Store, ...memarg(3),
    ...get(L.kept), ...i32(1), op.i32Add, ...set(L.kept),
    op.end, // $skip
  ];
}

/** Unbounded: every row's distance to out[t]. */
const plainRow = [
  ...rowAddress,
  ...f64(Infinity), ...set(L.bound),
  ...exactPass(),
  ...get(P.out), ...get(L.t), ...i32(3), op.i32Shl, op.i32Add, ...get(L.s), op.f64Store, ...memarg(3),
];

/** Values both row functions derive from their arguments first. */
const kernelSetup = [
  ...get(P.dBytes), ...i32(-32), op.i32And, ...set(L.full8),
  ...get(P.dBytes), ...i32(-64), op.i32And, ...set(L.full16),
  ...get(P.qScale), ...get(P.qScale), op.f64Mul, ...f64(1 - Q_MARGIN), op.f64Mul, ...set(L.qScale2),
  ...get(P.slack), op.f64Sqrt, ...f64(1 + Q_MARGIN), op.f64Mul, ...set(L.rootSlack),
];

/** Distances of rows[0 .. count); with bounds only those closer than their bound are kept. */
function kernelBody(qLen: number, used: number): number[] {
  return [
    ...kernelSetup,
    ...get(P.count), ...set(L.kept),
    ...get(P.useBound), op.if, VOID_BLOCK,
    ...quantizedFilter(qLen, used),
    ...get(L.kept), ...set(L.far), // rows left in question
    ...i32(0), ...set(L.kept),
    // The rows left in question are scattered over memory that is mostly not cached: one load per 64 bytes of
    // each, before the passes that need them, lets their cache misses overlap instead of coming one row at a time
    // (a clustered 1e5 x 100 selection took a seventh less time on one thread).
    ...rowLoop([
      ...rowAddress, ...i32(0), ...set(L.j),
      ...whileBelow(L.j, get(P.dBytes), 64, [
        ...get(L.qaB), ...get(L.a), ...get(L.j), op.i32Add, op.i32Load, ...memarg(2), op.i32Xor, ...set(L.qaB),
      ]),
    ], P.kept, L.far),
    ...rowLoop(boundedRow(), P.kept, L.far),
    op.else, ...rowLoop(plainRow, P.rows, P.count),
    op.end,
    ...get(L.kept),
  ];
}

/**
 * Locals of nearest_to_slots beyond those of sqdist_rows (whose passes it reuses): the row's tail and root, two
 * centres' quantised tests in float64x2 lanes, the second centre's copy, then the row's quantised values widened to
 * int16 (two v128 per 16 values).
 */
const N = { rowSq: 50, rowError: 51, root: 52, lhs: 53, rhs: 54, qPickB: 55, row16: 56 };
const nearestLocals = (qLen: number): [number, number][] => [...LOCALS, [3, F64], [2, V128], [1, I32], [qLen / 8, V128], [1, I32]];
/** The local after the widened values: the offset of the last centre that lowered the bound, -1 while none has. */
const loweredLocal = (qLen: number): number => N.row16 + qLen / 8;

/**
 * The body of nearest_to_slots: one row against `count` consecutive centres, two at a time (they share the row's
 * widened values, and their quantised tests share float64x2 lanes), each proven "not closer" by sqdist_rows'
 * passes against the minimum so far.
 */
function nearestToSlotsBody(qLen: number, used: number): number[] {
  const [a0, a1, b0, b1] = L.acc;
  const lo = (j: number): number => N.row16 + j / 8;
  const hi = (j: number): number => N.row16 + j / 8 + 1;
  const widen: number[] = [];
  const chunks: number[] = [];
  for (let j = 0; j < qLen; j += 16) {
    const highUsed = j + 8 < used;
    widen.push(
      ...get(L.qa), ...simd(simdOp.v128Load), ...memarg(0, j), ...set(L.dv),
      ...get(L.dv), ...simd(simdOp.i16x8ExtendLowI8x16S), ...set(lo(j)),
      ...(highUsed ? [...get(L.dv), ...simd(simdOp.i16x8ExtendHighI8x16S), ...set(hi(j))] : []),
    );
    for (const [base, low, high] of [[P.qPick, a0, a1], [N.qPickB, b0, b1]]) {
      chunks.push(
        ...get(low), ...get(lo(j)), ...get(base), ...simd(simdOp.v128Load), ...memarg(0, 2 * j),
        ...simd(simdOp.i32x4DotI16x8S), ...simd(simdOp.i32x4Add), ...set(low),
        ...(highUsed ? [
          ...get(high), ...get(hi(j)), ...get(base), ...simd(simdOp.v128Load), ...memarg(0, 2 * j + 16),
          ...simd(simdOp.i32x4DotI16x8S), ...simd(simdOp.i32x4Add), ...set(high),
        ] : []),
      );
    }
  }
  // A tail value of both centres' copies (at `offset`) in float64x2 lanes.
  const tails = (offset: number): number[] => [
    ...get(P.qPick), op.f64Load, ...memarg(3, offset), ...simd(simdOp.f64x2Splat),
    ...get(N.qPickB), op.f64Load, ...memarg(3, offset), ...simd(simdOp.f64x2ReplaceLane), 1,
  ];
  const lowered = loweredLocal(qLen);
  // The float32 and exact passes for the centre at P.pick, unless `bit` of L.far says it is proven not closer.
  const exact = (bit: number): number[] => [
    op.block, VOID_BLOCK, // $skip
    ...get(L.far), ...i32(bit), op.i32And, op.brIf, 0,
    ...get(L.kept), ...i32(1), op.i32Add, ...set(L.kept),
    ...get(L.bound), ...get(P.slack), op.f64Mul, ...set(L.threshold),
    op.block, VOID_BLOCK, // the filter branches one level out of this block
    ...filterPass(),
    op.end,
    ...exactPass(),
    ...get(L.s), ...get(L.bound), op.f64Ge, op.brIf, 0, // not closer after all -> $skip
    ...get(L.s), ...set(L.bound), ...get(L.s), op.f64Sqrt, ...set(N.root),
    ...get(L.t), ...i32(bit >> 1), op.i32Add, ...set(lowered),
    op.end, // $skip
  ];
  return [
    ...kernelSetup,
    ...get(P.x), ...set(L.a), ...get(P.qx), ...set(L.qa),
    ...get(P.bounds), op.f64Load, ...memarg(3), ...set(L.bound),
    ...get(P.roots), op.f64Load, ...memarg(3), ...set(N.root),
    ...get(L.qa), op.f64Load, ...memarg(3, qLen), ...set(N.rowSq),
    ...get(L.qa), op.f64Load, ...memarg(3, qLen + 8), ...set(N.rowError),
    ...widen,
    ...i32(0), ...set(L.kept), ...i32(0), ...set(L.t), ...i32(-1), ...set(lowered),
    ...whileBelow(L.t, get(P.count), 2, [
      // The second centre, or the first again (its bit set below) when there is none.
      ...get(P.qPick), ...get(P.qRowBytes), op.i32Add, ...get(P.qPick),
      ...get(L.t), ...i32(1), op.i32Add, ...get(P.count), op.i32LtU, op.select, ...set(N.qPickB),
      ...[a0, a1, b0, b1].flatMap((acc) => [...i32(0), ...simd(simdOp.i32x4Splat), ...set(acc)]),
      ...chunks,
      // The quantised test of both centres, as sqdist_rows' paired filter makes it.
      ...pairedDots,
      ...f64(-2), ...simd(simdOp.f64x2Splat), ...simd(simdOp.f64x2Mul),
      ...get(N.rowSq), ...simd(simdOp.f64x2Splat), ...simd(simdOp.f64x2Add),
      ...tails(2 * qLen), ...simd(simdOp.f64x2Add),
      ...get(L.qScale2), ...simd(simdOp.f64x2Splat), ...simd(simdOp.f64x2Mul), ...set(N.lhs),
      ...get(N.root), ...get(L.rootSlack), op.f64Mul, ...simd(simdOp.f64x2Splat),
      ...get(N.rowError), ...simd(simdOp.f64x2Splat), ...tails(2 * qLen + 8), ...simd(simdOp.f64x2Add),
      ...f64(1 + Q_MARGIN), ...simd(simdOp.f64x2Splat), ...simd(simdOp.f64x2Mul),
      ...simd(simdOp.f64x2Add), ...set(N.rhs),
      ...get(N.lhs), ...get(N.rhs), ...get(N.rhs), ...simd(simdOp.f64x2Mul), ...simd(simdOp.f64x2Ge),
      ...simd(simdOp.i64x2Bitmask), // bit 0: the first centre not closer, bit 1: the second
      ...get(L.t), ...i32(1), op.i32Add, ...get(P.count), op.i32GeU, ...i32(1), op.i32Shl, op.i32Or, ...set(L.far),
      ...exact(1),
      ...get(P.pick), ...get(P.rowBytes), op.i32Add, ...set(P.pick),
      ...exact(2),
      ...get(P.pick), ...get(P.rowBytes), op.i32Add, ...set(P.pick),
      ...get(P.qPick), ...get(P.qRowBytes), ...i32(1), op.i32Shl, op.i32Add, ...set(P.qPick),
    ]),
    ...get(P.bounds), ...get(L.bound), op.f64Store, ...memarg(3),
    ...get(P.roots), ...get(N.root), op.f64Store, ...memarg(3),
    ...get(P.out), ...get(lowered), op.i32Store, ...memarg(2),
    ...get(L.kept),
  ];
}

/** quantize_rows(x, D, count, qx, qRowBytes, qLen, params, margin): see QuantizeRows. */
const QP = { x: 0, D: 1, count: 2, qx: 3, qRowBytes: 4, qLen: 5, params: 6, margin: 7 };
const QL = {
  r: 8, xp: 9, qp: 10, pp: 11, pairsEnd: 12, rowX: 13, rowQ: 14, twoPairsEnd: 15,
  s: 16, e: 17, v: 18, q: 19, d: 20, m: 21,
  vv: 22, vm: 23, vq: 24, vd: 25, sqAcc: 26, e2Acc: 27, magic: 28, sqAccB: 29, e2AccB: 30, low: 31, high: 32,
};
const QUANTIZE_PARAMS = [I32, I32, I32, I32, I32, I32, I32, F64];
const QUANTIZE_LOCALS: [number, number][] = [[8, I32], [6, F64], [11, V128]];
/** Bytes of the quantiser's values for a pair of columns (see writeQuantizerParams). */
const PAIR_PARAM_BYTES = 64;

/**
 * The body of quantize_rows: quantizeRows for candidate rows, columns two at a time in float64 lanes (the odd
 * last one alone), with one pointer each into the row, its copy and the pairs' parameters. q and sum(w*q^2) are
 * those of quantizeRows exactly; e is summed in another order. q is stored from the low byte of q + 1.5*2^52 (an
 * integer in [-127, 127], so that byte is q in two's complement).
 */
function quantizeBody(): number[] {
  // The pair's parameters at pp + offset: mid, inverse step, step, weight (one v128 each).
  const param = (k: number, offset: number): number[] => [...get(QL.pp), ...simd(simdOp.v128Load), ...memarg(3, offset + 16 * k)];
  // One pair of columns (`at` pairs on from xp, qp and pp) into the accumulators sq and e2: two pairs per turn with
  // accumulators of their own, so that the sums' additions do not wait for each other.
  const pair = (at: number, sq: number, e2: number): number[] => [
    ...get(QL.xp), ...simd(simdOp.load64Zero), ...memarg(2, 8 * at), ...simd(simdOp.f64x2PromoteLowF32x4), ...set(QL.vv),
    ...param(0, PAIR_PARAM_BYTES * at), ...set(QL.vm),
    ...get(QL.vv), ...get(QL.vm), ...simd(simdOp.f64x2Sub), ...param(1, PAIR_PARAM_BYTES * at), ...simd(simdOp.f64x2Mul),
    ...simd(simdOp.f64x2Nearest), ...get(QL.low), ...simd(simdOp.f64x2Pmax), ...get(QL.high), ...simd(simdOp.f64x2Pmin), ...set(QL.vq),
    ...get(QL.qp), ...get(QL.vq), ...get(QL.magic), ...simd(simdOp.f64x2Add), ...set(QL.vd),
    ...get(QL.vd), ...simd(simdOp.v128Store8Lane), ...memarg(0, 2 * at), 0,
    ...get(QL.qp), ...get(QL.vd), ...simd(simdOp.v128Store8Lane), ...memarg(0, 2 * at + 1), 8,
    ...get(sq), ...param(3, PAIR_PARAM_BYTES * at), ...get(QL.vq), ...simd(simdOp.f64x2Mul), ...get(QL.vq), ...simd(simdOp.f64x2Mul),
    ...simd(simdOp.f64x2Add), ...set(sq),
    ...get(QL.vv), ...get(QL.vm), ...param(2, PAIR_PARAM_BYTES * at), ...get(QL.vq), ...simd(simdOp.f64x2Mul), ...simd(simdOp.f64x2Add),
    ...simd(simdOp.f64x2Sub), ...set(QL.vd),
    ...get(e2), ...get(QL.vd), ...get(QL.vd), ...simd(simdOp.f64x2Mul), ...simd(simdOp.f64x2Add), ...set(e2),
  ];
  const advance = (pairs: number): number[] => [
    ...get(QL.xp), ...i32(8 * pairs), op.i32Add, ...set(QL.xp),
    ...get(QL.qp), ...i32(2 * pairs), op.i32Add, ...set(QL.qp),
    ...get(QL.pp), ...i32(PAIR_PARAM_BYTES * pairs), op.i32Add, ...set(QL.pp),
  ];
  // The odd last column: lane 0 of its pair's parameters.
  const scalarParam = (k: number): number[] => [...get(QL.pp), op.f64Load, ...memarg(3, 16 * k)];
  const single = [
    ...get(QL.xp), op.f32Load, ...memarg(2), op.f64PromoteF32, ...set(QL.v),
    ...scalarParam(0), ...set(QL.m),
    ...get(QL.v), ...get(QL.m), op.f64Sub, ...scalarParam(1), op.f64Mul,
    op.f64Nearest, ...f64(-Q_LEVEL), op.f64Max, ...f64(Q_LEVEL), op.f64Min, ...set(QL.q),
    ...get(QL.qp), ...get(QL.q), op.i32TruncF64S, op.i32Store8, ...memarg(0),
    ...get(QL.s), ...scalarParam(3), ...get(QL.q), op.f64Mul, ...get(QL.q), op.f64Mul, op.f64Add, ...set(QL.s),
    ...get(QL.v), ...get(QL.m), ...scalarParam(2), ...get(QL.q), op.f64Mul, op.f64Add, op.f64Sub, ...set(QL.d),
    ...get(QL.e), ...get(QL.d), ...get(QL.d), op.f64Mul, op.f64Add, ...set(QL.e),
  ];
  const zero = (local: number): number[] => [...f64(0), ...simd(simdOp.f64x2Splat), ...set(local)];
  // s = all four lanes of the two accumulators (sums of integers: exact in any order); e likewise.
  const laneSum = (a: number, b: number, into: number): number[] => [
    ...get(a), ...get(b), ...simd(simdOp.f64x2Add), ...set(a),
    ...get(a), ...simd(simdOp.f64x2ExtractLane), 0, ...get(a), ...simd(simdOp.f64x2ExtractLane), 1, op.f64Add, ...set(into),
  ];
  return [
    ...f64(ROUNDING), ...simd(simdOp.f64x2Splat), ...set(QL.magic),
    ...f64(-Q_LEVEL), ...simd(simdOp.f64x2Splat), ...set(QL.low),
    ...f64(Q_LEVEL), ...simd(simdOp.f64x2Splat), ...set(QL.high),
    ...get(QP.params), ...get(QP.D), ...i32(1), op.i32ShrU, ...i32(PAIR_PARAM_BYTES), op.i32Mul, op.i32Add, ...set(QL.pairsEnd),
    // Where the loop of two pairs per turn stops: pairsEnd less one pair when the pairs are odd.
    ...get(QL.pairsEnd), ...get(QP.D), ...i32(1), op.i32ShrU, ...i32(1), op.i32And, ...i32(PAIR_PARAM_BYTES), op.i32Mul, op.i32Sub,
    ...set(QL.twoPairsEnd),
    ...i32(0), ...set(QL.r), ...get(QP.x), ...set(QL.rowX), ...get(QP.qx), ...set(QL.rowQ),
    ...whileBelow(QL.r, get(QP.count), 1, [
      ...zero(QL.sqAcc), ...zero(QL.e2Acc), ...zero(QL.sqAccB), ...zero(QL.e2AccB),
      ...get(QL.rowX), ...set(QL.xp), ...get(QL.rowQ), ...set(QL.qp), ...get(QP.params), ...set(QL.pp),
      op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
      ...get(QL.pp), ...get(QL.twoPairsEnd), op.i32GeU, op.brIf, 1,
      ...pair(0, QL.sqAcc, QL.e2Acc), ...pair(1, QL.sqAccB, QL.e2AccB), ...advance(2),
      op.br, 0,
      op.end, op.end,
      ...get(QL.pp), ...get(QL.pairsEnd), op.i32LtU, op.if, VOID_BLOCK, ...pair(0, QL.sqAcc, QL.e2Acc), ...advance(1), op.end,
      ...laneSum(QL.sqAcc, QL.sqAccB, QL.s), ...laneSum(QL.e2Acc, QL.e2AccB, QL.e),
      ...get(QP.D), ...i32(1), op.i32And, op.if, VOID_BLOCK, ...single, op.end,
      ...get(QL.rowQ), ...get(QP.qLen), op.i32Add, ...get(QL.s), op.f64Store, ...memarg(3),
      ...get(QL.rowQ), ...get(QP.qLen), op.i32Add,
      ...get(QL.e), op.f64Sqrt, ...f64(1 + 1e-12), op.f64Mul, ...get(QP.margin), op.f64Add, op.f64Store, ...memarg(3, 8),
      ...get(QL.rowX), ...get(QP.D), ...i32(2), op.i32Shl, op.i32Add, ...set(QL.rowX),
      ...get(QL.rowQ), ...get(QP.qRowBytes), op.i32Add, ...set(QL.rowQ),
    ]),
  ];
}

/**
 * scan_columns(x, D, count, stats): folds `count` consecutive rows of D float32 values from byte `x` into the
 * float64 arrays at `stats`: lo[D], hi[D] and sum[D] (in row order, so the same sums as a loop over the rows),
 * then adds v - v over every value to the two float64 values after them (not 0: some value is not finite).
 * lo and hi keep the first of equal values (as v < lo ? v : lo does; pmin and pmax), so signed zeros match too.
 */
const SP = { x: 0, D: 1, count: 2, stats: 3 };
const SL = { r: 4, c: 5, xa: 6, pairs: 7, hi: 8, sum: 9, at: 10, v: 11, nonFinite: 12, s: 13 };
const SCAN_PARAMS = [I32, I32, I32, I32];
const SCAN_LOCALS: [number, number][] = [[7, I32], [3, V128]];

function scanBody(): number[] {
  const at = (base: number): number[] => [...get(base), ...get(SL.c), ...i32(3), op.i32Shl, op.i32Add, ...set(SL.at)];
  // Columns c and c + 1 of one row: stats[c..c+1] = combine(stats[c..c+1], values).
  const fold = (base: number, combine: number): number[] => [
    ...at(base), ...get(SL.at), ...get(SL.at), ...simd(simdOp.v128Load), ...memarg(3), ...get(SL.v), ...simd(combine),
    ...simd(simdOp.v128Store), ...memarg(3),
  ];
  const pair = [
    ...get(SL.xa), ...get(SL.c), ...i32(2), op.i32Shl, op.i32Add, ...simd(simdOp.load64Zero), ...memarg(2),
    ...simd(simdOp.f64x2PromoteLowF32x4), ...set(SL.v),
    ...fold(SP.stats, simdOp.f64x2Pmin), ...fold(SL.hi, simdOp.f64x2Pmax), ...fold(SL.sum, simdOp.f64x2Add),
    ...get(SL.nonFinite), ...get(SL.v), ...get(SL.v), ...simd(simdOp.f64x2Sub), ...simd(simdOp.f64x2Add), ...set(SL.nonFinite),
  ];
  return [
    ...get(SP.stats), ...get(SP.D), ...i32(8), op.i32Mul, op.i32Add, ...set(SL.hi),
    ...get(SL.hi), ...get(SP.D), ...i32(8), op.i32Mul, op.i32Add, ...set(SL.sum),
    ...get(SP.D), ...i32(-2), op.i32And, ...set(SL.pairs),
    ...f64(0), ...simd(simdOp.f64x2Splat), ...set(SL.nonFinite),
    ...i32(0), ...set(SL.r), ...get(SP.x), ...set(SL.xa),
    ...whileBelow(SL.r, get(SP.count), 1, [
      ...i32(0), ...set(SL.c),
      ...whileBelow(SL.c, get(SL.pairs), 2, pair),
      // The odd last column alone.
      ...get(SL.c), ...get(SP.D), op.i32LtU, op.if, VOID_BLOCK,
      ...get(SL.xa), ...get(SL.c), ...i32(2), op.i32Shl, op.i32Add, op.f32Load, ...memarg(2), op.f64PromoteF32,
      ...simd(simdOp.f64x2Splat), ...set(SL.v),
      ...[[SP.stats, simdOp.f64x2Pmin], [SL.hi, simdOp.f64x2Pmax], [SL.sum, simdOp.f64x2Add]].flatMap(([base, combine]) => [
        ...at(base), ...get(SL.at), ...get(SL.at), op.f64Load, ...memarg(3), ...simd(simdOp.f64x2Splat), ...get(SL.v), ...simd(combine),
        ...simd(simdOp.f64x2ExtractLane), 0, op.f64Store, ...memarg(3),
      ]),
      ...get(SL.nonFinite), ...get(SL.v), ...get(SL.v), ...simd(simdOp.f64x2Sub), ...simd(simdOp.f64x2Add), ...set(SL.nonFinite),
      op.end,
      ...get(SL.xa), ...get(SP.D), ...i32(2), op.i32Shl, op.i32Add, ...set(SL.xa),
    ]),
    ...get(SL.sum), ...get(SP.D), ...i32(8), op.i32Mul, op.i32Add, ...set(SL.at),
    ...get(SL.at), ...get(SL.at), ...simd(simdOp.v128Load), ...memarg(3), ...get(SL.nonFinite), ...simd(simdOp.f64x2Add),
    ...simd(simdOp.v128Store), ...memarg(3),
  ];
}

/**
 * permute_rows(n, inverse, x, rowBytes, qx, qRowBytes, nearestSq, nearest, score, weight, index, cellOf, status):
 * moves the candidate at position inverse[p] to position p, for every p < n, in place: its feature row, its
 * quantised copy and its values in the per-candidate arrays (float64: nearestSq, nearest, score, weight; int32:
 * index, cellOf; uint8: status). Cycle by cycle, each candidate moves once; the first of a cycle waits in the
 * spare slot at position n (rows and copies only). `inverse` (int32, n entries) ends as the identity.
 */
const PP = {
  n: 0, inverse: 1, x: 2, rowBytes: 3, qx: 4, qRowBytes: 5,
  nearestSq: 6, nearest: 7, score: 8, weight: 9, index: 10, cellOf: 11, status: 12,
};
const PL = { start: 13, hole: 14, from: 15, i0: 16, i1: 17, i2: 18, f0: 19, f1: 20, f2: 21, f3: 22 };
const PERMUTE_PARAMS = Array.from({ length: 13 }, () => I32);
const PERMUTE_LOCALS: [number, number][] = [[6, I32], [4, F64]];
const F64_ARRAYS = [PP.nearestSq, PP.nearest, PP.score, PP.weight];
const I32_ARRAYS = [PP.index, PP.cellOf];

function permuteBody(): number[] {
  const memoryCopy = [0xfc, ...uleb(10), 0x00, 0x00];
  const element = (array: number, position: number, shift: number): number[] => [...get(array), ...get(position), ...i32(shift), op.i32Shl, op.i32Add];
  const rowOf = (base: number, bytes: number, position: number): number[] => [...get(base), ...get(position), ...get(bytes), op.i32Mul, op.i32Add];
  const spare = (base: number, bytes: number): number[] => [...get(base), ...get(PP.n), ...get(bytes), op.i32Mul, op.i32Add];
  // Row and quantised copy from position `from` (or the spare) to position `to` (or the spare).
  const copyRows = (to: (base: number, bytes: number) => number[], from: (base: number, bytes: number) => number[]): number[] =>
    [[PP.x, PP.rowBytes], [PP.qx, PP.qRowBytes]].flatMap(([base, bytes]) => [...to(base, bytes), ...from(base, bytes), ...get(bytes), ...memoryCopy]);
  const atHole = (base: number, bytes: number): number[] => rowOf(base, bytes, PL.hole);
  const atFrom = (base: number, bytes: number): number[] => rowOf(base, bytes, PL.from);
  const atStart = (base: number, bytes: number): number[] => rowOf(base, bytes, PL.start);
  const moveValues = [
    ...F64_ARRAYS.flatMap((a) => [...element(a, PL.hole, 3), ...element(a, PL.from, 3), op.f64Load, ...memarg(3), op.f64Store, ...memarg(3)]),
    ...I32_ARRAYS.flatMap((a) => [...element(a, PL.hole, 2), ...element(a, PL.from, 2), op.i32Load, ...memarg(2), op.i32Store, ...memarg(2)]),
    ...element(PP.status, PL.hole, 0), ...element(PP.status, PL.from, 0), op.i32Load8U, ...memarg(0), op.i32Store8, ...memarg(0),
  ];
  const saved = [PL.f0, PL.f1, PL.f2, PL.f3];
  const savedInts = [PL.i0, PL.i1];
  const saveValues = [
    ...F64_ARRAYS.flatMap((a, k) => [...element(a, PL.start, 3), op.f64Load, ...memarg(3), ...set(saved[k])]),
    ...I32_ARRAYS.flatMap((a, k) => [...element(a, PL.start, 2), op.i32Load, ...memarg(2), ...set(savedInts[k])]),
    ...element(PP.status, PL.start, 0), op.i32Load8U, ...memarg(0), ...set(PL.i2),
  ];
  const restoreValues = [
    ...F64_ARRAYS.flatMap((a, k) => [...element(a, PL.hole, 3), ...get(saved[k]), op.f64Store, ...memarg(3)]),
    ...I32_ARRAYS.flatMap((a, k) => [...element(a, PL.hole, 2), ...get(savedInts[k]), op.i32Store, ...memarg(2)]),
    ...element(PP.status, PL.hole, 0), ...get(PL.i2), op.i32Store8, ...memarg(0),
  ];
  return [
    ...i32(0), ...set(PL.start),
    ...whileBelow(PL.start, get(PP.n), 1, [
      // A position whose candidate is elsewhere starts a cycle.
      ...element(PP.inverse, PL.start, 2), op.i32Load, ...memarg(2), ...get(PL.start), op.i32Xor, op.if, VOID_BLOCK,
      ...copyRows(spare, atStart), ...saveValues,
      ...get(PL.start), ...set(PL.hole),
      op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
      ...element(PP.inverse, PL.hole, 2), op.i32Load, ...memarg(2), ...set(PL.from),
      ...element(PP.inverse, PL.hole, 2), ...get(PL.hole), op.i32Store, ...memarg(2),
      ...get(PL.from), ...get(PL.start), op.i32Xor, op.i32Eqz, op.brIf, 1,
      ...copyRows(atHole, atFrom), ...moveValues,
      ...get(PL.from), ...set(PL.hole),
      op.br, 0,
      op.end, op.end,
      ...copyRows(atHole, spare), ...restoreValues,
      op.end,
    ]),
  ];
}

const LP = { cellOf: 0, nearest: 1, reach: 2, count: 3, first: 4, limit: 5, rows: 6 };
const LL = { t: 7, k: 8 };
const LIST_PARAMS = [I32, I32, I32, I32, I32, F64, I32];

function listBody(): number[] {
  const at = (base: number, shift: number): number[] => [...get(base), ...get(LL.t), ...i32(shift), op.i32Shl, op.i32Add];
  return [
    ...i32(0), ...set(LL.t), ...i32(0), ...set(LL.k),
    ...whileBelow(LL.t, get(LP.count), 1, [
      ...get(LP.rows), ...get(LL.k), ...i32(2), op.i32Shl, op.i32Add, ...get(LP.first), ...get(LL.t), op.i32Add,
      op.i32Store, ...memarg(2),
      ...get(LL.k),
      ...get(LP.reach), ...at(LP.cellOf, 2), op.i32Load, ...memarg(2), ...i32(3), op.i32Shl, op.i32Add, op.f64Load, ...memarg(3, 8),
      ...get(LP.limit), ...at(LP.nearest, 3), op.f64Load, ...memarg(3), op.f64Mul,
      op.f64Lt, op.i32Add, ...set(LL.k),
    ]),
    ...get(LL.k),
  ];
}

/**
 * list_rows(cellOf, nearest, reach, count, first, limit, rows): the triangle test of a pass, for `count` consecutive
 * positions (cellOf and nearest point at the first one, whose position is `first`): writes to i32[rows..] the
 * positions p with reach[cellOf[p] + 1] < limit*nearest[p] and returns how many. reach (float64) holds
 * +Infinity for rows in no cell (cellOf -1), then per cell d(cell's centre, pick) for the cells a pick can affect
 * and +Infinity for the others; a row with nearest = 0 is never listed. Branch-free: about a nanosecond per row, against about ten
 * for the int8 filter that would otherwise prove such rows not closer.
 */
export type ListRows = (cellOf: number, nearest: number, reach: number, count: number, first: number, limit: number, rows: number) => number;

/**
 * centroid_rows(x, D, count, centroid, out): for `count` consecutive rows of D float32 values from byte `x`, the
 * squared distance to the float64 vector at `centroid`, into f64[out + 8t]: differences in float64, summed in the
 * same order as sqdist_rows' exact pass.
 */
export type CentroidRows = (x: number, D: number, count: number, centroid: number, out: number) => void;

const CP = { x: 0, D: 1, count: 2, centroid: 3, out: 4 };
const CL = { t: 5, j: 6, full8: 7, row: 8, acc: [9, 10, 11, 12], dv: 13, s: 14, diff: 15 };
const CENTROID_PARAMS = [I32, I32, I32, I32, I32];
const CENTROID_LOCALS: [number, number][] = [[4, I32], [5, V128], [2, F64]];

function centroidBody(): number[] {
  const chunk = [0, 1, 2, 3].flatMap((q) => [
    ...get(CL.acc[q]),
    ...get(CL.row), ...get(CL.j), op.i32Add, ...simd(simdOp.load64Zero), ...memarg(2, 8 * q), ...simd(simdOp.f64x2PromoteLowF32x4),
    ...get(CP.centroid), ...get(CL.j), ...i32(1), op.i32Shl, op.i32Add, ...simd(simdOp.v128Load), ...memarg(3, 16 * q),
    ...simd(simdOp.f64x2Sub), ...set(CL.dv), ...get(CL.dv), ...get(CL.dv), ...simd(simdOp.f64x2Mul),
    ...simd(simdOp.f64x2Add), ...set(CL.acc[q]),
  ]);
  return [
    ...get(CP.D), ...i32(-8), op.i32And, ...i32(2), op.i32Shl, ...set(CL.full8),
    ...i32(0), ...set(CL.t), ...get(CP.x), ...set(CL.row),
    ...whileBelow(CL.t, get(CP.count), 1, [
      ...CL.acc.flatMap((acc) => [...f64(0), ...simd(simdOp.f64x2Splat), ...set(acc)]),
      ...i32(0), ...set(CL.j),
      ...whileBelow(CL.j, get(CL.full8), 32, chunk),
      ...get(CL.acc[0]), ...get(CL.acc[1]), ...simd(simdOp.f64x2Add),
      ...get(CL.acc[2]), ...get(CL.acc[3]), ...simd(simdOp.f64x2Add),
      ...simd(simdOp.f64x2Add), ...set(CL.dv),
      ...get(CL.dv), ...simd(simdOp.f64x2ExtractLane), 0, ...get(CL.dv), ...simd(simdOp.f64x2ExtractLane), 1, op.f64Add, ...set(CL.s),
      ...whileBelow(CL.j, [...get(CP.D), ...i32(2), op.i32Shl], 4, [
        ...get(CL.row), ...get(CL.j), op.i32Add, op.f32Load, ...memarg(2), op.f64PromoteF32,
        ...get(CP.centroid), ...get(CL.j), ...i32(1), op.i32Shl, op.i32Add, op.f64Load, ...memarg(3),
        op.f64Sub, ...set(CL.diff),
        ...get(CL.s), ...get(CL.diff), ...get(CL.diff), op.f64Mul, op.f64Add, ...set(CL.s),
      ]),
      ...get(CP.out), ...get(CL.t), ...i32(3), op.i32Shl, op.i32Add, ...get(CL.s), op.f64Store, ...memarg(3),
      ...get(CL.row), ...get(CP.D), ...i32(2), op.i32Shl, op.i32Add, ...set(CL.row),
    ]),
  ];
}

/** The module's permute_rows: see permuteBody. */
export type PermuteRows = (
  n: number, inverse: number, x: number, rowBytes: number, qx: number, qRowBytes: number,
  nearestSq: number, nearest: number, score: number, weight: number, index: number, cellOf: number, status: number,
) => void;

/**
 * Bytes of the module for quantised rows of qLen values (see quantizedLength), of which only the first `used` (a
 * multiple of 8) may be other than 0: the dot products skip the halves of 16 beyond (12 of D = 100's 112). It
 * imports `env.memory` (shared or not, up to 4 GiB) and exports `sqdist_rows` (its qLen argument must be this qLen),
 * `copy_bytes(to, from, length)` (memmove within the memory, for moving rows), `quantize_rows`
 * (see QuantizeRows), `scan_columns` (see ScanColumns), `permute_rows` (see PermuteRows), `list_rows`
 * (see ListRows), `centroid_rows` (see CentroidRows) and `nearest_to_slots` (see NearestToSlots).
 */
export function distanceKernelBytes(shared: boolean, qLen: number, used = qLen): Uint8Array {
  // A function's code: its locals, its body, end (concat: these arrays are long, spreading them is slow).
  const code = (locals: [number, number][], body: number[]): number[] =>
    vec(locals.map(([count, type]) => [...uleb(count), type])).concat(body, [op.end]);
  const memoryCopy = [0xfc, ...uleb(10), 0x00, 0x00];
  const functions = [
    code(LOCALS, kernelBody(qLen, used)),
    code([], [...get(0), ...get(1), ...get(2), ...memoryCopy]),
    code(QUANTIZE_LOCALS, quantizeBody()),
    code(SCAN_LOCALS, scanBody()),
    code(PERMUTE_LOCALS, permuteBody()),
    code([[2, I32]], listBody()),
    code(CENTROID_LOCALS, centroidBody()),
    code(nearestLocals(qLen), nearestToSlotsBody(qLen, used)),
  ];
  const memoryLimits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x01, ...uleb(1), ...uleb(65536)];
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00].concat(
    section(1, vec([
      [0x60, ...vec(PARAMS.map((type) => [type])), ...vec([[I32]])],
      [0x60, ...vec([[I32], [I32], [I32]]), ...vec([])],
      [0x60, ...vec(QUANTIZE_PARAMS.map((type) => [type])), ...vec([])],
      [0x60, ...vec(SCAN_PARAMS.map((type) => [type])), ...vec([])],
      [0x60, ...vec(PERMUTE_PARAMS.map((type) => [type])), ...vec([])],
      [0x60, ...vec(LIST_PARAMS.map((type) => [type])), ...vec([[I32]])],
      [0x60, ...vec(CENTROID_PARAMS.map((type) => [type])), ...vec([])],
    ])),
    section(2, vec([[...name("env"), ...name("memory"), 0x02, ...memoryLimits]])),
    section(3, vec([uleb(0), uleb(1), uleb(2), uleb(3), uleb(4), uleb(5), uleb(6), uleb(0)])),
    section(7, vec([
      [...name("sqdist_rows"), 0x00, ...uleb(0)], [...name("copy_bytes"), 0x00, ...uleb(1)], [...name("quantize_rows"), 0x00, ...uleb(2)],
      [...name("scan_columns"), 0x00, ...uleb(3)],
      [...name("permute_rows"), 0x00, ...uleb(4)],
      [...name("list_rows"), 0x00, ...uleb(5)],
      [...name("centroid_rows"), 0x00, ...uleb(6)],
      [...name("nearest_to_slots"), 0x00, ...uleb(7)],
    ])),
    section(10, vec(functions.map((body) => uleb(body.length).concat(body)))),
  ));
}

export type CopyBytes = (to: number, from: number, length: number) => void;

/** The module's scan_columns(x, D, count, stats): see scanBody. */
export type ScanColumns = (x: number, D: number, count: number, stats: number) => void;

/** Bytes scan_columns works on at its `stats`: lo, hi and sum (D float64 values each), then two float64 values. */
export const columnStatsBytes = (D: number): number => 24 * D + 16;

/**
 * The module's quantize_rows: quantizeRows (not wide) for `count` consecutive rows of D float32 values from byte
 * `x`, into slots of qRowBytes bytes from byte `qx`, with the quantiser's values at byte `params`
 * (writeQuantizerParams) and its margin.
 */
export type QuantizeRows = (x: number, D: number, count: number, qx: number, qRowBytes: number, qLen: number, params: number, margin: number) => void;

/** Relative error bound of the float32 filter sum over D terms, doubled for safety. */
export function filterSlack(D: number): number {
  const n = (D + 3) * 2 ** -24;
  const gamma = n / (1 - n);
  return (1 + 1e-9) / (1 - 2 * gamma);
}

export type SqdistRows = (
  x: number, rowBytes: number, dBytes: number, rows: number, count: number,
  pick: number, bounds: number, roots: number, out: number, useBound: number, slack: number,
  qx: number, qRowBytes: number, qPick: number, qLen: number, qScale: number, kept: number,
) => number;

/**
 * nearest_to_slots(x, centreBytes, dBytes, _, count, centre, nearestSq, nearest, lowered, _, slack, qx, qCentreBytes,
 * qCentre, qLen, qScale, _) (sqdist_rows' signature; `_` is not read): for the row at x with its quantised copy at
 * qx, f64[nearestSq] becomes the minimum of itself and the row's squared distances to the `count` centres from
 * byte `centre` (centreBytes apart; quantised copies from qCentre, qCentreBytes apart), and f64[nearest] its
 * square root. Each centre is proven "not closer" by sqdist_rows' three passes against the minimum so far, so the
 * result equals one sqdist_rows pass per centre. i32[lowered] becomes the offset in the range of the last centre
 * that was strictly closer (the row's nearest centre when it has a new one), or -1. Returns the number of centres
 * the quantised pass left in question.
 */
export type NearestToSlots = SqdistRows;

/** How a feature matrix is quantised for the kernel's first filter. */
export interface Quantizer {
  D: number;
  /** Per-column offset. */
  mid: Float64Array;
  /** The finest step (qScale); column c uses scale * 2^k_c. */
  scale: number;
  /** Per column 4^k_c: the weight of its squared steps, and the factor of a pick's int16 copy. */
  weight: Int32Array;
  /** Absolute margin added to each row's error bound: covers the float64 rounding in computing it. */
  margin: number;
}

/** Values per quantised row: D padded to 16. A row's copy takes qLen + 16 bytes, a pick's 2*qLen + 16. */
export const quantizedLength = (D: number): number => Math.ceil(D / 16) * 16;
/** The leading values of a quantised row that may be other than 0 (D padded to 8): see distanceKernelBytes. */
export const quantizedUsed = (D: number): number => Math.ceil(D / 8) * 8;

const Q_LEVEL = 127;
const ROUNDING = 6755399441055744;
/** Largest column step, as a power of two of the finest: the pick's w*q must fit int16 (256 * 127). */
const MAX_STEP_POWER = 4;

/**
 * Steps that keep every value of [lo, hi] within +-127 steps of the column's midpoint: the widest column
 * gets a step of 2^K times the finest, the others the smallest power-of-two multiple of the finest that
 * covers their range. K = 4, less for very long rows: qLen products of 127 and 127*4^K must fit an int32
 * (the kernel sums up to qLen/2 of them in one).
 */
export function quantizerForRanges(lo: Float64Array, hi: Float64Array): Quantizer {
  const D = lo.length;
  const mid = new Float64Array(D);
  let range = 0;
  let largest = 0;
  for (let c = 0; c < D; c++) {
    if (!(lo[c] <= hi[c])) continue;
    mid[c] = (lo[c] + hi[c]) / 2;
    range = Math.max(range, hi[c] - lo[c]);
    largest = Math.max(largest, Math.abs(mid[c]));
  }
  let power = MAX_STEP_POWER;
  while (power > 0 && quantizedLength(D) * Q_LEVEL * Q_LEVEL * 4 ** power >= 2 ** 31) power--;
  const widest = range > 0 ? range / (2 * Q_LEVEL) : 1;
  const scale = widest / 2 ** power;
  const weight = new Int32Array(D).fill(1);
  for (let c = 0; c < D; c++) {
    let k = 0;
    while (k < power && (hi[c] - lo[c]) / (2 * Q_LEVEL) > scale * 2 ** k) k++;
    weight[c] = 4 ** k;
  }
  return { D, mid, scale, weight, margin: Math.sqrt(D) * (largest + (Q_LEVEL + 1) * widest) * 1e-15 };
}

/**
 * Writes the quantised copies of rows X[firstRow .. firstRow + count) to consecutive slots of `stride`
 * bytes from byte `at` of `buffer` (8-byte aligned, padding already zero): int8 values q for candidate
 * rows, int16 values w*q (`wide`) for centres. Values outside the fitted range are clamped; e then
 * grows, so the bound stays valid.
 */
export function quantizeRows(
  qz: Quantizer, X: Float32Array, firstRow: number, count: number,
  buffer: ArrayBuffer | SharedArrayBuffer, at: number, stride: number, wide: boolean,
): void {
  const { D, mid, scale, weight } = qz;
  const width = wide ? 2 : 1;
  const values = wide ? new Int16Array(buffer, at, (count * stride) / 2) : new Int8Array(buffer, at, count * stride);
  const tails = new Float64Array(buffer, at, (count * stride) / 8);
  const tailOffset = quantizedLength(D) * width;
  const { w, step, inverse } = quantizerSteps(qz);
  for (let r = 0; r < count; r++) {
    const from = (firstRow + r) * D;
    const to = (r * stride) / width;
    let sq = 0;
    let e2 = 0;
    for (let c = 0; c < D; c++) {
      const x = X[from + c];
      // Round to nearest by adding and subtracting 1.5 * 2^52 (several times faster than Math.round);
      // any integer q would keep the bound valid, as e is measured from the q actually stored.
      let q = (x - mid[c]) * inverse[c] + ROUNDING - ROUNDING;
      if (q > Q_LEVEL) q = Q_LEVEL;
      else if (q < -Q_LEVEL) q = -Q_LEVEL;
      values[to + c] = q;
      sq += w[c] * q * q;
      const d = x - (mid[c] + step[c] * q);
      e2 += d * d;
    }
    // Centres hold w*q (their few rows take a second loop; the candidates' loop stays short).
    if (wide) for (let c = 0; c < D; c++) values[to + c] *= w[c];
    const tail = (r * stride + tailOffset) / 8;
    tails[tail] = sq;
    tails[tail + 1] = Math.sqrt(e2) * (1 + 1e-12) + qz.margin;
  }
}

/** Per column: the weight w = 4^k as a float64, the step scale*2^k and its inverse. */
function quantizerSteps(qz: Quantizer): { w: Float64Array; step: Float64Array; inverse: Float64Array } {
  const w = Float64Array.from(qz.weight);
  const step = w.map((v) => qz.scale * Math.sqrt(v));
  return { w, step, inverse: step.map((v) => 1 / v) };
}

/** Bytes quantize_rows reads at its `params`: for each pair of columns (the last one padded), see writeQuantizerParams. */
export const quantizerParamBytes = (D: number): number => PAIR_PARAM_BYTES * Math.ceil(D / 2);

/**
 * Writes the quantiser's values for quantize_rows at byte `at` (16-byte aligned) of `buffer`: for each pair of columns
 * (c, c + 1), their mid, inverse step, step and weight as four pairs of float64 values.
 */
export function writeQuantizerParams(qz: Quantizer, buffer: ArrayBuffer | SharedArrayBuffer, at: number): void {
  const { w, step, inverse } = quantizerSteps(qz);
  const params = new Float64Array(buffer, at, quantizerParamBytes(qz.D) / 8).fill(0);
  for (let c = 0; c < qz.D; c++) {
    const base = 8 * (c >> 1) + (c & 1);
    params[base] = qz.mid[c];
    params[base + 2] = inverse[c];
    params[base + 4] = step[c];
    params[base + 6] = w[c];
  }
}

/** Copies a candidate's int8 quantised copy at `from` into the int16 form (w*q) of a centre at `to`. */
export function widenQuantizedRow(bytes: DataView, from: number, to: number, qLen: number, weight: Int32Array): void {
  for (let c = 0; c < qLen; c++) bytes.setInt16(to + 2 * c, (weight[c] ?? 1) * bytes.getInt8(from + c), true);
  bytes.setFloat64(to + 2 * qLen, bytes.getFloat64(from + qLen, true), true);
  bytes.setFloat64(to + 2 * qLen + 8, bytes.getFloat64(from + qLen + 8, true), true);
}
