/**
 * Which files are what, by name: what makes a folder a VASP run directory, and VASP's structure files. Apart from
 * rundir.ts so that callers that only look (the pool's folder walk) do not load the VASP readers.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";

/** A file name as it is, then compressed as openInput reads it (gzip, xz, bzip2): the plain file is taken first. */
export function withCompressedNames(name: string): string[] {
  return [name, `${name}.gz`, `${name}.xz`, `${name}.bz2`];
}
/** The endings of those compressed names, as a regular-expression group. */
export const COMPRESSED_ENDING = "(\\.gz|\\.xz|\\.bz2)?";

const VASPRUN_NAMES = withCompressedNames("vasprun.xml");
const OUTCAR_NAMES = withCompressedNames("OUTCAR");

/** One VASP calculation of a run directory: its vasprun.xml and OUTCAR (either may be missing). */
export interface RunCalculation {
  /** "" for vasprun.xml and OUTCAR; ".relax1" for custodian's vasprun.xml.relax1(.gz) and OUTCAR.relax1(.gz). */
  suffix: string;
  vasprun: string | null;
  outcar: string | null;
}

const SUFFIXED_OUTPUT = new RegExp(`^(vasprun\\.xml|OUTCAR)(\\..+?)${COMPRESSED_ENDING}$`);

/**
 * The calculations of a run directory, in order: its vasprun.xml and OUTCAR; without those, the outputs custodian
 * leaves from a job of several steps (a double relaxation: vasprun.xml.relax1.gz, vasprun.xml.relax2.gz, OUTCAR.relax1.gz,
 * ...), one calculation per suffix, ordered by suffix with numbers compared as numbers. Empty for any other folder.
 */
export function runCalculations(dir: string): RunCalculation[] {
  const vasprun = firstExisting(dir, VASPRUN_NAMES);
  const outcar = firstExisting(dir, OUTCAR_NAMES);
  if (vasprun || outcar) return [{ suffix: "", vasprun, outcar }];
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => e.name).sort();
  } catch {
    return [];
  }
  const bySuffix = new Map<string, RunCalculation>();
  for (const name of names) {
    const match = SUFFIXED_OUTPUT.exec(name);
    if (!match) continue;
    const suffix = match[2];
    let calculation = bySuffix.get(suffix);
    if (!calculation) bySuffix.set(suffix, (calculation = { suffix, vasprun: null, outcar: null }));
    // Names are sorted, so a plain file comes before its compressed copy and is taken.
    if (match[1] === "OUTCAR") calculation.outcar ??= path.join(dir, name);
    else calculation.vasprun ??= path.join(dir, name);
  }
  return [...bySuffix.values()].sort((a, b) => a.suffix.localeCompare(b.suffix, "en", { numeric: true }));
}

/**
 * A run directory's file `name` (INCAR, POSCAR, ...) beside its calculation with `suffix`, as custodian leaves it
 * (INCAR.relax2, maybe gzipped), else the plain file; null when there is none.
 */
export function besideCalculation(dir: string, name: string, suffix: string): string | null {
  return firstExisting(dir, [...(suffix ? withCompressedNames(`${name}${suffix}`) : []), ...withCompressedNames(name)]);
}

export function firstExisting(dir: string, names: string[]): string | null {
  for (const name of names) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The vasprun.xml of a run directory's first calculation, else its OUTCAR, else null. */
export function firstRunFile(dir: string): string | null {
  const [first] = runCalculations(dir);
  return first ? (first.vasprun ?? first.outcar) : null;
}

export function isRunDir(dir: string): boolean {
  return runCalculations(dir).length > 0;
}

/** POSCAR, CONTCAR (any prefix or suffix: relaxed.POSCAR, POSCAR_001) and *.vasp: one structure each. */
export const STRUCTURE_FILE = new RegExp(`^(.*[._-])?(POSCAR|CONTCAR)([._-].*)?$|\\.vasp${COMPRESSED_ENDING}$`, "i");
/** XDATCAR (any suffix): a trajectory. */
export const XDATCAR_FILE = /^XDATCAR([._-].*)?$/i;
/** *.extxyz and *.xyz, also compressed. */
export const EXTXYZ_FILE = new RegExp(`\\.(ext)?xyz${COMPRESSED_ENDING}$`, "i");

/** A dataset folder's split file `name` (train.extxyz, ...): plain, else kept gzipped (`name.gz`, a data repository's large split), else null. */
export function datasetSplitFile(dir: string, name: string): string | null {
  return firstExisting(dir, [name, `${name}.gz`]);
}

/**
 * The files of a run directory that go into the ledger as its labels: VASP's outputs and the inputs beside them,
 * also as custodian suffixes and compresses them. POTCAR never goes (VASP's licence forbids sharing it; its
 * POTCAR.spec names it), nor do WAVECAR, CHGCAR and other large files that no reader of the rebuild uses.
 */
export const LABEL_FILE = new RegExp(`^(vasprun\\.xml|OUTCAR|OSZICAR|INCAR|KPOINTS|POSCAR|CONTCAR|XDATCAR)([._-].*)?$|^POTCAR\\.spec$`);

export interface LabelFiles {
  /** Names of the regular files to copy, sorted. */
  files: string[];
  /** Everything else in the folder, with why it stays out. */
  left: { name: string; why: string }[];
}

/** Sorts a run directory's entries into the files that go into the ledger and the rest. */
export function labelFiles(dir: string): LabelFiles {
  const files: string[] = [];
  const left: { name: string; why: string }[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.isDirectory()) left.push({ name: `${e.name}/`, why: "a folder (a run is the files of one folder)" });
    else if (!e.isFile()) left.push({ name: e.name, why: "not a regular file (a link is never copied)" });
    else if (LABEL_FILE.test(e.name)) files.push(e.name);
    else if (/^POTCAR/.test(e.name)) left.push({ name: e.name, why: "VASP's licence forbids sharing POTCARs (POTCAR.spec names them)" });
    else left.push({ name: e.name, why: "not a VASP output or input the rebuild reads" });
  }
  return { files, left };
}
