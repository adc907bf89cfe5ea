/**
 * The all-pairs enumeration of pair-histogram.ts (pairs i < j, every image shift inside the slabs)
 * as a WebAssembly function (the hot loop of the descriptors; faster than the same loop in JavaScript).
 *
 * `pair_counts(params, pos, frac, classes, n, classCount, blockOf, counts, bins) -> pairs`:
 * params = f64 [b0x, b0y, b0z, b1x, b1y, b1z, b2x, b2y, b2z, s0, s1, s2, rMax, limit2, bins];
 * pos, frac = f64 x 3n (frac zero along non-periodic directions, where s = 0 then pins the shift to 0);
 * for i < j and integer shifts a, b, c in [ceil(-s - f), floor(s - f)] per direction (f = frac_j - frac_i):
 * v = ((pos_j - pos_i) + a*b0) + b*b1) + c*b2, d2 = (x*x + y*y) + z*z; when d2 <= limit2 and
 * 1e-8 < sqrt(d2) <= rMax, counts[blockOf[class_i*classCount + class_j]*bins + min(bins-1,
 * floor(sqrt(d2)*bins/rMax))] += 1. Returns the number of pairs counted.
 */

import type { WasmApi, WasmMemory } from "./fps-kernel.js";
import { F64, I32, VOID_BLOCK, f64, get, i32, memarg, name, op, section, set, uleb, vec } from "./wasm-emit.js";

const P = { par: 0, pos: 1, frac: 2, classes: 3, n: 4, classCount: 5, blockOf: 6, counts: 7, bins: 8 };
const PARAM_COUNT = 9;
const I = { i: 9, j: 10, base: 11, bin: 12, total: 13, rowOfI: 14, addr: 15 };
const I32_LOCALS = 7;
const PARAM_NAMES = ["b0x", "b0y", "b0z", "b1x", "b1y", "b1z", "b2x", "b2y", "b2z", "s0", "s1", "s2", "rMax", "limit2", "binsF"] as const;
const WORK_NAMES = [
  "xi", "yi", "zi", "fi0", "fi1", "fi2", "dx", "dy", "dz", "f0", "f1", "f2", "hi0", "lo1", "hi1", "lo2", "hi2",
  "a", "b", "c", "ax", "ay", "az", "abx", "aby", "abz", "x", "y", "z", "d2", "d",
] as const;
const F: Record<string, number> = {};
[...PARAM_NAMES, ...WORK_NAMES].forEach((key, k) => (F[key] = PARAM_COUNT + I32_LOCALS + k));
const F64_LOCALS = PARAM_NAMES.length + WORK_NAMES.length;

const load = (base: number, index: number, strideLog2: number, offset: number): number[] => [
  ...get(base), ...get(index), ...i32(strideLog2), op.i32Shl, op.i32Add, op.f64Load, ...memarg(3, offset),
];
/** index * 24 + base: the start of a 3-vector of f64. */
const vector3 = (base: number, index: number, offset: number): number[] => [
  ...get(base), ...get(index), ...i32(24), op.i32Mul, op.i32Add, op.f64Load, ...memarg(3, offset),
];
const loop = (body: number[], exitWhen: number[]): number[] => [
  op.block, VOID_BLOCK, op.loop, VOID_BLOCK, ...exitWhen, op.brIf, 1, ...body, op.br, 0, op.end, op.end,
];
const fadd = (target: string, left: string, scale: string, right: string): number[] => [
  ...get(F[left]), ...get(F[scale]), ...get(F[right]), op.f64Mul, op.f64Add, ...set(F[target]),
];
const increment = (local: number): number[] => [...get(local), ...f64(1), op.f64Add, ...set(local)];

