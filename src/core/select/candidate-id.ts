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
  const pbc = (frame.pbc[0] ? "T" : "F") + (frame.pbc[1] ? "T" : "F") + (frame.pbc[2] ? "T" : "F");
  const text = `${FORMAT}\n${frame.natoms}\n${frame.symbols.join(",")}\n${pbc}\n${microAngstrom(frame.cell, 9)}\n${microAngstrom(frame.positions, 3 * frame.natoms)}`;
  return hash("sha256", text).slice(0, CANDIDATE_ID_LENGTH);
}

/** Values as integers of 1e-6 (-0 as 0), separated by single spaces. */
function microAngstrom(values: Float64Array, count: number): string {
  let out = "";
  for (let i = 0; i < count; i++) {
    const rounded = Math.round(values[i] * 1e6);
    out += i === 0 ? String(rounded === 0 ? 0 : rounded) : ` ${rounded === 0 ? 0 : rounded}`;
  }
  return out;
}

/** What ranking keeps of each candidate structure: id, atom count and formula, plus the species met. */
export interface CandidateSummaries {
  ids: string[];
  natoms: number[];
  formulas: string[];
  /** Every species in these structures, sorted. */
  species: string[];
}

/** Collects candidate summaries frame by frame (frames can be dropped as soon as they are added). */
export class CandidateSummaryBuilder {
  private readonly summary: CandidateSummaries = { ids: [], natoms: [], formulas: [], species: [] };
  private readonly species = new Set<string>();

  add(frames: readonly Frame[]): this {
    for (const frame of frames) {
      this.summary.ids.push(candidateId(frame));
      this.summary.natoms.push(frame.natoms);
      this.summary.formulas.push(hillFormula(frame.symbols));
      for (const s of frame.symbols) this.species.add(s);
    }
    return this;
  }

  finish(): CandidateSummaries {
    this.summary.species = [...this.species].sort();
    return this.summary;
  }
}
