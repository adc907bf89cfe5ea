/**
 * Structures found by geometry when their candidate_id does not match: for files that print fewer digits than the
 * pool. ASE writes positions with 8 decimals (`%16.8f`, also in mace_eval_configs' output), which moves a value by up
 * to 5e-9 Angstrom: a coordinate that close to a rounding boundary of the id's 1e-6 Angstrom grid (about 1 in 200)
 * then rounds the other way, so about half of 40-atom structures, and most larger ones, get another id than the
 * pool's full-precision copy. VASP's outputs print fewer digits still.
 */
import type { Frame } from "../structure.js";

/**
 * The largest difference in any position or cell component (Angstrom) at which two structures count as the same by
 * default: writers that print 5 decimals or more stay within it, and frames of a pool (an MD run, the last steps of
 * a relaxation) rarely come closer.
 */
export const NEAR_MATCH_TOLERANCE = 1e-5;

/**
 * The same for a structure read back from VASP's output: vasprun.xml prints fractional coordinates with 8 decimals
 * (about 1e-8 Angstrom off), OUTCAR Cartesian ones with 5 (up to 5e-6). Labelled and selected structures are far
 * more distinct than this.
 */
export const DFT_OUTPUT_TOLERANCE = 1e-4;

export type Geometry = Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">;

/** A frame's geometry alone (keeping it does not keep the frame's other arrays). */
export const geometryOf = (f: Geometry): Geometry => ({ natoms: f.natoms, symbols: f.symbols, positions: f.positions, cell: f.cell, pbc: f.pbc });

/** Fixed pseudo-random signs (a 32-bit LCG from `seed`), repeating every 256 coordinates. */
function signs(seed: number): Float64Array {
  const out = new Float64Array(256);
  let state = seed;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state & 0x80000000 ? 1 : -1;
  }
  return out;
}
const SIGNS_A = signs(12345);
const SIGNS_B = signs(67890);

/**
 * Two projections of the positions, sum of s_i * x_i / sqrt(3N) with two fixed sign patterns s_i = +-1, into
 * out[at] and out[at + 1]. Structures within a tolerance t project at most t * sqrt(3N) apart; the frames of an MD
 * run or a relaxation, which move many atoms by far more, spread widely (a plain mean would not: it hardly moves in MD).
 */
export function writeProjections(natoms: number, positions: ArrayLike<number>, out: { [i: number]: number }, at: number): void {
  const n = 3 * natoms;
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    const x = positions[i];
    a += SIGNS_A[i & 255] * x;
    b += SIGNS_B[i & 255] * x;
  }
  const scale = 1 / Math.sqrt(n);
  out[at] = a * scale;
  out[at + 1] = b * scale;
}

/** writeProjections of a structure, as a new pair. */
export function projectionsOf(frame: Pick<Geometry, "natoms" | "positions">): Float64Array {
  const out = new Float64Array(2);
  writeProjections(frame.natoms, frame.positions, out, 0);
  return out;
}

/** Structures by atom count and the buckets of their two projections, for finding the one nearest to another. */
export class NearStructureIndex {
  /** Atom count -> bucket pair (bucketKey) -> the structures there. */
  private readonly byAtoms = new Map<number, Map<number, { row: number; geometry: Geometry }[]>>();
  /** Rows that claim() gave out: find() passes them over. */
  private readonly claimed = new Set<number>();

  /**
   * `tolerance`: the largest difference in any position or cell component (Angstrom) that still matches.
   * `fromVasp`: for structures read back from VASP, which treats every structure as periodic: pbc is not compared (a
   * slab written with pbc "T T F" comes back "T T T"), and a structure without a cell (a molecule, which went to VASP
   * in a box: inVacuumBox) matches on its positions alone.
   */
  constructor(
    private readonly tolerance = NEAR_MATCH_TOLERANCE,
    private readonly fromVasp = false,
  ) {}

