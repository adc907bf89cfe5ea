import { describe, expect, it } from "vitest";
import { InputError, UsageError } from "../../../src/core/errors.js";
import type { FeatureMatrix } from "../../../src/core/select/feature-matrix.js";
import { firstOccurrences } from "../../../src/core/select/candidate-id.js";
import { confirmWithIds, DEFAULT_LAZY_POLICY, selectCandidates, type LazyPolicy, type SelectionInput } from "../../../src/core/select/fps.js";
import { bruteForceSelection, seededRandom, type OracleInput } from "./fps-oracle.js";

function matrix(rows: number, cols: number, data: Float32Array): FeatureMatrix {
  return { rows, cols, data };
}

/** Values on a grid of 1/8 in [-2, 2): every sum of squares is exact, so ties are exact ties. */
function dyadic(random: () => number, count: number, levels = 32): Float32Array {
  return Float32Array.from({ length: count }, () => Math.floor(random() * levels) / 8 - 2);
}

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `c${i}`);
}

/** Passes make every pick, or only the first (the rest are made lazily), or the default decides. */
const POLICIES: [string, LazyPolicy][] = [
  ["by passes", { passes: Infinity, minShare: 0 }],
  ["lazily after the first pass", { passes: 1, minShare: 0 }],
  ["lazily and by passes in turn", { passes: 1, minShare: 0, resumeShare: 2 }],
  ["as the default policy decides", DEFAULT_LAZY_POLICY],
];

function run(oracle: OracleInput, lazy?: LazyPolicy): ReturnType<typeof selectCandidates> {
  const input: SelectionInput = {
    features: matrix(oracle.N, oracle.D, oracle.X),
    ids: oracle.ids,
    k: oracle.k,
    ...(oracle.u ? { disagreement: oracle.u } : {}),
    ...(oracle.excluded ? { excluded: oracle.excluded } : {}),
    ...(oracle.labelled ? { labelled: { features: matrix(oracle.labelled.ids.length, oracle.D, oracle.labelled.X), ids: oracle.labelled.ids } } : {}),
    ...(oracle.rule ? { rule: oracle.rule } : {}),
  };
  return selectCandidates(input, lazy);
}

function expectSameAsOracle(oracle: OracleInput, exact: boolean, lazy?: LazyPolicy): void {
  const expected = bruteForceSelection(oracle);
  const result = run(oracle, lazy);
  expect(result.picks.map((p) => p.index)).toEqual(expected.picks.map((p) => p.index));
  result.picks.forEach((pick, r) => {
    expect(pick.rank).toBe(r + 1);
    if (exact) {
      expect(pick.diversity).toBe(expected.picks[r].diversity);
      expect(pick.score).toBe(expected.picks[r].score);
    } else {
      expect(pick.diversity).toBeCloseTo(expected.picks[r].diversity, 9);
      expect(pick.score).toBeCloseTo(expected.picks[r].score, 9);
    }
  });
  for (let i = 0; i < oracle.N; i++) {
    if (exact) expect(result.distanceToCovered[i]).toBe(expected.nearest[i]);
    else expect(result.distanceToCovered[i]).toBeCloseTo(expected.nearest[i], 9);
  }
}

