import { describe, expect, it } from "vitest";
import { benchFrame, energyPolicyOf, labelKeys, labelsHash, stressTensor, structuresHash, type BenchFrame } from "../../../src/core/bench/labels.js";
import { InputError } from "../../../src/core/errors.js";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";

function frameOf(text: string) {
  return parseExtxyz(text, "t.extxyz")[0].frame;
}

const PRED = { file: "pred.extxyz", keys: labelKeys("MACE_"), requireForces: true, hint: "see --pred-prefix" };

describe("stressTensor", () => {
  it("expands 6 Voigt values (xx yy zz yz xz xy) symmetrically", () => {
    const t = stressTensor({ kind: "array", dtype: "float", shape: [6], data: [1, 2, 3, 4, 5, 6] });
    expect(Array.from(t!)).toEqual([1, 6, 5, 6, 2, 4, 5, 4, 3]);
  });

  it("reads 9 flat values column-major and a 3x3 array row-major", () => {
    const flat = stressTensor({ kind: "array", dtype: "float", shape: [9], data: [1, 2, 3, 4, 5, 6, 7, 8, 9] });
    expect(Array.from(flat!)).toEqual([1, 4, 7, 2, 5, 8, 3, 6, 9]);
    const nested = stressTensor({ kind: "array", dtype: "float", shape: [3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9] });
    expect(Array.from(nested!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("rejects other shapes", () => {
    expect(stressTensor({ kind: "array", dtype: "float", shape: [3], data: [1, 2, 3] })).toBeUndefined();
    expect(stressTensor({ kind: "float", value: 1 })).toBeUndefined();
  });
});

describe("benchFrame", () => {
  it("reads MACE_energy, MACE_forces and a _JSON 3x3 MACE_stress, config_type and head", () => {
    const f = frameOf(
      '1\nProperties=species:S:1:pos:R:3:MACE_forces:R:3 MACE_energy=-1.5 MACE_stress="_JSON [[1, 2, 3], [2, 5, 6], [3, 6, 9]]" config_type=bulk head=omat_pbe\nH 0 0 0 0.1 0.2 0.3\n',
    );
    const b = benchFrame(f, 0, 1, PRED);
    expect(b.labels.energy).toBe(-1.5);
    expect(Array.from(b.labels.forces!)).toEqual([0.1, 0.2, 0.3]);
    expect(Array.from(b.labels.stress!)).toEqual([1, 2, 3, 2, 5, 6, 3, 6, 9]);
    expect(b.configType).toBe("bulk");
    expect(b.head).toBe("omat_pbe");
  });

  it("calls a frame without config_type Default", () => {
    const b = benchFrame(frameOf("1\nProperties=species:S:1:pos:R:3:MACE_forces:R:3 MACE_energy=-1.5\nH 0 0 0 0 0 0\n"), 0, 1, PRED);
    expect(b.configType).toBe("Default");
    expect(b.head).toBeUndefined();
  });

  it("fails in one line naming file, line and key when MACE_energy is missing", () => {
    const f = frameOf("1\nProperties=species:S:1:pos:R:3:MACE_forces:R:3 energy=-1.5\nH 0 0 0 0 0 0\n");
    expect(() => benchFrame(f, 3, 17, PRED)).toThrow(InputError);
    expect(() => benchFrame(f, 3, 17, PRED)).toThrow(/^pred\.extxyz:17: frame 3: no MACE_energy in the comment line \(see --pred-prefix\)$/);
  });

  it("fails when predictions have no force column, forces have the wrong width or values are not finite", () => {
    expect(() => benchFrame(frameOf("1\nMACE_energy=-1.5\nH 0 0 0\n"), 0, 1, PRED)).toThrow(/no MACE_forces column/);
    expect(() => benchFrame(frameOf("1\nProperties=species:S:1:pos:R:3:MACE_forces:R:2 MACE_energy=1\nH 0 0 0 0 0\n"), 0, 1, PRED)).toThrow(/expected 3 components per atom, found 2/);
    expect(() => benchFrame(frameOf("1\nProperties=species:S:1:pos:R:3:MACE_forces:R:3 MACE_energy=nan\nH 0 0 0 0 0 0\n"), 0, 1, PRED)).toThrow(/MACE_energy: expected a finite number/);
    expect(() => benchFrame(frameOf('1\nProperties=species:S:1:pos:R:3:MACE_forces:R:3 MACE_energy=1 MACE_stress="1 2 3"\nH 0 0 0 0 0 0\n'), 0, 1, PRED)).toThrow(/MACE_stress: expected 6 \(Voigt\), 9 or 3x3 numbers/);
  });

  it("rejects a frame without atoms", () => {
    expect(() => benchFrame(frameOf("0\nMACE_energy=0\n"), 0, 1, PRED)).toThrow(/^pred\.extxyz:1: frame 0: no atoms/);
  });

  it("lets a reference frame go without forces when forces are not required", () => {
    const b = benchFrame(frameOf("1\nREF_energy=-2\nH 0 0 0\n"), 0, 1, { ...PRED, keys: labelKeys("REF_"), requireForces: false });
    expect(b.labels.forces).toBeUndefined();
    expect(b.labels.energy).toBe(-2);
  });

  it("uses explicit keys such as energy_xtb / forces_xtb", () => {
    const keys = labelKeys("REF_", { energy: "energy_xtb", forces: "forces_xtb" });
    expect(keys).toEqual({ energy: "energy_xtb", forces: "forces_xtb", stress: "REF_stress" });
    const b = benchFrame(frameOf("1\nProperties=species:S:1:pos:R:3:forces_xtb:R:3 energy_xtb=-3\nH 0 0 0 1 2 3\n"), 0, 1, { ...PRED, keys });
    expect(b.labels.energy).toBe(-3);
    expect(Array.from(b.labels.forces!)).toEqual([1, 2, 3]);
  });
});

function labelled(energy: number, free?: number, sigma0?: number, x = 0): BenchFrame {
  const text = `1\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=${energy}${free !== undefined ? ` REF_free_energy=${free}` : ""}${sigma0 !== undefined ? ` REF_energy_sigma0=${sigma0}` : ""}\nH ${x} 0 0 0 0 0\n`;
  return benchFrame(frameOf(text), 0, 1, { ...PRED, keys: labelKeys("REF_"), freeEnergyKey: "REF_free_energy", sigma0EnergyKey: "REF_energy_sigma0" });
}

describe("energyPolicyOf", () => {
  it("tells free from sigma0 from the energies relabel convert writes, and flags a mix", () => {
    expect(energyPolicyOf([labelled(-5, -5, -5.1), labelled(-4, -4, -4.2)])).toBe("free");
    expect(energyPolicyOf([labelled(-5.1, -5, -5.1)])).toBe("sigma0");
    expect(energyPolicyOf([labelled(-5, -5, -5.1), labelled(-4.2, -4, -4.2)])).toBe("mixed");
    expect(energyPolicyOf([labelled(-5), labelled(-5, -5, -5)])).toBeNull();
  });
});

describe("reference hashes", () => {
  it("ignore frame order, follow structures, and labels change only the labels hash", () => {
    const a = labelled(-5, undefined, undefined, 0);
    const b = labelled(-4, undefined, undefined, 1);
    expect(structuresHash([a, b])).toBe(structuresHash([b, a]));
    expect(labelsHash([a, b])).toBe(labelsHash([b, a]));
    const b2 = labelled(-4.5, undefined, undefined, 1);
    expect(structuresHash([a, b2])).toBe(structuresHash([a, b]));
    expect(labelsHash([a, b2])).not.toBe(labelsHash([a, b]));
    expect(structuresHash([a])).not.toBe(structuresHash([a, b]));
  });
});
