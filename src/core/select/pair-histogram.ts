/**
 * Pair-distance counts of one structure, with every periodic image along its periodic directions.
 *
 * Counting: each unordered pair of atoms in space is counted once per cell. For atoms i != j that is
 * every image j + T within range; for an atom and its own images, T and -T are the same pair, so each
 * is counted once (half of the ordered count). Equivalently: half the ordered count over all (i, j, T)
 * except (i, i, 0). A pair enters when 1e-8 < d <= r_max, in bin floor(d * bins / r_max) (d = r_max
 * goes to the last bin). For a cell wider than 2*r_max this is the minimum-image count over i < j.
 *
 * Two enumerations, chosen by estimated cost, give the same counts (up to distances that fall within
 * rounding of a bin edge or of r_max, where the order of the floating-point sums decides):
 * - pairs: for every i < j, the image shifts whose slab along each reciprocal direction can reach
 *   r_max (n in [ceil(-f - r/h), floor(-f + r/h)], f the fractional offset, h the cell height), in
 *   WebAssembly (pair-kernel.ts); an atom's own images are the same lattice vectors for every atom,
 *   counted once and added per atom. Best for small cells (cost ~ atoms^2 * images).
 * - cells: atoms binned on a grid of bins at least r_max/2 high along each reciprocal direction; each
 *   bin meets the bins (and their images) within reach, half of the offsets only; O(atoms).
 * Non-periodic directions are never wrapped or shifted; they are binned over the atoms' extent.
 */

import { invertCell } from "../structure.js";
import { PairCountKernel } from "./pair-kernel.js";

export interface PairGeometry {
  n: number;
  /** Positions moved into the cell along periodic directions (Cartesian, 3n used; longer when reused). */
  positions: Float64Array;
  /** Fractional coordinates in `basis` (3n used); along non-periodic directions, Angstrom along a unit vector. */
  fractional: Float64Array;
  /** Rows b0, b1, b2: the cell vectors along periodic directions, orthonormal completions elsewhere. */
  basis: Float64Array;
  /** Distances between lattice planes, 1/|reciprocal vector| (1 along non-periodic directions). */
  heights: [number, number, number];
  periodic: [boolean, boolean, boolean];
}

export type PairMethod = "pairs" | "cells";

/** Reasons a periodic frame cannot be handled; the caller names the frame. */
export class GeometryError extends Error {}

const RANGE_SLACK = 1e-9;
/** Refuse cells so small that r_max reaches more images than this per atom. */
const MAX_IMAGES_PER_ATOM = 2_000_000;

/**
 * Prepares the geometry: completes the basis, wraps positions, computes plane heights. With `reuse`
 * (a geometry from an earlier call), its arrays are overwritten when large enough: describing many
 * frames then allocates nothing per frame.
 */
