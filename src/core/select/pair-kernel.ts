/**
 * The all-pairs enumeration of pair-histogram.ts (pairs i < j, every image shift inside the slabs)
 * as WebAssembly (the hot loop of the descriptors).
 *
 * For a pair (i, j) with f = frac_j - frac_i, the shifts along direction k are the integers in
 * [ceil(-s_k - f_k), floor(s_k - f_k)]; the image vector is v = (((pos_j - pos_i) + a*b0) + b*b1) + c*b2
 * and d2 = (x*x + y*y) + z*z. A pair counts when d2 <= limit2 and 1e-8 < sqrt(d2) <= rMax, in bin
 * min(bins-1, floor((sqrt(d2)*bins)/rMax)) of block blockOf[class_i*classCount + class_j].
 *
 * In small cells every direction has 1-2 shifts per pair, so a scalar loop spends its time on loop
 * overhead and on branches that go either way (loop exits; the range test passes about half the time).
 * Hence:
 * - two pairs (i, j), (i, j+1) at once in the two f64 lanes of a v128;
 * - per frame fixed trip counts m_k = floor(2 s_k) + 1 (no range of width 2 s_k holds more integers),
 *   shifts outside a lane's own range masked out: no branch depends on the data;
 * - the squared distances that pass are appended to a buffer without a branch (swizzled by the lane
 *   mask); a second loop takes sqrt and the bin of those only, two per f64x2 sqrt and division.
 * Every floating-point operation on a counted image is the one above, in that order, lane by lane,
 * so the counts equal those of a plain scalar loop (tests pin the order where rounding decides a bin).
 * When blocks differ, atoms are sorted by class so that a run of j shares one block; a pair taken in
 * the other order gives exactly -v (IEEE sums and products are sign-symmetric) over the mirrored shift
 * range, hence the same d2.
 */

import type { WasmApi, WasmMemory } from "./fps-kernel.js";
import { F64, I32, V128, VOID_BLOCK, f64, get, i32, memarg, name, op, section, set, simd, uleb, vec } from "./wasm-emit.js";

// Opcodes beyond those wasm-emit.ts names.
const I32_POPCNT = 0x69;
const CALL = 0x10;
const F64_CONVERT_I32_S = 0xb7;
const I32_SHR_U = 0x76;
const SIMD = {
  load: 0, store: 11, swizzle: 14, i32x4Splat: 17, f64x2Splat: 20, i32x4ExtractLane: 27,
  f64x2Lt: 73, f64x2Gt: 74, f64x2Le: 75, and: 78, f64x2Ceil: 116, f64x2Floor: 117,
  i32x4Shl: 171, i32x4Add: 174, i32x4MinS: 182, i64x2Bitmask: 196,
  f64x2Sqrt: 239, f64x2Add: 240, f64x2Sub: 241, f64x2Mul: 242, f64x2Div: 243, i32x4TruncSatF64x2SZero: 252,
} as const;

/** Index of each named local: parameters first, then i32, f64 and v128 locals. */
function localIndex<const N extends string>(groups: readonly (readonly N[])[]): Record<N, number> {
  const index = {} as Record<N, number>;
  let next = 0;
  for (const group of groups) for (const key of group) index[key] = next++;
  return index;
}

const COUNT_PARAMS = [
  "par", "px", "py", "pz", "fx", "fy", "fz", "classes", "classStart", "blockOf", "counts", "buf", "swz",
  "n", "classCount", "bins", "m0", "m1", "m2", "capLimit", "iFrom", "iTo",
] as const;
const COUNT_I32 = ["i", "ci", "c2", "j", "jb", "segEnd", "base", "k", "ia", "ib", "ic", "total", "mk"] as const;
const COUNT_F64 = ["rMax", "binsF"] as const;
const COUNT_V128 = [
  "B0x", "B0y", "B0z", "B1x", "B1y", "B1z", "B2x", "B2y", "B2z", "S0", "S1", "S2", "N0", "N1", "N2", "LIM",
  "ONE", "TWO", "XI", "YI", "ZI", "FI0", "FI1", "FI2", "JV", "ENDV", "OK", "DX", "DY", "DZ", "F",
  "HI0", "HI1", "HI2", "LO1", "LO2", "A", "B", "C", "VA", "VAB", "AX", "AY", "AZ", "ABX", "ABY", "ABZ",
  "X", "Y", "Z", "D2",
] as const;
const L = localIndex<(typeof COUNT_PARAMS)[number] | (typeof COUNT_I32)[number] | (typeof COUNT_F64)[number] | (typeof COUNT_V128)[number]>(
  [COUNT_PARAMS, COUNT_I32, COUNT_F64, COUNT_V128],
);
type Local = keyof typeof L;

