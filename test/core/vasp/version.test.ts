import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { vaspVersionFromHead } from "../../../src/core/vasp/version.js";
import { realPath } from "../../helpers/real-data.js";

const head = (rel: string) => readFileSync(realPath(rel), "latin1").slice(0, 4096);

describe("vaspVersionFromHead", () => {
  it("reads the same numeric version from an OUTCAR and a vasprun.xml of one run", () => {
    expect(vaspVersionFromHead(head("vasp/dpdata_h2o_md10/OUTCAR"))).toBe("5.4.4");
    expect(vaspVersionFromHead(head("vasp/dpdata_h2o_md10/vasprun.xml"))).toBe("5.4.4");
    expect(vaspVersionFromHead(head("vasp/dpdata_Ti-O-Ti_static_v630/vasprun.xml"))).toBe("6.3.0");
  });

  it("returns null for text that is not VASP output", () => {
    expect(vaspVersionFromHead("2\nLattice=...\n")).toBeNull();
  });
});
