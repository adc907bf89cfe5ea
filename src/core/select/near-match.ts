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

/** Width (Angstrom) of the buckets of mean coordinate: far wider than the tolerance, so neighbours suffice. */
const BUCKET = 1e-3;

export type Geometry = Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">;

/** A frame's geometry alone (keeping it does not keep the frame's other arrays). */
export const geometryOf = (f: Geometry): Geometry => ({ natoms: f.natoms, symbols: f.symbols, positions: f.positions, cell: f.cell, pbc: f.pbc });

/** Structures by species (in atom order), pbc and mean coordinate, for finding the one nearest to another. */
export class NearStructureIndex {
  private readonly byKey = new Map<string, { row: number; geometry: Geometry }[]>();

  /** `tolerance`: the largest difference in any position or cell component (Angstrom) that still matches. */
  constructor(private readonly tolerance = NEAR_MATCH_TOLERANCE) {
    if (!(tolerance >= 0 && tolerance < BUCKET)) throw new RangeError(`tolerance ${tolerance} is not in [0, ${BUCKET})`);
  }

  add(row: number, frame: Geometry): void {
    const geometry = geometryOf(frame);
    const key = keyOf(frame, Math.round(meanCoordinate(frame) / BUCKET));
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
    const bucket = Math.round(meanCoordinate(frame) / BUCKET);
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
}

function keyOf(frame: Geometry, bucket: number): string {
  return `${frame.natoms}|${frame.pbc.map(Number).join("")}|${bucket}`;
}

/** The mean of all Cartesian coordinates: moves by at most the tolerance when every coordinate does. */
function meanCoordinate(frame: Geometry): number {
  let sum = 0;
  for (let i = 0; i < 3 * frame.natoms; i++) sum += frame.positions[i];
  return sum / (3 * frame.natoms);
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
