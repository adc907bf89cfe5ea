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
import type { Frame } from "../structure.js";

export const CANDIDATE_ID_LENGTH = 20;

const FORMAT = "relabel-candidate-v1";

/** Scratch for the canonical text, reused across calls (grown when a structure needs more). */
let scratch = Buffer.alloc(1 << 16);

export function candidateId(frame: Pick<Frame, "natoms" | "symbols" | "positions" | "cell" | "pbc">): string {
  const { natoms, symbols, positions, cell, pbc } = frame;
  // At most 26 bytes per number (String() of a huge one, e.g. "-1.2345678901234567e+300", and a space).
  let symbolBytes = 0;
  for (const symbol of symbols) symbolBytes += Buffer.byteLength(symbol) + 1;
  const needed = FORMAT.length + 64 + symbolBytes + 26 * (9 + 3 * natoms);
  if (scratch.length < needed) scratch = Buffer.alloc(2 * needed);
  const b = scratch;
  let at = b.write(FORMAT, 0, "latin1");
  b[at++] = 10;
  at += b.write(String(natoms), at, "latin1");
  b[at++] = 10;
  for (let i = 0; i < symbols.length; i++) {
    if (i > 0) b[at++] = 44; // ,
    at += b.write(symbols[i], at, "utf8");
  }
  b[at++] = 10;
  for (let i = 0; i < 3; i++) b[at++] = pbc[i] ? 84 : 70; // T / F
  b[at++] = 10;
  at = writeMicroAngstrom(b, at, cell, 9);
  b[at++] = 10;
  at = writeMicroAngstrom(b, at, positions, 3 * natoms);
  return hash("sha256", b.subarray(0, at)).slice(0, CANDIDATE_ID_LENGTH);
}

/**
 * Writes values as integers of 1e-6 (Math.round, -0 as 0) separated by single spaces; returns the end.
 * Integers beyond 2^53 (values over 9e9 A) are written by String(), as the text format always did.
 */
function writeMicroAngstrom(b: Buffer, at: number, values: Float64Array, count: number): number {
  for (let i = 0; i < count; i++) {
    if (i > 0) b[at++] = 32;
    let n = Math.round(values[i] * 1e6);
    if (n === 0) {
      b[at++] = 48;
      continue;
    }
    if (!(Math.abs(n) < 2 ** 53)) {
      at += b.write(String(n), at, "latin1");
      continue;
    }
    if (n < 0) {
      b[at++] = 45; // -
      n = -n;
    }
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    for (let d = digits - 1; d >= 0; d--) {
      b[at + d] = 48 + (n % 10);
      n = Math.floor(n / 10);
    }
    at += digits;
  }
  return at;
}
