/**
 * Content ids of candidate structures: the same structure gets the same id in any file and at any
 * frame position, so duplicates and already-labelled structures can be recognised.
 *
 * id = the first 20 hex digits (80 bits) of sha256 over a canonical text of: atom count, species in
 * atom order, pbc, the cell and the Cartesian positions, both rounded to 1e-6 Angstrom (as integers of
 * micro-Angstrom, -0 written as 0). Info and per-atom arrays (energies, forces, tags) do not enter.
 * Atom order does: the same configuration with atoms permuted gets another id.
 * A value printed with fewer digits can round to another micro-Angstrom (ASE's 8 decimals do so for about 1 coordinate
 * in 200), so the same structure from another writer can get another id: the places that match structures across
 * files fall back to geometry (near-match.ts).
 */

import { hash } from "node:crypto";
import { ByteWriter, writeInteger } from "../byte-writer.js";
import { hillFormula, type Frame } from "../structure.js";
import { canonicalOrder, writeProjections } from "./near-match.js";

export const CANDIDATE_ID_LENGTH = 20;

const FORMAT = "relabel-candidate-v1";

export function candidateId(frame: Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">): string {
  return idOfText(frame, frame.symbols.join(","));
}

/** candidateId with the species part of the text (symbols joined by commas) given. */
function idOfText(frame: Pick<Frame, "natoms" | "positions" | "cell" | "pbc">, species: string): string {
  // Written as bytes into one reused buffer: building the numbers as strings costs more than the hash. The
  // header stays there from the last frame when it is the same (pools repeat compositions).
  const pbc = (frame.pbc[0] ? 4 : 0) + (frame.pbc[1] ? 2 : 0) + (frame.pbc[2] ? 1 : 0);
  if (species !== header.species || frame.natoms !== header.natoms || pbc !== header.pbc) {
    text.reset();
    const flags = [4, 2, 1].map((bit) => (pbc & bit ? "T" : "F")).join("");
    text.text(`${FORMAT}\n${frame.natoms}\n${species}\n${flags}\n`);
    Object.assign(header, { species, natoms: frame.natoms, pbc, length: text.length });
  }
  text.length = header.length;
  writeMicro(frame.cell, 9);
  text.byte(10);
  writeMicro(frame.positions, 3 * frame.natoms);
  return hash("sha256", textView()).slice(0, CANDIDATE_ID_LENGTH);
}

/** The id text written so far: views of the buffer by length, kept (a new view each time cost 0.15 us of 4 per frame). */
function textView(): Uint8Array {
  if (views.buffer !== text.bytes) {
    views.buffer = text.bytes;
    views.byLength.length = 0;
  }
  return (views.byLength[text.length] ??= text.bytes.subarray(0, text.length));
}
const views: { buffer: Uint8Array | null; byLength: Uint8Array[] } = { buffer: null, byLength: [] };

const text = new ByteWriter(4096);
/** What the first header.length bytes of `text` hold. */
const header = { species: "", natoms: -1, pbc: -1, length: 0 };

/** Values as integers of 1e-6 (-0 as 0), separated by single spaces (digits written here: this is the id's hot loop). */
function writeMicro(values: Float64Array, count: number): void {
  // Up to 11 bytes per value below 2^31 in magnitude, the rest through text.number.
  text.reserve(12 * count);
  let bytes = text.bytes;
  let at = text.length;
  for (let i = 0; i < count; i++) {
    if (i > 0) bytes[at++] = 32;
    const v = Math.round(values[i] * 1e6);
    if (!(Math.abs(v) < 2 ** 31)) {
      text.length = at;
      text.number(v);
      at = text.length;
      text.reserve(12 * (count - i));
      bytes = text.bytes;
      continue;
    }
    at = writeInteger(bytes, at, v);
  }
  text.length = at;
}

/**
 * For each candidate, the index of the first candidate with the same id (its own index when it is the first).
 * An open-addressing table of first indices, hashed over every character (FNV-1a, then mixed): ids other than
 * candidate_ids hash as well (hashing only the first 8 characters as hex digits took 18 s for the ids c0..c999999).
 */
