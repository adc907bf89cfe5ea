import { describe, expect, it } from "vitest";
import { labelFrame } from "../../../src/core/vasp/labels.js";
import type { VaspStep } from "../../../src/core/vasp/types.js";

function step(overrides: Partial<VaspStep> = {}): VaspStep {
  return {
    index: 2,
    symbols: ["O", "H", "H"],
    positions: new Float64Array([0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0]),
    cell: new Float64Array([10, 0, 0, 0, 10, 0, 0, 0, 10]),
    forces: new Float64Array([0.1, 0, 0, -0.05, 0.01, 0, -0.05, -0.01, 0]),
    stress: new Float64Array([0.01, 0.02, 0.03, 0.004, 0.005, 0.006]),
    freeEnergy: -14.2,
    energySigma0: -14.19,
    scfSteps: 15,
    nelm: 15,
    scfConverged: false,
    ...overrides,
  };
}

describe("labelFrame (the label contract)", () => {
  it("puts the free energy in REF_energy by default and keeps both energies", () => {
    const f = labelFrame(step(), { source: "runs/a", vaspVersion: "5.4.4", energy: "free" });
    expect(f.info.get("REF_energy")).toEqual({ kind: "float", value: -14.2 });
    expect(f.info.get("REF_free_energy")).toEqual({ kind: "float", value: -14.2 });
    expect(f.info.get("REF_energy_sigma0")).toEqual({ kind: "float", value: -14.19 });
  });

  it("puts the sigma->0 energy in REF_energy when asked", () => {
    const f = labelFrame(step(), { source: "runs/a", vaspVersion: null, energy: "sigma0" });
    expect(f.info.get("REF_energy")).toEqual({ kind: "float", value: -14.19 });
    expect(f.info.has("vasp_version")).toBe(false);
  });

  it("carries forces, Voigt stress and the provenance keys", () => {
    const f = labelFrame(step(), { source: "runs/a", vaspVersion: "5.4.4", energy: "free" });
    expect(f.arrays.get("REF_forces")).toEqual({ dtype: "R", ncols: 3, data: step().forces });
    expect(f.info.get("REF_stress")).toEqual({ kind: "array", dtype: "float", shape: [6], data: [0.01, 0.02, 0.03, 0.004, 0.005, 0.006] });
    expect(f.info.get("source")).toEqual({ kind: "string", value: "runs/a" });
    expect(f.info.get("ionic_step")).toEqual({ kind: "int", value: 2 });
    expect(f.info.get("scf_steps")).toEqual({ kind: "int", value: 15 });
    expect(f.info.get("nelm")).toEqual({ kind: "int", value: 15 });
    expect(f.info.get("scf_converged")).toEqual({ kind: "bool", value: false });
    expect(f.info.get("vasp_version")).toEqual({ kind: "string", value: "5.4.4" });
    expect(f.pbc).toEqual([true, true, true]);
  });

  it("leaves REF_stress out when VASP computed no stress", () => {
    const f = labelFrame(step({ stress: null }), { source: "r", vaspVersion: null, energy: "free" });
    expect(f.info.has("REF_stress")).toBe(false);
  });
});
