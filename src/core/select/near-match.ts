/**
 * Structures found by geometry when their candidate_id does not match: for files that print fewer digits than the
 * pool. ASE writes positions with 8 decimals (`%16.8f`, also in mace_eval_configs' output), which moves a value by up
 * to 5e-9 Angstrom: a coordinate that close to a rounding boundary of the id's 1e-6 Angstrom grid (about 1 in 200)
 * then rounds the other way, so about half of 40-atom structures, and most larger ones, get another id than the
 * pool's full-precision copy. VASP's outputs print fewer digits still. Atoms are compared up to lattice vectors of
 * the periodic axes, and species by species: a structure that went to VASP wrapped into its cell, its atoms grouped
 * by species, is the unwrapped MD frame it was picked as.
 */
import { atomsBySpecies, invertCell, singularCell, type Frame } from "../structure.js";

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

/** The cell inverse, reused frame after frame (and another for largestDifference, with its difference vector). */
const INVERSE = new Float64Array(9);
const DIFFERENCE_INVERSE = new Float64Array(9);
const DIFFERENCE = [0, 0, 0];

/**
 * The order structures are compared and projected in: atoms grouped by species, the species alphabetically, each
 * species' atoms in their own order (null when the atoms are in that order). A copy whose atoms were grouped by
 * species, as a POSCAR needs them for one POTCAR per element, has the same order.
 */
export function canonicalOrder(symbols: readonly string[]): Int32Array | null {
  return atomsBySpecies(symbols, [...new Set(symbols)].sort());
}

/**
 * Two projections of a structure, sum of s_i * v_i / sqrt(3N) with two fixed sign patterns s_i = +-1, into out[at] and
 * out[at + 1]: the keys NearStructureIndex buckets structures by. Structures within a tolerance t project at most
 * 2t * sqrt(3N) apart (t * sqrt(3N) with a cell), and the frames of an MD run or a relaxation, which move many atoms
 * by far more, spread widely.
 * - With a cell, v_i is each fractional coordinate's distance to the nearest integer, in Angstrom (divided by the most
 *   that coordinate changes per Angstrom): atoms moved by lattice vectors project alike, so a copy wrapped into the
 *   cell (by VASP, ASE's `wrap()` or a script) is found from the unwrapped frame of an MD run, and the reverse.
 * - Without one (a molecule), v_i are the positions relative to the first atom's: VASP's copy in a box, made whole
 *   again (writeWholeProjections), projects alike even where VASP moved the molecule by a box vector.
 * The atoms are taken in `order` (canonicalOrder of their species).
 */
export function writeProjections(
  frame: Pick<Geometry, "natoms" | "positions" | "cell">, out: { [i: number]: number }, at: number, order: ArrayLike<number> | null,
): void {
  if (singularCell(frame.cell)) writeWholeProjections(frame.natoms, frame.positions, null, order, out, at);
  else writeWrappedProjections(frame.natoms, frame.positions, frame.cell, order, out, at);
}

function writeWrappedProjections(
  natoms: number, x: ArrayLike<number>, cell: ArrayLike<number>, order: ArrayLike<number> | null, out: { [i: number]: number }, at: number,
): void {
  const inv = invertCell(cell, INVERSE);
  const i00 = inv[0], i01 = inv[1], i02 = inv[2], i10 = inv[3], i11 = inv[4], i12 = inv[5], i20 = inv[6], i21 = inv[7], i22 = inv[8];
  const s0 = 1 / (Math.abs(i00) + Math.abs(i10) + Math.abs(i20));
  const s1 = 1 / (Math.abs(i01) + Math.abs(i11) + Math.abs(i21));
  const s2 = 1 / (Math.abs(i02) + Math.abs(i12) + Math.abs(i22));
  let a = 0;
  let b = 0;
  for (let i = 0; i < 3 * natoms; i += 3) {
    const atom = order ? 3 * order[i / 3] : i;
    const x0 = x[atom], x1 = x[atom + 1], x2 = x[atom + 2];
    const f0 = x0 * i00 + x1 * i10 + x2 * i20;
    const f1 = x0 * i01 + x1 * i11 + x2 * i21;
    const f2 = x0 * i02 + x1 * i12 + x2 * i22;
    const v0 = Math.abs(f0 - Math.floor(f0 + 0.5)) * s0;
    const v1 = Math.abs(f1 - Math.floor(f1 + 0.5)) * s1;
    const v2 = Math.abs(f2 - Math.floor(f2 + 0.5)) * s2;
    a += SIGNS_A[i & 255] * v0 + SIGNS_A[(i + 1) & 255] * v1 + SIGNS_A[(i + 2) & 255] * v2;
    b += SIGNS_B[i & 255] * v0 + SIGNS_B[(i + 1) & 255] * v1 + SIGNS_B[(i + 2) & 255] * v2;
  }
  const scale = 1 / Math.sqrt(3 * natoms);
  out[at] = a * scale;
  out[at + 1] = b * scale;
}

