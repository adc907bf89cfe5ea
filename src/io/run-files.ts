/**
 * Which files are what, by name: what makes a folder a VASP run directory, and VASP's structure files. Apart from
 * rundir.ts so that callers that only look (the pool's folder walk) do not load the VASP readers.
 */
import { existsSync } from "node:fs";
import path from "node:path";

export const VASPRUN_NAMES = ["vasprun.xml", "vasprun.xml.gz"];
export const OUTCAR_NAMES = ["OUTCAR", "OUTCAR.gz"];

export function firstExisting(dir: string, names: string[]): string | null {
  for (const name of names) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The vasprun.xml of a run directory, else its OUTCAR, else null. */
export function firstRunFile(dir: string): string | null {
  return firstExisting(dir, VASPRUN_NAMES) ?? firstExisting(dir, OUTCAR_NAMES);
}

export function isRunDir(dir: string): boolean {
  return firstRunFile(dir) !== null;
}

/** POSCAR, CONTCAR (any suffix) and *.vasp: one structure each. */
export const STRUCTURE_FILE = /^(POSCAR|CONTCAR)([._-].*)?$|\.vasp(\.gz)?$/i;
/** XDATCAR (any suffix): a trajectory. */
export const XDATCAR_FILE = /^XDATCAR([._-].*)?$/i;

/** A dataset folder's split file `name` (train.extxyz, ...): plain, else kept gzipped (`name.gz`, a data repository's large split), else null. */
export function datasetSplitFile(dir: string, name: string): string | null {
  return firstExisting(dir, [name, `${name}.gz`]);
}