describe.each(POLICIES)("greedy farthest-point selection against brute force, picks made %s", (_, lazy) => {
  it("matches on random float32 features, pure diversity", () => {
    const random = seededRandom(1);
    for (const [N, D, k] of [[300, 5, 40], [257, 13, 257], [500, 37, 60], [120, 100, 30]]) {
      const X = Float32Array.from({ length: N * D }, () => random() * 4 - 2);
      expectSameAsOracle({ X, N, D, k, ids: ids(N), rule: { kind: "weighted", wDiv: 1, wDis: 0 } }, false, lazy);
    }
  });

  it("matches on clustered data where most distances are pruned", () => {
    const random = seededRandom(2);
    const N = 1500, D = 9;
    const centres = Array.from({ length: 6 }, () => Array.from({ length: D }, () => random() * 40));
    const X = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      const c = centres[i % 6];
      for (let j = 0; j < D; j++) X[i * D + j] = c[j] + random() * 0.5;
    }
    expectSameAsOracle({ X, N, D, k: 200, ids: ids(N), rule: { kind: "weighted", wDiv: 1, wDis: 0 } }, false, lazy);
  });

  it("matches on uniform 100-D features, where every pick scans the whole pool", () => {
    const random = seededRandom(6);
    const N = 1500, D = 100;
    const X = Float32Array.from({ length: N * D }, () => random());
    expectSameAsOracle({ X, N, D, k: 150, ids: ids(N), rule: { kind: "weighted", wDiv: 1, wDis: 0 } }, false, lazy);
  });

  it("matches with labelled rows far outside the candidates' range", () => {
    const random = seededRandom(7);
    const N = 400, D = 12, M = 30;
    const X = Float32Array.from({ length: N * D }, () => random());
    const labelledX = Float32Array.from({ length: M * D }, (_, p) => (p < 10 * D ? 40 : 0.5) + random() * 3);
    const labelled = { X: labelledX, ids: Array.from({ length: M }, (_, l) => `l${l}`) };
    expectSameAsOracle({ X, N, D, k: 80, ids: ids(N), labelled, rule: { kind: "weighted", wDiv: 1, wDis: 0 } }, false, lazy);
  });

  it("breaks exact ties by the lowest index, with disagreement in the score", () => {
    const random = seededRandom(3);
    const N = 400, D = 3;
    const X = dyadic(random, N * D, 8);
    const u = Float64Array.from({ length: N }, () => Math.floor(random() * 4) / 4);
    expectSameAsOracle({ X, N, D, k: 150, ids: ids(N), u, rule: { kind: "weighted", wDiv: 1, wDis: 0.5 } }, true, lazy);
    expectSameAsOracle({ X, N, D, k: 150, ids: ids(N), u, rule: { kind: "weighted", wDiv: 0, wDis: 1 } }, true, lazy);
  });

  it("picks identical points in index order", () => {
    const N = 20, D = 4;
    const X = new Float32Array(N * D).fill(0.25);
    const result = run({ X, N, D, k: 5, ids: ids(N) }, lazy);
    expect(result.picks.map((p) => p.index)).toEqual([0, 1, 2, 3, 4]);
    expect(result.picks.every((p) => p.diversity === 0)).toBe(true);
  });

  it("starts from the point farthest from the centroid, then replaces the centroid distance", () => {
    // 1-D points 0, 1, 2, 10: centroid 3.25, farthest is 10 (index 3); then 0 (distance 10).
    const X = Float32Array.of(0, 1, 2, 10);
    const result = run({ X, N: 4, D: 1, k: 3, ids: ids(4), rule: { kind: "weighted", wDiv: 1, wDis: 0 } }, lazy);
    expect(result.picks.map((p) => p.index)).toEqual([3, 0, 2]);
    expect(result.picks.map((p) => p.diversity)).toEqual([6.75, 10, 2]);
    expect(Array.from(result.distanceToCovered)).toEqual([0, 1, 0, 0]);
  });

  it("seeds coverage from the labelled set and never picks a labelled or duplicate id", () => {
    const random = seededRandom(4);
    const N = 300, D = 4, M = 25;
    const X = dyadic(random, N * D);
    const labelledX = dyadic(random, M * D);
    const candidateIds = ids(N);
    // Duplicates: candidates 10..19 repeat the ids (and rows) of 0..9; 20..24 repeat labelled rows.
    for (let i = 10; i < 20; i++) {
      candidateIds[i] = candidateIds[i - 10];
      X.copyWithin(i * D, (i - 10) * D, (i - 9) * D);
    }
    const labelledIds = Array.from({ length: M }, (_, l) => `l${l}`);
    for (let i = 20; i < 25; i++) {
      candidateIds[i] = labelledIds[i - 20];
      X.set(labelledX.subarray((i - 20) * D, (i - 19) * D), i * D);
    }
    const excluded = Uint8Array.from({ length: N }, (_, i) => (i % 7 === 3 ? 1 : 0));
    const oracle: OracleInput = { X, N, D, k: 120, ids: candidateIds, excluded, labelled: { X: labelledX, ids: labelledIds } };
    expectSameAsOracle(oracle, true, lazy);
    const picked = run(oracle, lazy).picks.map((p) => p.index);
    expect(picked.some((i) => i >= 10 && i < 25)).toBe(false);
    expect(picked.some((i) => i % 7 === 3)).toBe(false);
  });

  it("supports uncertainty-weighted FPS", () => {
    const random = seededRandom(5);
    const N = 250, D = 6;
    const X = Float32Array.from({ length: N * D }, () => random());
    const u = Float64Array.from({ length: N }, () => random());
    expectSameAsOracle({ X, N, D, k: 50, ids: ids(N), u, rule: { kind: "uwfps", alpha: 1, beta: 1 } }, false, lazy);
    expectSameAsOracle({ X, N, D, k: 50, ids: ids(N), u, rule: { kind: "uwfps", alpha: 2, beta: 0.5 } }, false, lazy);
  });

  it("stops when fewer candidates are pickable than requested", () => {
    const X = Float32Array.of(0, 1, 2, 3);
    const excluded = Uint8Array.of(0, 1, 0, 1);
    const result = run({ X, N: 4, D: 1, k: 4, ids: ids(4), excluded }, lazy);
    expect(result.selectable).toBe(2);
    expect(result.requested).toBe(4);
    expect(result.picks.map((p) => p.index).sort()).toEqual([0, 2]);
  });
});

