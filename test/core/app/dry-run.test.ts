import { describe, expect, it } from "vitest";
import { dryRunFailures, matchLabelRuns, type LabelRun } from "../../../src/core/app/dry-run.js";

const ID = (c: string) => c.repeat(20);
const selected = [
  { rank: 1, candidate_id: ID("a"), formula: "Si8" },
  { rank: 2, candidate_id: ID("b"), formula: "Si8" },
  { rank: 3, candidate_id: ID("c"), formula: "Si7" },
];
const run = (folder: string, initialId: string | null, error: string | null = null): LabelRun => ({ folder, initialId, steps: 4, converged: true, error });

describe("matchLabelRuns", () => {
  it("matches runs through their initial structure, whatever the folder is called", () => {
    const match = matchLabelRuns(selected, [run("zeta", ID("b")), run(`001-${ID("a")}/`, ID("a"))]);
    expect(match.runs.map((r) => [r.folder, r.status, r.rank])).toEqual([
      [`001-${ID("a")}/`, "matched", 1],
      ["zeta", "matched", 2],
    ]);
    expect(match.missing).toEqual([selected[2]]);
  });

  it("tells mismatched, extra, duplicate and unreadable runs apart", () => {
    const match = matchLabelRuns(selected, [
      run(`labels-x/002-${ID("b")}`, ID("a")), // folder claims b, holds a
      run("a-again", ID("a")),
      run("b-first", ID("b")),
      run("b-second", ID("b")),
      run("stranger", ID("f")),
      run("broken", null, "OUTCAR: truncated in ionic step 1"),
    ]);
    const status = Object.fromEntries(match.runs.map((r) => [r.folder, r.status]));
    expect(status).toEqual({
      "a-again": "matched",
      "b-first": "matched",
      "b-second": "duplicate",
      broken: "unreadable",
      [`labels-x/002-${ID("b")}`]: "mismatched",
      stranger: "extra",
    });
    expect(match.runs.find((r) => r.status === "mismatched")).toMatchObject({ claimedId: ID("b"), rank: 1 });
    expect(match.missing.map((c) => c.rank)).toEqual([3]);
    expect(dryRunFailures({ round: 1, match, dataset: null, errors: [], warnings: [] })).toEqual([
      "1 run could not be read",
      "1 run holds another structure than its folder name says",
      "1 run matches no selected candidate",
      "1 run repeats a candidate another run already labels",
    ]);
  });

  it("only warns about selected structures without a run", () => {
    const match = matchLabelRuns(selected, [run("one", ID("a"))]);
    expect(match.missing).toHaveLength(2);
    expect(dryRunFailures({ round: 1, match, dataset: null, errors: [], warnings: [] })).toEqual([]);
    expect(dryRunFailures({ round: 1, match, dataset: null, errors: ["valid split is empty"], warnings: [] })).toEqual(["valid split is empty"]);
  });

  it("does not read a 20-hex tail of a longer hex word as a claim", () => {
    const match = matchLabelRuns(selected, [run(`x${"0".repeat(30)}`, ID("a"))]);
    expect(match.runs[0]).toMatchObject({ status: "matched", claimedId: null });
  });
});
