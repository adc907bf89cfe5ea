import { describe, expect, it } from "vitest";
import { comparabilityProblems, datasetSummaryInfo, delta, parsePreviousMetrics, unknownInBoth, type DatasetIdentity } from "../../../src/core/bench/compare.js";

const BASE: DatasetIdentity = {
  test_membership: "m1",
  test_content: "c1",
  energy: "free",
  head: "Default",
  source: "ds/summary.json",
  ref_structures_sha256: "s1",
  ref_labels_sha256: "l1",
};

describe("comparabilityProblems", () => {
  it("finds nothing for the same dataset", () => {
    expect(comparabilityProblems(BASE, { ...BASE, source: "elsewhere/summary.json" })).toEqual([]);
  });

  it("names each changed field with old -> new", () => {
    expect(comparabilityProblems(BASE, { ...BASE, test_membership: "m2" })).toEqual(["test set membership changed: `m1` -> `m2`"]);
    expect(comparabilityProblems(BASE, { ...BASE, test_content: "c2" })).toEqual(["test set content changed: `c1` -> `c2`"]);
    expect(comparabilityProblems(BASE, { ...BASE, energy: "sigma0" })).toEqual(["energy policy changed: `free` -> `sigma0`"]);
    expect(comparabilityProblems(BASE, { ...BASE, head: "omat_pbe" })).toEqual(["head changed: `Default` -> `omat_pbe`"]);
    expect(comparabilityProblems(BASE, { ...BASE, ref_labels_sha256: "l2" })).toEqual(["reference labels differ: `l1` -> `l2`"]);
  });

  it("counts a field known in one round only as unconfirmable, and lists fields unknown in both", () => {
    const unknown = { ...BASE, test_membership: null, test_content: null, energy: null, head: null };
    expect(comparabilityProblems(BASE, unknown)).toContain("test set membership cannot be confirmed: `m1` -> unknown");
    expect(comparabilityProblems(unknown, unknown)).toEqual([]);
    expect(unknownInBoth(unknown, unknown)).toEqual(["test set membership", "test set content", "energy policy", "head"]);
  });

  it("ignores hashes a previous round of an older schema does not have", () => {
    const { ref_labels_sha256: _, ...older } = BASE;
    expect(comparabilityProblems(older, { ...BASE, ref_labels_sha256: "other" })).toEqual([]);
  });
});

describe("delta", () => {
  it("signs the change, gives its relative size and an arrow", () => {
    expect(delta(70, 66.8331, 2)).toEqual({ text: "-3.17 (-4.5%) ▼", direction: -1 });
    expect(delta(100, 110, 1)).toEqual({ text: "+10.0 (+10.0%) ▲", direction: 1 });
    expect(delta(5, 5.001, 2)).toEqual({ text: "±0.00 =", direction: 0 });
    expect(delta(0, 2, 1)).toEqual({ text: "+2.0 ▲", direction: 1 });
    expect(delta(null, 2, 1)).toBeNull();
  });
});

describe("datasetSummaryInfo / parsePreviousMetrics", () => {
  it("reads the dataset builder's fields and leaves missing ones null", () => {
    const text = JSON.stringify({ options: { energy: "sigma0", head: null }, fingerprint: { test_membership: "abc" }, sha256: { "test.extxyz": "ff", n: 1 } });
    expect(datasetSummaryInfo(text, "s.json")).toEqual({ test_membership: "abc", test_content: null, energy: "sigma0", head: null, sha256: { "test.extxyz": "ff" } });
  });

  it("rejects broken JSON and foreign metrics files in one line", () => {
    expect(() => datasetSummaryInfo("{", "ds/summary.json")).toThrow(/^ds\/summary\.json: not valid JSON/);
    expect(() => parsePreviousMetrics('{"rmse": 1}', "prev/metrics.json")).toThrow(/^prev\/metrics\.json: expected the metrics\.json of a relabel bench run/);
  });
});
