import { describe, expect, it } from "vitest";
import { parsePreviousSplit, parsePreviousSummary } from "../../../src/core/dataset/previous.js";

describe("parsePreviousSplit", () => {
  it("reads runs, fingerprints, seed and fractions", () => {
    const got = parsePreviousSplit(
      JSON.stringify({ runs: { a: "train", "b/c": "test" }, fingerprint: { test_membership: "m", test_content: "c" }, seed: 4, fractions: { train: 0.8, valid: 0.1, test: 0.1 } }),
      "prev/split.json",
    );
    expect([...got.runs]).toEqual([["a", "train"], ["b/c", "test"]]);
    expect(got.seed).toBe(4);
    expect(got.fingerprint).toEqual({ test_membership: "m", test_content: "c" });
  });

  it("accepts the minimal shape", () => {
    const got = parsePreviousSplit('{"runs": {}, "fingerprint": {"test_membership": "m", "test_content": "c"}}', "s.json");
    expect(got.seed).toBeNull();
    expect(got.fractions).toBeNull();
  });

  it("names the file and the bad key in one line", () => {
    expect(() => parsePreviousSplit('{"runs": {"a": "holdout"}, "fingerprint": {"test_membership": "m", "test_content": "c"}}', "prev/split.json")).toThrow(
      /^prev\/split\.json: runs\.a: Invalid option: expected one of "train"\|"valid"\|"test"; expected a relabel split\.json/,
    );
    expect(() => parsePreviousSplit("{not json", "prev/split.json")).toThrow(/^prev\/split\.json: not valid JSON \(/);
    expect(() => parsePreviousSplit("[]", "prev/split.json")).toThrow(/^prev\/split\.json: top level: /);
  });
});

describe("parsePreviousSummary", () => {
  it("reads elements, energy policy and head", () => {
    const got = parsePreviousSummary(JSON.stringify({ elements: ["H", "O"], options: { energy: "sigma0", head: "omat_pbe", seed: 1 }, other: 1 }), "s.json");
    expect(got).toEqual({ elements: ["H", "O"], energy: "sigma0", head: "omat_pbe" });
    expect(() => parsePreviousSummary('{"elements": ["H"], "options": {"energy": "total", "head": "x"}}', "prev/summary.json")).toThrow(/^prev\/summary\.json: options\.energy: /);
  });
});
