/** Picks of a real extxyz pool for selected.extxyz tests: byte ranges and ids as a ranking finds them. */
import { candidateId } from "../../src/core/select/candidate-id.js";
import type { CandidateMeta } from "../../src/core/select/ranking.js";
import { ExtxyzReadTrace, readExtxyzBatches } from "../../src/io/extxyz.js";
import type { FrameLocator, SelectedPick } from "../../src/io/selected.js";
import { realPath } from "./real-data.js";

export const PICKS_POOL = realPath("extxyz/gpumd_nep_PbTe_train.xyz");

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** PICKS_POOL's candidates (one per frame) and where each frame is, as the pool read finds them. */
export async function picksPool(): Promise<{ meta: CandidateMeta[]; locate: FrameLocator }> {
  const trace = new ExtxyzReadTrace();
  const frames = (await collect(readExtxyzBatches(PICKS_POOL, trace))).flat();
  const meta = frames.map((frame, i) => ({ id: candidateId(frame), source: PICKS_POOL, frame: i, natoms: frame.natoms, formula: "PbTe" }));
  const locate: FrameLocator = (row) => {
    const range = trace.starts.range(row);
    return range && { path: PICKS_POOL, range: { index: row, ...range } };
  };
  return { meta, locate };
}

/** Picks of these rows of PICKS_POOL, in the order given (ranks 1, 2, ...). */
export const picksOf = (rows: number[], meta: CandidateMeta[]): SelectedPick[] => rows.map((row, k) => ({ rank: k + 1, row, meta: meta[row] }));