  add(row: number, frame: Geometry): void {
    let buckets = this.byAtoms.get(frame.natoms);
    if (!buckets) this.byAtoms.set(frame.natoms, (buckets = new Map()));
    const projections = projectionsOf(frame);
    const width = this.bucketWidth(frame.natoms);
    const key = bucketKey(Math.round(projections[0] / width), Math.round(projections[1] / width));
    const list = buckets.get(key);
    if (list) list.push({ row, geometry: geometryOf(frame) });
    else buckets.set(key, [{ row, geometry: geometryOf(frame) }]);
  }

  /**
   * The row of the indexed structure nearest to `frame` (largest difference of any position or cell component), not
   * yet claimed, with the same species in the same order and (unless fromVasp) the same pbc, at most the tolerance
   * away; ties go to the lowest row. Undefined when there is none.
   */
  find(frame: Geometry): number | undefined {
    let best: number | undefined;
    let bestDifference = Infinity;
    this.forNear(frame.natoms, projectionsOf(frame), (list) => {
      for (const { row, geometry } of list) {
        if (this.claimed.has(row) || !sameSpecies(geometry, frame) || (!this.fromVasp && !samePbc(geometry, frame))) continue;
        const boxed = this.fromVasp && (hasNoCell(geometry) || hasNoCell(frame));
        const difference = largestDifference(geometry, frame, !boxed);
        if (difference <= this.tolerance && (difference < bestDifference || (difference === bestDifference && row < best!))) {
          best = row;
          bestDifference = difference;
        }
      }
      return false;
    });
    return best;
  }

  /** find(), and the row found is not found again: for pairing each indexed structure once. */
  claim(frame: Geometry): number | undefined {
    const row = this.find(frame);
    if (row !== undefined) this.claimed.add(row);
    return row;
  }

  /** Whether a structure of `natoms` atoms with these projections (writeProjections) may match one indexed (find tells). */
  mayHold(natoms: number, projections: ArrayLike<number>): boolean {
    return this.forNear(natoms, projections, () => true);
  }

  /**
   * Calls `visit` on the lists of the same and the neighbouring bucket pairs, until it returns true (then true).
   * Buckets are twice the largest shift of a projection wide (at least 1e-3 A), so a match is never further away.
   */
  private forNear(natoms: number, projections: ArrayLike<number>, visit: (list: { row: number; geometry: Geometry }[]) => boolean): boolean {
    const buckets = this.byAtoms.get(natoms);
    if (!buckets) return false;
    const width = this.bucketWidth(natoms);
    const a = Math.round(projections[0] / width);
    const b = Math.round(projections[1] / width);
    for (let i = a - 1; i <= a + 1; i++) {
      for (let j = b - 1; j <= b + 1; j++) {
        const list = buckets.get(bucketKey(i, j));
        if (list && visit(list)) return true;
      }
    }
    return false;
  }

  private bucketWidth(natoms: number): number {
    return Math.max(1e-3, 2 * this.tolerance * Math.sqrt(3 * natoms));
  }
}

/** One exact integer for a pair of buckets, each clamped to +-2^24 (beyond, far-off structures only share keys). */
function bucketKey(a: number, b: number): number {
  const clamp = (x: number): number => Math.max(-(2 ** 24), Math.min(2 ** 24, x)) + 2 ** 24;
  return clamp(a) * 2 ** 26 + clamp(b);
}

function sameSpecies(a: Geometry, b: Geometry): boolean {
  if (a.natoms !== b.natoms) return false;
  for (let i = 0; i < a.natoms; i++) if (a.symbols[i] !== b.symbols[i]) return false;
  return true;
}

const samePbc = (a: Geometry, b: Geometry): boolean => a.pbc.every((p, k) => p === b.pbc[k]);

const hasNoCell = (g: Geometry): boolean => g.cell.every((x) => x === 0);

function largestDifference(a: Geometry, b: Geometry, compareCells: boolean): number {
  let largest = 0;
  if (compareCells) for (let i = 0; i < 9; i++) largest = Math.max(largest, Math.abs(a.cell[i] - b.cell[i]));
  for (let i = 0; i < 3 * a.natoms; i++) largest = Math.max(largest, Math.abs(a.positions[i] - b.positions[i]));
  return largest;
}
