import { describe, expect, it } from "vitest";
import { compareSettings } from "../../../src/core/dataset/settings.js";
import { stableJson } from "../../../src/core/json.js";
import { changeWarnings, describeChanges, emptySplitReason, judgeGates, type DatasetOptionsRecord } from "../../../src/core/dataset/summary.js";
import { DatasetTally } from "../../../src/core/dataset/tally.js";
import type { Frame } from "../../../src/core/structure.js";

const options: DatasetOptionsRecord = {
  runs: ["runs"],
  previous: null,
  energy: "free",
  frames: "all",
  require_converged: false,
  head: "omat_pbe",
  config_type: "Default",
  fractions: { train: 0.8, valid: 0.1, test: 0.1 },
  seed: 0,
  max_force: 50,
  energy_z: 5,
  allow_mixed_settings: false,
  allow_empty_split: false,
  grow_test: false,
};

function silicon(): Frame {
  return {
    natoms: 1,
    symbols: ["Si"],
    positions: new Float64Array(3),
    cell: new Float64Array([3, 0, 0, 0, 3, 0, 0, 0, 3]),
    pbc: [true, true, true],
    info: new Map([["REF_energy", { kind: "float", value: -5.4 }]]),
    arrays: new Map([["REF_forces", { dtype: "R", ncols: 3, data: new Float64Array(3) }]]),
  };
}

/** One frame in each of the given splits. */
function tallyWith(splits: Array<"train" | "valid" | "test">): DatasetTally {
  const t = new DatasetTally({ maxForce: 50, energyZ: 5, requireConverged: false });
  splits.forEach((s, i) => {
    t.beginRun(`r${i}`, s);
    t.frame(silicon(), 0, `id${i}`, { converged: true, steps: 5, nelm: 60 });
    t.commitRun();
  });
  return t;
}

