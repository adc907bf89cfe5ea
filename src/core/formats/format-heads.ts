/**
 * What a file's first bytes (as latin1 text) say about its format: for choosing a reader, or naming a file no reader
 * takes, without loading the readers themselves (rank checks its pool before the selection starts).
 */

/** ULM's magic ("AFFormat" before ULM version 3). */
const ULM_MAGICS = ["- of Ulm", "AFFormat"];
/** The 16-byte tag after it in an ASE trajectory. */
export const ASE_TRAJECTORY_TAG = "ASE-Trajectory";

/** Whether a file's first bytes are a ULM file's: an ASE trajectory, or another (a GPAW .gpw). */
export function isUlm(head: string): boolean {
  return ULM_MAGICS.includes(head.slice(0, 8));
}

/** Whether a file's first bytes are an ASE trajectory's. */
export function isAseTrajectory(head: string): boolean {
  return isUlm(head) && head.slice(8, 24).trimEnd() === ASE_TRAJECTORY_TAG;
}

/** Whether a file's first bytes are a LAMMPS text dump's. */
export function isLammpsDump(head: string): boolean {
  return /^ITEM: (TIMESTEP|UNITS|TIME)\b/.test(head);
}
