import { quantizerForRanges } from "../../../src/core/select/distance-kernel.js";

/** The quantiser for the ranges of the columns of X (rows of D values). */
export function fitQuantizer(D: number, X: Float32Array) {
  const lo = new Float64Array(D).fill(Infinity);
  const hi = new Float64Array(D).fill(-Infinity);
  X.forEach((v, p) => {
    lo[p % D] = Math.min(lo[p % D], v);
    hi[p % D] = Math.max(hi[p % D], v);
  });
  return quantizerForRanges(lo, hi);
}