const FLUSH_PARAMS = ["buf", "k", "counts", "base", "bins"] as const;
const FLUSH_F64_PARAMS = ["rMax", "binsF"] as const;
const FLUSH_I32 = ["e", "addr", "mk", "counted"] as const;
const FLUSH_V128 = ["D", "bin"] as const;
const M = localIndex<(typeof FLUSH_PARAMS)[number] | (typeof FLUSH_F64_PARAMS)[number] | (typeof FLUSH_I32)[number] | (typeof FLUSH_V128)[number]>(
  [FLUSH_PARAMS, FLUSH_F64_PARAMS, FLUSH_I32, FLUSH_V128],
);

/** Offsets (f64 slots) in the parameter block. */
const PAR = { basis: 0, s: 9, negS: 12, rMax: 15, limit2: 16, binsF: 17 } as const;
const PARAM_SLOTS = 18;

const g = (name: Local): number[] => get(L[name]);
const s = (name: Local): number[] => set(L[name]);
const v = (code: number): number[] => simd(code);
const vop = (code: number, left: Local, right: Local, target: Local): number[] => [...g(left), ...g(right), ...v(code), ...s(target)];
const splatParam = (slot: number, target: Local): number[] => [...g("par"), op.f64Load, ...memarg(3, 8 * slot), ...v(SIMD.f64x2Splat), ...s(target)];
const addI32 = (target: Local, amount: number[]): number[] => [...g(target), ...amount, op.i32Add, ...s(target)];
/** Exit when `exitWhen` holds, before each pass. */
const whileLoop = (exitWhen: number[], body: number[]): number[] => [
  op.block, VOID_BLOCK, op.loop, VOID_BLOCK, ...exitWhen, op.brIf, 1, ...body, op.br, 0, op.end, op.end,
];
/** `count` passes (count >= 1), without a data-dependent exit. */
const repeat = (counter: Local, count: Local, body: number[]): number[] => [
  ...g(count), ...s(counter), op.loop, VOID_BLOCK, ...body,
  ...g(counter), ...i32(1), op.i32Sub, ...s(counter), ...g(counter), op.brIf, 0, op.end,
];
/** target = left + scale * right, lane-wise (the order of pair-histogram's image vector). */
const shiftBy = (target: Local, left: Local, scale: Local, right: Local): number[] => [
  ...g(left), ...g(scale), ...g(right), ...v(SIMD.f64x2Mul), ...v(SIMD.f64x2Add), ...s(target),
];
/** Two consecutive f64 of an SoA array at index j (byte offset jb). */
const loadPair = (array: Local): number[] => [...g(array), ...g("jb"), op.i32Add, ...v(SIMD.load), ...memarg(3)];
const splatAt = (array: Local, index: Local): number[] => [
  ...g(array), ...g(index), ...i32(3), op.i32Shl, op.i32Add, op.f64Load, ...memarg(3), ...v(SIMD.f64x2Splat),
];
const callFlush = (): number[] => [
  ...g("buf"), ...g("k"), ...g("counts"), ...g("base"), ...g("bins"), ...g("rMax"), ...g("binsF"), CALL, ...uleb(1),
  ...g("total"), op.i32Add, ...s("total"), ...i32(0), ...s("k"),
];