export function pairGeometry(
  positions: Float64Array,
  n: number,
  cell: Float64Array,
  pbc: readonly [boolean, boolean, boolean],
  reuse?: PairGeometry,
): PairGeometry {
  const geometry: PairGeometry = reuse ?? {
    n,
    positions: new Float64Array(3 * n),
    fractional: new Float64Array(3 * n),
    basis: new Float64Array(9),
    heights: [0, 0, 0],
    periodic: [false, false, false],
  };
  geometry.n = n;
  if (geometry.positions.length < 3 * n) {
    geometry.positions = new Float64Array(3 * n);
    geometry.fractional = new Float64Array(3 * n);
  }
  const { periodic, heights, basis } = geometry;
  periodic[0] = pbc[0];
  periodic[1] = pbc[1];
  periodic[2] = pbc[2];
  completeBasis(cell, periodic, basis);
  const inverse = invertCell(basis, inverseScratch);
  for (let k = 0; k < 3; k++) {
    // Reciprocal vector k is column k of the inverse.
    const gx = inverse[k], gy = inverse[3 + k], gz = inverse[6 + k];
    heights[k] = 1 / Math.sqrt(gx * gx + gy * gy + gz * gz);
  }
  const wrapped = geometry.positions;
  const fractional = geometry.fractional;
  const p0 = periodic[0], p1 = periodic[1], p2 = periodic[2];
  const g00 = inverse[0], g10 = inverse[3], g20 = inverse[6];
  const g01 = inverse[1], g11 = inverse[4], g21 = inverse[7];
  const g02 = inverse[2], g12 = inverse[5], g22 = inverse[8];
  for (let i = 0; i < n; i++) {
    const x = positions[3 * i], y = positions[3 * i + 1], z = positions[3 * i + 2];
    let wx = x, wy = y, wz = z;
    // Direction by direction, each wrap applied to the already-moved position (the order matters
    // for the rounding of wx, wy, wz).
    let u = x * g00 + y * g10 + z * g20;
    if (p0) {
      const shift = Math.floor(u);
      u -= shift;
      if (u >= 1) u = 0;
      wx -= shift * basis[0];
      wy -= shift * basis[1];
      wz -= shift * basis[2];
    }
    fractional[3 * i] = u;
    u = x * g01 + y * g11 + z * g21;
    if (p1) {
      const shift = Math.floor(u);
      u -= shift;
      if (u >= 1) u = 0;
      wx -= shift * basis[3];
      wy -= shift * basis[4];
      wz -= shift * basis[5];
    }
    fractional[3 * i + 1] = u;
    u = x * g02 + y * g12 + z * g22;
    if (p2) {
      const shift = Math.floor(u);
      u -= shift;
      if (u >= 1) u = 0;
      wx -= shift * basis[6];
      wy -= shift * basis[7];
      wz -= shift * basis[8];
    }
    fractional[3 * i + 2] = u;
    wrapped[3 * i] = wx;
    wrapped[3 * i + 1] = wy;
    wrapped[3 * i + 2] = wz;
  }
  return geometry;
}

const inverseScratch = new Float64Array(9);

/**
 * Adds the pair counts to `counts[block(class_i, class_j) * bins + bin]`; returns the number of pairs.
 * `blockOf[a * classCount + b]` gives the block of an unordered class pair (symmetric).
 */
export function countPairs(
  geometry: PairGeometry,
  rMax: number,
  bins: number,
  atomClass: Int32Array,
  classCount: number,
  blockOf: Int32Array,
  counts: Float64Array,
  method?: PairMethod,
): number {
  const reach = imageReach(geometry, rMax);
  let images = 1;
  for (let k = 0; k < 3; k++) images *= 2 * reach[k] + 1;
  if (images > MAX_IMAGES_PER_ATOM) {
    throw new GeometryError(`the cell is too small for r_max = ${rMax} A (${images} periodic images within reach)`);
  }
  const chosen = method ?? cheaperMethod(geometry, rMax);
  const context = { geometry, rMax, bins, atomClass, classCount, blockOf, counts };
  return chosen === "pairs" ? countByPairs(context, reach) : countByCells(context);
}

interface CountContext {
  geometry: PairGeometry;
  rMax: number;
  bins: number;
  atomClass: Int32Array;
  classCount: number;
  blockOf: Int32Array;
  counts: Float64Array;
}

/** Images reachable along each direction: ceil(r_max / height) periodic, 0 otherwise. */
function imageReach(geometry: PairGeometry, rMax: number): [number, number, number] {
  const reach: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < 3; k++) if (geometry.periodic[k]) reach[k] = Math.ceil(rMax / geometry.heights[k]);
  return reach;
}

/** Below this many atoms, all pairs is always cheap enough (and skips building a grid). */
const PAIRS_UP_TO_ATOMS = 96;

function cheaperMethod(geometry: PairGeometry, rMax: number): PairMethod {
  const n = geometry.n;
  if (n <= PAIRS_UP_TO_ATOMS) return "pairs";
  let imagesPerPair = 1;
  for (let k = 0; k < 3; k++) if (geometry.periodic[k]) imagesPerPair *= (2 * rMax) / geometry.heights[k];
  const pairsCost = ((n * (n + 1)) / 2) * (1 + imagesPerPair);
  const grid = cellGrid(geometry, rMax);
  const binCount = grid.counts[0] * grid.counts[1] * grid.counts[2];
  const perBin = n / binCount;
  const cellsCost = binCount * grid.offsets.length * (1 + perBin * perBin) + n;
  return pairsCost <= cellsCost ? "pairs" : "cells";
}