describe("lazy policies", () => {
  it("pick lazily from the pick they name, or never", () => {
    const X = Float32Array.from({ length: 60 * 3 }, seededRandom(8));
    const [[, never], [, afterFirst]] = POLICIES;
    expect(run({ X, N: 60, D: 3, k: 10, ids: ids(60) }, afterFirst).lazyFrom).toBe(1);
    expect(run({ X, N: 60, D: 3, k: 10, ids: ids(60) }, { passes: 3, minShare: 0 }).lazyFrom).toBe(3);
    expect(run({ X, N: 60, D: 3, k: 10, ids: ids(60) }, never).lazyFrom).toBeNull();
  });

  it("by default, pick lazily once eight passes in a row pruned little, and return to passes once they would prune most", () => {
    const random = seededRandom(6);
    const N = 1500, D = 100;
    const uniform = run({ X: Float32Array.from({ length: N * D }, () => random()), N, D, k: 150, ids: ids(N) });
    // The first pick's pass replaces the centroid distances and tests nothing; picks 2 to 9 each test every row.
    expect(uniform.lazyFrom).toBe(9);
    expect(uniform.lazyPicks).toBe(141);
    // A few tight clusters: passes prune from the start.
    const centres = Array.from({ length: 6 }, () => Array.from({ length: 9 }, () => random() * 40));
    const tight = Float32Array.from({ length: N * 9 }, (_, v) => centres[Math.floor(v / 9) % 6][v % 9] + random() * 0.5);
    expect(run({ X: tight, N, D: 9, k: 200, ids: ids(N) }).lazyFrom).toBeNull();
    // 50 wide clusters in 100 dimensions (as the bench's mixture): passes prune little until each cluster has its
    // first pick, so lazy picks until then, passes after.
    const gaussian = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const wide = new Float32Array(N * D);
    const means = Array.from({ length: 50 }, () => Array.from({ length: D }, () => 3 * gaussian()));
    const maps = Array.from({ length: 50 }, () => Array.from({ length: 8 * D }, gaussian));
    for (let r = 0; r < N; r++) {
      const z = Array.from({ length: 8 }, (_, q) => gaussian() / (q + 1));
      for (let j = 0; j < D; j++) wide[r * D + j] = means[r % 50][j] + z.reduce((sum, zq, q) => sum + maps[r % 50][8 * j + q] * zq, 0);
    }
    const mixture = run({ X: wide, N, D, k: 200, ids: ids(N) });
    expect(mixture.lazyFrom).toBe(9);
    expect(mixture.lazyPicks).toBeGreaterThanOrEqual(8);
    expect(mixture.lazyPicks).toBeLessThan(100);
  });
});

