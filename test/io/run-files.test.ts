/** Which files of a VASP run folder go into the ledger as its labels (`relabel round results`). */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { labelFiles } from "../../src/io/run-files.js";

const root = mkdtempSync(path.join(tmpdir(), "relabel-run-files-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("labelFiles", () => {
  it("takes VASP's outputs and inputs, also custodian's suffixed and compressed ones, and says why the rest stays out", () => {
    const dir = path.join(root, "run");
    mkdirSync(path.join(dir, "relax1"), { recursive: true });
    const names = ["vasprun.xml.relax2.gz", "OUTCAR.relax1.gz", "OSZICAR", "INCAR", "KPOINTS", "POSCAR", "CONTCAR", "XDATCAR", "POTCAR.spec", "POTCAR", "WAVECAR", "CHGCAR", "vasp.out"];
    for (const n of names) writeFileSync(path.join(dir, n), "x\n");
    symlinkSync(path.join(dir, "INCAR"), path.join(dir, "INCAR.linked"));
    const { files, left } = labelFiles(dir);
    expect(files).toEqual(["CONTCAR", "INCAR", "KPOINTS", "OSZICAR", "OUTCAR.relax1.gz", "POSCAR", "POTCAR.spec", "XDATCAR", "vasprun.xml.relax2.gz"]);
    expect(left).toEqual([
      { name: "CHGCAR", why: "not a VASP output or input the rebuild reads" },
      { name: "INCAR.linked", why: "not a regular file (a link is never copied)" },
      { name: "POTCAR", why: "VASP's licence forbids sharing POTCARs (POTCAR.spec names them)" },
      { name: "WAVECAR", why: "not a VASP output or input the rebuild reads" },
      { name: "relax1/", why: "a folder (a run is the files of one folder)" },
      { name: "vasp.out", why: "not a VASP output or input the rebuild reads" },
    ]);
  });
});
