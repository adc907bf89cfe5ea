/**
 * Positions and cells that are not finite numbers. extxyz reads `nan` and `inf` as numbers (as ASE does), but no
 * structure has them: readers that need a geometry (convert, inspect, rank's pool) refuse such a frame by its line.
 */
import { InputError } from "../errors.js";
import type { Frame } from "../structure.js";

const AXES = ["x", "y", "z"] as const;

/** nan, inf or -inf, as a file writes them. */
const asWritten = (x: number): string => (Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf");

/**
 * The first position or cell value of a frame that is not finite, with the 1-based line it sits on (`line` is the
 * frame's atom-count line; the cell is named at the comment line); undefined when the geometry is finite.
 */
export function nonFiniteGeometry(frame: Pick<Frame, "natoms" | "symbols" | "positions" | "cell">, line: number): { line: number; detail: string } | undefined {
  const { positions, cell } = frame;
  for (let i = 0; i < 9; i++) {
    if (!Number.isFinite(cell[i])) return { line: line + 1, detail: `cell vector a${Math.floor(i / 3) + 1} has ${AXES[i % 3]} = ${asWritten(cell[i])}; expected finite numbers` };
  }
  for (let i = 0; i < 3 * frame.natoms; i++) {
    if (Number.isFinite(positions[i])) continue;
    const atom = Math.floor(i / 3);
    return { line: line + 2 + atom, detail: `atom ${atom} (${frame.symbols[atom]}, 0-based): position ${AXES[i % 3]} is ${asWritten(positions[i])}; expected a finite number` };
  }
  return undefined;
}

/** nonFiniteGeometry as the InputError of an extxyz frame, or undefined. */
export function extxyzNonFiniteGeometryError(file: string, frame: Frame, line: number): InputError | undefined {
  const found = nonFiniteGeometry(frame, line);
  return found && new InputError(file, found.line, found.detail);
}