function countBody(): number[] {
  // One image of the lanes' current shifts: append its d2 where it is in both slab and range.
  const cPass = [
    ...shiftBy("X", "ABX", "C", "B2x"), ...shiftBy("Y", "ABY", "C", "B2y"), ...shiftBy("Z", "ABZ", "C", "B2z"),
    ...g("X"), ...g("X"), ...v(SIMD.f64x2Mul), ...g("Y"), ...g("Y"), ...v(SIMD.f64x2Mul), ...v(SIMD.f64x2Add),
    ...g("Z"), ...g("Z"), ...v(SIMD.f64x2Mul), ...v(SIMD.f64x2Add), ...s("D2"),
    ...g("VAB"), ...g("C"), ...g("HI2"), ...v(SIMD.f64x2Le), ...v(SIMD.and),
    ...g("D2"), ...g("LIM"), ...v(SIMD.f64x2Le), ...v(SIMD.and), ...v(SIMD.i64x2Bitmask), ...s("mk"),
    // buf[k..k+1] = the passing lanes first; k += their number.
    ...g("buf"), ...g("k"), ...i32(3), op.i32Shl, op.i32Add,
    ...g("D2"), ...g("swz"), ...g("mk"), ...i32(4), op.i32Shl, op.i32Add, ...v(SIMD.load), ...memarg(4), ...v(SIMD.swizzle),
    ...v(SIMD.store), ...memarg(3),
    ...addI32("k", [...g("mk"), I32_POPCNT]),
    ...g("C"), ...g("ONE"), ...v(SIMD.f64x2Add), ...s("C"),
  ];
  const bPass = [
    ...shiftBy("ABX", "AX", "B", "B1x"), ...shiftBy("ABY", "AY", "B", "B1y"), ...shiftBy("ABZ", "AZ", "B", "B1z"),
    ...g("VA"), ...g("B"), ...g("HI1"), ...v(SIMD.f64x2Le), ...v(SIMD.and), ...s("VAB"),
    ...g("LO2"), ...s("C"),
    ...repeat("ic", "m2", cPass),
    ...g("B"), ...g("ONE"), ...v(SIMD.f64x2Add), ...s("B"),
  ];
  const aPass = [
    // Room for this pass's appends (2 per image); else count what the buffer holds.
    ...g("k"), ...g("capLimit"), op.i32GtS, op.if, VOID_BLOCK, ...callFlush(), op.end,
    ...shiftBy("AX", "DX", "A", "B0x"), ...shiftBy("AY", "DY", "A", "B0y"), ...shiftBy("AZ", "DZ", "A", "B0z"),
    ...g("A"), ...g("HI0"), ...v(SIMD.f64x2Le), ...g("OK"), ...v(SIMD.and), ...s("VA"),
    ...g("LO1"), ...s("B"),
    ...repeat("ib", "m1", bPass),
    ...g("A"), ...g("ONE"), ...v(SIMD.f64x2Add), ...s("A"),
  ];
  const range = (fx: Local, fi: Local, S: Local, N: Local, hi: Local, lo: Local): number[] => [
    ...loadPair(fx), ...g(fi), ...v(SIMD.f64x2Sub), ...s("F"),
    ...vop(SIMD.f64x2Sub, S, "F", hi), ...g(hi), ...v(SIMD.f64x2Floor), ...s(hi),
    ...vop(SIMD.f64x2Sub, N, "F", lo), ...g(lo), ...v(SIMD.f64x2Ceil), ...s(lo),
  ];
  const jPass = [
    ...g("j"), ...i32(3), op.i32Shl, ...s("jb"),
    ...vop(SIMD.f64x2Lt, "JV", "ENDV", "OK"),
    ...loadPair("px"), ...g("XI"), ...v(SIMD.f64x2Sub), ...s("DX"),
    ...loadPair("py"), ...g("YI"), ...v(SIMD.f64x2Sub), ...s("DY"),
    ...loadPair("pz"), ...g("ZI"), ...v(SIMD.f64x2Sub), ...s("DZ"),
    ...range("fx", "FI0", "S0", "N0", "HI0", "A"),
    ...range("fy", "FI1", "S1", "N1", "HI1", "LO1"),
    ...range("fz", "FI2", "S2", "N2", "HI2", "LO2"),
    ...repeat("ia", "m0", aPass),
    ...g("JV"), ...g("TWO"), ...v(SIMD.f64x2Add), ...s("JV"),
    ...addI32("j", i32(2)),
  ];
  const i32At = (array: Local, index: number[]): number[] => [...g(array), ...index, ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2)];
  // One run of j of class c2 after i: j in [max(i + 1, start(c2)), start(c2 + 1)).
  const segment = [
    ...i32At("classStart", g("c2")), ...s("j"),
    ...g("j"), ...g("i"), ...i32(1), op.i32Add, ...g("j"), ...g("i"), op.i32GtS, op.select, ...s("j"),
    ...i32At("classStart", [...g("c2"), ...i32(1), op.i32Add]), ...s("segEnd"),
    ...i32At("blockOf", [...g("ci"), ...g("classCount"), op.i32Mul, ...g("c2"), op.i32Add]), ...g("bins"), op.i32Mul, ...s("base"),
    ...g("j"), F64_CONVERT_I32_S, ...v(SIMD.f64x2Splat), ...LANE_OFFSETS, ...v(SIMD.f64x2Add), ...s("JV"),
    ...g("segEnd"), F64_CONVERT_I32_S, ...v(SIMD.f64x2Splat), ...s("ENDV"),
    ...whileLoop([...g("j"), ...g("segEnd"), op.i32GeS], jPass),
    ...callFlush(),
  ];
  const iPass = [
    ...i32At("classes", g("i")), ...s("ci"),
    ...splatAt("px", "i"), ...s("XI"), ...splatAt("py", "i"), ...s("YI"), ...splatAt("pz", "i"), ...s("ZI"),
    ...splatAt("fx", "i"), ...s("FI0"), ...splatAt("fy", "i"), ...s("FI1"), ...splatAt("fz", "i"), ...s("FI2"),
    ...g("ci"), ...s("c2"),
    ...whileLoop([...g("c2"), ...g("classCount"), op.i32GeS], [...segment, ...addI32("c2", i32(1))]),
    ...addI32("i", i32(1)),
  ];
  const basisNames: Local[] = ["B0x", "B0y", "B0z", "B1x", "B1y", "B1z", "B2x", "B2y", "B2z"];
  return [
    ...basisNames.flatMap((key, k) => splatParam(PAR.basis + k, key)),
    ...splatParam(PAR.s, "S0"), ...splatParam(PAR.s + 1, "S1"), ...splatParam(PAR.s + 2, "S2"),
    ...splatParam(PAR.negS, "N0"), ...splatParam(PAR.negS + 1, "N1"), ...splatParam(PAR.negS + 2, "N2"),
    ...splatParam(PAR.limit2, "LIM"),
    ...g("par"), op.f64Load, ...memarg(3, 8 * PAR.rMax), ...s("rMax"),
    ...g("par"), op.f64Load, ...memarg(3, 8 * PAR.binsF), ...s("binsF"),
    ...f64(1), ...v(SIMD.f64x2Splat), ...s("ONE"),
    ...f64(2), ...v(SIMD.f64x2Splat), ...s("TWO"),
    ...i32(0), ...s("total"), ...i32(0), ...s("k"), ...g("iFrom"), ...s("i"),
    ...whileLoop([...g("i"), ...g("iTo"), op.i32GeS], iPass),
    ...g("total"),
    op.end,
  ];
}

