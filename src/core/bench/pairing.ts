/**
 * Pairing predictions with references by frame identity (candidate id), independent of frame order.
 * A structure that occurs k times on both sides pairs its k-th occurrences in file order; surplus
 * occurrences on either side stay unmatched and are reported.
 */
import { NearStructureIndex, type Geometry } from "../select/near-match.js";

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

/**
 * pairByIdentity, then the frames it left unmatched by geometry (NearStructureIndex), each prediction in file order
 * with the nearest reference left: a file that prints fewer digits than the other (ASE, and so mace_eval_configs,
 * prints positions with 8 decimals; the dataset keeps every digit) gives some structures another candidate id.
 */
export function pairFrames(pred: readonly { id: string; geometry: Geometry }[], ref: readonly { id: string; geometry: Geometry }[]): Pairing {
  const byId = pairByIdentity(pred.map((f) => f.id), ref.map((f) => f.id));
  if (byId.unmatchedPred.length === 0 || byId.unmatchedRef.length === 0) return byId;
  const near = new NearStructureIndex();
  for (const r of byId.unmatchedRef) near.add(r, ref[r].geometry);
  const pairs = [...byId.pairs];
  const unmatchedPred: number[] = [];
  const paired = new Set<number>();
  for (const p of byId.unmatchedPred) {
    const r = near.claim(pred[p].geometry);
    if (r === undefined) unmatchedPred.push(p);
    else {
      paired.add(r);
      pairs.push([p, r]);
    }
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return { pairs, unmatchedPred, unmatchedRef: byId.unmatchedRef.filter((r) => !paired.has(r)) };
}
