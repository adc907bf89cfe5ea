import { describe, expect, it } from "vitest";
import { parseDatasetSummary } from "../../../src/core/stage/dataset.js";

const base = {
  options: { energy: "free", head: "omat_pbe" },
  fingerprint: { test_membership: "m", test_content: "c" },
  elements: ["Fe", "H", "O"],
  labels: { stress_frames: 2 },
  files: ["test.extxyz", "train.extxyz"],
};
const parse = (s: unknown) => parseDatasetSummary(JSON.stringify(s), "ds/summary.json");

describe("dataset summary for stages", () => {
  it("turns elements into sorted atomic numbers and lists split files in train, valid, test order", () => {
    const s = parse(base);
    expect(s.atomicNumbers).toEqual([1, 8, 26]);
    expect(s.files).toEqual(["train.extxyz", "test.extxyz"]);
    expect(s).toMatchObject({ energy: "free", head: "omat_pbe", testMembership: "m", testContent: "c", stressFrames: 2, sha256: {} });
  });

  it("keeps the recorded split hashes and ignores other keys", () => {
    expect(parse({ ...base, sha256: { "train.extxyz": "aa", "x.txt": "bb" }, gates: {} }).sha256).toEqual({ "train.extxyz": "aa" });
  });

  it.each([
    [{ ...base, elements: ["H", "Xx"] }, /elements\.1: not an element symbol/],
    [{ ...base, elements: [] }, /elements: expected at least one element/],
    [{ ...base, files: ["valid.extxyz"] }, /files: train\.extxyz must be listed/],
    [{ ...base, files: ["train.extxyz", "extra.extxyz"] }, /files\.1: /],
    [{ ...base, options: { energy: "total", head: "x" } }, /options\.energy: /],
    [{ ...base, labels: {} }, /labels\.stress_frames: /],
  ])("refuses %j", (summary, message) => {
    expect(() => parse(summary)).toThrow(message);
    expect(() => parse(summary)).toThrow(/^ds\/summary\.json: not a dataset summary: /);
  });

  it("names the line of broken JSON", () => {
    expect(() => parseDatasetSummary('{\n"a": 1,\n', "s.json")).toThrow(/^s\.json:3: not valid JSON/);
  });
});