/** Adds one pair at squared distance d2 (already known to be within reach). */
function record(context: CountContext, d2: number, block: number): number {
  const d = Math.sqrt(d2);
  if (!(d > 1e-8 && d <= context.rMax)) return 0;
  let bin = Math.floor((d * context.bins) / context.rMax);
  if (bin >= context.bins) bin = context.bins - 1;
  context.counts[block * context.bins + bin] += 1;
  return 1;
}

let pairKernel: PairCountKernel | undefined;

function countByPairs(context: CountContext, reach: [number, number, number]): number {
  const { geometry, rMax, bins, atomClass, classCount, blockOf, counts } = context;
  const { n, positions, fractional, basis, heights, periodic } = geometry;
  const limit2 = rMax * rMax * (1 + RANGE_SLACK);
  const b0x = basis[0], b0y = basis[1], b0z = basis[2];
  const b1x = basis[3], b1y = basis[4], b1z = basis[5];
  const b2x = basis[6], b2y = basis[7], b2z = basis[8];
  // An atom and its own images: T and -T are one pair, so only lexicographically positive T. The same
  // lattice vectors for every atom: each one found adds the number of atoms of each species.
  if (atomsOfClass.length < classCount) atomsOfClass = new Float64Array(classCount);
  atomsOfClass.fill(0, 0, classCount);
  for (let i = 0; i < n; i++) atomsOfClass[atomClass[i]]++;
  let total = 0;
  const r0 = reach[0], r1 = reach[1], r2 = reach[2];
  for (let a = 0; a <= r0; a++) {
    for (let b = a === 0 ? 0 : -r1; b <= r1; b++) {
      for (let c = a === 0 && b === 0 ? 1 : -r2; c <= r2; c++) {
        const x = a * b0x + b * b1x + c * b2x, y = a * b0y + b * b1y + c * b2y, z = a * b0z + b * b1z + c * b2z;
        const d2 = x * x + y * y + z * z;
        if (d2 > limit2) continue;
        const d = Math.sqrt(d2);
        if (!(d > 1e-8 && d <= rMax)) continue;
        const bin = Math.min(Math.floor((d * bins) / rMax), bins - 1);
        for (let k = 0; k < classCount; k++) counts[blockOf[k * classCount + k] * bins + bin] += atomsOfClass[k];
        total += n;
      }
    }
  }
  // Slab half-widths in fractional units; 0 with zeroed fractions pins non-periodic shifts to 0.
  const s0 = periodic[0] ? (rMax / heights[0]) * (1 + RANGE_SLACK) : 0;
  const s1 = periodic[1] ? (rMax / heights[1]) * (1 + RANGE_SLACK) : 0;
  const s2 = periodic[2] ? (rMax / heights[2]) * (1 + RANGE_SLACK) : 0;
  let fractions = fractional;
  if (!(periodic[0] && periodic[1] && periodic[2])) {
    if (maskedFractions.length < 3 * n) maskedFractions = new Float64Array(3 * n);
    fractions = maskedFractions;
    for (let p = 0; p < 3 * n; p++) fractions[p] = fractional[p] * (periodic[p % 3] ? 1 : 0);
  }
  pairKernel ??= new PairCountKernel();
  total += pairKernel.count(
    { basis, slab: [s0, s1, s2], rMax, limit2, bins, positions, fractions, n },
    atomClass, classCount, blockOf, counts,
  );
  return total;
}

// Scratch reused from frame to frame (the pair enumeration allocates nothing per frame).
let atomsOfClass = new Float64Array(8);
let maskedFractions = new Float64Array(0);

interface CellGrid {
  counts: [number, number, number];
  /** Lower fractional coordinate and bin height (in fractional units) per direction. */
  origin: [number, number, number];
  width: [number, number, number];
  /** Lexicographically positive bin offsets (dx, dy, dz) that can hold atoms within r_max. */
  offsets: Int32Array[];
}

