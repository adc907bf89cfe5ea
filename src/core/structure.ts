/**
 * The in-memory structure model shared by every reader and writer.
 * Arrays are flat typed arrays (row-major) so that large files parse without per-atom objects.
 */

export type Pbc = [boolean, boolean, boolean];

/** A comment-line (info) value, typed the way ASE types it, so that writing it back keeps its type. */
export type InfoValue =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "string"; value: string }
  | {
      kind: "array";
      dtype: "int" | "float" | "bool";
      /** [n] for 1-D, [rows, cols] for 2-D. */
      shape: number[];
      data: number[] | boolean[];
    }
  /** A `_JSON ...` value: dicts and nested lists of non-special keys. */
  | { kind: "json"; value: unknown };

/** A per-atom column from `Properties`, other than species and positions. */
export type AtomArray =
  | { dtype: "R" | "I"; ncols: number; data: Float64Array }
  | { dtype: "L"; ncols: number; data: Uint8Array }
  | { dtype: "S"; ncols: number; data: string[] };

export interface Frame {
  natoms: number;
  /** Chemical symbols, one per atom, case-normalised (`MG` -> `Mg`). */
  symbols: string[];
  /** Cartesian positions in Angstrom, length 3*natoms. */
  positions: Float64Array;
  /** Cell vectors as rows (a1, a2, a3), length 9, Angstrom; all zeros when there is no cell. */
  cell: Float64Array;
  pbc: Pbc;
  /** Comment-line keys in file order, without Lattice, Properties and pbc. */
  info: Map<string, InfoValue>;
  /** Per-atom columns in Properties order, without species and pos. */
  arrays: Map<string, AtomArray>;
}

export function emptyCell(): Float64Array {
  return new Float64Array(9);
}

export function hasCell(frame: Pick<Frame, "cell">): boolean {
  for (let i = 0; i < 9; i++) if (frame.cell[i] !== 0) return true;
  return false;
}

/** Signed volume of the cell (a1 x a2) . a3, in A^3. */
export function cellVolume(cell: ArrayLike<number>): number {
  const ax = cell[0], ay = cell[1], az = cell[2], bx = cell[3], by = cell[4], bz = cell[5], cx = cell[6], cy = cell[7], cz = cell[8];
  return ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx);
}

/**
 * Inverse of a row-vector cell matrix (rows are the lattice vectors), so that fractional = Cartesian . inverse;
 * written into `out`. Infinite or NaN entries for a singular cell: callers check singularCell first.
 */
export function invertCell(m: ArrayLike<number>, out: Float64Array = new Float64Array(9)): Float64Array {
  const a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5], g = m[6], h = m[7], i = m[8];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  out[0] = A / det;
  out[1] = -(b * i - c * h) / det;
  out[2] = (b * f - c * e) / det;
  out[3] = B / det;
  out[4] = (a * i - c * g) / det;
  out[5] = -(a * f - c * d) / det;
  out[6] = C / det;
  out[7] = -(a * h - b * g) / det;
  out[8] = (a * e - b * d) / det;
  return out;
}

/** Whether the cell spans no volume (all zero, or flat to 1e-9 of its vectors' lengths): it cannot wrap positions. */
export function singularCell(cell: ArrayLike<number>): boolean {
  let scale = 1;
  for (let r = 0; r < 9; r += 3) scale *= Math.sqrt(cell[r] * cell[r] + cell[r + 1] * cell[r + 1] + cell[r + 2] * cell[r + 2]);
  return !(Math.abs(cellVolume(cell)) > 1e-9 * scale);
}

/**
 * The atoms' order grouped by species, the species in the order `species` lists them (every symbol must be there),
 * each species' atoms in their own order: order[k] is the atom at place k. Null when that is the order they have.
 */
export function atomsBySpecies(symbols: readonly string[], species: readonly string[]): Int32Array | null {
  const place = new Map(species.map((s, i) => [s, i]));
  const starts = new Int32Array(species.length + 1);
  for (const s of symbols) starts[place.get(s)! + 1]++;
  for (let i = 0; i < species.length; i++) starts[i + 1] += starts[i];
  const order = new Int32Array(symbols.length);
  let identity = true;
  for (let atom = 0; atom < symbols.length; atom++) {
    const k = starts[place.get(symbols[atom])!]++;
    order[k] = atom;
    if (k !== atom) identity = false;
  }
  return identity ? null : order;
}

/** The species in the order their first atoms come. */
export function speciesInOrder(symbols: readonly string[]): string[] {
  return [...new Set(symbols)];
}

/** The frame with its atoms in `order` (order[k] is the atom at place k): positions, symbols and every per-atom column. */
export function withAtomsInOrder(frame: Frame, order: ArrayLike<number>): Frame {
  const n = frame.natoms;
  const positions = new Float64Array(3 * n);
  for (let k = 0; k < n; k++) positions.set(frame.positions.subarray(3 * order[k], 3 * order[k] + 3), 3 * k);
  const arrays = new Map<string, AtomArray>();
  for (const [key, column] of frame.arrays) {
    const w = column.ncols;
    if (column.dtype === "S") {
      const data: string[] = [];
      for (let k = 0; k < n; k++) data.push(...column.data.slice(w * order[k], w * order[k] + w));
      arrays.set(key, { ...column, data });
    } else {
      const data = column.data.slice();
      for (let k = 0; k < n; k++) data.set(column.data.subarray(w * order[k], w * order[k] + w), w * k);
      arrays.set(key, { ...column, data } as AtomArray);
    }
  }
  return { ...frame, symbols: Array.from({ length: n }, (_, k) => frame.symbols[order[k]]), positions, arrays };
}

/**
 * The frame with one block of atoms per species, in the order of `species` (default: as their first atoms come),
 * each species' atoms in their order; the frame itself when its atoms are so already.
 */
export function groupedBySpecies(frame: Frame, species: readonly string[] = speciesInOrder(frame.symbols)): Frame {
  const order = atomsBySpecies(frame.symbols, species);
  return order ? withAtomsInOrder(frame, order) : frame;
}

/** Hill-order formula, the way ASE's `get_chemical_formula()` prints it (C, H first when C is present, else alphabetical). */
export function hillFormula(symbols: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const s of symbols) counts.set(s, (counts.get(s) ?? 0) + 1);
  const names = [...counts.keys()].sort();
  const ordered = counts.has("C")
    ? ["C", ...(counts.has("H") ? ["H"] : []), ...names.filter((n) => n !== "C" && n !== "H")]
    : names;
  return ordered.map((n) => n + (counts.get(n) === 1 ? "" : String(counts.get(n)))).join("");
}

export function infoNumber(frame: Pick<Frame, "info">, key: string): number | undefined {
  const v = frame.info.get(key);
  if (v && (v.kind === "float" || v.kind === "int")) return v.value;
  return undefined;
}
