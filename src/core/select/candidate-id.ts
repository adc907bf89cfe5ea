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

import { createHash } from "node:crypto";
import type { Frame } from "../structure.js";

export const CANDIDATE_ID_LENGTH = 20;

const FORMAT = "relabel-candidate-v1";

export function candidateId(frame: Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">): string {
  const parts: string[] = [FORMAT, String(frame.natoms), frame.symbols.join(","), frame.pbc.map((p) => (p ? "T" : "F")).join("")];
  parts.push(microAngstrom(frame.cell, 9));
  parts.push(microAngstrom(frame.positions, 3 * frame.natoms));
  return createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, CANDIDATE_ID_LENGTH);
}

function microAngstrom(values: Float64Array, count: number): string {
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const rounded = Math.round(values[i] * 1e6);
    out[i] = String(rounded === 0 ? 0 : rounded);
  }
  return out.join(" ");
}
