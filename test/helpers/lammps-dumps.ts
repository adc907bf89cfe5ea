/**
 * LAMMPS text dumps written by LAMMPS itself (Debian's `lammps` package, which the test environment installs): a
 * short NVT run of a two-type crystal in a triclinic box, dumped as `dump custom` with unscaled positions and forces,
 * `dump atom` (scaled positions, atoms in processor order) and `dump custom` with an element column and unwrapped
 * positions. Beside them, what ASE's lammps-dump-text reader makes of each (ase.json), as the reference.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** Type 1 is Hf, type 2 is O (the masses say so too); 30 % of the sites become O. */
export const TYPE_MAP = ["Hf", "O"];
export const DUMPS = ["unscaled.lammpstrj", "atom.lammpstrj", "element.lammpstrj"] as const;

const LAMMPS_INPUT = `
units metal
boundary p p p
atom_style atomic
lattice fcc 4.0
region box prism 0 3 0 3 0 3 0.4 0.3 -0.2
create_box 2 box
create_atoms 1 box
set type 1 type/fraction 2 0.3 12345
mass 1 178.49
mass 2 15.999
pair_style lj/cut 6.0
pair_coeff * * 0.01 2.5
velocity all create 600.0 4928459 loop geom
fix 1 all nvt temp 600.0 600.0 0.1
dump d1 all custom 10 unscaled.lammpstrj id type x y z fx fy fz
dump d2 all atom 10 atom.lammpstrj
dump d3 all custom 10 element.lammpstrj id element xu yu zu
dump_modify d3 element Hf O
run 20
`;

const READ_WITH_ASE = `
import json, sys
from ase.io import read
out = {}
for name in sys.argv[2:]:
    frames = read(sys.argv[1] + "/" + name, ":", format="lammps-dump-text", specorder=${JSON.stringify(TYPE_MAP)})
    out[name] = [{"symbols": a.get_chemical_symbols(), "positions": a.positions.tolist(), "cell": a.cell.array.tolist(), "pbc": a.pbc.tolist()} for a in frames]
json.dump(out, sys.stdout)
`;

export interface AseFrame {
  symbols: string[];
  positions: number[][];
  cell: number[][];
  pbc: boolean[];
}

let written: { dir: string; ase: Record<string, AseFrame[]> } | undefined;

/** The dumps' folder and ASE's reading of each (written once per test process). */
export function lammpsDumps(): { dir: string; ase: Record<string, AseFrame[]> } {
  if (written) return written;
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-lammps-"));
  writeFileSync(path.join(dir, "in.md"), LAMMPS_INPUT);
  execFileSync("lmp", ["-in", "in.md", "-log", "none", "-screen", "none"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const ase = JSON.parse(execFileSync("/usr/bin/python3", ["-c", READ_WITH_ASE, dir, ...DUMPS], { encoding: "utf8", maxBuffer: 64 << 20 })) as Record<string, AseFrame[]>;
  written = { dir, ase };
  return written;
}

/** The text of one of the dumps. */
export function dumpText(name: (typeof DUMPS)[number]): string {
  return readFileSync(path.join(lammpsDumps().dir, name), "utf8");
}