function body(): number[] {
  const countPair = [
    ...get(F.d2), ...get(F.limit2), op.f64Le, op.if, VOID_BLOCK,
    ...get(F.d2), op.f64Sqrt, ...set(F.d),
    ...get(F.d), ...f64(1e-8), op.f64Gt, ...get(F.d), ...get(F.rMax), op.f64Le, op.i32And, op.if, VOID_BLOCK,
    ...get(F.d), ...get(F.binsF), op.f64Mul, ...get(F.rMax), op.f64Div, op.f64Floor, op.i32TruncF64S, ...set(I.bin),
    ...get(I.bin), ...get(P.bins), ...i32(1), op.i32Sub, ...get(I.bin), ...get(P.bins), op.i32LtS, op.select, ...set(I.bin),
    ...get(P.counts), ...get(I.base), ...get(I.bin), op.i32Add, ...i32(3), op.i32Shl, op.i32Add, ...set(I.addr),
    ...get(I.addr), ...get(I.addr), op.f64Load, ...memarg(3), ...f64(1), op.f64Add, op.f64Store, ...memarg(3),
    ...get(I.total), ...i32(1), op.i32Add, ...set(I.total),
    op.end, op.end,
  ];
  const cLoop = loop(
    [
      ...fadd("x", "abx", "c", "b2x"), ...fadd("y", "aby", "c", "b2y"), ...fadd("z", "abz", "c", "b2z"),
      ...get(F.x), ...get(F.x), op.f64Mul, ...get(F.y), ...get(F.y), op.f64Mul, op.f64Add,
      ...get(F.z), ...get(F.z), op.f64Mul, op.f64Add, ...set(F.d2),
      ...countPair,
      ...increment(F.c),
    ],
    [...get(F.c), ...get(F.hi2), op.f64Gt],
  );
  const bLoop = loop(
    [
      ...fadd("abx", "ax", "b", "b1x"), ...fadd("aby", "ay", "b", "b1y"), ...fadd("abz", "az", "b", "b1z"),
      ...get(F.lo2), ...set(F.c), ...cLoop, ...increment(F.b),
    ],
    [...get(F.b), ...get(F.hi1), op.f64Gt],
  );
  const aLoop = loop(
    [
      ...fadd("ax", "dx", "a", "b0x"), ...fadd("ay", "dy", "a", "b0y"), ...fadd("az", "dz", "a", "b0z"),
      ...get(F.lo1), ...set(F.b), ...bLoop, ...increment(F.a),
    ],
    [...get(F.a), ...get(F.hi0), op.f64Gt],
  );
  const difference = (target: string, base: number, offset: number, minus: string): number[] => [
    ...vector3(base, I.j, offset), ...get(F[minus]), op.f64Sub, ...set(F[target]),
  ];
  const floorOf = (target: string, s: string, f: string): number[] => [
    ...get(F[s]), ...get(F[f]), op.f64Sub, op.f64Floor, ...set(F[target]),
  ];
  const ceilOf = (target: string, s: string, f: string): number[] => [
    ...get(F[s]), op.f64Neg, ...get(F[f]), op.f64Sub, op.f64Ceil, ...set(F[target]),
  ];
  const jLoop = loop(
    [
      ...get(P.blockOf), ...get(I.rowOfI), ...get(P.classes), ...get(I.j), ...i32(2), op.i32Shl, op.i32Add,
      op.i32Load, ...memarg(2), op.i32Add, ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2),
      ...get(P.bins), op.i32Mul, ...set(I.base),
      ...difference("dx", P.pos, 0, "xi"), ...difference("dy", P.pos, 8, "yi"), ...difference("dz", P.pos, 16, "zi"),
      ...difference("f0", P.frac, 0, "fi0"), ...difference("f1", P.frac, 8, "fi1"), ...difference("f2", P.frac, 16, "fi2"),
      ...floorOf("hi0", "s0", "f0"), ...floorOf("hi1", "s1", "f1"), ...floorOf("hi2", "s2", "f2"),
      ...ceilOf("lo1", "s1", "f1"), ...ceilOf("lo2", "s2", "f2"), ...ceilOf("a", "s0", "f0"),
      ...aLoop,
      ...get(I.j), ...i32(1), op.i32Add, ...set(I.j),
    ],
    [...get(I.j), ...get(P.n), op.i32GeS],
  );
  const iLoop = loop(
    [
      ...vector3(P.pos, I.i, 0), ...set(F.xi), ...vector3(P.pos, I.i, 8), ...set(F.yi), ...vector3(P.pos, I.i, 16), ...set(F.zi),
      ...vector3(P.frac, I.i, 0), ...set(F.fi0), ...vector3(P.frac, I.i, 8), ...set(F.fi1), ...vector3(P.frac, I.i, 16), ...set(F.fi2),
      ...get(P.classes), ...get(I.i), ...i32(2), op.i32Shl, op.i32Add, op.i32Load, ...memarg(2),
      ...get(P.classCount), op.i32Mul, ...set(I.rowOfI),
      ...get(I.i), ...i32(1), op.i32Add, ...set(I.j),
      ...jLoop,
      ...get(I.i), ...i32(1), op.i32Add, ...set(I.i),
    ],
    [...get(I.i), ...get(P.n), op.i32GeS],
  );
  return [
    ...PARAM_NAMES.flatMap((key, k) => [...get(P.par), op.f64Load, ...memarg(3, 8 * k), ...set(F[key])]),
    ...i32(0), ...set(I.total), ...i32(0), ...set(I.i),
    ...iLoop,
    ...get(I.total),
    op.end,
  ];
}

