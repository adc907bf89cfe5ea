import { describe, expect, it } from "vitest";
import { potcarFor, splitPotcar } from "../../../src/core/vasp/potcar.js";
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
    ["a cut file", potcarBlock("Ti") + potcarBlock("O").slice(0, 60), /^POTCAR:10: the last block has no "End of Dataset" line/],
    ["two blocks of one element", potcarBlock("O") + potcarBlock("O", "O_h"), /^POTCAR:10: a second block for O/],
    ["a block without TITEL", " End of Dataset\n", /^POTCAR:1: a block without a TITEL line/],
    ["no block at all", "\n\n", /^POTCAR:1: no pseudopotential block/],
    ["a TITEL without an element", potcarBlock("Q"), /^POTCAR:5: TITEL names no element/],
  ])("refuses %s with its line", (_, text, message) => {
    expect(() => splitPotcar(text, "POTCAR")).toThrow(message);
  });
});
