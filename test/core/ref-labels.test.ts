import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { refLabelsFromCalculator } from "../../src/core/ref-labels.js";
import { infoNumber, type Frame } from "../../src/core/structure.js";

/** One H atom in a 2 A cube; every column after the position holds 1. */
function frame(comment: string, props = "species:S:1:pos:R:3:forces:R:3"): Frame {
  const columns = props.split(":").filter((_, i) => i % 3 === 2).reduce((n, c) => n + Number(c), 0);
  const atom = ["H", "0", "0", "0", ...Array(columns - 4).fill("1")].join(" ");
  return parseExtxyz(`1\nLattice="2 0 0 0 2 0 0 0 2" Properties=${props} ${comment}\n${atom}\n`, "f.xyz")[0].frame;
}

describe("refLabelsFromCalculator", () => {
  it("lets the policy choose between ASE's energy (sigma->0) and free_energy and keeps both", () => {
    const f = frame("energy=-1.5 free_energy=-1.25");
    const free = refLabelsFromCalculator(f, "free");
    expect([...free.frame.info.keys()]).toEqual(["REF_energy", "REF_free_energy", "REF_energy_sigma0"]);
    expect(infoNumber(free.frame, "REF_energy")).toBe(-1.25);
    expect(infoNumber(free.frame, "REF_energy_sigma0")).toBe(-1.5);
    expect(free.policyChose).toBe(true);
    expect(infoNumber(refLabelsFromCalculator(f, "sigma0").frame, "REF_energy")).toBe(-1.5);
  });

  it("takes a lone energy as it is, as a float, and renames the forces column in place", () => {
    const { frame: out, hasEnergy, hasForces, policyChose } = refLabelsFromCalculator(frame("energy=-10 config_type=bulk", "species:S:1:pos:R:3:forces:R:3:tags:I:1"), "sigma0");
    expect(out.info.get("REF_energy")).toEqual({ kind: "float", value: -10 });
    expect(out.info.has("energy")).toBe(false);
    expect(out.info.get("config_type")).toEqual({ kind: "string", value: "bulk" });
    expect([...out.arrays.keys()]).toEqual(["REF_forces", "tags"]);
    expect([hasEnergy, hasForces, policyChose]).toEqual([true, true, false]);
  });

  it("writes stress as 6 Voigt values and turns a virial into -virial / volume", () => {
    const stress = refLabelsFromCalculator(frame('stress="1 6 5 6 2 4 5 4 3"'), "free").frame;
    expect(stress.info.get("REF_stress")).toEqual({ kind: "array", dtype: "float", shape: [6], data: [1, 2, 3, 4, 5, 6] });
    const virial = refLabelsFromCalculator(frame('virial="8 0 0 0 16 0 0 0 -8"'), "free");
    expect(virial.frame.info.get("REF_stress")).toEqual({ kind: "array", dtype: "float", shape: [6], data: [-1, -2, 1, -0, -0, -0] });
    expect(virial.frame.info.has("virial")).toBe(false);
    const noCell = parseExtxyz('1\nvirial="8 0 0 0 16 0 0 0 -8"\nH 0 0 0\n', "m.xyz")[0].frame;
    const kept = refLabelsFromCalculator(noCell, "free");
    expect(kept.virialKept).toBe(true);
    expect(kept.frame.info.has("virial")).toBe(true);
  });

  it("keeps REF_* keys a frame already has and leaves their ASE counterparts alone", () => {
    const f = frame('REF_energy=-3 energy=-7 REF_stress="1 1 1 0 0 0" stress="2 0 0 0 2 0 0 0 2"', "species:S:1:pos:R:3:REF_forces:R:3");
    const out = refLabelsFromCalculator(f, "free");
    expect(infoNumber(out.frame, "REF_energy")).toBe(-3);
    expect(infoNumber(out.frame, "energy")).toBe(-7);
    expect(out.frame.info.get("REF_stress")).toEqual(f.info.get("REF_stress"));
    expect(out.frame.info.has("stress")).toBe(true);
    expect(out.hasForces).toBe(true);
  });

  it("says when a frame has no energy or forces", () => {
    const out = refLabelsFromCalculator(frame("", "species:S:1:pos:R:3:force:R:3"), "free");
    expect([out.hasEnergy, out.hasForces]).toEqual([false, false]);
    expect(out.frame.arrays.has("force")).toBe(true);
  });
});
