import { describe, expect, it } from "vitest";
import { defaultRelabelConfig } from "../../../src/core/app/config.js";
import type { RankingJson } from "../../../src/core/app/ranking-json.js";
import {
  advance,
  failRound,
  frozenPathGuard,
  isFrozenPath,
  newRoundManifest,
  parseRoundManifest,
  poscarDir,
  refuseAdvance,
  roundDir,
  roundOfSelectionBranch,
  roundNumberFromPath,
  roundPaths,
  RoundTransitionError,
  selectionBranch,
  selectionOpen,
  withRankingFigures,
  type RoundEvent,
  type RoundManifest,
} from "../../../src/core/app/manifest.js";

const SHA = (c: string) => c.repeat(40);
const T0 = "2026-01-31T12:00:00Z";
const T = (minute: number) => `2026-01-31T12:${String(minute).padStart(2, "0")}:00Z`;

function opened(): RoundManifest {
  const config = defaultRelabelConfig();
  return newRoundManifest({
    round: 3,
    issue: 12,
    opened_by: "alice",
    time: T0,
    pool: [{ path: "pools/md.extxyz", sha256: "e".repeat(64) }],
    parameters: { ...config.selection, committee: config.committee },
  });
}

/** Applies events in order, each with its own commit and minute. */
function run(events: RoundEvent[], from: RoundManifest = opened()): RoundManifest {
  return events.reduce((m, event, i) => advance(m, event, event === "collected" || event === "complete" ? null : SHA(String(i + 1)), T(i + 1)), from);
}

const FULL: RoundEvent[] = ["ranked", "frozen", "dataset", "stages", "jobs", "collected", "benchmark", "complete"];

describe("round paths", () => {
  it("pads round numbers to four digits", () => {
    expect(roundDir(3)).toBe("rounds/0003");
    expect(roundDir(12345)).toBe("rounds/12345");
    expect(() => roundDir(0)).toThrow(RangeError);
    expect(roundPaths(3)).toMatchObject({
      manifest: "rounds/0003/round.json",
      rankingJson: "rounds/0003/selection/ranking.json",
      rankingCsv: "rounds/0003/selection/ranking.csv",
      selectedExtxyz: "rounds/0003/selection/selected.extxyz",
      datasetSummary: "rounds/0003/dataset/summary.json",
      jobs: "rounds/0003/jobs.json",
      lock: "ledger/locks/0003.json",
    });
    expect(poscarDir(3, 7, "0123456789abcdef0123")).toBe("rounds/0003/selection/poscars/007-0123456789abcdef0123");
  });

  it("reads the round back from branches and paths", () => {
    expect(selectionBranch(3)).toBe("relabel/round-0003-selection");
    expect(roundOfSelectionBranch(selectionBranch(3))).toBe(3);
    expect(roundOfSelectionBranch("refs/heads/relabel/round-0042-selection")).toBe(42);
    expect(roundOfSelectionBranch("feature/round-0003")).toBeNull();
    // Only the App's own branch name: a results branch named like a round is none.
    expect(roundOfSelectionBranch("relabel/round-0003-results")).toBeNull();
    expect(roundOfSelectionBranch("relabel/round-0003")).toBeNull();
    expect(roundNumberFromPath("rounds/0007/labels/run-1/OUTCAR")).toBe(7);
    expect(roundNumberFromPath("./rounds/0007")).toBe(7);
    expect(roundNumberFromPath("datasets/current/train.extxyz")).toBeNull();
  });
});

describe("round.json", () => {
  it("opens in state ranking with the selection branch", () => {
    const m = opened();
    expect(m.state).toBe("ranking");
    expect(m.branches.selection).toBe("relabel/round-0003-selection");
    expect(m.finished_steps).toEqual([]);
    expect(selectionOpen(m)).toBe(true);
  });

  it("round-trips through JSON and names the first bad key", () => {
    const m = run(["ranked", "frozen"]);
    const back = parseRoundManifest(JSON.stringify(m), "rounds/0003/round.json");
    expect(back).toEqual({ ok: true, manifest: m });
    const bad = parseRoundManifest(JSON.stringify({ ...m, state: "done" }), "rounds/0003/round.json");
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.problem).toMatch(/^rounds\/0003\/round\.json: state: /);
    expect(parseRoundManifest("{", "x.json")).toMatchObject({ ok: false });
  });

  it("walks through a full round, recording commits, times and finished steps", () => {
    const m = run(FULL);
    expect(m.state).toBe("complete");
    expect(m.finished_steps).toEqual(["selection", "dataset", "stages", "jobs", "benchmark"]);
    expect(m.commits).toEqual({ selection: SHA("1"), frozen: SHA("2"), dataset: SHA("3"), stages: SHA("4"), jobs: SHA("5"), benchmark: SHA("7") });
    expect(m.timestamps).toMatchObject({ opened: T0, selection_opened: T(1), frozen: T(2), labels_merged: T(3), submitted: T(5), collected: T(6), benchmarked: T(7), completed: T(8) });
  });

  it("allows ranking again while the selection PR is open, not after it is merged", () => {
    const twice = run(["ranked", "ranked"]);
    expect(twice.state).toBe("selection-review");
    expect(twice.commits.selection).toBe(SHA("2"));
    const frozen = advance(twice, "frozen", SHA("f"), T(9));
    expect(selectionOpen(frozen)).toBe(false);
    expect(() => advance(frozen, "ranked", SHA("a"), T(10))).toThrow(/the selection step already finished in commit f{40}; its outputs are frozen/);
  });

  it("refuses illegal transitions with the reason", () => {
    const training = run(["ranked", "frozen", "dataset", "stages"]);
    expect(refuseAdvance(training, "benchmark")).toBe('round 3: cannot record "benchmark" before the jobs step finished (the round is "training")');
    expect(() => advance(training, "benchmark", SHA("b"), T(9))).toThrow(RoundTransitionError);
    expect(refuseAdvance(opened(), "frozen")).toContain('cannot record "frozen" while the round is "ranking"');
    expect(refuseAdvance(opened(), "dataset")).toContain("before the selection step finished");
    expect(refuseAdvance(training, "stages")).toContain("the stages step already finished");
    expect(() => advance(opened(), "ranked", null, T(1))).toThrow(/needs the commit holding its outputs/);
  });

  it("resumes a failed round from the state it failed in", () => {
    const staged = run(["ranked", "frozen", "dataset", "stages"]);
    const failed = failRound(staged, "jobs", "ssh: host key mismatch", T(20));
    expect(failed).toMatchObject({ state: "failed", failure: { state: "training", event: "jobs", message: "ssh: host key mismatch" } });
    expect(failed.timestamps.failed).toBe(T(20));
    expect(refuseAdvance(failed, "benchmark")).toContain("before the jobs step finished");
    const resumed = advance(failed, "jobs", SHA("9"), T(21));
    expect(resumed).toMatchObject({ state: "training", failure: null });
    expect(() => failRound(run(FULL), "x", "y", T(30))).toThrow(/complete/);
  });
});

