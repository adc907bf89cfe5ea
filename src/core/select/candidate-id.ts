/**
 * Content ids of candidate structures: the same structure gets the same id in any file and at any
 * frame position, so duplicates and already-labelled structures can be recognised.
 *
 * id = the first 20 hex digits (80 bits) of sha256 over a canonical text of: atom count, species in
 * atom order, pbc, the cell and the Cartesian positions, both rounded to 1e-6 Angstrom (as integers of
 * micro-Angstrom, -0 written as 0). Info and per-atom arrays (energies, forces, tags) do not enter.
 * Atom order does: the same configuration with atoms permuted gets another id.
 * Values closer than 1e-6 A to a rounding boundary may round differently when written with different
 * precision, so files with positions printed to fewer than 6 decimals can give other ids.
 */

import { hash } from "node:crypto";
import { hillFormula, type Frame } from "../structure.js";

export const CANDIDATE_ID_LENGTH = 20;

const FORMAT = "relabel-candidate-v1";

export function candidateId(frame: Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">): string {
  return idOfText(frame, frame.symbols.join(","));
}

/** candidateId with the species part of the text (symbols joined by commas) given. */
function idOfText(frame: Pick<Frame, "natoms" | "positions" | "cell" | "pbc">, species: string): string {
  const pbc = (frame.pbc[0] ? "T" : "F") + (frame.pbc[1] ? "T" : "F") + (frame.pbc[2] ? "T" : "F");
  const head = `${FORMAT}\n${frame.natoms}\n${species}\n${pbc}\n`;
  // The text is written as bytes straight into one reused buffer: building the numbers as strings costs
  // more than the hash.
  // At most 26 bytes a number: a sign, String() of a double (23 at most) and a space.
  const need = 3 * head.length + 26 * (9 + 3 * frame.natoms);
  if (need > text.length) text = new Uint8Array(Math.max(need, 2 * text.length));
  let at = 0;
  for (; at < head.length; at++) {
    const code = head.charCodeAt(at);
    if (code > 127) break;
    text[at] = code;
  }
  if (at < head.length) at = encoder.encodeInto(head, text).written;
  at = writeMicro(frame.cell, 9, at);
  text[at++] = 10;
  at = writeMicro(frame.positions, 3 * frame.natoms, at);
  return hash("sha256", new Uint8Array(text.buffer, 0, at)).slice(0, CANDIDATE_ID_LENGTH);
}

const encoder = new TextEncoder();
let text = new Uint8Array(4096);
/** "00" .. "99" as pairs of ASCII digits. */
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 48 + (i % 2 === 0 ? Math.floor(i / 20) : (i >> 1) % 10));

/** Writes values as integers of 1e-6 (-0 as 0), separated by single spaces, at text[at]; returns the end. */
function writeMicro(values: Float64Array, count: number, at: number): number {
  for (let i = 0; i < count; i++) {
    if (i > 0) text[at++] = 32;
    let v = Math.round(values[i] * 1e6);
    if (v < 0) {
      text[at++] = 45;
      v = -v;
    }
    if (!(v < 2 ** 31)) {
      // Rare (over 2 km, or not finite): String() decides the spelling, exponents included.
      for (const c of String(v)) text[at++] = c.charCodeAt(0);
      continue;
    }
    let u = v | 0;
    const end = at + digitCount(u);
    let p = end;
    for (; u >= 100; ) {
      const q = (u / 100) | 0;
      const pair = 2 * (u - 100 * q);
      text[--p] = DIGIT_PAIRS[pair + 1];
      text[--p] = DIGIT_PAIRS[pair];
      u = q;
    }
    if (u >= 10) {
      text[--p] = DIGIT_PAIRS[2 * u + 1];
      text[--p] = DIGIT_PAIRS[2 * u];
    } else text[--p] = 48 + u;
    at = end;
  }
  return at;
}

function digitCount(u: number): number {
  let n = 1;
  for (let limit = 10; u >= limit && n < 10; limit *= 10) n++;
  return n;
}

/** For each candidate, the index of the first candidate with the same id (its own index when it is the first). */
export function firstOccurrences(ids: readonly string[]): Int32Array {
  const seen = new Map<string, number>();
  const first = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const earlier = seen.get(ids[i]);
    if (earlier === undefined) seen.set(ids[i], i);
    first[i] = earlier ?? i;
  }
  return first;
}

/** What ranking keeps of each candidate structure: id, atom count and formula, plus the species met. */
export interface CandidateSummaries {
  ids: string[];
  natoms: number[];
  formulas: string[];
  /** Every species in these structures, sorted. */
  species: string[];
}

const FORMULA_CACHE = 4096;

/** Ids and formulas frame by frame, formulas cached by species text: pools repeat a few compositions. */
export class CandidateNamer {
  private readonly formulas = new Map<string, string>();
  /** Every species met so far. */
  readonly species = new Set<string>();
  id = "";
  formula = "";

  /** Sets `id` and `formula` to those of `frame`. */
  name(frame: Frame): void {
    const species = frame.symbols.join(",");
    this.id = idOfText(frame, species);
    let formula = this.formulas.get(species);
    if (formula === undefined) {
      if (this.formulas.size >= FORMULA_CACHE) this.formulas.clear();
      formula = hillFormula(frame.symbols);
      this.formulas.set(species, formula);
      for (const s of frame.symbols) this.species.add(s);
    }
    this.formula = formula;
  }
}

/** Collects candidate summaries frame by frame (frames can be dropped as soon as they are added). */
export class CandidateSummaryBuilder {
  private readonly summary: CandidateSummaries = { ids: [], natoms: [], formulas: [], species: [] };
  private readonly namer = new CandidateNamer();

  add(frames: readonly Frame[]): this {
    for (const frame of frames) {
      this.namer.name(frame);
      this.summary.ids.push(this.namer.id);
      this.summary.natoms.push(frame.natoms);
      this.summary.formulas.push(this.namer.formula);
    }
    return this;
  }

  finish(): CandidateSummaries {
    this.summary.species = [...this.namer.species].sort();
    return this.summary;
  }
}