export function firstOccurrences(ids: readonly string[]): Int32Array {
  let size = 1;
  while (size < 2 * ids.length) size *= 2;
  const mask = size - 1;
  const slots = new Int32Array(size).fill(-1);
  const first = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    let h = 0x811c9dc5;
    for (let k = 0; k < id.length; k++) h = Math.imul(h ^ id.charCodeAt(k), 0x01000193);
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    let s = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const j = slots[s];
      if (j < 0) {
        slots[s] = i;
        first[i] = i;
        break;
      }
      if (ids[j] === id) {
        first[i] = j;
        break;
      }
      s = (s + 1) & mask;
    }
  }
  return first;
}

/** What ranking keeps of each candidate structure: id, atom count and formula, plus the species met. */
export interface CandidateSummaries {
  ids: string[];
  natoms: number[];
  formulas: string[];
  /**
   * writeProjections of each structure, two numbers each: which structures near-match.ts need compare. Empty when
   * they were not asked for (CandidateNamer's `projections`).
   */
  projections: number[];
  /** Every species in these structures, sorted. */
  species: string[];
}

const FORMULA_CACHE = 4096;

/**
 * Ids and formulas frame by frame; formulas and the atoms' order by species (near-match.ts) are cached by species
 * text: pools repeat a few compositions.
 */
export class CandidateNamer {
  private readonly bySpecies = new Map<string, { formula: string; order: Int32Array | null }>();
  /** Every species met so far. */
  readonly species = new Set<string>();
  id = "";
  formula = "";
  /** writeProjections of the last structure named (NaN without `projections`). */
  readonly projections = new Float64Array(2).fill(NaN);

  /** `projections`: whether to compute them (only finding labelled structures by geometry needs them). */
  constructor(private readonly withProjections = true) {}

  /** Sets `id`, `formula` and `projections` to those of `frame`. */
  name(frame: Frame): void {
    this.nameWithSpecies(frame, frame.symbols.join(","), frame.symbols);
  }

  /** name() for a frame given as its species text (symbols joined by commas) and the rest; `symbols` defaults to that text split. */
  nameWithSpecies(frame: Pick<Frame, "natoms" | "positions" | "cell" | "pbc">, species: string, symbols?: readonly string[]): void {
    this.id = idOfText(frame, species);
    const known = this.speciesInfo(species, symbols);
    if (this.withProjections) writeProjections(frame, this.projections, 0, known.order);
    this.formula = known.formula;
  }

  /** The formula of structures of these species (symbols joined by commas), whose id was found elsewhere. */
  formulaOf(species: string): string {
    return this.speciesInfo(species).formula;
  }

  private speciesInfo(species: string, symbols?: readonly string[]): { formula: string; order: Int32Array | null } {
    let known = this.bySpecies.get(species);
    if (known === undefined) {
      if (this.bySpecies.size >= FORMULA_CACHE) this.bySpecies.clear();
      const list = symbols ?? species.split(",");
      known = { formula: hillFormula(list), order: canonicalOrder(list) };
      this.bySpecies.set(species, known);
      for (const s of list) this.species.add(s);
    }
    return known;
  }
}

/** Collects candidate summaries frame by frame (frames can be dropped as soon as they are added). */
export class CandidateSummaryBuilder {
  private readonly summary: CandidateSummaries = { ids: [], natoms: [], formulas: [], projections: [], species: [] };
  private readonly namer: CandidateNamer;

  constructor(private readonly withProjections = true) {
    this.namer = new CandidateNamer(withProjections);
  }

  add(frames: readonly Frame[]): this {
    for (const frame of frames) {
      this.namer.name(frame);
      this.summary.ids.push(this.namer.id);
      this.summary.natoms.push(frame.natoms);
      this.summary.formulas.push(this.namer.formula);
      if (this.withProjections) this.summary.projections.push(this.namer.projections[0], this.namer.projections[1]);
    }
    return this;
  }

  finish(): CandidateSummaries {
    this.summary.species = [...this.namer.species].sort();
    return this.summary;
  }
}