/** v128.const f64x2 [0, 1]: the lane index added to j. */
const LANE_OFFSETS = (() => {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setFloat64(8, 1, true);
  return [...simd(12), ...bytes];
})();

/**
 * Counts buffer[0..k), two entries per pass: per lane the sqrt, bin and range test of a scalar loop
 * (buffer[k] is padded with NaN, which fails the test and adds nothing).
 */
function flushBody(): number[] {
  const gm = (key: keyof typeof M): number[] => get(M[key]);
  const sm = (key: keyof typeof M): number[] => set(M[key]);
  const vm = (key: keyof typeof M): number[] => [...gm(key), ...v(SIMD.f64x2Splat)];
  // counts[lane's address] += lane's pass bit.
  const addLane = (lane: number, bit: number[]): number[] => [
    ...gm("bin"), ...v(SIMD.i32x4ExtractLane), lane, ...sm("addr"),
    ...gm("addr"), ...gm("addr"), op.i32Load, ...memarg(2), ...bit, op.i32Add, op.i32Store, ...memarg(2),
  ];
  const entries = [
    ...gm("buf"), ...gm("e"), ...i32(3), op.i32Shl, op.i32Add, ...v(SIMD.load), ...memarg(3), ...v(SIMD.f64x2Sqrt), ...sm("D"),
    ...gm("D"), ...f64(1e-8), ...v(SIMD.f64x2Splat), ...v(SIMD.f64x2Gt), ...gm("D"), ...vm("rMax"), ...v(SIMD.f64x2Le), ...v(SIMD.and),
    ...v(SIMD.i64x2Bitmask), ...sm("mk"),
    // bin = min(floor((d * bins) / rMax), bins - 1) per lane, then its byte address in counts.
    ...gm("D"), ...vm("binsF"), ...v(SIMD.f64x2Mul), ...vm("rMax"), ...v(SIMD.f64x2Div), ...v(SIMD.f64x2Floor),
    ...v(SIMD.i32x4TruncSatF64x2SZero), ...gm("bins"), ...i32(1), op.i32Sub, ...v(SIMD.i32x4Splat), ...v(SIMD.i32x4MinS),
    ...gm("base"), ...v(SIMD.i32x4Splat), ...v(SIMD.i32x4Add), ...i32(2), ...v(SIMD.i32x4Shl),
    ...gm("counts"), ...v(SIMD.i32x4Splat), ...v(SIMD.i32x4Add), ...sm("bin"),
    ...addLane(0, [...gm("mk"), ...i32(1), op.i32And]),
    ...addLane(1, [...gm("mk"), ...i32(1), I32_SHR_U]),
    ...gm("counted"), ...gm("mk"), I32_POPCNT, op.i32Add, ...sm("counted"),
    ...gm("e"), ...i32(2), op.i32Add, ...sm("e"),
  ];
  return [
    // NaN after the last entry: an odd count leaves it in the second lane of the last pass.
    ...gm("buf"), ...gm("k"), ...i32(3), op.i32Shl, op.i32Add, ...f64(NaN), op.f64Store, ...memarg(3),
    ...i32(0), ...sm("e"), ...i32(0), ...sm("counted"),
    ...whileLoop([...gm("e"), ...gm("k"), op.i32GeS], entries),
    ...gm("counted"),
    op.end,
  ];
}

