import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { foreignFormat, foreignFormatDetail } from "../../../src/core/formats/foreign.js";
import { aseTrajectories } from "../../helpers/ase-trajectories.js";

const trajectories = aseTrajectories();
const fileOf = (name: string): string => path.join(trajectories.dir, name);

describe("files of other formats", () => {
  it("are named from their first bytes, with the conversion when ASE reads them", () => {
    const head = (name: string): string => readFileSync(fileOf(name)).toString("latin1", 0, 512);
    expect(foreignFormat(head("md.traj"))?.name).toBe("an ASE trajectory");
    expect(foreignFormat(head("other.ulm"))?.aseReads).toBe(false);
    expect(foreignFormat("SQLite format 3\0...")?.name).toBe("an SQLite database (an ASE database?)");
    expect(foreignFormat("\x89HDF\r\n\x1a\n....")?.name).toBe("an HDF5 file (VASP's vaspout.h5?)");
    expect(foreignFormat("# generated\n\ndata_image0\n_cell_length_a 5.43\n")?.name).toBe("a CIF file");
    expect(foreignFormat("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n64\n")).toEqual({ name: "a LAMMPS dump (relabel rank --pool reads it, with --type-map when it has no element column)", aseReads: false });
    expect(foreignFormat("data_Si\nloop_\n_atom_site_label\n")?.name).toBe("a CIF file");
    expect(foreignFormat("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12345\n")?.name).toMatch(/^a Git LFS pointer, not the file's content/);
    expect(foreignFormat("8\nLattice=\"...\" data_x=1\n")).toBeUndefined();
    // A POSCAR or XDATCAR whose comment line came from a CIF's data block.
    expect(foreignFormat("data_NaCl\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\nNa Cl\n4 4\nDirect configuration=     1\n")).toBeUndefined();
    expect(foreignFormat(" vasp.6.3.0 18Jan22")).toBeUndefined();
    expect(foreignFormatDetail("runs/md.traj", head("md.traj"), "an extxyz file")).toBe(
      "an ASE trajectory, expected an extxyz file; convert it with: python3 -m ase convert runs/md.traj md.extxyz",
    );
  });
});