describe("a selection run before the ids are known", () => {
  const N = 400, D = 5;
  const X = dyadic(seededRandom(12), N * D);
  const withoutIds = (k: number, data = X): ReturnType<typeof selectCandidates> => selectCandidates({ features: matrix(N, D, data), k });

  it("is confirmed by ids that make none of its picks unpickable, and then equals the run with them", () => {
    const candidateIds = ids(N);
    // Candidate 399 repeats candidate 398; the run without ids must not have picked 399 for this to hold.
    candidateIds[399] = candidateIds[398];
    const early = withoutIds(60);
    expect(early.picks.map((p) => p.index)).not.toContain(399);
    const exact = selectCandidates({ features: matrix(N, D, X), ids: candidateIds, k: 60 });
    expect(confirmWithIds(early, firstOccurrences(candidateIds))).toEqual(exact);
    expect(exact.selectable).toBe(N - 1);
  });

  it("is refused when it picked a later copy of a structure, or more than the ids leave pickable", () => {
    // Row 300 moved far away is the first pick without ids; with ids it repeats candidate 5.
    const data = X.slice();
    data.fill(40, 300 * D, 301 * D);
    const early = withoutIds(30, data);
    expect(early.picks[0].index).toBe(300);
    const candidateIds = ids(N);
    candidateIds[300] = candidateIds[5];
    expect(confirmWithIds(early, firstOccurrences(candidateIds))).toBeUndefined();
    const exact = selectCandidates({ features: matrix(N, D, data), ids: candidateIds, k: 30 });
    expect(exact.picks.map((p) => p.index)).not.toContain(300);
    // Only 3 distinct structures, 5 picks requested: the exact run stops at 3.
    const few = Array.from({ length: N }, (_, i) => `s${i % 3}`);
    expect(confirmWithIds(withoutIds(5), firstOccurrences(few))).toBeUndefined();
  });
});

describe("selection input errors", () => {
  const X = Float32Array.of(0, 1, 2, 3);
  const base: SelectionInput = { features: matrix(4, 1, X), ids: ids(4), k: 2 };

  it("rejects an empty pool", () => {
    expect(() => selectCandidates({ ...base, features: matrix(0, 1, new Float32Array(0)), ids: [] })).toThrow(/pool is empty/);
  });

  it("rejects a selection larger than the pool and a non-positive size", () => {
    expect(() => selectCandidates({ ...base, k: 5 })).toThrow(UsageError);
    expect(() => selectCandidates({ ...base, k: 5 })).toThrow(/cannot select 5 candidates from a pool of 4/);
    expect(() => selectCandidates({ ...base, k: 0 })).toThrow(/positive integer/);
  });

  it("names the candidate with a non-finite feature", () => {
    const bad = Float32Array.of(0, NaN, 2, 3);
    expect(() => selectCandidates({ ...base, features: matrix(4, 1, bad) })).toThrow(InputError);
    expect(() => selectCandidates({ ...base, features: matrix(4, 1, bad) })).toThrow(/candidate 1 \(c1\).*NaN/);
    // In a pair of columns and in the odd last one, of candidates and of labelled structures.
    const wide = Float32Array.from({ length: 12 }, (_, i) => i);
    for (const [at, where] of [[4, /candidate 1 \(c1\): column 1 is -Infinity/], [11, /candidate 3 \(c3\): column 2 is -Infinity/]] as const) {
      const values = wide.slice();
      values[at] = -Infinity;
      expect(() => selectCandidates({ ...base, features: matrix(4, 3, values) })).toThrow(where);
      const labelled = { features: matrix(4, 3, values), ids: ["l0", "l1", "l2", "l3"] };
      expect(() => selectCandidates({ ...base, features: matrix(4, 3, wide), labelled })).toThrow(/labelled structure \d \(l\d\): column \d is -Infinity/);
    }
  });

  it("rejects weights that rank by nothing or by a missing committee", () => {
    expect(() => selectCandidates({ ...base, rule: { kind: "weighted", wDiv: 0, wDis: 0 } })).toThrow(/both 0/);
    expect(() => selectCandidates({ ...base, rule: { kind: "weighted", wDiv: 0, wDis: 1 } })).toThrow(/committee of at least 2/);
    expect(() => selectCandidates({ ...base, rule: { kind: "uwfps", alpha: 1, beta: 1 } })).toThrow(/committee of at least 2/);
  });

  it("rejects mismatched lengths and out-of-range disagreement", () => {
    expect(() => selectCandidates({ ...base, ids: ids(3) })).toThrow(/3 candidate ids for 4/);
    expect(() => selectCandidates({ ...base, disagreement: Float64Array.of(0, 0.5, 1.5, 0) })).toThrow(/candidate 2 \(c2\) is 1.5/);
    expect(() => selectCandidates({ ...base, labelled: { features: matrix(1, 2, Float32Array.of(0, 0)), ids: ["l0"] } })).toThrow(
      /2 columns, candidates have 1/,
    );
  });
});
