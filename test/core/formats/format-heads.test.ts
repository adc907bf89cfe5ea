/** Formats told by a file's first bytes: trajectories ASE wrote, dumps LAMMPS wrote, and texts that are neither. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isAseTrajectory, isLammpsDump, isUlm } from "../../../src/core/formats/format-heads.js";
import { aseTrajectories } from "../../helpers/ase-trajectories.js";
import { DUMPS, dumpText } from "../../helpers/lammps-dumps.js";

const latin1Head = (file: string): string => readFileSync(file).subarray(0, 64).toString("latin1");

describe("format heads", () => {
  it("know ASE's trajectories from other ULM files and from text", () => {
    const { dir } = aseTrajectories();
    const head = latin1Head(path.join(dir, "md.traj"));
    expect([isUlm(head), isAseTrajectory(head)]).toEqual([true, true]);
    // The magic before ULM version 3, and a ULM file with another tag (a GPAW .gpw).
    expect(isAseTrajectory(`AFFormat${head.slice(8)}`)).toBe(true);
    const gpw = `${head.slice(0, 8)}${"GPAW".padEnd(16)}${head.slice(24)}`;
    expect([isUlm(gpw), isAseTrajectory(gpw)]).toEqual([true, false]);
    for (const text of ["2\nProperties=species:S:1:pos:R:3\n", "- of Ul", ""]) expect(isUlm(text)).toBe(false);
  });

  it("know LAMMPS text dumps by their first item", () => {
    for (const name of DUMPS) expect(isLammpsDump(dumpText(name))).toBe(true);
    expect(isLammpsDump("ITEM: UNITS\nmetal\n")).toBe(true);
    for (const text of ["ITEM: ATOMS id type x y z\n", " ITEM: TIMESTEP\n", "ITEM: TIMESTEPS\n", "2\n\nSi 0 0 0\n"]) expect(isLammpsDump(text)).toBe(false);
  });
});
