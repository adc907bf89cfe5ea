import { describe, expect, it } from "vitest";
import { compareStep } from "../../../src/core/vasp/crosscheck.js";
import type { VaspStep } from "../../../src/core/vasp/types.js";

const step = {
  index: 0,
  symbols: ["Si", "Si"],
  freeEnergy: -10.83820711,
  energySigma0: -10.83725105,
} as VaspStep;

describe("compareStep", () => {
  it("accepts energies equal to the printed precision", () => {
    expect(compareStep(step, { natoms: 2, freeEnergy: -10.838207, energySigma0: -10.837251 })).toBeNull();
  });

  it("names every disagreement", () => {
    const msg = compareStep(step, { natoms: 3, freeEnergy: -10.9, energySigma0: -10.83725105 });
    expect(msg).toBe("step 0: 2 atoms vs 3 in OUTCAR; free energy -10.83820711 vs -10.9 eV in OUTCAR");
  });

  it("reports a step missing from OUTCAR", () => {
    expect(compareStep(step, undefined)).toBe("step 0: in vasprun.xml but not in OUTCAR");
  });
});
