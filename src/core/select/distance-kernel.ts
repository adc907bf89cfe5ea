/**
 * Squared Euclidean distances between float32 feature rows, accumulated in float64, as a small
 * WebAssembly SIMD module (assembled here byte by byte: no toolchain, no dependency).
 *
 * Exported `sqdist_rows(x, rowBytes, dBytes, rows, count, pick, bounds, out, useBound, slack)`:
 * for t < count, with row = i32[rows + 4t], writes to f64[out + 8t] the squared distance between the
 * row at `x + row*rowBytes` and the row at `pick` (dBytes = 4*D bytes each); out needs room for
 * count + 1 values.
 * With useBound = 1 and bound = f64[bounds + 8*row], it may instead write a value >= bound (meaning
 * "not closer"): first a float32 pass sums (x - pick)^2 in single precision; its relative error is at
 * most gamma(D+3) = (D+3)u/(1-(D+3)u), u = 2^-24, whatever the summation order, so once that sum reaches
 * bound*slack (slack >= (1 + 1e-9)/(1 - 2*gamma), given by the caller) the exact distance exceeds the
 * bound and the row is skipped with +Infinity. Otherwise the exact float64 pass runs, which also stops
 * once its partial sum reaches the bound (partial sums of squares never decrease).
 *
 * Exact summation order (the same in `squaredDistance` of fps-kernel.ts, so JS and WebAssembly agree
 * bit for bit): element j of each full chunk of 8 goes to accumulator j mod 8; then
 * s = ((a0 + a2) + (a4 + a6)) + ((a1 + a3) + (a5 + a7)); the D mod 8 trailing elements are added to s
 * in order. Differences and squares are float64 (exact differences of float32 values), no fused
 * multiply-add, so results are deterministic on every platform and thread.
 */

import {
  F32, F64, I32, V128, VOID_BLOCK, f64, get, i32, memarg, name, op, section, set, simd, simdOp, uleb, vec,
} from "./wasm-emit.js";

/** How often (in float32 elements) a pass compares its partial sum with the bound. */
const BOUND_CHECK_ELEMENTS = 32;

const P = { x: 0, rowBytes: 1, dBytes: 2, rows: 3, count: 4, pick: 5, bounds: 6, out: 7, useBound: 8, slack: 9 };
const L = {
  t: 10, j: 11, full8: 12, full16: 13, row: 14, a: 15, u: 16, groupEnd: 17, sink: 18, touchEnd: 19,
  s: 20, bound: 21, threshold: 22, diff: 23,
  sf: 24, df: 25,
  acc: [26, 27, 28, 29], dv: 30, pv: 31,
};
const LOCALS: [number, number][] = [[10, I32], [4, F64], [2, F32], [6, V128]];

/**
 * Rows are handled in groups: one cheap pass loads a word of every cache line of the group's rows, so
 * their memory transfers overlap, then the distances run from cache (several times faster than letting
 * the arithmetic wait on each line in turn). With bounds only the part read before the first bound
 * check is loaded ahead: most bounded rows stop there.
 */
const GROUP_ROWS = 16;
const PARAMS = [I32, I32, I32, I32, I32, I32, I32, I32, I32, F64];

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
const trailing = (step: number[]): number[] => [
  op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
  ...get(L.j), ...get(P.dBytes), op.i32GeU, op.brIf, 1,
  ...step,
  ...get(L.j), ...i32(4), op.i32Add, ...set(L.j),
  op.br, 0,
  op.end, op.end,
];

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

/** Loads one word per 64 bytes of the first touchEnd bytes (and the word before touchEnd) of rows t .. groupEnd. */
function touchGroup(): number[] {
  return [
    ...get(L.t), ...set(L.u),
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
    ...get(L.u), ...get(L.groupEnd), op.i32GeU, op.brIf, 1,
    ...get(P.x), ...get(P.rows), ...get(L.u), ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2),
    ...get(P.rowBytes), op.i32Mul, op.i32Add, ...set(L.a),
    ...i32(0), ...set(L.j),
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
    ...get(L.j), ...get(L.touchEnd), op.i32GeU, op.brIf, 1,
    ...get(L.sink), ...get(L.a), ...get(L.j), op.i32Add, op.i32Load, ...memarg(2), op.i32Xor, ...set(L.sink),
    ...get(L.j), ...i32(64), op.i32Add, ...set(L.j),
    op.br, 0,
    op.end, op.end,
    ...get(L.sink), ...get(L.a), ...get(L.touchEnd), op.i32Add, ...i32(4), op.i32Sub, op.i32Load, ...memarg(2),
    op.i32Xor, ...set(L.sink),
    ...get(L.u), ...i32(1), op.i32Add, ...set(L.u),
    op.br, 0,
    op.end, op.end,
  ];
}

