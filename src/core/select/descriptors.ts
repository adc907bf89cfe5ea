/**
 * Structure descriptors for candidate ranking (docs/mace.md section 6, with the histogram fixed to
 * count every periodic image).
 *
 * baseline (D = S + 1 + bins):
 *   - composition: fraction of atoms of each species, species sorted alphabetically;
 *   - volume per atom: |det cell| / N when the frame is periodic along at least one direction and has a
 *     cell, else 0 (for slabs and wires this includes the vacuum, like the reference);
 *   - pair-distance histogram: `bins` bins on [0, r_max], pairs counted as in pair-histogram.ts,
 *     density-normalised so that sum(h) * (r_max / bins) = 1; all zeros without any pair.
 * element-pairs (D = S + 1 + S(S+1)/2 * bins): the same, with the histogram split by unordered species
 *   pair (pairs in order (A,A), (A,B), ..., (B,B), ...), normalised jointly: the blocks add up to the
 *   baseline histogram.
 */

import { StructureError } from "../errors.js";
import { cellVolume, hasCell, type Frame } from "../structure.js";
import { copyRows, createFeatureMatrix, rowsOf, type FeatureMatrix, type PlacedRows } from "./feature-matrix.js";
import { countPairs, GeometryError, pairGeometry, type PairGeometry, type PairMethod } from "./pair-histogram.js";

export type DescriptorKind = "baseline" | "element-pairs";

export const DEFAULT_R_MAX = 6;
export const DEFAULT_BINS = 80;
/** More bins than any histogram needs: the descriptor's width and memory grow with them (the App's config caps the same). */
export const MAX_BINS = 10_000;

export interface DescriptorOptions {
  kind: DescriptorKind;
  /** Species of the columns, sorted (descriptorSpecies); pool and labelled frames must share them. */
  species: readonly string[];
  rMax?: number;
  bins?: number;
  /** Force one pair enumeration (tests); by default the cheaper one. */
  method?: PairMethod;
}

/** Options for rows that use the species of their own frames (see placeDescriptorRows). */
export type LocalDescriptorOptions = Omit<DescriptorOptions, "species">;

/** Descriptor rows computed for `species` (sorted). */
export type SpeciesRows = FeatureMatrix & { species: string[] };

/** Where a candidate came from, for error messages. */
export interface CandidateOrigin {
  file: string;
  where?: string | number;
}

export type DescribedFrame = Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">;

/** Sorted distinct species of the frames. */
export function descriptorSpecies(frames: Iterable<Pick<Frame, "symbols">>): string[] {
  const species = new Set<string>();
  for (const frame of frames) for (const symbol of frame.symbols) species.add(symbol);
  return [...species].sort();
}

/** Unordered species pairs in column order. */
export function speciesPairs(species: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let a = 0; a < species.length; a++) for (let b = a; b < species.length; b++) pairs.push([species[a], species[b]]);
  return pairs;
}

export function descriptorColumns(options: DescriptorOptions): string[] {
  const bins = options.bins ?? DEFAULT_BINS;
  const columns = options.species.map((s) => `x_${s}`);
  columns.push("volume_per_atom");
  const blocks = options.kind === "baseline" ? [""] : speciesPairs(options.species).map(([a, b]) => `${a}-${b}_`);
  for (const block of blocks) for (let b = 0; b < bins; b++) columns.push(`rdf_${block}${b}`);
  return columns;
}

/**
 * Copies descriptor rows computed for the species `rows.species` (sorted) into rows `firstRow`.. of `into`,
 * whose columns are those of `options` (species sorted, a superset): composition and pair blocks move to
 * their species' columns, the others stay zero. The values are the ones computeDescriptors gives with
 * `options` directly, bit for bit: a frame's counts and normalisation do not depend on absent species.
 */
export function placeDescriptorRows(rows: SpeciesRows, into: FeatureMatrix | PlacedRows, firstRow: number, options: DescriptorOptions): void {
  const bins = options.bins ?? DEFAULT_BINS;
  const columns = descriptorColumns(options).length;
  if (into.cols !== columns || rows.cols !== descriptorColumns({ ...options, species: rows.species }).length) {
    throw new RangeError(`descriptor rows of ${rows.cols} columns cannot go into ${into.cols} columns for species ${options.species.join(",")}`);
  }
  const target = rowsOf(into);
  if (rows.species.length === options.species.length && rows.species.every((s, i) => s === options.species[i])) {
    copyRows(rows.data, 0, rows.rows, target, firstRow);
    return;
  }
  const speciesAt = rows.species.map((s) => {
    const at = options.species.indexOf(s);
    if (at < 0) throw new RangeError(`species ${s} is not among ${options.species.join(",")}`);
    return at;
  });
  const S = rows.species.length;
  const to = options.species.length;
  const map = new Int32Array(rows.cols);
  for (let i = 0; i < S; i++) map[i] = speciesAt[i];
  map[S] = to;
  // Pair blocks: local pair (a, b), a <= b, goes to the global pair of the same species.
  const globalBlock = (a: number, b: number): number => a * to - (a * (a - 1)) / 2 + (b - a);
  const localBlocks = options.kind === "baseline" ? [[0, 0]] : speciesPairs(rows.species).map(([a, b]) => [rows.species.indexOf(a), rows.species.indexOf(b)]);
  localBlocks.forEach(([a, b], block) => {
    const at = options.kind === "baseline" ? 0 : globalBlock(speciesAt[a], speciesAt[b]);
    for (let k = 0; k < bins; k++) map[S + 1 + block * bins + k] = to + 1 + at * bins + k;
  });
  const { data, start } = target;
  for (let r = 0; r < rows.rows; r++) {
    const from = r * rows.cols;
    const out = start(firstRow + r);
    data.fill(0, out, out + into.cols);
    for (let c = 0; c < rows.cols; c++) data[out + map[c]] = rows.data[from + c];
  }
}

