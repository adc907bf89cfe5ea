/**
 * selected.extxyz, the third artifact of a ranking: the picked frames, read again from the pool and checked
 * against the ids ranked, written in greedy order with their candidate_id, source, frame and selection_rank.
 */

import { InputError } from "../core/errors.js";
import { candidateId } from "../core/select/candidate-id.js";
import { selectionInfo, type CandidateMeta } from "../core/select/ranking.js";
import type { Frame } from "../core/structure.js";
import { ExtxyzFileWriter, readExtxyzFrameRanges, type ExtxyzFrameRange } from "./extxyz.js";

/** A pick as selected.extxyz records it: its rank, its candidate row and what was ranked there. */
export interface SelectedPick {
  rank: number;
  row: number;
  meta: CandidateMeta;
}

/** The picks of a ranking whose frames are all at known byte ranges of plain extxyz files (rows of the ranking). */
export interface PicksAtRanges {
  file: string;
  picks: SelectedPick[];
  sources: { path: string; ranges: ExtxyzFrameRange[]; rows: number[] }[];
}

/** Throws unless frame `index` of `path` is still the structure ranked as `id`. */
export function checkRanked(path: string, index: number, frame: Frame, id: string): void {
  if (candidateId(frame) !== id) {
    throw new InputError(path, `frame ${index}`, "is not the structure ranked a moment ago: the file changed while ranking");
  }
}

/** Writes `file` from the picks' frames (by row), in the order of `picks`. */
export async function writeSelectedFrames(file: string, picks: readonly SelectedPick[], frames: ReadonlyMap<number, Frame>): Promise<void> {
  const writer = await ExtxyzFileWriter.open(file);
  for (const pick of picks) {
    const frame = frames.get(pick.row)!;
    const info = new Map(frame.info);
    for (const [k, v] of selectionInfo(pick.meta, pick.rank)) info.set(k, v);
    await writer.write({ ...frame, info });
  }
  await writer.close();
}

/** selected.extxyz from frames at known byte ranges: what rank's selection worker writes while rank writes the rest. */
export async function writeSelectedAtRanges(request: PicksAtRanges): Promise<void> {
  const ids = new Map(request.picks.map((pick) => [pick.row, pick.meta.id]));
  const frames = new Map<number, Frame>();
  for (const { path, ranges, rows } of request.sources) {
    let k = 0;
    for await (const { index, frame } of readExtxyzFrameRanges(path, ranges)) {
      checkRanked(path, index, frame, ids.get(rows[k])!);
      frames.set(rows[k++], frame);
    }
  }
  await writeSelectedFrames(request.file, request.picks, frames);
}
