import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { Frame } from "../../src/core/structure.js";
import { readAseTrajectory } from "../../src/io/ase-trajectory.js";
import { aseTrajectories } from "../helpers/ase-trajectories.js";

const trajectories = aseTrajectories();

async function readAll(file: string): Promise<{ batches: Frame[][]; notes: string[] }> {
  const batches: Frame[][] = [];
  const reading = readAseTrajectory(file);
  for (let next = await reading.next(); ; next = await reading.next()) {
    if (next.done) return { batches, notes: next.value };
    batches.push(next.value);
  }
}

describe("readAseTrajectory", () => {
  it("streams the frames and notes the info values it leaves out", async () => {
    const { batches, notes } = await readAll(path.join(trajectories.dir, "mixed.traj"));
    expect(batches.flat().map((f) => f.natoms)).toEqual([2, 8, 3, 2]);
    expect(notes).toEqual(["info spins, meta, adsorbate_info: lists, dicts or arrays, not carried to selected.extxyz"]);
    expect((await readAll(path.join(trajectories.dir, "md.traj"))).notes).toEqual([]);
  });

  it("refuses a gzipped trajectory and a missing file in one line each", async () => {
    const gzipped = path.join(trajectories.dir, "md.traj.gz");
    writeFileSync(gzipped, gzipSync(readFileSync(path.join(trajectories.dir, "md.traj"))));
    await expect(readAll(gzipped)).rejects.toThrow(`${gzipped}: gzip-compressed: an ASE trajectory is read uncompressed (gunzip it first)`);
    const missing = path.join(trajectories.dir, "none.traj");
    await expect(readAll(missing)).rejects.toThrow(`${missing}: no such file`);
  });
});