function moduleBytes(): Uint8Array {
  const countCode = [...vec([[...uleb(COUNT_I32.length), I32], [...uleb(COUNT_F64.length), F64], [...uleb(COUNT_V128.length), V128]]), ...countBody()];
  const flushCode = [...vec([[...uleb(FLUSH_I32.length), I32], [...uleb(FLUSH_V128.length), V128]]), ...flushBody()];
  const countType = [0x60, ...vec(COUNT_PARAMS.map(() => [I32])), ...vec([[I32]])];
  const flushType = [0x60, ...vec([...FLUSH_PARAMS.map(() => [I32]), ...FLUSH_F64_PARAMS.map(() => [F64])]), ...vec([[I32]])];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([countType, flushType])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([uleb(0), uleb(1)])),
    ...section(7, vec([[...name("pair_counts"), 0x00, ...uleb(0)]])),
    ...section(10, vec([[...uleb(countCode.length), ...countCode], [...uleb(flushCode.length), ...flushCode]])),
  ]);
}

type PairCounts = (...args: number[]) => number;

interface GrowableMemory extends WasmMemory {
  grow(pages: number): number;
}

/** Byte offsets of the kernel's arrays for one problem size. */
interface Layout {
  n: number;
  classCount: number;
  countsLength: number;
  capacity: number;
  buffer: ArrayBuffer | SharedArrayBuffer;
  at: Record<"par" | "px" | "py" | "pz" | "fx" | "fy" | "fz" | "classes" | "classStart" | "blockOf" | "counts" | "buf" | "swz", number>;
  capLimit: number;
  params: Float64Array;
  coords: Float64Array[];
  classes: Int32Array;
  classStart: Int32Array;
  blockOf: Int32Array;
  counts: Int32Array;
}

