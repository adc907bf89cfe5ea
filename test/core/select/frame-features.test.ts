import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { DEFAULT_FEATURES_KEY, structureFeatures } from "../../../src/core/select/frame-features.js";

// Frames as ASE 3.22.1 writes mace_eval_configs' three descriptor outputs (checked with ase.io.write): per atom
// (its default), the mean over atoms as an info vector, and per-element means as a JSON dict.
const frameOf = (text: string) => parseExtxyz(Buffer.from(text), "eval.xyz")[0].frame;
const PER_ATOM = `2
Lattice="0.0 2.715 2.715 2.715 0.0 2.715 2.715 2.715 0.0" Properties=species:S:1:pos:R:3:MACE_descriptors:R:3 MACE_energy=-1.5 pbc="T T T"
Si 0.0 0.0 0.0 1.0 -2.0 0.5
Si 1.3575 1.3575 1.3575 3.0 4.0 0.25
`;
const MEAN = `2
Lattice="0.0 2.715 2.715 2.715 0.0 2.715 2.715 2.715 0.0" Properties=species:S:1:pos:R:3 MACE_descriptors="0.2857142857142857 0.4285714285714286 -1.5" pbc="T T T"
Si 0.0 0.0 0.0
Si 1.3575 1.3575 1.3575
`;
const PER_ELEMENT = `3
Properties=species:S:1:pos:R:3 MACE_descriptors="_JSON {\\"O\\": [0.1, 0.2], \\"H\\": [0.3, 0.4]}" pbc="F F F"
O 0.0 0.0 0.119
H 0.0 0.763 -0.477
H 0.0 -0.763 -0.477
`;

describe("structureFeatures", () => {
  it("averages per-atom descriptors over the atoms, as mace_eval_configs' mean aggregation does", () => {
    expect(DEFAULT_FEATURES_KEY).toBe("MACE_descriptors");
    expect([...(structureFeatures(frameOf(PER_ATOM), DEFAULT_FEATURES_KEY) as Float64Array)]).toEqual([2, 1, 0.375]);
  });

  it("takes an info vector (the mean aggregation's own output) and a scalar as they are", () => {
    expect([...(structureFeatures(frameOf(MEAN), "MACE_descriptors") as Float64Array)]).toEqual([0.2857142857142857, 0.4285714285714286, -1.5]);
    expect([...(structureFeatures(frameOf(PER_ATOM), "MACE_energy") as Float64Array)]).toEqual([-1.5]);
  });

  it("per element: each listed element's mean times its atom fraction, zeros for one the structure lacks", () => {
    const water = frameOf(PER_ELEMENT);
    // H: [0.3, 0.4] x 2/3; O: [0.1, 0.2] x 1/3; Si absent.
    const fromDict = structureFeatures(water, "MACE_descriptors", ["H", "O", "Si"]) as Float64Array;
    [0.2, 0.8 / 3, 0.1 / 3, 0.2 / 3, 0, 0].forEach((v, j) => expect(fromDict[j]).toBeCloseTo(v, 15));
    // Per atom: Si's two atoms sum to [4, 2, 0.75], over 2 atoms; a listed element the structure lacks gives zeros.
    expect([...(structureFeatures(frameOf(PER_ATOM), "MACE_descriptors", ["O", "Si"]) as Float64Array)]).toEqual([0, 0, 0, 2, 1, 0.375]);
    expect(structureFeatures(frameOf(MEAN), "MACE_descriptors", ["Si"])).toBe(
      "MACE_descriptors is one vector per structure; per-element features need per-atom descriptors (mace_eval_configs' default) or --descriptor_aggregation_method per_element_mean",
    );
    expect(structureFeatures(frameOf(PER_ELEMENT.replace('\\"H\\": [0.3, 0.4]', '\\"H\\": [0.3]')), "MACE_descriptors", ["H", "O"])).toMatch(/^MACE_descriptors has (1 values for H but 2|2 values for O but 1) for another element$/);
  });

  it("says why a frame has no usable features", () => {
    expect(structureFeatures(frameOf(PER_ELEMENT), "MACE_descriptors")).toBe(
      "MACE_descriptors is given per element (mace_eval_configs --descriptor_aggregation_method per_element_mean): rank it with --features-per-element, or write per-atom descriptors (its default) or --descriptor_aggregation_method mean",
    );
    expect(structureFeatures(frameOf(MEAN), "SOAP")).toBe(
      "has no SOAP (per-atom array or info vector; mace_eval_configs writes it with --return_descriptors)",
    );
    expect(structureFeatures(frameOf(PER_ATOM.replace("0.5\n", "nan\n")), "MACE_descriptors")).toBe("MACE_descriptors value 2 is NaN, not a finite number");
    expect(structureFeatures(frameOf(MEAN.replace('"0.2857142857142857 0.4285714285714286 -1.5"', '"T F T"')), "MACE_descriptors")).toBe(
      "MACE_descriptors must be a vector of numbers per structure or a per-atom array of numbers",
    );
    expect(structureFeatures(frameOf(PER_ATOM.replace("MACE_descriptors:R:3", "MACE_descriptors:S:1:x:R:2")), "MACE_descriptors")).toBe(
      "the per-atom MACE_descriptors must be numbers (got type S)",
    );
  });
});