/** Distance (or the +Infinity "not closer" mark) of rows t .. groupEnd into out. */
function computeGroup(): number[] {
  const storeOut = (value: number[]): number[] => [
    ...get(P.out), ...get(L.t), ...i32(3), op.i32Shl, op.i32Add, ...value, op.f64Store, ...memarg(3),
  ];
  return [
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK, // rows
    ...get(L.t), ...get(L.groupEnd), op.i32GeU, op.brIf, 1,
    ...get(P.rows), ...get(L.t), ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2), ...set(L.row),
    ...get(P.x), ...get(L.row), ...get(P.rowBytes), op.i32Mul, op.i32Add, ...set(L.a),
    ...f64(Infinity), ...set(L.bound),
    op.block, VOID_BLOCK, // $skip
    ...get(P.useBound), op.if, VOID_BLOCK,
    ...get(P.bounds), ...get(L.row), ...i32(3), op.i32Shl, op.i32Add, op.f64Load, ...memarg(3), ...set(L.bound),
    ...get(L.bound), ...get(P.slack), op.f64Mul, ...set(L.threshold),
    ...filterPass(),
    op.end,
    ...exactPass(),
    ...storeOut(get(L.s)),
    ...get(L.t), ...i32(1), op.i32Add, ...set(L.t),
    op.br, 1, // $skip, -> rows loop
    op.end, // $skip
    ...storeOut(f64(Infinity)),
    ...get(L.t), ...i32(1), op.i32Add, ...set(L.t),
    op.br, 0,
    op.end, op.end,
  ];
}

function kernelBody(): number[] {
  return [
    ...get(P.dBytes), ...i32(-32), op.i32And, ...set(L.full8),
    ...get(P.dBytes), ...i32(-64), op.i32And, ...set(L.full16),
    ...get(P.dBytes), ...i32(BOUND_CHECK_ELEMENTS * 4), ...get(P.dBytes), ...i32(BOUND_CHECK_ELEMENTS * 4), op.i32LeU,
    op.select, ...set(L.touchEnd), // min(dBytes, first check)
    ...get(P.useBound), op.i32Eqz, op.if, VOID_BLOCK, ...get(P.dBytes), ...set(L.touchEnd), op.end,
    ...i32(0), ...set(L.t),
    op.block, VOID_BLOCK, op.loop, VOID_BLOCK, // groups
    ...get(L.t), ...get(P.count), op.i32GeU, op.brIf, 1,
    ...get(L.t), ...i32(GROUP_ROWS), op.i32Add, ...get(P.count),
    ...get(L.t), ...i32(GROUP_ROWS), op.i32Add, ...get(P.count), op.i32LeU, op.select, ...set(L.groupEnd),
    ...touchGroup(),
    ...computeGroup(),
    op.br, 0,
    op.end, op.end,
    // Keeps the touching loads observable: out has room for count + 1 values.
    ...get(P.out), ...get(P.count), ...i32(3), op.i32Shl, op.i32Add, ...get(L.sink), op.i32Store, ...memarg(2),
  ];
}

/**
 * Bytes of the module; it imports `env.memory` (shared or not, up to 4 GiB) and exports `sqdist_rows`
 * and `copy_bytes(to, from, length)` (memmove within the memory, for moving rows).
 */
export function distanceKernelBytes(shared: boolean): Uint8Array {
  const locals = vec(LOCALS.map(([count, type]) => [...uleb(count), type]));
  const distances = [...locals, ...kernelBody(), op.end];
  const memoryCopy = [0xfc, ...uleb(10), 0x00, 0x00];
  const copy = [...vec([]), ...get(0), ...get(1), ...get(2), ...memoryCopy, op.end];
  const memoryLimits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x01, ...uleb(1), ...uleb(65536)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, ...vec(PARAMS.map((type) => [type])), ...vec([])],
      [0x60, ...vec([[I32], [I32], [I32]]), ...vec([])],
    ])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, ...memoryLimits]])),
    ...section(3, vec([uleb(0), uleb(1)])),
    ...section(7, vec([[...name("sqdist_rows"), 0x00, ...uleb(0)], [...name("copy_bytes"), 0x00, ...uleb(1)]])),
    ...section(10, vec([[...uleb(distances.length), ...distances], [...uleb(copy.length), ...copy]])),
  ]);
}

export type CopyBytes = (to: number, from: number, length: number) => void;

/** Relative error bound of the float32 filter sum over D terms, doubled for safety. */
export function filterSlack(D: number): number {
  const n = (D + 3) * 2 ** -24;
  const gamma = n / (1 - n);
  return (1 + 1e-9) / (1 - 2 * gamma);
}

export type SqdistRows = (
  x: number, rowBytes: number, dBytes: number, rows: number, count: number,
  pick: number, bounds: number, out: number, useBound: number, slack: number,
) => void;