/**
 * Projections of the positions relative to the first atom's; with `cell`, each relative position is moved by lattice
 * vectors to its nearest image first (a molecule in a box larger than twice its extent comes out whole).
 */
function writeWholeProjections(
  natoms: number, x: ArrayLike<number>, cell: ArrayLike<number> | null, order: ArrayLike<number> | null, out: { [i: number]: number }, at: number,
): void {
  const inv = cell && invertCell(cell, INVERSE);
  const first = order ? 3 * order[0] : 0;
  const d = [0, 0, 0];
  let a = 0;
  let b = 0;
  for (let i = 0; i < 3 * natoms; i += 3) {
    const atom = order ? 3 * order[i / 3] : i;
    for (let k = 0; k < 3; k++) d[k] = x[atom + k] - x[first + k];
    if (cell && inv) nearestImage(d, cell, inv, ALL_PERIODIC);
    for (let k = 0; k < 3; k++) {
      a += SIGNS_A[(i + k) & 255] * d[k];
      b += SIGNS_B[(i + k) & 255] * d[k];
    }
  }
  const scale = 1 / Math.sqrt(3 * natoms);
  out[at] = a * scale;
  out[at + 1] = b * scale;
}

const ALL_PERIODIC = [true, true, true] as const;

/** Moves the difference vector `d` by the lattice vectors of `cell` (inverse `inv`) along `periodic` axes that bring it nearest to zero. */
function nearestImage(d: number[], cell: ArrayLike<number>, inv: ArrayLike<number>, periodic: readonly boolean[]): void {
  for (let j = 0; j < 3; j++) {
    if (!periodic[j]) continue;
    const shift = Math.round(d[0] * inv[j] + d[1] * inv[3 + j] + d[2] * inv[6 + j]);
    if (shift === 0) continue;
    for (let k = 0; k < 3; k++) d[k] -= shift * cell[3 * j + k];
  }
}

/** writeProjections of a structure, as a new pair. */
export function projectionsOf(frame: Geometry, order = canonicalOrder(frame.symbols)): Float64Array {
  const out = new Float64Array(2);
  writeProjections(frame, out, 0, order);
  return out;
}

/**
 * The keys a structure is indexed and looked up by: its projections, and for a structure read back from VASP with a
 * cell, also those of the molecule it may be in that box, made whole there or as it lies (writeWholeProjections), as
 * its copy without a cell projects by its positions relative to its first atom.
 */
function keysOf(frame: Geometry, order: Int32Array | null, fromVasp: boolean): Float64Array[] {
  const keys = [projectionsOf(frame, order)];
  if (fromVasp && !singularCell(frame.cell)) {
    for (const cell of [frame.cell, null]) {
      const key = new Float64Array(2);
      writeWholeProjections(frame.natoms, frame.positions, cell, order, key, 0);
      keys.push(key);
    }
  }
  return keys;
}

/** A species list and its canonicalOrder, shared by the indexed structures that have the same list. */
interface Species {
  symbols: readonly string[];
  order: Int32Array | null;
}

/** Int32 values appended one after another, in an array that doubles when full. */
class Int32Column {
  values = new Int32Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Int32Array(2 * this.values.length);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }
}

/**
 * An indexed structure's fields, ENTRY_FIELDS values per structure in NearStructureIndex.entries: its row, its atom
 * count, its species (in `speciesList`), its pbc bits, and where its positions and then its cell are (a block of
 * `blocks`, and the offset there). With its buckets, 0.43 KB per 8-atom structure, 0.26 KB of it the positions and
 * cell; an object for each took 0.6 KB, whole frames 1.4 KB.
 */
const ROW = 0;
const NATOMS = 1;
const SPECIES = 2;
const PBC = 3;
const BLOCK = 4;
const AT = 5;
const ENTRY_FIELDS = 6;

/** Values per block of the index's positions and cells (8 MB). */
const BLOCK_VALUES = 1 << 20;

const pbcBits = (pbc: readonly boolean[]): number => (pbc[0] ? 1 : 0) | (pbc[1] ? 2 : 0) | (pbc[2] ? 4 : 0);
const PBC_OF_BITS = Array.from({ length: 8 }, (_, bits): Geometry["pbc"] => [(bits & 1) !== 0, (bits & 2) !== 0, (bits & 4) !== 0]);

