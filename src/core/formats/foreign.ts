/**
 * Files in formats relabel-loop does not read, handed to a reader of text formats by mistake: recognised by their
 * first bytes, so that the error says what the file is instead of failing on its first line.
 */
import { isAseTrajectory, isLammpsDump, isUlm } from "./format-heads.js";

const SKIPPED_LINES = String.raw`(?:[ \t]*(?:#[^\n]*)?\r?\n)*`;
const CIF = new RegExp(String.raw`^${SKIPPED_LINES}[ \t]*data_[^\n]*\n${SKIPPED_LINES}[ \t]*(?:_|loop_)`);

interface Foreign {
  name: string;
  /** Whether ASE reads it, so that `python3 -m ase convert FILE OUT.extxyz` turns it into extxyz. */
  aseReads: boolean;
}

/** What a file is, from its first bytes (latin1 text, 512 or more); undefined for anything else. */
export function foreignFormat(head: string): Foreign | undefined {
  // A data repository's large files may be in Git LFS: a clone without LFS holds these small text stand-ins.
  if (head.startsWith("version https://git-lfs.github.com/spec/")) return { name: "a Git LFS pointer, not the file's content (git lfs pull fetches it into a clone)", aseReads: false };
  if (isAseTrajectory(head)) return { name: "an ASE trajectory", aseReads: true };
  if (isUlm(head)) return { name: "a ULM file (a binary ASE/GPAW container) that is not an ASE trajectory", aseReads: false };
  if (head.startsWith("SQLite format 3\0")) return { name: "an SQLite database (an ASE database?)", aseReads: true };
  if (head.startsWith("\x89HDF\r\n\x1a\n")) return { name: "an HDF5 file (VASP's vaspout.h5?)", aseReads: false };
  if (head.startsWith("\x93NUMPY")) return { name: "a NumPy .npy array", aseReads: false };
  if (head.startsWith("PK\x03\x04")) return { name: "a zip archive", aseReads: false };
  // ASE would read its atom types as atomic numbers; relabel rank reads it with the run's type map.
  if (isLammpsDump(head)) return { name: "a LAMMPS dump (relabel rank --pool reads it, with --type-map when it has no element column)", aseReads: false };
  // CIF: comment and blank lines, the first data block, then a data name or a loop (a POSCAR or XDATCAR whose
  // comment line is "data_..." has its scale factor next).
  if (CIF.test(head)) return { name: "a CIF file", aseReads: true };
  return undefined;
}

/** The error text for such a file where `expected` was wanted, with the conversion when ASE reads it. */
export function foreignFormatDetail(file: string, head: string, expected: string): string | undefined {
  const foreign = foreignFormat(head);
  if (!foreign) return undefined;
  const base = file.replace(/^.*[\\/]/, "").replace(/\.[^.]*$/, "");
  return `${foreign.name}, expected ${expected}${foreign.aseReads ? `; convert it with: python3 -m ase convert ${file} ${base}.extxyz` : ""}`;
}
