import { describe, expect, it } from "vitest";
import { firstOccurrences } from "../../../src/core/select/candidate-id.js";
import { TRUST_ACCURATE, TRUST_SUSPECT } from "../../../src/core/select/disagreement.js";
import { leftOutCounts, rankingCsvParts, rankingRule, renderRankingJson, withPoolResultsRenamed, type CandidateMeta, type RankingInputs } from "../../../src/core/select/ranking.js";
import type { AtomArray, Frame, InfoValue } from "../../../src/core/structure.js";

function inputs(candidates: CandidateMeta[], over: Partial<RankingInputs> = {}): RankingInputs {
  const N = candidates.length;
  return {
    parameters: {
      select: 1, descriptor: "baseline", features_file: null, scaling: "standard", bins: 80, rmax: 6,
      rule: { kind: "weighted", wDiv: 1, wDis: 1 }, disagreement: "force", committee_source: "files", force_trust: { lo: 0.05, hi: 0.5 },
      trust_exclude: ["accurate", "suspect"],
    },
    sources: [],
    skippedSources: [],
    labeled: [],
    committee: [],
    candidates,
    firstIndex: firstOccurrences(candidates.map((c) => c.id)),
    result: { picks: [], requested: 1, selectable: N, distanceToCovered: Float64Array.from({ length: N }, (_, i) => i / 4), lazyFrom: null, lazyPicks: 0 },
    rawDisagreement: null,
    disagreement: null,
    trustLevels: null,
    labeledIds: new Set(),
    software: { name: "relabel-loop", version: "test" },
    ...over,
  };
}

const csvText = (parts: Iterable<Uint8Array>): string => Buffer.concat([...parts]).toString("utf8");

const meta = (id: string, source = "pool.xyz", frame = 0): CandidateMeta => ({ id, source, frame, natoms: 2, formula: "H2" });

describe("ranking.csv", () => {
  it("writes rank, distance, both disagreements and every flag of each candidate", () => {
    const candidates = [meta("a"), meta("b", 'odd, "name".xyz', 1), meta("a", "pool.xyz", 2), meta("l", "pool.xyz", 3)];
    const text = csvText(
      rankingCsvParts(
        inputs(candidates, {
          result: { picks: [{ rank: 1, index: 1, diversity: 1, disagreement: 0.5, score: 1.5 }], requested: 1, selectable: 2, distanceToCovered: Float64Array.of(0.5, 0, 0, 0.25), lazyFrom: null, lazyPicks: 0 },
          disagreement: Float64Array.of(0, 0.5, 0, 1),
          rawDisagreement: Float64Array.of(0.01, 0.2, 0.01, 0.75),
          trustLevels: Uint8Array.of(TRUST_ACCURATE, 0, TRUST_ACCURATE, TRUST_SUSPECT),
          labeledIds: new Set(["l"]),
        }),
      ),
    );
    expect(text).toBe(
      [
        "index,candidate_id,source,frame,natoms,formula,rank,distance_to_selection,disagreement,disagreement_raw,flags",
        "0,a,pool.xyz,0,2,H2,,0.5,0,0.01,accurate",
        '1,b,"odd, ""name"".xyz",1,2,H2,1,0,0.5,0.2,',
        "2,a,pool.xyz,2,2,H2,,0,0,0.01,duplicate-of-0 accurate",
        "3,l,pool.xyz,3,2,H2,,0.25,1,0.75,labelled suspect",
        "",
      ].join("\n"),
    );
  });

  it("counts why candidates were left out, each once by its first reason (labelled, duplicate, trust level)", () => {
    const candidates = [meta("a"), meta("b"), meta("a"), meta("l"), meta("c"), meta("d")];
    const levels = Uint8Array.of(TRUST_ACCURATE, 0, TRUST_ACCURATE, TRUST_SUSPECT, TRUST_SUSPECT, TRUST_ACCURATE);
    const counted = (trust_exclude: RankingInputs["parameters"]["trust_exclude"]) =>
      leftOutCounts(inputs(candidates, { trustLevels: levels, labeledIds: new Set(["l"]), parameters: { ...inputs([]).parameters, trust_exclude } }));
    expect(counted(["accurate", "suspect"])).toEqual({ labelled: 1, duplicates: 1, accurate: 2, suspect: 1 });
    expect(counted(["suspect"])).toEqual({ labelled: 1, duplicates: 1, accurate: 0, suspect: 1 });
    expect(counted(null)).toEqual({ labelled: 1, duplicates: 1, accurate: 0, suspect: 0 });
  });

  it("comes in parts of whole rows that join to one row per candidate", () => {
    const N = 10_000;
    const parts = [...rankingCsvParts(inputs(Array.from({ length: N }, (_, i) => meta(`id${i}`, "pool.xyz", i))))];
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.at(-1)).toBe(10);
    const rows = csvText(parts).trim().split("\n");
    expect(rows).toHaveLength(N + 1);
    // No pick and no labelled structure: nothing covers, so no distance (the selection's is to the centroid).
    expect(rows[N]).toBe(`${N - 1},id${N - 1},pool.xyz,${N - 1},2,H2,,,,,`);
    const labelled = csvText(rankingCsvParts(inputs([meta("a"), meta("b")], { labeledIds: new Set(["l"]) }))).trim().split("\n");
    expect(labelled[2]).toBe("1,b,pool.xyz,0,2,H2,,0.25,,,");
  });
});