/** Structures by atom count and the buckets of their two projections, for finding the one nearest to another. */
export class NearStructureIndex {
  /** Atom count -> bucket pair (bucketKey) -> the bucket's first link in `links`. */
  private readonly byAtoms = new Map<number, Map<number, number>>();
  /** The structures' fields (ENTRY_FIELDS each). */
  private readonly entries = new Int32Column();
  /** Each bucket's structures as a chain: per link, the structure (its entry) and the next link (-1 at the end). */
  private readonly links = new Int32Column();
  /** Rows that claim() gave out: find() passes them over. */
  private readonly claimed = new Set<number>();
  /** Species lists, and their indices by their text: the frames of one run share one. */
  private readonly speciesList: Species[] = [];
  private readonly speciesIndex = new Map<string, number>();
  /** The species list find() last met, with its canonicalOrder, and the one add() last met (in speciesList). */
  private lastOrder: Species | undefined;
  private lastSpecies = -1;
  /** The blocks of positions and cells; structures go into the last, `used` values of which are taken. */
  private readonly blocks: Float64Array[] = [];
  private used = 0;

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
    const { natoms } = frame;
    const size = 3 * natoms + 9;
    let block = this.blocks.at(-1);
    if (block === undefined || this.used + size > block.length) {
      this.blocks.push((block = new Float64Array(Math.max(BLOCK_VALUES, size))));
      this.used = 0;
    }
    block.set(frame.positions.subarray(0, 3 * natoms), this.used);
    block.set(frame.cell, this.used + 3 * natoms);
    const species = this.sharedSpecies(frame.symbols);
    const entry = this.entries.length / ENTRY_FIELDS;
    for (const value of [row, natoms, species, pbcBits(frame.pbc), this.blocks.length - 1, this.used]) this.entries.push(value);
    this.used += size;
    for (const key of keysOf(frame, this.speciesList[species].order, this.fromVasp)) this.insert(entry, natoms, key);
  }

  /** canonicalOrder of `symbols`, kept for the next call (see sharedSpecies). */
  private orderOf(symbols: readonly string[]): Int32Array | null {
    const last = this.lastOrder;
    if (last && sameSymbols(last.symbols, symbols)) return last.order;
    this.lastOrder = { symbols: [...symbols], order: canonicalOrder(symbols) };
    return this.lastOrder.order;
  }

  /** The index of `symbols` in speciesList. */
  private sharedSpecies(symbols: readonly string[]): number {
    // Structures added one after another mostly share their species (an MD run's frames).
    if (this.lastSpecies >= 0 && sameSymbols(this.speciesList[this.lastSpecies].symbols, symbols)) return this.lastSpecies;
    const text = symbols.join(" ");
    let index = this.speciesIndex.get(text);
    if (index === undefined) {
      index = this.speciesList.push({ symbols: [...symbols], order: canonicalOrder(symbols) }) - 1;
      this.speciesIndex.set(text, index);
    }
    this.lastSpecies = index;
    return index;
  }

  private insert(entry: number, natoms: number, projections: Float64Array): void {
    let buckets = this.byAtoms.get(natoms);
    if (!buckets) this.byAtoms.set(natoms, (buckets = new Map()));
    const width = this.bucketWidth(natoms);
    const key = bucketKey(bucketOf(projections[0], width), bucketOf(projections[1], width));
    const link = this.links.length / 2;
    this.links.push(entry);
    this.links.push(buckets.get(key) ?? -1);
    buckets.set(key, link);
  }

  /** Structure `entry` as a Geometry: views of its block. */
  private geometryAt(entry: number): Geometry {
    const e = this.entries.values;
    const at = e[entry * ENTRY_FIELDS + AT];
    const natoms = e[entry * ENTRY_FIELDS + NATOMS];
    const values = this.blocks[e[entry * ENTRY_FIELDS + BLOCK]];
    const cellAt = at + 3 * natoms;
    return {
      natoms,
      symbols: this.speciesList[e[entry * ENTRY_FIELDS + SPECIES]].symbols as string[],
      pbc: PBC_OF_BITS[e[entry * ENTRY_FIELDS + PBC]],
      positions: values.subarray(at, cellAt),
      cell: values.subarray(cellAt, cellAt + 9),
    };
  }

  /**
   * The row of the indexed structure nearest to `frame` (largest difference of any position or cell component), not
   * yet claimed, with the same species and (unless fromVasp) the same pbc, each species' atoms in the same order,
   * at most the tolerance away; ties go to the lowest row. Undefined when there is none.
   */
  find(frame: Geometry): number | undefined {
    let best: number | undefined;
    let bestDifference = Infinity;
    const order = this.orderOf(frame.symbols);
    const bits = pbcBits(frame.pbc);
    const visit = (head: number): boolean => {
      const e = this.entries.values;
      const links = this.links.values;
      for (let link = head; link !== -1; link = links[2 * link + 1]) {
        const entry = links[2 * link];
        const row = e[entry * ENTRY_FIELDS + ROW];
        const species = this.speciesList[e[entry * ENTRY_FIELDS + SPECIES]];
        if (this.claimed.has(row) || !sameSpecies(e[entry * ENTRY_FIELDS + NATOMS], species, frame, order)) continue;
        if (!this.fromVasp && e[entry * ENTRY_FIELDS + PBC] !== bits) continue;
        const difference = this.difference(this.geometryAt(entry), species.order, frame, order);
        if (difference <= this.tolerance && (difference < bestDifference || (difference === bestDifference && row < best!))) {
          best = row;
          bestDifference = difference;
        }
      }
      return false;
    };
    for (const key of keysOf(frame, order, this.fromVasp)) this.forNear(frame.natoms, key, visit);
    return best;
  }

  /**
   * The largest difference of any position component, each atom against the other's nearest periodic image, and of
   * any cell component. Read back from VASP, a structure is periodic along all three axes, and one without a cell
   * (a molecule) is compared in its copy's box, by positions alone.
   */
  private difference(a: Geometry, aOrder: Int32Array | null, b: Geometry, bOrder: Int32Array | null): number {
    if (!this.fromVasp) return largestDifference(a, aOrder, b, bOrder, true, singularCell(a.cell) ? null : a.cell, a.pbc);
    const aCell = !singularCell(a.cell);
    const bCell = !singularCell(b.cell);
    return largestDifference(a, aOrder, b, bOrder, aCell && bCell, aCell ? a.cell : bCell ? b.cell : null, ALL_PERIODIC);
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
   * Calls `visit` with the first link of the same and the neighbouring bucket pairs, until it returns true (then
   * true). Buckets are as wide as the largest shift of a projection, 2t * sqrt(3N) (at least 1e-3 A), so a match is
   * never further away.
   */
  private forNear(natoms: number, projections: ArrayLike<number>, visit: (head: number) => boolean): boolean {
    const buckets = this.byAtoms.get(natoms);
    if (!buckets) return false;
    const width = this.bucketWidth(natoms);
    const a = bucketOf(projections[0], width);
    const b = bucketOf(projections[1], width);
    for (let i = a - 1; i <= a + 1; i++) {
      for (let j = b - 1; j <= b + 1; j++) {
        const head = buckets.get(bucketKey(i, j));
        if (head !== undefined && visit(head)) return true;
      }
    }
    return false;
  }

  private bucketWidth(natoms: number): number {
    return Math.max(1e-3, 2 * this.tolerance * Math.sqrt(3 * natoms));
  }
}