function cellGrid(geometry: PairGeometry, rMax: number): CellGrid {
  const { n, fractional, heights, periodic } = geometry;
  const counts: [number, number, number] = [1, 1, 1];
  const origin: [number, number, number] = [0, 0, 0];
  const extent: [number, number, number] = [1, 1, 1];
  for (let k = 0; k < 3; k++) {
    if (!periodic[k]) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < n; i++) {
        lo = Math.min(lo, fractional[3 * i + k]);
        hi = Math.max(hi, fractional[3 * i + k]);
      }
      origin[k] = n > 0 ? lo : 0;
      extent[k] = n > 0 ? Math.max(hi - lo, 0) : 0;
    }
    const length = extent[k] * heights[k];
    counts[k] = Math.max(1, Math.floor(length / (rMax / 2 + 1e-6)));
  }
  // Never more bins than a few per atom (sparse molecules, vacuum).
  while (counts[0] * counts[1] * counts[2] > 2 * n + 8) {
    const k = counts[0] >= counts[1] && counts[0] >= counts[2] ? 0 : counts[1] >= counts[2] ? 1 : 2;
    counts[k] = Math.ceil(counts[k] / 2);
  }
  const width: [number, number, number] = [0, 0, 0];
  const reach: [number, number, number] = [0, 0, 0];
  const binHeight: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < 3; k++) {
    width[k] = extent[k] / counts[k];
    binHeight[k] = width[k] * heights[k];
    if (periodic[k]) reach[k] = Math.ceil((rMax * (1 + RANGE_SLACK) + 1e-9) / binHeight[k]);
    else reach[k] = counts[k] > 1 ? Math.min(counts[k] - 1, Math.ceil((rMax * (1 + RANGE_SLACK) + 1e-9) / binHeight[k])) : 0;
  }
  const offsets: Int32Array[] = [];
  for (let a = 0; a <= reach[0]; a++) {
    for (let b = -reach[1]; b <= reach[1]; b++) {
      for (let c = -reach[2]; c <= reach[2]; c++) {
        if (!(a > 0 || (a === 0 && (b > 0 || (b === 0 && c > 0))))) continue;
        // Atoms |o| - 1 bins apart along a reciprocal direction are at least that many bin heights apart.
        let gap = 0;
        const o = [a, b, c];
        for (let k = 0; k < 3; k++) gap = Math.max(gap, (Math.abs(o[k]) - 1) * binHeight[k]);
        if (gap <= rMax * (1 + RANGE_SLACK)) offsets.push(Int32Array.of(a, b, c));
      }
    }
  }
  return { counts, origin, width, offsets };
}

function countByCells(context: CountContext): number {
  const { geometry, rMax, atomClass, classCount, blockOf } = context;
  const { n, positions, fractional, basis, periodic } = geometry;
  const grid = cellGrid(geometry, rMax);
  const [n0, n1, n2] = grid.counts;
  const binCount = n0 * n1 * n2;
  const binOf = new Int32Array(n);
  const start = new Int32Array(binCount + 1);
  for (let i = 0; i < n; i++) {
    let bin = 0;
    for (let k = 0; k < 3; k++) {
      const width = grid.width[k];
      let index = width > 0 ? Math.floor((fractional[3 * i + k] - grid.origin[k]) / width) : 0;
      if (index < 0) index = 0;
      if (index >= grid.counts[k]) index = grid.counts[k] - 1;
      bin = bin * grid.counts[k] + index;
    }
    binOf[i] = bin;
    start[bin + 1]++;
  }
  for (let b = 0; b < binCount; b++) start[b + 1] += start[b];
  const members = new Int32Array(n);
  const fill = start.slice(0, binCount);
  for (let i = 0; i < n; i++) members[fill[binOf[i]]++] = i;

  const limit2 = rMax * rMax * (1 + RANGE_SLACK);
  let total = 0;
  // Pairs (i in `from`, j in `to` moved by the lattice shift s): (r_j - r_i) + s, rounded like countByPairs.
  const pairsBetween = (from: number, to: number, sx: number, sy: number, sz: number, sameBin: boolean): void => {
    for (let p = start[from]; p < start[from + 1]; p++) {
      const i = members[p];
      const xi = positions[3 * i], yi = positions[3 * i + 1], zi = positions[3 * i + 2];
      for (let q = sameBin ? p + 1 : start[to]; q < start[to + 1]; q++) {
        const j = members[q];
        const x = positions[3 * j] - xi + sx, y = positions[3 * j + 1] - yi + sy, z = positions[3 * j + 2] - zi + sz;
        const d2 = x * x + y * y + z * z;
        if (d2 <= limit2) total += record(context, d2, blockOf[atomClass[i] * classCount + atomClass[j]]);
      }
    }
  };
  for (let b0 = 0; b0 < n0; b0++) {
    for (let b1 = 0; b1 < n1; b1++) {
      for (let b2 = 0; b2 < n2; b2++) {
        const from = (b0 * n1 + b1) * n2 + b2;
        if (start[from] === start[from + 1]) continue;
        pairsBetween(from, from, 0, 0, 0, true);
        for (const offset of grid.offsets) {
          const target = [b0 + offset[0], b1 + offset[1], b2 + offset[2]];
          const shift = [0, 0, 0];
          let inside = true;
          for (let k = 0; k < 3; k++) {
            const count = grid.counts[k];
            if (periodic[k]) {
              shift[k] = Math.floor(target[k] / count);
              target[k] -= shift[k] * count;
            } else if (target[k] < 0 || target[k] >= count) {
              inside = false;
            }
          }
          if (!inside) continue;
          const to = (target[0] * n1 + target[1]) * n2 + target[2];
          if (start[to] === start[to + 1]) continue;
          const sx = shift[0] * basis[0] + shift[1] * basis[3] + shift[2] * basis[6];
          const sy = shift[0] * basis[1] + shift[1] * basis[4] + shift[2] * basis[7];
          const sz = shift[0] * basis[2] + shift[1] * basis[5] + shift[2] * basis[8];
          pairsBetween(from, to, sx, sy, sz, false);
        }
      }
    }
  }
  return total;
}

