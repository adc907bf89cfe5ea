import { describe, expect, it } from "vitest";
import { DatasetTally } from "../../../src/core/dataset/tally.js";
import type { Frame } from "../../../src/core/structure.js";

/** A water molecule with the given total energy and force on the first atom's x. */
function water(energy: number, fx = 0.1, withStress = true): Frame {
  const info: Frame["info"] = new Map([["REF_energy", { kind: "float", value: energy }]]);
  if (withStress) info.set("REF_stress", { kind: "array", dtype: "float", shape: [6], data: [0, 0, 0, 0, 0, 0] });
  return {
    natoms: 3,
    symbols: ["O", "H", "H"],
    positions: new Float64Array(9),
    cell: new Float64Array(9),
    pbc: [false, false, false],
    info,
    arrays: new Map([["REF_forces", { dtype: "R", ncols: 3, data: new Float64Array([fx, 0, 0, 0, 0, 0, 0, 0, 0]) }]]),
  };
}

const ok = { converged: true, steps: 10, nelm: 60 };
const opts = { maxForce: 50, energyZ: 5, requireConverged: false };

describe("DatasetTally", () => {
  it("drops repeated structures within and across runs, keeping the first", () => {
    const t = new DatasetTally(opts);
    t.beginRun("a", "train");
    expect(t.frame(water(-14), 0, "id1", ok)).toBeNull();
    expect(t.frame(water(-14), 1, "id1", ok)).toBe("duplicates");
    t.commitRun();
    t.beginRun("b", "test");
    expect(t.frame(water(-14), 0, "id1", ok)).toBe("duplicates");
    expect(t.frame(water(-14), 1, "id2", ok)).toBeNull();
    t.commitRun();
    expect(t.dropped.duplicates).toBe(2);
    expect(t.examples.duplicates).toEqual([
      { run: "a", ionic_step: 1, candidate_id: "id1", first_seen: { run: "a", ionic_step: 0 } },
      { run: "b", ionic_step: 0, candidate_id: "id1", first_seen: { run: "a", ionic_step: 0 } },
    ]);
    expect(t.splits.train).toEqual({ frames: 1, runs: 1, atoms: 3 });
    expect(t.splits.test).toEqual({ frames: 1, runs: 1, atoms: 3 });
  });

  it("records a dropped duplicate whose energy or largest force differs from the kept frame's, per pair of runs", () => {
    const t = new DatasetTally(opts);
    t.beginRun("a", "train");
    t.frame(water(-14), 0, "id1", ok);
    t.frame(water(-14), 1, "id2", ok);
    t.commitRun();
    t.beginRun("b", "train");
    // 0.9 meV/atom and 0.04 eV/A apart: the same labels within the tolerances.
    expect(t.frame(water(-14 + 3 * 0.0009, 0.14), 0, "id1", ok)).toBe("duplicates");
    // 2 meV/atom apart, then the same energy with another force.
    expect(t.frame(water(-14 + 3 * 0.002), 1, "id1", ok)).toBe("duplicates");
    expect(t.frame(water(-14, 0.2), 2, "id2", ok)).toBe("duplicates");
    t.commitRun();
    expect(t.dropped.duplicates).toBe(3);
    const conflicts = t.labelConflicts();
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ run: "b", kept_run: "a", frames: 2 });
    expect(conflicts[0].example).toMatchObject({ run: "b", ionic_step: 1, kept: { run: "a", ionic_step: 0, energy: -14, max_force: 0.1 } });
    expect(conflicts[0].example.energy_per_atom).toBeCloseTo(-14 / 3 + 0.002, 12);
  });

  it("lets a step give way to the step that repeats its structure, counted as a duplicate", () => {
    const t = new DatasetTally(opts);
    t.beginRun("job", "train");
    expect(t.passesLabelGates(water(-14), ok)).toBe(true);
    expect(t.passesLabelGates(water(-14, 80), ok)).toBe(false);
    t.supersede(4, "id1", 5);
    expect(t.frame(water(-13), 5, "id1", ok)).toBeNull();
    t.commitRun();
    expect(t.frames).toBe(1);
    expect(t.examples.duplicates).toEqual([{ run: "job", ionic_step: 4, candidate_id: "id1", first_seen: { run: "job", ionic_step: 5 }, superseded: true }]);
    expect(t.labelConflicts()).toEqual([]);
  });

  it("forgets a discarded run: its structures, counts and drops", () => {
    const t = new DatasetTally(opts);
    t.beginRun("broken", "train");
    t.frame(water(-14), 0, "id1", ok);
    t.frame(water(-14, 80), 1, "id2", ok);
    t.discardRun();
    t.beginRun("good", "valid");
    expect(t.frame(water(-14), 0, "id1", ok)).toBeNull();
    t.commitRun();
    expect(t.dropped.force_outliers).toBe(0);
    expect(t.frames).toBe(1);
    expect(t.splits.train.frames).toBe(0);
  });

  it("checks convergence, labels, forces and duplicates in that order", () => {
    const t = new DatasetTally({ ...opts, requireConverged: true });
    t.beginRun("r", "train");
    const unconverged = { converged: false, steps: 60, nelm: 60 };
    expect(t.frame(water(NaN, 80), 0, "x", unconverged)).toBe("scf_unconverged");
    expect(t.frame(water(NaN, 80), 1, "x", ok)).toBe("missing_labels");
    expect(t.frame(water(-14, 80), 2, "x", ok)).toBe("force_outliers");
    expect(t.frame(water(-14, 49.9), 3, "x", ok)).toBeNull();
    t.commitRun();
    expect(t.examples.force_outliers).toEqual([{ run: "r", ionic_step: 2, max_force: 80 }]);
    expect(t.examples.missing_labels).toEqual([{ run: "r", ionic_step: 1, missing: ["REF_energy"] }]);
    expect(t.examples.scf_unconverged).toEqual([{ run: "r", ionic_step: 0, scf_steps: 60, nelm: 60 }]);
  });

  it("keeps unconverged steps flagged by default and counts stress and elements per split", () => {
    const t = new DatasetTally(opts);
    t.beginRun("r", "valid");
    t.frame(water(-14), 0, "a", { converged: false, steps: 60, nelm: 60 });
    t.frame(water(-14, 0.1, false), 1, "b", ok);
    t.commitRun();
    expect(t.unconvergedKept).toBe(1);
    expect(t.stressFrames).toBe(1);
    expect(t.elementList()).toEqual(["H", "O"]);
    expect(t.elements.get("H")!.valid).toEqual({ frames: 2, atoms: 4 });
    expect(t.elements.get("O")!.train).toEqual({ frames: 0, atoms: 0 });
  });

  it("reports energy-per-atom outliers within a composition, largest |z| first", () => {
    const t = new DatasetTally(opts);
    t.beginRun("md", "train");
    // Energies per atom -4.70 -4.71 -4.72 -4.73 -4.74 and one at -2.0: median -4.715, MAD 0.015
    [-4.7, -4.71, -4.72, -4.73, -4.74, -2.0].forEach((e, i) => t.frame(water(3 * e), i, `id${i}`, ok));
    t.commitRun();
    const got = t.energyOutliers();
    expect(got.frames).toBe(1);
    expect(got.compositions_tested).toBe(1);
    expect(got.examples[0]).toMatchObject({ run: "md", ionic_step: 5, formula: "H2O" });
    expect(got.examples[0].median).toBeCloseTo(-4.715, 9);
    expect(got.examples[0].z).toBeCloseTo((0.6745 * (-2.0 + 4.715)) / 0.015, 6);
  });
});