/** Geometry of one frame for the kernel: basis rows, slab half-widths (0 along non-periodic directions). */
export interface KernelFrame {
  basis: Float64Array;
  slab: readonly [number, number, number];
  rMax: number;
  limit2: number;
  bins: number;
  /** Wrapped positions and fractions (fractions zero along non-periodic directions), 3n each. */
  positions: Float64Array;
  fractions: Float64Array;
  n: number;
}

/** One instance with its own memory, grown as frames need; views kept while frame sizes repeat. */
export class PairCountKernel {
  private readonly memory: GrowableMemory;
  private readonly run: PairCounts;
  private layout: Layout | undefined;
  private order = new Int32Array(0);
  private nextSlot = new Int32Array(0);

  /** `imagesPerCall`: candidate images per kernel call, below 2^31 (smaller only to test the chunking). */
  constructor(private readonly imagesPerCall = 2 ** 30) {
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    this.memory = new api.Memory({ initial: 1, maximum: 65536, shared: false }) as GrowableMemory;
    const instance = new api.Instance(new api.Module(moduleBytes()), { env: { memory: this.memory } });
    this.run = instance.exports.pair_counts as PairCounts;
  }

  /** Adds the counts of pairs i < j to `counts` (see the file header); returns how many were added. */
  count(frame: KernelFrame, classes: Int32Array, classCount: number, blockOf: Int32Array, counts: Float64Array): number {
    const { n, bins } = frame;
    // One block for every class pair (the baseline descriptor): a single run of j per atom.
    let uniform = true;
    for (let a = 0; a < classCount && uniform; a++) for (let b = 0; b < classCount; b++) if (blockOf[a * classCount + b] !== blockOf[0]) uniform = false;
    const kernelClasses = uniform ? 1 : classCount;
    const m0 = Math.floor(2 * frame.slab[0]) + 1, m1 = Math.floor(2 * frame.slab[1]) + 1, m2 = Math.floor(2 * frame.slab[2]) + 1;
    const lay = this.layoutFor(n, kernelClasses, counts.length, m1 * m2);
    const par = lay.params;
    for (let k = 0; k < 9; k++) par[PAR.basis + k] = frame.basis[k];
    for (let k = 0; k < 3; k++) {
      par[PAR.s + k] = frame.slab[k];
      par[PAR.negS + k] = -frame.slab[k];
    }
    par[PAR.rMax] = frame.rMax;
    par[PAR.limit2] = frame.limit2;
    par[PAR.binsF] = bins;

    // Atoms in class order (counting sort; stable).
    if (this.order.length < n) this.order = new Int32Array(n);
    const order = this.order;
    const start = lay.classStart;
    start.fill(0);
    if (uniform) {
      for (let i = 0; i < n; i++) order[i] = i;
      start[1] = n;
      lay.blockOf[0] = blockOf[0];
      lay.classes.fill(0, 0, n);
    } else {
      for (let i = 0; i < n; i++) start[classes[i] + 1]++;
      for (let c = 0; c < classCount; c++) start[c + 1] += start[c];
      const next = this.nextSlot.length < classCount ? (this.nextSlot = new Int32Array(classCount)) : this.nextSlot;
      next.set(start.subarray(0, classCount));
      for (let i = 0; i < n; i++) order[next[classes[i]]++] = i;
      for (let p = 0; p < n; p++) lay.classes[p] = classes[order[p]];
      lay.blockOf.set(blockOf.subarray(0, classCount * classCount));
    }
    const [px, py, pz, fx, fy, fz] = lay.coords;
    const { positions, fractions } = frame;
    for (let p = 0; p < n; p++) {
      const atom = 3 * order[p];
      px[p] = positions[atom];
      py[p] = positions[atom + 1];
      pz[p] = positions[atom + 2];
      fx[p] = fractions[atom];
      fy[p] = fractions[atom + 1];
      fz[p] = fractions[atom + 2];
    }
    // Rows i in chunks of at most imagesPerCall candidate images: the kernel's int32 counts cannot wrap.
    const images = m0 * m1 * m2;
    const rowsPerCall = Math.max(1, Math.floor(this.imagesPerCall / (Math.max(n, 1) * images)));
    const at = lay.at;
    const kernelCounts = lay.counts;
    let total = 0;
    for (let from = 0; from < n; from += rowsPerCall) {
      kernelCounts.fill(0);
      total += this.run(
        at.par, at.px, at.py, at.pz, at.fx, at.fy, at.fz, at.classes, at.classStart, at.blockOf, at.counts, at.buf, at.swz,
        n, kernelClasses, bins, m0, m1, m2, lay.capLimit, from, Math.min(n, from + rowsPerCall),
      );
      for (let b = 0; b < counts.length; b++) counts[b] += kernelCounts[b];
    }
    return total;
  }

