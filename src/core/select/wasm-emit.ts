/** A minimal WebAssembly binary emitter: opcodes and encoders for the hand-assembled kernels. */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export const VOID_BLOCK = 0x40;

export const op = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d,
  localGet: 0x20, localSet: 0x21,
  i32Load: 0x28, f32Load: 0x2a, f64Load: 0x2b, f64Store: 0x39,
  i32Const: 0x41, f32Const: 0x43, f64Const: 0x44,
  select: 0x1b, i32Store: 0x36,
  i32Eqz: 0x45, i32LtU: 0x49, i32LeU: 0x4d, i32GeU: 0x4f, f64Lt: 0x63, f64Ge: 0x66,
  i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c, i32And: 0x71, i32Or: 0x72, i32Xor: 0x73, i32Shl: 0x74, i32ShrU: 0x76,
  f32Add: 0x92, f32Sub: 0x93, f32Mul: 0x94,
  f64Add: 0xa0, f64Sub: 0xa1, f64Mul: 0xa2, f64Div: 0xa3, f64PromoteF32: 0xbb,
  f64Ceil: 0x9b, f64Floor: 0x9c, f64Sqrt: 0x9f, f64Gt: 0x64, f64Le: 0x65, i32TruncF64S: 0xaa,
  i32LtS: 0x48, i32GtS: 0x4a, i32GeS: 0x4e, f64Neg: 0x9a, f64ConvertI32S: 0xb7,
  i32Store8: 0x3a, i32Load8U: 0x2d, f64Nearest: 0x9e, f64Min: 0xa4, f64Max: 0xa5,
} as const;

/** SIMD opcodes (after the 0xfd prefix). */
export const simdOp = {
  v128Load: 0, f32x4Splat: 19, f64x2Splat: 20, f32x4ExtractLane: 31, f64x2ExtractLane: 33,
  load64Zero: 93, f64x2PromoteLowF32x4: 95,
  f32x4Add: 228, f32x4Sub: 229, f32x4Mul: 230,
  f64x2Add: 240, f64x2Sub: 241, f64x2Mul: 242,
  i32x4Splat: 17, i32x4ExtractLane: 27, i16x8ExtendLowI8x16S: 135, i16x8ExtendHighI8x16S: 136,
  i32x4Add: 174, i32x4DotI16x8S: 186, i8x16Shuffle: 13, f64x2ConvertLowI32x4S: 254,
  f64x2ReplaceLane: 34, f64x2Ge: 76, i64x2Bitmask: 196,
  f64x2Nearest: 148, f64x2Min: 244, f64x2Max: 245, f64x2Pmin: 246, f64x2Pmax: 247, i32x4TruncSatF64x2SZero: 252,
  v128Store: 11, v128Store8Lane: 88,
} as const;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

// concat rather than spreads: a module's bytes pass through these whole (spreading them took most of the 10 ms that
// building the selection's kernel took).
export const vec = (items: number[][]): number[] => uleb(items.length).concat(...items);
export const name = (s: string): number[] => vec([...new TextEncoder().encode(s)].map((b) => [b]));
export const section = (id: number, body: number[]): number[] => [id].concat(uleb(body.length), body);
export const get = (i: number): number[] => [op.localGet, ...uleb(i)];
export const set = (i: number): number[] => [op.localSet, ...uleb(i)];
export const i32 = (v: number): number[] => [op.i32Const, ...sleb(v)];
export const f64 = (v: number): number[] => {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, v, true);
  return [op.f64Const, ...bytes];
};
export const simd = (code: number): number[] => [0xfd, ...uleb(code)];
/**
 * while (local < limit, unsigned) { body; local += step }: `limit` pushes an i32 and the local starts where the
 * caller left it. Inside `body` a branch of depth 1 leaves the loop and of depth 0 starts its next turn (without
 * the step).
 */
export const whileBelow = (local: number, limit: number[], step: number, body: number[]): number[] => [
  op.block, VOID_BLOCK, op.loop, VOID_BLOCK,
  ...get(local), ...limit, op.i32GeU, op.brIf, 1,
  ...body,
  ...get(local), ...i32(step), op.i32Add, ...set(local),
  op.br, 0,
  op.end, op.end,
];

/** memarg: log2 alignment, constant offset. */
export const memarg = (alignLog2: number, offset = 0): number[] => [...uleb(alignLog2), ...uleb(offset)];

