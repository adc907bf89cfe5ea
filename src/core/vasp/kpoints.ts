/**
 * KPOINTS copied beside every pick: a fixed Gamma or Monkhorst-Pack mesh suits one cell size. Picks of varied
 * cells get varied k-point spacing from it, and a molecule in a vacuum box needs the Gamma point only, so both
 * are pointed out (VASP's KSPACING or a fully automatic KPOINTS adapt to each cell instead).
 */

import { rankList } from "../counted.js";
import { invertCell, singularCell, type Pbc } from "../structure.js";

/** A KPOINTS file's automatic mesh (line 2 `0`, line 3 Gamma or Monkhorst-Pack); null for any other kind. */
export function kpointsMesh(text: string): [number, number, number] | null {
  const lines = text.split(/\r?\n/);
  if (lines.length < 4 || Number(lines[1].trim().split(/\s+/)[0]) !== 0 || !/^\s*[GgMm]/.test(lines[2])) return null;
  const mesh = lines[3].trim().split(/\s+/).slice(0, 3).map(Number);
  return mesh.length === 3 && mesh.every((n) => Number.isInteger(n) && n >= 1) ? [mesh[0], mesh[1], mesh[2]] : null;
}

/** A pick as its POSCAR has it: its cell, which axes are periodic, and whether it was put in a vacuum box. */
export interface PickCell {
  rank: number;
  cell: ArrayLike<number>;
  pbc: Pbc;
  boxed: boolean;
}

/** Above this ratio of the coarsest to the finest pick's spacing, the mesh is pointed out. */
const SPACING_RATIO = 1.5;

/**
 * The coarsest k-point spacing of `mesh` in `cell` over its periodic axes, 2π|b_i|/n_i in 1/Å (VASP's KSPACING
 * unit); null without a periodic axis or a cell.
 */
export function meshSpacing(mesh: readonly number[], cell: ArrayLike<number>, pbc: Pbc): number | null {
  if (singularCell(cell)) return null;
  const inverse = invertCell(cell);
  let coarsest: number | null = null;
  for (let i = 0; i < 3; i++) {
    if (!pbc[i]) continue;
    // b_i is column i of the inverse of the cell (rows a_j), so that a_j . b_i = delta_ij.
    const spacing = (2 * Math.PI * Math.hypot(inverse[i], inverse[3 + i], inverse[6 + i])) / mesh[i];
    coarsest = Math.max(coarsest ?? 0, spacing);
  }
  return coarsest;
}

/**
 * What the KPOINTS `text` (named `file`), given to every pick, does not suit, in words: empty when it suits them
 * all, or when it is no fixed mesh.
 */
export function kpointsAdvice(text: string, picks: readonly PickCell[], file: string): string[] {
  const mesh = kpointsMesh(text);
  if (!mesh) return [];
  const advice: string[] = [];
  const meshText = mesh.join("x");
  const boxed = picks.filter((p) => p.boxed).map((p) => p.rank);
  if (boxed.length > 0 && mesh.some((n) => n > 1)) {
    advice.push(`${file} gives a ${meshText} k-point mesh to the picks in a vacuum box (rank ${rankList(boxed)}): a molecule needs the Gamma point only (1 1 1)`);
  }
  const spacings = picks.flatMap((p) => {
    const spacing = p.boxed ? null : meshSpacing(mesh, p.cell, p.pbc);
    return spacing === null ? [] : [{ rank: p.rank, spacing }];
  });
  if (spacings.length > 1) {
    const finest = spacings.reduce((a, b) => (b.spacing < a.spacing ? b : a));
    const coarsest = spacings.reduce((a, b) => (b.spacing > a.spacing ? b : a));
    if (coarsest.spacing > SPACING_RATIO * finest.spacing) {
      advice.push(
        `${file} gives every pick a ${meshText} mesh, so the k-point spacing runs from ${finest.spacing.toFixed(2)}/A (rank ${finest.rank}) to ${coarsest.spacing.toFixed(2)}/A (rank ${coarsest.rank}): ` +
          "for labels converged alike, set KSPACING in INCAR and leave KPOINTS out, or use a fully automatic KPOINTS",
      );
    }
  }
  return advice;
}
