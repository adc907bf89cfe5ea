/**
 * ASE trajectories written by ASE itself (Debian's python3-ase, which the test environment installs), and what
 * ASE reads back from them (ase.json: numbers, positions, cell, pbc, the per-atom arrays and the scalar info values
 * with their Python types), for checking relabel-loop's .traj reader against the real writer and reader.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const WRITE_TRAJECTORIES = `
import json, sys
import numpy as np
from ase.build import bulk, fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import Trajectory, read, write
from ase.io.ulm import open as ulm_open

out = sys.argv[1]
rng = np.random.default_rng(7)

# md.traj: 60 frames of one 8-atom cell with model energies and forces; the item table outgrows its first 42 slots.
si = bulk("Si", "diamond", 5.43, cubic=True)
with Trajectory(out + "/md.traj", "w") as t:
    for i in range(60):
        a = si.copy()
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        a.calc = SinglePointCalculator(a, energy=-43.0 + 0.01 * i, forces=rng.normal(0, 0.3, (8, 3)))
        t.write(a)

# mixed.traj: the species change after the first frame (every frame then has its own header); a slab with pbc
# T T F (and fcc111's layer tags), a molecule without a cell, info values of every type, per-atom arrays.
with Trajectory(out + "/mixed.traj", "w") as t:
    a = bulk("Cu", "fcc", 3.6) * (2, 1, 1)
    a.info.update(step=0, temperature=300.0, converged=True, label='start "quoted" \\u00e9', spins=np.arange(3), meta={"a": 1})
    a.set_initial_magnetic_moments([1.5, -1.5])
    a.set_initial_charges([0.25, -0.25])
    a.set_momenta([[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])
    a.set_masses([63.5, 65.0])
    t.write(a)
    t.write(fcc111("Al", (2, 2, 2), vacuum=5.0))
    t.write(molecule("H2O"))
    b = bulk("Cu", "fcc", 3.6) * (2, 1, 1)
    b.rattle(0.02, seed=1)
    b.set_cell(b.cell * 1.01, scale_atoms=True)
    t.write(b)

# Positions on a 1e-4 grid, so that ASE's extxyz (8 decimals) holds them exactly: the same ids from either file.
with Trajectory(out + "/grid.traj", "w") as t:
    frames = []
    for i in range(12):
        a = bulk("NaCl", "rocksalt", 5.64) if i % 2 else bulk("MgO", "rocksalt", 4.21)
        a = a * (2, 1, 1)
        a.positions = np.round(a.positions + rng.normal(0, 0.1, a.positions.shape), 4)
        t.write(a)
        frames.append(a)
write(out + "/grid.extxyz", frames)

# info-first.traj: an item whose info is not its last key (ASE's TrajectoryWriter writes it last), with NaN.
with ulm_open(out + "/info-first.traj", "w", tag="ASE-Trajectory") as w:
    w.write(version=1, pbc=[True, True, True], numbers=np.array([14, 14]), info={"n": 3, "x": 2.0, "bad": float("nan")})
    w.write(positions=np.array([[0.0, 0.0, 0.0], [1.3575, 1.3575, 1.3575]]), cell=[[0.0, 2.715, 2.715], [2.715, 0.0, 2.715], [2.715, 2.715, 0.0]])
    w.sync()
    w.write(info={"n": 4, "x": 3.0}, positions=np.array([[0.0, 0.0, 0.0], [1.36, 1.36, 1.36]]), cell=[[0.0, 2.72, 2.72], [2.72, 0.0, 2.72], [2.72, 2.72, 0.0]])
    w.sync()

Trajectory(out + "/empty.traj", "w").close()
with ulm_open(out + "/other.ulm", "w", tag="GPAW") as w:
    w.write(x=1)

def dump(name):
    return [
        {
            "numbers": a.numbers.tolist(),
            "positions": a.positions.tolist(),
            "cell": a.cell.array.tolist(),
            "pbc": a.pbc.tolist(),
            "info": {k: [type(v).__name__, v] for k, v in a.info.items() if isinstance(v, (bool, int, float, str))},
            "arrays": {k: v.tolist() for k, v in a.arrays.items() if k not in ("numbers", "positions")},
        }
        for a in read(out + "/" + name, ":")
    ]

offsets = {name: [int(x) for x in ulm_open(out + "/" + name)._offsets] for name in ["md.traj", "mixed.traj"]}
json.dump({"frames": {name: dump(name) for name in ["md.traj", "mixed.traj", "grid.traj"]}, "offsets": offsets}, open(out + "/ase.json", "w"))
`;

export interface AseFrame {
  numbers: number[];
  positions: number[][];
  cell: number[][];
  pbc: boolean[];
  /** Scalar info values as [Python type name, value]. */
  info: Record<string, [string, unknown]>;
  /** atoms.arrays other than numbers and positions. */
  arrays: Record<string, number[] | number[][]>;
}

export interface AseTrajectories {
  dir: string;
  /** What ASE reads from md.traj, mixed.traj and grid.traj. */
  frames: Record<string, AseFrame[]>;
  /** Each item's byte offset in md.traj and mixed.traj (ULM's item table). */
  offsets: Record<string, number[]>;
}

/**
 * A new folder holding md.traj, mixed.traj, grid.traj (and grid.extxyz, the same frames), info-first.traj (info not
 * last in its item, with a NaN), empty.traj and other.ulm (a ULM file with another tag).
 */
export function aseTrajectories(): AseTrajectories {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-traj-"));
  execFileSync("/usr/bin/python3", ["-c", WRITE_TRAJECTORIES, dir]);
  const { frames, offsets } = JSON.parse(readFileSync(path.join(dir, "ase.json"), "utf8")) as Omit<AseTrajectories, "dir">;
  return { dir, frames, offsets };
}