  private layoutFor(n: number, classCount: number, countsLength: number, imagesPerA: number): Layout {
    // The buffer holds at least one a-pass of appends (2 per image) beyond capLimit.
    const capacity = Math.max(4096, 4 * imagesPerA + 16);
    const old = this.layout;
    if (
      old && old.buffer === this.memory.buffer && old.n === n && old.classCount === classCount &&
      old.countsLength === countsLength && old.capacity === capacity
    ) {
      return old;
    }
    let offset = 0;
    const take = (bytes: number): number => {
      const at = offset;
      offset += Math.ceil(bytes / 16) * 16;
      return at;
    };
    const padded = n + 2; // a lane past the last atom reads (and masks) one more entry
    const at = {
      par: take(8 * PARAM_SLOTS),
      swz: take(64),
      px: take(8 * padded), py: take(8 * padded), pz: take(8 * padded),
      fx: take(8 * padded), fy: take(8 * padded), fz: take(8 * padded),
      classes: take(4 * n),
      classStart: take(4 * (classCount + 1)),
      blockOf: take(4 * classCount * classCount),
      counts: take(4 * countsLength),
      buf: take(8 * (capacity + 2)),
    };
    const pages = Math.ceil(offset / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages > 0) this.memory.grow(pages);
    const buffer = this.memory.buffer;
    // Swizzle patterns by lane mask: only mask 0b10 (lane 1 alone passes) moves lane 1 to lane 0.
    const swz = new Uint8Array(buffer, at.swz, 64);
    for (let mask = 0; mask < 4; mask++) for (let b = 0; b < 16; b++) swz[16 * mask + b] = mask === 2 ? (b + 8) % 16 : b;
    const coords = [at.px, at.py, at.pz, at.fx, at.fy, at.fz].map((o) => new Float64Array(buffer, o, padded).fill(0));
    this.layout = {
      n, classCount, countsLength, capacity, buffer, at, capLimit: capacity - 2 * imagesPerA,
      params: new Float64Array(buffer, at.par, PARAM_SLOTS),
      coords,
      classes: new Int32Array(buffer, at.classes, n),
      classStart: new Int32Array(buffer, at.classStart, classCount + 1),
      blockOf: new Int32Array(buffer, at.blockOf, classCount * classCount),
      counts: new Int32Array(buffer, at.counts, countsLength),
    };
    return this.layout;
  }
}
