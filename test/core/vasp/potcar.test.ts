import { describe, expect, it } from "vitest";
import { encutAdvice, parsePotcarSymbols, potcarFor, potcarSpec, potcarSymbolProblem, splitPotcar } from "../../../src/core/vasp/potcar.js";
import { potcarBlock } from "../../fixtures/potcar/layout.js";

describe("splitPotcar", () => {
  it("gives one block per element, named by its TITEL (Zr_sv, H.75, Fe_pv_GW), byte for byte", () => {
    const text = potcarBlock("Zr", "Zr_sv") + potcarBlock("H", "H.75") + potcarBlock("Fe", "Fe_pv_GW", "PAW_PBE_GW");
    const blocks = splitPotcar(text, "POTCAR");
    expect(blocks.map((b) => b.element)).toEqual(["Zr", "H", "Fe"]);
    expect(blocks.map((b) => b.text).join("")).toBe(text);
    expect(potcarFor(blocks, ["Fe", "Zr"], "POTCAR")).toBe(potcarBlock("Fe", "Fe_pv_GW", "PAW_PBE_GW") + potcarBlock("Zr", "Zr_sv"));
  });

  it("names the element a pick needs and the POTCAR lacks", () => {
    const blocks = splitPotcar(potcarBlock("Ti") + potcarBlock("O"), "inputs/POTCAR");
    expect(() => potcarFor(blocks, ["O", "Fe"], "inputs/POTCAR")).toThrow("inputs/POTCAR: has no block for Fe, expected one for every element of the picks (it has Ti, O)");
  });

  it.each([
    ["a cut file", potcarBlock("Ti") + potcarBlock("O").slice(0, 60), /^POTCAR:11: the last block has no "End of Dataset" line/],
    ["two blocks of one element", potcarBlock("O") + potcarBlock("O", "O_h"), /^POTCAR:11: a second block for O/],
    ["a block without TITEL", " End of Dataset\n", /^POTCAR:1: a block without a TITEL line/],
    ["no block at all", "\n\n", /^POTCAR:1: no pseudopotential block/],
    ["a TITEL without an element", potcarBlock("Q"), /^POTCAR:5: TITEL names no element/],
  ])("refuses %s with its line", (_, text, message) => {
    expect(() => splitPotcar(text, "POTCAR")).toThrow(message);
  });
});

describe("encutAdvice", () => {
  const blocks = splitPotcar(potcarBlock("Ti", "Ti_sv", "PAW_PBE", 274.61) + potcarBlock("O") + potcarBlock("Fe", "Fe_pv", "PAW_PBE", 293.238), "in/POTCAR");
  const picks = [
    { rank: 1, species: ["Ti", "O"] },
    { rank: 2, species: ["Fe"] },
    { rank: 3, species: ["Ti"] },
  ];
  const files = { incar: "in/INCAR", potcar: "in/POTCAR" };

  it("reads each block's ENMAX and potential", () => {
    expect(blocks.map((b) => [b.element, b.potential, b.enmax])).toEqual([["Ti", "Ti_sv", 274.61], ["O", "O", 400], ["Fe", "Fe_pv", 293.238]]);
  });

  it("names the cutoffs picks would get without ENCUT, and proposes 1.3 x the largest", () => {
    expect(encutAdvice(null, blocks, picks, files)).toEqual([
      "in/INCAR sets no ENCUT, so each run takes the largest ENMAX of its own POTCAR: 400 eV (rank 1), 293.238 eV (rank 2), 274.61 eV (rank 3); " +
        "dataset build refuses runs of mixed ENCUT: set one, such as 520 (1.3 x the largest ENMAX of in/POTCAR)",
    ]);
    expect(encutAdvice(null, blocks, picks, { ...files, incar: null })[0]).toMatch(/^in\/POTCAR comes without an INCAR, so each run takes/);
    // Picks that share their largest ENMAX get the same cutoff.
    expect(encutAdvice(null, blocks, [picks[0], { rank: 4, species: ["O", "Fe"] }], files)).toEqual([]);
  });

  it("names picks whose POTCAR asks more than ENCUT", () => {
    expect(encutAdvice(520, blocks, picks, files)).toEqual([]);
    expect(encutAdvice(280, blocks, picks, files)).toEqual([
      "in/INCAR sets ENCUT = 280, below the largest ENMAX in the POTCAR of rank 1 (O, 400 eV), rank 2 (Fe_pv, 293.238 eV): VASP's basis falls short of what in/POTCAR asks",
    ]);
  });
});

describe("POTCAR.spec", () => {
  it("lists a potential per species in the POSCAR's order, an element not named by its symbol", () => {
    expect(potcarSpec(["O", "Ti", "Fe"], new Map([["Ti", "Ti_sv"], ["Fe", "Fe_pv"]]))).toBe("O\nTi_sv\nFe_pv\n");
    expect(potcarSpec(["H", "C"], new Map())).toBe("H\nC\n");
  });

  it("takes names of the element's own potentials only", () => {
    expect(parsePotcarSymbols("Fe=Fe_pv, Zr=Zr_sv_GW,H=H.75")).toEqual(new Map([["Fe", "Fe_pv"], ["Zr", "Zr_sv_GW"], ["H", "H.75"]]));
    expect(parsePotcarSymbols("plain")).toEqual(new Map());
    expect(parsePotcarSymbols("Fe=O_s")).toBe('"O_s" is no potential of Fe: expected Fe or a variant such as Fe_pv');
    expect(parsePotcarSymbols("Fe:Fe_pv")).toBe('expected ELEMENT=POTENTIAL pairs such as Fe=Fe_pv,Ti=Ti_sv, or plain (got "Fe:Fe_pv")');
    expect(parsePotcarSymbols("Xx=Xx")).toBe('"Xx" is not an element symbol');
    expect(potcarSymbolProblem("F", "Fe_pv")).toBe('"Fe_pv" is no potential of F: expected F or a variant such as F_pv');
    expect(potcarSymbolProblem("Fe", "Fe")).toBeNull();
    expect(potcarSymbolProblem("H", "H1.25")).toBeNull();
  });
});