function moduleBytes(): Uint8Array {
  const code = [...vec([[...uleb(I32_LOCALS), I32], [...uleb(F64_LOCALS), F64]]), ...body()];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec(Array.from({ length: PARAM_COUNT }, () => [I32])), ...vec([[I32]])]])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...name("pair_counts"), 0x00, ...uleb(0)]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ]);
}

type PairCounts = (
  par: number, pos: number, frac: number, classes: number, n: number,
  classCount: number, blockOf: number, counts: number, bins: number,
) => number;

interface GrowableMemory extends WasmMemory {
  grow(pages: number): number;
}

interface Views {
  buffer: ArrayBuffer | SharedArrayBuffer;
  n: number;
  countsLength: number;
  blockOfLength: number;
  params: Float64Array;
  counts: Float64Array;
  positions: Float64Array;
  fractional: Float64Array;
  classes: Int32Array;
  blockOf: Int32Array;
  at: { params: number; counts: number; positions: number; fractional: number; classes: number; blockOf: number };
}

/** One instance with its own memory, grown as frames need; views kept while frame sizes repeat. */
export class PairCountKernel {
  private readonly memory: GrowableMemory;
  private readonly run: PairCounts;
  private views: Views | undefined;

  constructor() {
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    this.memory = new api.Memory({ initial: 1, maximum: 65536, shared: false }) as GrowableMemory;
    const instance = new api.Instance(new api.Module(moduleBytes()), { env: { memory: this.memory } });
    this.run = instance.exports.pair_counts as PairCounts;
  }

  /** Adds the counts of pairs i < j to `counts` (see the file header); returns how many were added. */
  count(
    params: Float64Array,
    positions: Float64Array,
    fractional: Float64Array,
    classes: Int32Array,
    n: number,
    classCount: number,
    blockOf: Int32Array,
    counts: Float64Array,
    bins: number,
  ): number {
    const v = this.viewsFor(n, counts.length, blockOf.length);
    v.params.set(params);
    v.counts.fill(0);
    v.positions.set(positions.subarray(0, 3 * n));
    v.fractional.set(fractional.subarray(0, 3 * n));
    v.classes.set(classes.subarray(0, n));
    v.blockOf.set(blockOf);
    const { at } = v;
    const total = this.run(at.params, at.positions, at.fractional, at.classes, n, classCount, at.blockOf, at.counts, bins);
    for (let b = 0; b < counts.length; b++) counts[b] += v.counts[b];
    return total;
  }

  private viewsFor(n: number, countsLength: number, blockOfLength: number): Views {
    const old = this.views;
    if (old && old.buffer === this.memory.buffer && old.n === n && old.countsLength === countsLength && old.blockOfLength === blockOfLength) {
      return old;
    }
    const at = { params: 0, counts: 128, positions: 0, fractional: 0, classes: 0, blockOf: 0 };
    at.positions = align(at.counts + countsLength * 8);
    at.fractional = at.positions + 24 * n;
    at.classes = at.fractional + 24 * n;
    at.blockOf = align(at.classes + 4 * n);
    const pages = Math.ceil((at.blockOf + 4 * blockOfLength) / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages > 0) this.memory.grow(pages);
    const buffer = this.memory.buffer;
    this.views = {
      buffer, n, countsLength, blockOfLength, at,
      params: new Float64Array(buffer, at.params, 16),
      counts: new Float64Array(buffer, at.counts, countsLength),
      positions: new Float64Array(buffer, at.positions, 3 * n),
      fractional: new Float64Array(buffer, at.fractional, 3 * n),
      classes: new Int32Array(buffer, at.classes, n),
      blockOf: new Int32Array(buffer, at.blockOf, blockOfLength),
    };
    return this.views;
  }
}

function align(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}