/** Writes the basis rows into `basis`: cell vectors along periodic directions, orthonormal completions along the others. */
function completeBasis(cell: Float64Array, periodic: readonly boolean[], basis: Float64Array): void {
  for (let k = 0; k < 3; k++) {
    if (periodic[k] && !(Math.hypot(cell[3 * k], cell[3 * k + 1], cell[3 * k + 2]) > 0)) {
      throw new GeometryError(`pbc is true along cell vector ${k + 1} but that vector is zero`);
    }
  }
  if (periodic[0] && periodic[1] && periodic[2]) {
    // The common case, without the temporary vectors of the completions below.
    const ax = cell[0], ay = cell[1], az = cell[2], bx = cell[3], by = cell[4], bz = cell[5], cx = cell[6], cy = cell[7], cz = cell[8];
    const volume = Math.abs(ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx));
    if (!(volume > 1e-10 * Math.hypot(ax, ay, az) * Math.hypot(bx, by, bz) * Math.hypot(cx, cy, cz))) {
      throw new GeometryError("the cell is singular (zero volume)");
    }
    for (let k = 0; k < 9; k++) basis[k] = cell[k];
    return;
  }
  const vector = (k: number): number[] => [cell[3 * k], cell[3 * k + 1], cell[3 * k + 2]];
  const norm = (v: number[]): number => Math.hypot(v[0], v[1], v[2]);
  const cross = (u: number[], v: number[]): number[] => [
    u[1] * v[2] - u[2] * v[1],
    u[2] * v[0] - u[0] * v[2],
    u[0] * v[1] - u[1] * v[0],
  ];
  const unit = (v: number[]): number[] => {
    const l = norm(v);
    return [v[0] / l, v[1] / l, v[2] / l];
  };
  const periodicAxes = [0, 1, 2].filter((k) => periodic[k]);
  const freeAxes = [0, 1, 2].filter((k) => !periodic[k]);
  let completion: number[][] = [];
  if (periodicAxes.length === 0) {
    completion = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  } else if (periodicAxes.length === 1) {
    const a = vector(periodicAxes[0]);
    const abs = a.map(Math.abs);
    const least = abs[0] <= abs[1] && abs[0] <= abs[2] ? 0 : abs[1] <= abs[2] ? 1 : 2;
    const e = [0, 0, 0];
    e[least] = 1;
    const first = unit(cross(a, e));
    completion = [first, unit(cross(a, first))];
  } else {
    const a = vector(periodicAxes[0]);
    const b = vector(periodicAxes[1]);
    const normal = cross(a, b);
    if (!(norm(normal) > 1e-10 * norm(a) * norm(b))) {
      throw new GeometryError("the two periodic cell vectors are parallel");
    }
    completion = [unit(normal)];
  }
  for (const k of periodicAxes) basis.set(vector(k), 3 * k);
  freeAxes.forEach((k, m) => basis.set(completion[m], 3 * k));
}