export function computeDescriptors(
  frames: readonly DescribedFrame[],
  options: DescriptorOptions,
  origins?: readonly CandidateOrigin[],
): FeatureMatrix {
  const rMax = options.rMax ?? DEFAULT_R_MAX;
  const bins = options.bins ?? DEFAULT_BINS;
  if (!(rMax > 0 && Number.isFinite(rMax))) throw new RangeError(`r_max must be a positive number, got ${rMax}`);
  if (!(Number.isInteger(bins) && bins >= 1)) throw new RangeError(`bins must be a positive integer, got ${bins}`);
  const columns = descriptorColumns(options);
  const matrix = createFeatureMatrix(frames.length, columns.length, columns);
  const describer = new FrameDescriber(options.species, options.kind, rMax, bins, options.method);
  for (let f = 0; f < frames.length; f++) {
    try {
      describer.describe(frames[f], matrix.data, f * columns.length);
    } catch (error) {
      if (error instanceof GeometryError || error instanceof FrameProblem) {
        const origin = origins?.[f] ?? { file: "candidates", where: `frame ${f}` };
        throw new StructureError(origin.file, origin.where, error.message);
      }
      throw error;
    }
  }
  return matrix;
}

class FrameProblem extends Error {}

/** Reusable scratch for describing many frames of the same species list. */
class FrameDescriber {
  private readonly classOf: Map<string, number>;
  private readonly blockOf: Int32Array;
  private readonly counts: Float64Array;
  private readonly composition: Float64Array;
  private atomClass = new Int32Array(0);
  private geometry: PairGeometry | undefined;

  constructor(
    private readonly species: readonly string[],
    kind: DescriptorKind,
    private readonly rMax: number,
    private readonly bins: number,
    private readonly method: PairMethod | undefined,
  ) {
    const S = species.length;
    this.classOf = new Map(species.map((s, i) => [s, i]));
    this.blockOf = new Int32Array(S * S);
    let block = 0;
    for (let a = 0; a < S; a++) {
      for (let b = a; b < S; b++) {
        const value = kind === "baseline" ? 0 : block++;
        this.blockOf[a * S + b] = value;
        this.blockOf[b * S + a] = value;
      }
    }
    this.counts = new Float64Array((kind === "baseline" ? 1 : (S * (S + 1)) / 2) * bins);
    this.composition = new Float64Array(S);
  }

  describe(frame: DescribedFrame, out: Float32Array, offset: number): void {
    const n = frame.natoms;
    const S = this.species.length;
    if (!(n >= 1)) throw new FrameProblem("the frame has no atoms; every candidate needs at least one");
    if (frame.symbols.length !== n || frame.positions.length !== 3 * n) {
      throw new FrameProblem(`the frame declares ${n} atoms but has ${frame.symbols.length} symbols and ${frame.positions.length / 3} positions`);
    }
    const { positions, cell, symbols } = frame;
    for (let i = 0; i < 3 * n; i++) {
      if (!Number.isFinite(positions[i])) throw new FrameProblem(`atom ${Math.floor(i / 3)}: position is not a finite number`);
    }
    for (let i = 0; i < 9; i++) {
      if (!Number.isFinite(cell[i])) throw new FrameProblem("the cell has a value that is not a finite number");
    }
    if (this.atomClass.length < n) this.atomClass = new Int32Array(n);
    const atomClass = this.atomClass;
    const composition = this.composition;
    composition.fill(0);
    // Neighbouring atoms mostly share a species: look the symbol up only when it changes.
    let symbol: string | undefined;
    let c: number | undefined;
    for (let i = 0; i < n; i++) {
      if (symbols[i] !== symbol) {
        symbol = symbols[i];
        c = this.classOf.get(symbol);
        if (c === undefined) {
          throw new FrameProblem(`species ${symbol} is not among the descriptor species (${this.species.join(", ")})`);
        }
      }
      atomClass[i] = c!;
      composition[c!]++;
    }
    for (let c = 0; c < S; c++) out[offset + c] = composition[c] / n;
    const periodic = frame.pbc[0] || frame.pbc[1] || frame.pbc[2];
    out[offset + S] = periodic && hasCell(frame) ? Math.abs(cellVolume(cell)) / n : 0;

    const counts = this.counts;
    counts.fill(0);
    const geometry = pairGeometry(positions, n, cell, frame.pbc, this.geometry);
    this.geometry = geometry;
    const total = countPairs(geometry, this.rMax, this.bins, atomClass, S, this.blockOf, counts, this.method);
    const histogramStart = offset + S + 1;
    const scale = total > 0 ? this.bins / (total * this.rMax) : 0;
    for (let b = 0; b < counts.length; b++) out[histogramStart + b] = counts[b] * scale;
  }
}
