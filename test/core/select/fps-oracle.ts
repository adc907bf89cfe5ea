/**
 * Brute-force greedy selection for tests: every distance computed, no pruning, one plain loop.
 * Same semantics as src/core/select/fps.ts (see its header), written independently.
 */

export interface OracleInput {
  X: Float32Array;
  N: number;
  D: number;
  k: number;
  ids: string[];
  u?: Float64Array;
  excluded?: Uint8Array;
  labelled?: { X: Float32Array; ids: string[] };
  rule?: { kind: "weighted"; wDiv: number; wDis: number } | { kind: "uwfps"; alpha: number; beta: number };
}

export interface OraclePick {
  index: number;
  diversity: number;
  score: number;
}

export function bruteForceSelection(input: OracleInput): { picks: OraclePick[]; nearest: Float64Array } {
  const { X, N, D, k, ids } = input;
  const rule = input.rule ?? { kind: "weighted", wDiv: 1, wDis: 1 };
  const u = input.u ?? new Float64Array(N);
  const distance = (a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): number => {
    let s = 0;
    for (let j = 0; j < D; j++) s += (a[ai * D + j] - b[bi * D + j]) ** 2;
    return Math.sqrt(s);
  };
  const nearest = new Float64Array(N);
  const labelled = input.labelled;
  const M = labelled ? labelled.ids.length : 0;
  if (M > 0 && labelled) {
    for (let i = 0; i < N; i++) {
      let best = Infinity;
      for (let l = 0; l < M; l++) best = Math.min(best, distance(X, i, labelled.X, l));
      nearest[i] = best;
    }
  } else {
    const centroid = new Float64Array(D);
    for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) centroid[j] += X[i * D + j];
    for (let j = 0; j < D; j++) centroid[j] /= N;
    for (let i = 0; i < N; i++) nearest[i] = distance(X, i, centroid, 0);
  }
  const seen = new Set(labelled?.ids ?? []);
  const pickable = ids.map((id, i) => {
    const ok = !seen.has(id) && !(input.excluded && input.excluded[i]);
    seen.add(id);
    return ok;
  });
  const score = (i: number): number =>
    rule.kind === "weighted" ? rule.wDiv * nearest[i] + rule.wDis * u[i] : u[i] ** rule.alpha * nearest[i] ** rule.beta;
  const picks: OraclePick[] = [];
  for (let r = 0; r < k; r++) {
    let best = -1;
    for (let i = 0; i < N; i++) if (pickable[i] && (best < 0 || score(i) > score(best))) best = i;
    if (best < 0) break;
    picks.push({ index: best, diversity: nearest[best], score: score(best) });
    pickable[best] = false;
    for (let i = 0; i < N; i++) {
      const d = distance(X, i, X, best);
      nearest[i] = r === 0 && M === 0 ? d : Math.min(nearest[i], d);
    }
  }
  return { picks, nearest };
}

/** Deterministic uniform numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
