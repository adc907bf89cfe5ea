import { describe, expect, it } from "vitest";
import { dryRunFailures, matchLabelRuns, type LabelRun } from "../../../src/core/app/dry-run.js";
import type { Geometry } from "../../../src/core/select/near-match.js";

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

  it("matches a run whose initial structure is within 1e-4 A of a selected one by geometry, as VASP prints fewer digits", () => {
    const geometry = (x: number): Geometry => ({ natoms: 2, symbols: ["Fe", "S"], positions: Float64Array.of(x, 0, 0, 1, 1, 1), cell: Float64Array.of(5, 0, 0, 0, 5, 0, 0, 0, 5), pbc: [true, true, true] });
    const withGeometry = [{ ...selected[0], geometry: geometry(0.2) }, { ...selected[1], geometry: geometry(0.7) }, selected[2]];
    const match = matchLabelRuns(withGeometry, [
      { ...run(`001-${ID("a")}`, ID("d")), initial: geometry(0.2 + 4.6e-6) }, // an OUTCAR's 5 decimals
      { ...run("near-b", ID("e")), initial: geometry(0.7 - 9e-5) },
      { ...run("far", ID("f")), initial: geometry(0.7 + 2e-4) },
    ]);
    expect(match.runs.map((r) => [r.folder, r.status, r.rank, r.candidateId])).toEqual([
      [`001-${ID("a")}`, "matched", 1, ID("a")],
      ["far", "extra", null, ID("f")],
      ["near-b", "matched", 2, ID("b")],
    ]);
    expect(match.missing.map((c) => c.rank)).toEqual([3]);
  });

  it("matches a selected slab (pbc T T F) with its VASP run, which reads every structure as periodic", () => {
    const slab: Geometry = { natoms: 2, symbols: ["Na", "Cl"], positions: Float64Array.of(0, 0, 10, 1.4, 1.4, 11), cell: Float64Array.of(4, 0, 0, 0, 4, 0, 0, 0, 30), pbc: [true, true, false] };
    const match = matchLabelRuns([{ ...selected[0], geometry: slab }], [{ ...run(`001-${ID("a")}`, ID("d")), initial: { ...slab, pbc: [true, true, true] } }]);
    expect(match.runs[0]).toMatchObject({ status: "matched", rank: 1, candidateId: ID("a") });
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
