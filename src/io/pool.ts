/**
 * Candidate pools for ranking: extxyz files (every frame), XDATCAR, ASE trajectories and LAMMPS dumps (every step),
 * folders of POSCAR/CONTCAR/*.vasp/*.extxyz/*.xyz/XDATCAR/*.traj/*.lammpstrj files, and VASP run directories. Each
 * source is hashed so the ranking records exactly what it ranked.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { InputError } from "../core/errors.js";
import { extxyzNonFiniteGeometryError } from "../core/formats/finite-geometry.js";
import { isLammpsDump, isUlm } from "../core/formats/format-heads.js";
import type { Frame } from "../core/structure.js";
import type { ExtxyzReadTrace } from "./extxyz.js";
import { folderEntries, VisitedFolders } from "./folder-entries.js";
import { readHead, readSmallText } from "./open.js";
import { COMPRESSED_ENDING, EXTXYZ_FILE, firstExisting, isRunDir, STRUCTURE_FILE, withCompressedNames, XDATCAR_FILE } from "./run-files.js";

export interface PoolFrame {
  frame: Frame;
  /** The file (or run directory) the frame came from, as the user named it. */
  source: string;
  /** 0-based frame index within that source. */
  index: number;
}

export interface PoolSource {
  path: string;
  kind: "extxyz" | "poscar" | "xdatcar" | "traj" | "lammps-dump" | "rundir";
  /** sha256 of the file; for a run directory, of its vasprun.xml or OUTCAR (the file frames came from). */
  sha256: string;
  frames: number;
}

/** What reading a pool unit gave besides its frames. */
export interface PoolUnitRead {
  /** The file whose bytes were read (a run directory's vasprun.xml or OUTCAR). */
  file: string;
  /** Why a run directory gave fewer structures than it holds steps: it stopped early, steps left out. */
  notes: string[];
}

const TRAJ_FILE = /\.traj$/i;
/** vasprun.xml and OUTCAR, with custodian's suffixes and compressed. */
const VASP_OUTPUT_FILE = /^(vasprun\.xml|OUTCAR)([._-].*)?$/;
const LAMMPS_DUMP_FILE = new RegExp(`\\.(lammpstrj|lammpsdump|dump)${COMPRESSED_ENDING}$`, "i");

/** Files and run directories a pool path stands for, in sorted order (symbolic links followed, each folder once). */
async function expandPoolPath(p: string, unread: string[], visited = new VisitedFolders()): Promise<{ path: string; kind: PoolSource["kind"] }[]> {
  let info;
  try {
    info = await stat(p);
  } catch {
    throw new InputError(p, undefined, "no such file or directory");
  }
  // A run's vasprun.xml or OUTCAR stands for its run directory (which reads the run's steps once, whichever it holds).
  if (info.isFile() && VASP_OUTPUT_FILE.test(path.basename(p)) && isRunDir(path.dirname(p))) return [{ path: path.dirname(p), kind: "rundir" }];
  // A file named otherwise is an ASE trajectory or a LAMMPS dump by its first bytes, else extxyz (whose reader
  // reports read errors).
  if (info.isFile()) return [{ path: p, kind: fileKind(path.basename(p)) ?? kindByContent(await readHead(p, 64).catch(() => "")) }];
  if (!(await visited.first(p))) return [];
  if (isRunDir(p)) return [{ path: p, kind: "rundir" }];
  const out: { path: string; kind: PoolSource["kind"] }[] = [];
  for (const e of await folderEntries(p, { dangling: true })) {
    const kind = e.kind === "file" ? fileKind(e.name) : undefined;
    if (e.kind === "dir") out.push(...(await expandPoolPath(e.path, unread, visited)));
    else if (kind) out.push({ path: e.path, kind });
    else unread.push(e.kind === "dangling" ? `${e.path} (a link to nothing)` : e.path);
  }
  return out;
}

/** What a file in a pool is by its name; undefined for files a pool folder does not hold structures in. */
function fileKind(name: string): Exclude<PoolSource["kind"], "rundir"> | undefined {
  if (STRUCTURE_FILE.test(name)) return "poscar";
  if (XDATCAR_FILE.test(name)) return "xdatcar";
  if (EXTXYZ_FILE.test(name)) return "extxyz";
  if (TRAJ_FILE.test(name)) return "traj";
  if (LAMMPS_DUMP_FILE.test(name)) return "lammps-dump";
  return undefined;
}

