/**
 * Pairing predictions with references by frame identity (candidate id), independent of frame order.
 * A structure that occurs k times on both sides pairs its k-th occurrences in file order; surplus
 * occurrences on either side stay unmatched and are reported.
 */

export interface Pairing {
  /** [prediction index, reference index], in prediction order. */
  pairs: Array<[number, number]>;
  /** Prediction indices without a reference, in file order. */
  unmatchedPred: number[];
  /** Reference indices without a prediction, in file order. */
  unmatchedRef: number[];
}

export function pairByIdentity(predIds: readonly string[], refIds: readonly string[]): Pairing {
  const queues = new Map<string, number[]>();
  refIds.forEach((id, i) => {
    const q = queues.get(id);
    if (q) q.push(i);
    else queues.set(id, [i]);
  });
  const heads = new Map<string, number>();
  const pairs: Array<[number, number]> = [];
  const unmatchedPred: number[] = [];
  predIds.forEach((id, p) => {
    const q = queues.get(id);
    const k = heads.get(id) ?? 0;
    if (q && k < q.length) {
      pairs.push([p, q[k]]);
      heads.set(id, k + 1);
    } else {
      unmatchedPred.push(p);
    }
  });
  const used = new Uint8Array(refIds.length);
  for (const [, r] of pairs) used[r] = 1;
  const unmatchedRef: number[] = [];
  for (let r = 0; r < refIds.length; r++) if (!used[r]) unmatchedRef.push(r);
  return { pairs, unmatchedPred, unmatchedRef };
}
