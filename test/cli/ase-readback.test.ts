import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { infoNumber } from "../../src/core/structure.js";
import { realPath } from "../helpers/real-data.js";
import { runCli } from "../helpers/run-cli.js";

// ASE 3.22 (Debian's python3-ase) is what MACE reads extxyz with; the test environment installs it.
const ASE_DUMP = `
import json, sys, ase.io
out = []
for a in ase.io.read(sys.argv[1], index=":", format="extxyz"):
    out.append({
        "natoms": len(a),
        "symbols": a.get_chemical_symbols(),
        "pbc": [bool(x) for x in a.pbc],
        "cell": a.cell.array.flatten().tolist(),
        "positions": a.positions.flatten().tolist(),
        "forces": a.arrays["REF_forces"].flatten().tolist(),
        "info": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in a.info.items()},
    })
json.dump(out, sys.stdout)
`;

describe("files written by relabel convert", () => {
  it("are read back by ASE with every label and key unchanged", async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), "relabel-ase-")), "corpus.extxyz");
    const res = await runCli("convert", realPath("vasp"), "-o", out);
    expect(res.stdout).toMatch(/^wrote \d+ frames/);
    const ours = parseExtxyz(readFileSync(out), out).map((f) => f.frame);
    expect(ours.length).toBeGreaterThan(80);
    const ase = JSON.parse(execFileSync("/usr/bin/python3", ["-c", ASE_DUMP, out], { maxBuffer: 1 << 28 }).toString()) as Array<{
      natoms: number;
      symbols: string[];
      pbc: boolean[];
      cell: number[];
      positions: number[];
      forces: number[];
      info: Record<string, unknown>;
    }>;
    expect(ase).toHaveLength(ours.length);
    ours.forEach((frame, i) => {
      const a = ase[i];
      expect(a.symbols).toEqual(frame.symbols);
      expect(a.pbc).toEqual(frame.pbc);
      expect(a.cell).toEqual(Array.from(frame.cell));
      expect(a.positions).toEqual(Array.from(frame.positions));
      expect(a.forces).toEqual(Array.from((frame.arrays.get("REF_forces")!.data as Float64Array)));
      for (const key of ["REF_energy", "REF_free_energy", "REF_energy_sigma0"]) expect(a.info[key]).toBe(infoNumber(frame, key));
      const stress = frame.info.get("REF_stress");
      if (stress?.kind === "array") expect(a.info.REF_stress).toEqual(stress.data);
      else expect(a.info).not.toHaveProperty("REF_stress");
      expect(a.info.scf_converged).toBe((frame.info.get("scf_converged") as { value: boolean }).value);
      expect(a.info.source).toBe((frame.info.get("source") as { value: string }).value);
      expect(a.info.ionic_step).toBe(infoNumber(frame, "ionic_step"));
    });
  });
});
