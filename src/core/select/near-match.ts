/**
 * Pool candidates found by geometry when their candidate_id does not match: for files that print fewer digits than
 * the pool. ASE writes positions with 8 decimals (`%16.8f`, also in mace_eval_configs' output), which moves a value
 * by up to 5e-9 Angstrom: a coordinate that close to a rounding boundary of the id's 1e-6 Angstrom grid (about 1 in
 * 200) then rounds the other way, so about half of 40-atom structures, and most larger ones, get another id than the
 * pool's full-precision copy.
 */
import type { Frame } from "../structure.js";

/**
 * The largest difference in any position or cell component (Angstrom) at which two structures count as the same by
 * default: writers that print 5 decimals or more stay within it, and frames of a pool (an MD run, the last steps of
 * a relaxation) rarely come closer.
 */
export const NEAR_MATCH_TOLERANCE = 1e-5;

export type Geometry = Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">;

/** A frame's geometry alone (keeping it does not keep the frame's other arrays). */
export const geometryOf = (f: Geometry): Geometry => ({ natoms: f.natoms, symbols: f.symbols, positions: f.positions, cell: f.cell, pbc: f.pbc });

/** Structures by species (in atom order), pbc and mean coordinate, for finding the one nearest to another. */
export class NearStructureIndex {
  private readonly byKey = new Map<string, { row: number; geometry: Geometry }[]>();

  /** `tolerance`: the largest difference in any position or cell component (Angstrom) that still matches. */
  constructor(private readonly tolerance = NEAR_MATCH_TOLERANCE) {}

  add(row: number, frame: Geometry): void {
    const geometry = geometryOf(frame);
    const key = keyOf(frame, this.bucketOf(frame));
    const list = this.byKey.get(key);
    if (list) list.push({ row, geometry });
    else this.byKey.set(key, [{ row, geometry }]);
  }

  /**
   * The row of the indexed structure nearest to `frame` (largest difference of any position or cell component) among
   * those `accept` takes, with the same species in the same order and the same pbc, at most the tolerance away;
   * ties go to the lowest row. Undefined when there is none.
   */
  find(frame: Geometry, accept: (row: number) => boolean = () => true): number | undefined {
    const bucket = this.bucketOf(frame);
    let best: number | undefined;
    let bestDifference = Infinity;
    for (let b = bucket - 1; b <= bucket + 1; b++) {
      for (const { row, geometry } of this.byKey.get(keyOf(frame, b)) ?? []) {
        if (!accept(row) || !sameSpecies(geometry, frame)) continue;
        const difference = largestDifference(geometry, frame);
        if (difference <= this.tolerance && (difference < bestDifference || (difference === bestDifference && row < best!))) {
          best = row;
          bestDifference = difference;
        }
      }
    }
    return best;
  }

  /**
   * The bucket of a projection of the positions: sum of s_i * x_i / sqrt(3N) with fixed signs s_i = +-1. Structures
   * within the tolerance project at most tolerance * sqrt(3N) apart, so buckets twice that wide (at least 1e-3 A)
   * leave a match in the same or a neighbouring bucket; the frames of an MD run or a relaxation, which move many
   * atoms by far more, spread over many buckets (a plain mean would not: it hardly moves in MD).
   */
  private bucketOf(frame: Geometry): number {
    const n = 3 * frame.natoms;
    let projection = 0;
    for (let i = 0; i < n; i++) projection += SIGNS[i & (SIGNS.length - 1)] * frame.positions[i];
    projection /= Math.sqrt(n);
    return Math.round(projection / Math.max(1e-3, 2 * this.tolerance * Math.sqrt(n)));
  }
}

/** Fixed pseudo-random signs (from a 32-bit LCG), repeating every 256 coordinates. */
const SIGNS = ((): Int8Array => {
  const signs = new Int8Array(256);
  let state = 12345;
  for (let i = 0; i < signs.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    signs[i] = state & 0x80000000 ? 1 : -1;
  }
  return signs;
})();

function keyOf(frame: Geometry, bucket: number): string {
  return `${frame.natoms}|${frame.pbc.map(Number).join("")}|${bucket}`;
}

function sameSpecies(a: Geometry, b: Geometry): boolean {
  if (a.natoms !== b.natoms || a.pbc.some((p, k) => p !== b.pbc[k])) return false;
  for (let i = 0; i < a.natoms; i++) if (a.symbols[i] !== b.symbols[i]) return false;
  return true;
}

function largestDifference(a: Geometry, b: Geometry): number {
  let largest = 0;
  for (let i = 0; i < 9; i++) largest = Math.max(largest, Math.abs(a.cell[i] - b.cell[i]));
  for (let i = 0; i < 3 * a.natoms; i++) largest = Math.max(largest, Math.abs(a.positions[i] - b.positions[i]));
  return largest;
}
