/** Picks of a real extxyz pool for selected.extxyz tests: byte ranges and ids as a ranking finds them. */
import { candidateId } from "../../src/core/select/candidate-id.js";
import { ExtxyzReadTrace, readExtxyzBatches } from "../../src/io/extxyz.js";
import type { PicksAtRanges } from "../../src/io/selected.js";
import { realPath } from "./real-data.js";

export const PICKS_POOL = realPath("extxyz/gpumd_nep_PbTe_train.xyz");

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Picks of PICKS_POOL's frames in the order given (ranks 1, 2, ...), with their byte ranges and ids. */
export async function picksOf(indices: number[], file: string): Promise<PicksAtRanges> {
  const trace = new ExtxyzReadTrace();
  const frames = (await collect(readExtxyzBatches(PICKS_POOL, trace))).flat();
  const meta = (i: number) => ({ id: candidateId(frames[i]), source: PICKS_POOL, frame: i, natoms: frames[i].natoms, formula: "PbTe" });
  const sorted = [...indices].sort((a, b) => a - b);
  return {
    file,
    picks: indices.map((row, k) => ({ rank: k + 1, row, meta: meta(row) })),
    sources: [{ path: PICKS_POOL, ranges: sorted.map((index) => ({ index, ...trace.starts.range(index)! })), rows: sorted }],
  };
}
