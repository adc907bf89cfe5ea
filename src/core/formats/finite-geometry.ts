/**
 * Positions and cells that are not finite numbers. extxyz reads `nan` and `inf` as numbers (as ASE does), but no
 * structure has them: a reader that needs real structures (rank's pool) refuses such a frame, naming its line.
 */
import { InputError } from "../errors.js";
import type { Frame } from "../structure.js";

/** The first value of the frame's geometry that is not finite: an atom's position (0-based atom), or the cell's. */
export function nonFiniteGeometry(
  frame: Pick<Frame, "natoms" | "positions" | "cell">,
): { atom: number; axis: "x" | "y" | "z"; value: number } | { cell: number } | undefined {
  const { positions, cell } = frame;
  for (let i = 0; i < 9; i++) if (!Number.isFinite(cell[i])) return { cell: cell[i] };
  for (let i = 0; i < 3 * frame.natoms; i++) {
    if (!Number.isFinite(positions[i])) return { atom: Math.floor(i / 3), axis: (["x", "y", "z"] as const)[i % 3], value: positions[i] };
  }
  return undefined;
}

/** nan, inf or -inf, as a file writes them. */
const asWritten = (x: number): string => (Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf");

/**
 * The InputError for an extxyz frame whose first line (its atom count) is `line` and whose geometry is not finite,
 * at the atom's line or at the comment line for the cell; undefined when it is finite.
 */
export function extxyzNonFiniteGeometryError(file: string, frame: Frame, line: number): InputError | undefined {
  const found = nonFiniteGeometry(frame);
  if (found === undefined) return undefined;
  if ("cell" in found) return new InputError(file, line + 1, `the cell (Lattice) holds ${asWritten(found.cell)}; a cell must be finite numbers`);
  return new InputError(file, line + 2 + found.atom, `atom ${found.atom} (0-based): position ${found.axis} is ${asWritten(found.value)}; positions must be finite numbers`);
}