describe("the round's account of its selection", () => {
  const ranking = (committee: number, parameters: Record<string, unknown>): RankingJson => ({
    rule: committee ? "diversity + committee energy disagreement, weights 2:3" : "diversity-first (no committee)",
    parameters,
    sources: [],
    committee: { size: committee, members: [] },
    selection_size: 5,
    labeled_size: 0,
    software: { name: "relabel-loop", version: "0" },
    selected: [],
  });

  it("takes size, rule, committee, select and weights from ranking.json", () => {
    const m = withRankingFigures(opened(), ranking(2, { select: 7, rule: { kind: "weighted", wDiv: 2, wDis: 3 } }));
    expect(m).toMatchObject({ selection_size: 5, committee_size: 2, ranking_rule: "diversity + committee energy disagreement, weights 2:3" });
    expect(m.parameters).toMatchObject({ select: 7, weights: { div: 2, dis: 3 } });
  });

  it("keeps the requested dis weight when no committee ranked, and select when ranking.json has none", () => {
    const asked = opened();
    const m = withRankingFigures(asked, ranking(0, { rule: { kind: "weighted", wDiv: 1, wDis: 0 } }));
    expect(m.parameters.select).toBe(asked.parameters.select);
    expect(m.parameters.weights).toEqual({ div: 1, dis: asked.parameters.weights.dis });
    expect(m.committee_size).toBe(0);
  });
});

describe("frozen paths", () => {
  it("freezes a finished step's directory and nothing else", () => {
    const m = run(["ranked", "frozen", "dataset"]);
    expect(isFrozenPath(m, "rounds/0003/selection/ranking.json")).toBe("selection");
    expect(isFrozenPath(m, "rounds/0003/selection")).toBe("selection");
    expect(isFrozenPath(m, "./rounds/0003//selection/poscars/001-x/POSCAR")).toBe("selection");
    expect(isFrozenPath(m, "rounds/0003/labels/run-1/OUTCAR")).toBe("dataset");
    expect(isFrozenPath(m, "rounds/0003/dataset/summary.json")).toBe("dataset");
    expect(isFrozenPath(m, "rounds/0003/stages/train/run.sh")).toBeNull();
    expect(isFrozenPath(m, "rounds/0003/jobs.json")).toBeNull();
    expect(isFrozenPath(m, "rounds/0003/round.json")).toBeNull();
    expect(isFrozenPath(m, "rounds/0003/selection-notes.md")).toBeNull();
    expect(isFrozenPath(m, "rounds/0004/selection/ranking.json")).toBeNull();
    expect(isFrozenPath(m, "datasets/current/train.extxyz")).toBeNull();
    expect(isFrozenPath(run(["ranked"]), "rounds/0003/selection/ranking.json")).toBeNull();
  });

  it("keeps jobs.json writable after submission, benchmark/ frozen after the benchmark", () => {
    const m = run(["ranked", "frozen", "dataset", "stages", "jobs", "collected", "benchmark"]);
    expect(isFrozenPath(m, "rounds/0003/jobs.json")).toBeNull();
    expect(isFrozenPath(m, "rounds/0003/stages/train/run.sh")).toBe("stages");
    expect(isFrozenPath(m, "rounds/0003/benchmark/metrics.json")).toBe("benchmark");
  });

  it("gives the ledger a guard with a one-line refusal naming the commit", () => {
    const m = run(["ranked", "frozen"]);
    const guard = frozenPathGuard(m);
    expect(guard("rounds/0003/selection/ranking.csv")).toBe(
      `rounds/0003/selection/ranking.csv: the selection step of round 3 finished in commit ${"2".repeat(12)}; its files are immutable (open a new round to change them)`,
    );
    expect(guard("rounds/0003/labels/a/OUTCAR")).toBeNull();
  });
});