describe("ranking.json's trust window", () => {
  it("states which trust levels were left out, in the rule and the parameters", () => {
    const base = inputs([meta("a")]).parameters;
    expect(rankingRule(base, 0)).toMatch(/; trust window 0\.05:0\.5 \(below: accurate, at or above: suspect; both excluded\)$/);
    expect(rankingRule({ ...base, trust_exclude: ["accurate"] }, 0)).toMatch(/; accurate excluded, suspect kept\)$/);
    expect(rankingRule({ ...base, trust_exclude: ["suspect"] }, 0)).toMatch(/; suspect excluded, accurate kept\)$/);
    expect(rankingRule({ ...base, trust_exclude: [] }, 0)).toMatch(/; both kept, flagged only\)$/);
    const json = JSON.parse(renderRankingJson(inputs([meta("a")])));
    expect(json.parameters.trust_exclude).toEqual(["accurate", "suspect"]);
    expect(json.parameters.force_trust).toEqual({ lo: 0.05, hi: 0.5 });
  });

  it("writes an open upper end as \"inf\" (JSON would turn Infinity into null)", () => {
    const open = inputs([meta("a")]);
    open.parameters.force_trust = { lo: 0.1, hi: Infinity };
    expect(JSON.parse(renderRankingJson(open)).parameters.force_trust).toEqual({ lo: 0.1, hi: "inf" });
    expect(rankingRule(open.parameters, 0)).toContain("trust window 0.1:inf ");
  });
});

describe("selected.extxyz's frames", () => {
  const frame = (info: [string, InfoValue][], arrays: [string, AtomArray][]): Frame => ({
    natoms: 1, symbols: ["H"], positions: Float64Array.of(0, 0, 1), cell: new Float64Array(9), pbc: [false, false, false],
    info: new Map(info), arrays: new Map(arrays),
  });
  const float = (value: number): InfoValue => ({ kind: "float", value });
  const column = (x: number): AtomArray => ({ dtype: "R", ncols: 3, data: Float64Array.of(x, x, x) });

  it("carry what ASE reads as calculator results under pool_ names, in place, writing over nothing", () => {
    const renamed = withPoolResultsRenamed(
      frame(
        [["config_type", { kind: "string", value: "md" }], ["energy", float(-3)], ["pool_energy", float(-1)], ["free_energy", float(-2)], ["dipole", float(0)]],
        [["momenta", column(1)], ["forces", column(2)], ["charges", column(3)]],
      ),
    );
    expect([...renamed.info.keys()]).toEqual(["config_type", "pool_pool_energy", "pool_energy", "pool_free_energy", "pool_dipole"]);
    expect(renamed.info.get("pool_pool_energy")).toEqual(float(-3));
    expect(renamed.info.get("pool_energy")).toEqual(float(-1));
    expect([...renamed.arrays.keys()]).toEqual(["momenta", "pool_forces", "pool_charges"]);
    const plain = frame([["MACE_energy", float(1)]], [["MACE_forces", column(1)]]);
    expect(withPoolResultsRenamed(plain)).toBe(plain);
  });

  it("carry this project's labels (REF_*) and an earlier selection's keys under pool_ names too", () => {
    const renamed = withPoolResultsRenamed(
      frame(
        [["REF_energy", float(-3)], ["REF_stress", float(0)], ["source", { kind: "string", value: "md.xyz" }], ["frame", { kind: "int", value: 7 }], ["candidate_id", { kind: "string", value: "x" }], ["selection_rank", { kind: "int", value: 2 }], ["REFERENCE", float(1)]],
        [["REF_forces", column(2)]],
      ),
    );
    expect([...renamed.info.keys()]).toEqual(["pool_REF_energy", "pool_REF_stress", "pool_source", "pool_frame", "pool_candidate_id", "pool_selection_rank", "REFERENCE"]);
    expect([...renamed.arrays.keys()]).toEqual(["pool_REF_forces"]);
  });
});

describe("ranking.json's committee", () => {
  it("records each member file's sha256, the keys' prefix, and says when the disagreement cannot change the ranking", () => {
    const files = inputs([meta("a")], { committee: ["m1.xyz", "m2.xyz"], committeeSha256: ["11", "22"] });
    expect(JSON.parse(renderRankingJson(files)).committee).toEqual({
      size: 2, members: ["m1.xyz", "m2.xyz"], files: [{ path: "m1.xyz", sha256: "11" }, { path: "m2.xyz", sha256: "22" }],
    });
    const keys = inputs([meta("a")], { committee: ["0", "1"] });
    keys.parameters = { ...keys.parameters, committee_source: "keys", committee_keys: "committee_" };
    const json = JSON.parse(renderRankingJson(keys));
    expect(json.committee).toEqual({ size: 2, members: ["0", "1"] });
    expect(json.parameters.committee_keys).toBe("committee_");
    const constant = "; the disagreement is the same for every selectable candidate, so diversity alone decides";
    expect(JSON.parse(renderRankingJson({ ...files, constantDisagreement: true })).rule).toContain(constant);
    expect(JSON.parse(renderRankingJson(files)).rule).not.toContain("the same for every");
    const topK = { ...files.parameters, rule: { kind: "weighted" as const, wDiv: 0, wDis: 1 } };
    expect(rankingRule(topK, 0, 0, true)).toContain("so the picks follow pool order");
    expect(rankingRule({ ...topK, disagreement: null }, 0, 0, true)).not.toContain("the same for every");
  });
});