describe("stableJson", () => {
  it("sorts keys at every level and keeps array order", () => {
    expect(stableJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{\n  "a": {\n    "c": null,\n    "d": [\n      3,\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
    );
  });
});

describe("emptySplitReason", () => {
  it("shows the draws that kept every run out of an empty split", () => {
    const runs = [
      { id: "a", split: "train" as const, origin: "draw" as const, draw: 0.1234, frames: 5 },
      { id: "b", split: "valid" as const, origin: "draw" as const, draw: 0.85, frames: 2 },
    ];
    const text = emptySplitReason("test", runs, options.fractions, 7, false);
    expect(text).toBe(
      "test split is empty: none of the 2 run(s) drew a value in [0.9, 1) (fractions 0.8/0.1/0.1, seed 7; splits are per run, so few runs often leave a split empty); " +
        "draws: a 0.123 -> train, b 0.85 -> valid; add runs, try another --seed, or pass --allow-empty-split to build without it",
    );
  });

  it("names runs of the split that lost every frame to the gates", () => {
    const runs = [{ id: "t", split: "test" as const, origin: "previous" as const, draw: 0.95, frames: 0 }];
    expect(emptySplitReason("test", runs, options.fractions, 0, true)).toMatch(/^test split is empty: its 1 run\(s\) \(t\) have no frame left after the gates/);
  });

  it("explains a frozen test set without test runs", () => {
    expect(emptySplitReason("test", [], options.fractions, 0, true)).toMatch(/new runs enter test only with --grow-test/);
  });
});

describe("judgeGates", () => {
  const consistent = compareSettings([{ id: "r0", settings: { ENCUT: "520" } }]);
  const mixed = compareSettings([
    { id: "r0", settings: { ENCUT: "520" } },
    { id: "r1", settings: { ENCUT: "400" } },
  ]);
  const runs = [{ id: "r0", split: "train" as const, origin: "draw" as const, draw: 0.2, frames: 1 }];

  it("passes a complete dataset with one setting", () => {
    const v = judgeGates({ tally: tallyWith(["train", "valid", "test"]), options, settings: consistent, runs, previousElements: null });
    expect(v.errors).toEqual([]);
    expect(v.warnings).toEqual([]);
    expect(v.gates.mixed_settings.status).toBe("pass");
    expect(v.gates.new_elements.status).toBe("not-checked");
  });

  it("makes mixed settings and empty held-out splits errors unless allowed", () => {
    const strict = judgeGates({ tally: tallyWith(["train"]), options, settings: mixed, runs, previousElements: null });
    expect(strict.errors).toHaveLength(3);
    expect(strict.errors[0]).toBe("mixed DFT settings across runs: ENCUT = 400 in 1 run(s), e.g. r1; 520 in 1 run(s), e.g. r0; pass --allow-mixed-settings to build anyway");
    expect(strict.errors[1]).toMatch(/^valid split is empty/);
    expect(strict.errors[2]).toMatch(/^test split is empty/);
    expect(strict.gates.empty_splits).toEqual({ action: "error", status: "error", empty: ["valid", "test"] });

    const allowed = judgeGates({ tally: tallyWith(["train"]), options: { ...options, allow_mixed_settings: true, allow_empty_split: true }, settings: mixed, runs, previousElements: null });
    expect(allowed.errors).toEqual([]);
    expect(allowed.gates.mixed_settings.status).toBe("warning");
    expect(allowed.gates.empty_splits.status).toBe("warning");
    expect(allowed.warnings).toContain("valid split is empty; no valid.extxyz written (allowed by --allow-empty-split)");
  });

  it("never allows an empty train split", () => {
    const v = judgeGates({ tally: tallyWith(["valid", "test"]), options: { ...options, allow_empty_split: true }, settings: consistent, runs, previousElements: null });
    expect(v.errors).toHaveLength(1);
    expect(v.errors[0]).toMatch(/^train split is empty/);
  });

  it("warns about energy outliers once per composition, so each composition's worst frame is named", () => {
    const t = new DatasetTally({ maxForce: 50, energyZ: 5, requireConverged: false });
    t.beginRun("r", "train");
    // Si around -5.4 eV/atom with one frame at +50 (z in the thousands), SiO with one frame 1 eV/atom off (z 67).
    [-5.4, -5.41, -5.42, -5.39, 50].forEach((e, i) => t.frame({ ...silicon(), info: new Map([["REF_energy", { kind: "float", value: e }]]) }, i, `si${i}`, { converged: true, steps: 5, nelm: 60 }));
    [-7, -7.01, -7.02, -6.99, -6].forEach((e, i) =>
      t.frame({ ...silicon(), natoms: 2, symbols: ["Si", "O"], positions: new Float64Array(6), arrays: new Map([["REF_forces", { dtype: "R", ncols: 3, data: new Float64Array(6) }]]), info: new Map([["REF_energy", { kind: "float", value: 2 * e }]]) }, 10 + i, `sio${i}`, { converged: true, steps: 5, nelm: 60 }),
    );
    t.commitRun();
    const v = judgeGates({ tally: t, options, settings: consistent, runs, previousElements: null });
    expect(v.gates.energy_outliers.frames).toBe(2);
    expect(v.warnings.filter((w) => w.includes("robust |z|"))).toEqual([
      "1 Si frame(s) have an energy per atom with robust |z| > 5 (kept); worst: r step 4 50 eV/atom vs median -5.4, z = 3736.7",
      "1 OSi frame(s) have an energy per atom with robust |z| > 5 (kept); worst: r step 14 -6 eV/atom vs median -7, z = 67.5",
    ]);
  });

  it("warns about elements the previous dataset lacked", () => {
    const v = judgeGates({ tally: tallyWith(["train", "valid", "test"]), options, settings: consistent, runs, previousElements: ["O"] });
    expect(v.gates.new_elements).toEqual({ action: "warn", status: "warning", elements: ["Si"] });
    expect(v.warnings[0]).toMatch(/^elements new relative to the previous dataset: Si/);
  });
});

describe("describeChanges", () => {
  const fp = { test_membership: "m1", test_content: "c1" };
  const previous = { path: "round1", runs: new Map([["a", "train" as const], ["t", "test" as const], ["gone", "valid" as const]]), fingerprint: fp, elements: ["Si"], energy: "free" as const };

  it("lists added and missing runs and compares fingerprints", () => {
    const changes = describeChanges(previous, { a: "train", t: "test", gone: "valid", new1: "train" }, new Set(["a", "t", "new1"]), new Set(["t"]), fp, ["O", "Si"], "free");
    expect(changes).toEqual({
      previous: "round1",
      runs_added: ["new1"],
      runs_missing: ["gone"],
      test_runs_missing: [],
      split_changed: [],
      test_membership_changed: false,
      test_content_changed: false,
      previous_fingerprint: fp,
      elements_added: ["O"],
      energy_changed: false,
    });
    expect(changeWarnings(changes, options, { seed: 0, fractions: options.fractions })).toEqual(["1 run(s) of the previous dataset gave no frames this time: gone"]);
  });

  it("names previous test runs without test frames now and counts them as a membership change", () => {
    const changes = describeChanges(previous, { a: "train", t: "test", gone: "valid" }, new Set(["a"]), new Set(), { test_membership: "m2", test_content: "c2" }, ["Si"], "free");
    expect(changes.test_runs_missing).toEqual(["t"]);
    expect(changes.test_membership_changed).toBe(true);
    expect(changeWarnings(changes, options, { seed: 0, fractions: options.fractions })).toContain(
      "1 test run(s) of the previous dataset have no test frames now (not among the inputs, skipped, or every frame dropped): t",
    );
  });

  it("warns when the test set or the energy choice changed", () => {
    const changes = describeChanges(previous, { a: "train", t: "test" }, new Set(["a", "t"]), new Set(["t"]), { test_membership: "m1", test_content: "c2" }, ["Si"], "sigma0");
    expect(changes.test_content_changed).toBe(true);
    expect(changes.energy_changed).toBe(true);
    const warnings = changeWarnings(changes, { ...options, energy: "sigma0", seed: 3 }, { seed: 0, fractions: options.fractions });
    expect(warnings).toContain("the held-out test set differs from the previous dataset (test frames changed): metrics are not comparable with earlier rounds");
    expect(warnings).toContain("REF_energy now holds the sigma->0 energy; the previous dataset used the other one");
    expect(warnings).toContain("seed 3 differs from the previous dataset's 0; only new runs use it");
  });
});