/**
 * The bucket of a projection, clamped to +-2^30 so that its neighbours are other integers (beyond, as for a molecule
 * with atoms 1e20 A apart, far-off structures only share buckets).
 */
function bucketOf(projection: number, width: number): number {
  return Math.max(-(2 ** 30), Math.min(2 ** 30, Math.round(projection / width)));
}

/**
 * A pair of buckets as one small integer (a Smi, which a Map hashes without allocating). Pairs that share one only put
 * more structures in a chain, which the exact comparison rules out.
 */
function bucketKey(a: number, b: number): number {
  return (Math.imul(a | 0, 0x9e3779b1) ^ (b | 0)) & 0x3fffffff;
}

function sameSymbols(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Whether a structure of `natoms` atoms of `species` and b have the same atoms of each species, taken in their canonical orders. */
function sameSpecies(natoms: number, { symbols, order }: Species, b: Geometry, bOrder: Int32Array | null): boolean {
  if (natoms !== b.natoms) return false;
  for (let k = 0; k < natoms; k++) if (symbols[order ? order[k] : k] !== b.symbols[bOrder ? bOrder[k] : k]) return false;
  return true;
}


/**
 * The largest difference in any position component between a and b (same atom count, atoms paired in their
 * canonical orders), each difference vector moved by lattice vectors of `cell` along `periodic` axes to its nearest
 * image, and with `compareCells` in any cell component.
 */
function largestDifference(
  a: Geometry, aOrder: Int32Array | null, b: Geometry, bOrder: Int32Array | null,
  compareCells: boolean, cell: ArrayLike<number> | null, periodic: readonly boolean[],
): number {
  let largest = 0;
  if (compareCells) for (let i = 0; i < 9; i++) largest = Math.max(largest, Math.abs(a.cell[i] - b.cell[i]));
  const inv = cell && invertCell(cell, DIFFERENCE_INVERSE);
  const d = DIFFERENCE;
  for (let k = 0; k < a.natoms; k++) {
    const i = 3 * (aOrder ? aOrder[k] : k);
    const j = 3 * (bOrder ? bOrder[k] : k);
    for (let axis = 0; axis < 3; axis++) d[axis] = a.positions[i + axis] - b.positions[j + axis];
    if (cell && inv) nearestImage(d, cell, inv, periodic);
    largest = Math.max(largest, Math.abs(d[0]), Math.abs(d[1]), Math.abs(d[2]));
  }
  return largest;
}