function kindByContent(head: string): "traj" | "lammps-dump" | "extxyz" {
  return isUlm(head) ? "traj" : isLammpsDump(head) ? "lammps-dump" : "extxyz";
}

export interface PoolUnit {
  path: string;
  kind: PoolSource["kind"];
  /** For a LAMMPS dump: the element of each atom type (type 1 first), when the dump has no element column. */
  typeMap?: readonly string[];
}

/**
 * The files and run directories the pool paths stand for, in a stable order (paths as given, folders sorted).
 * `typeMap` names the elements of LAMMPS dumps' atom types; `unread` gets the files in folders that are none of these.
 */
export async function poolUnits(paths: string[], typeMap?: readonly string[], unread: string[] = []): Promise<PoolUnit[]> {
  const units: PoolUnit[] = [];
  for (const p of paths) {
    const found = await expandPoolPath(p, unread);
    if (found.length === 0) throw new InputError(p, undefined, "no structures (POSCAR, CONTCAR, *.vasp, *.extxyz, *.xyz, XDATCAR, *.traj, *.lammpstrj or VASP runs) found in this folder");
    units.push(...found.map((u) => (u.kind === "lammps-dump" && typeMap ? { ...u, typeMap } : u)));
  }
  return units;
}

/**
 * The frames of one pool unit, streamed in batches (one promise per batch, not per frame). Bad input is an
 * InputError naming the file (rank leaves that source out and says so). What a source leaves out (the steps of a
 * run cut short, steps that are not DFT, a trajectory's last step cut inside) comes back as notes to report.
 * `trace` learns about a plain extxyz file (ExtxyzReadTrace).
 */
export async function* readPoolUnit(unit: PoolUnit, trace?: ExtxyzReadTrace): AsyncGenerator<PoolFrame[], PoolUnitRead, void> {
  const source = unit.path.split(path.sep).join("/");
  let index = 0;
  // The readers load only when a pool has such files (rank starts its selection before they load).
  if (unit.kind === "poscar") {
    const { parsePoscar } = await import("../core/vasp/poscar.js");
    const { frame } = parsePoscar(await readSmallText(unit.path, "a POSCAR"), { file: unit.path });
    yield [{ frame, source, index }];
    return { file: unit.path, notes: [] };
  }
  if (unit.kind === "xdatcar" || unit.kind === "traj" || unit.kind === "lammps-dump") {
    const steps =
      unit.kind === "xdatcar"
        ? (await import("./xdatcar.js")).readXdatcar(unit.path)
        : unit.kind === "traj"
          ? (await import("./ase-trajectory.js")).readAseTrajectory(unit.path)
          : (await import("./lammps-dump.js")).readLammpsDump(unit.path, unit.typeMap ?? null);
    for (let next = await steps.next(); ; next = await steps.next()) {
      if (next.done) return { file: unit.path, notes: next.value };
      yield next.value.map((frame) => ({ frame, source, index: index++ }));
    }
  }
  if (unit.kind === "extxyz") {
    const { readExtxyzBatchesWithLines } = await import("./extxyz.js");
    for await (const items of readExtxyzBatchesWithLines(unit.path, trace)) {
      yield items.map(({ frame, line }) => {
        // nan or inf read as numbers: no structure has them (the scan workers check the same).
        const error = extxyzNonFiniteGeometryError(unit.path, frame, line);
        if (error) throw error;
        return { frame, source, index: index++ };
      });
    }
    return { file: unit.path, notes: [] };
  }
  const read: PoolUnitRead = { file: unit.path, notes: [] };
  const { readInputs } = await import("./inputs.js");
  for await (const event of readInputs([unit.path], { energy: "free", frames: "all" })) {
    if (event.type === "frame") yield [{ frame: event.frame, source, index: index++ }];
    else {
      const problem = event.report.problems[0];
      if (problem) throw new InputError(unit.path, undefined, problem);
      const { primary, skipped, notes } = event.report;
      read.file = primary ?? read.file;
      read.notes.push(...notes, ...skipped.map((s) => `left out ${s.block === null ? "" : `block ${s.block}: `}${s.reason}`));
    }
  }
  // Machine-learned force-field MD steps (counted by the OUTCAR and vasprun.xml readers alike) are in the run's
  // trajectory, which ranks them all.
  const trajectory = firstExisting(unit.path, withCompressedNames("XDATCAR"));
  if (trajectory && read.notes.some((note) => note.includes("machine-learned force-field steps left out"))) {
    read.notes.push(`every MD step's structure is in ${trajectory}: give that file to --pool to rank them all`);
  }
  return read;
}
