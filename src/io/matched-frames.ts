/**
 * Frames of files written from the pool by other tools (mace_eval_configs outputs: committee predictions,
 * descriptors) matched to rows: by candidate_id, else by geometry. ASE prints positions with 8 decimals, which gives
 * many structures another id than the pool's copy (near-match.ts), so a frame whose id is no row's is compared with
 * the structures of the rows still waiting, read again once, when first needed.
 */
import { candidateId } from "../core/select/candidate-id.js";
import { geometryOf, NearStructureIndex, type Geometry } from "../core/select/near-match.js";
import type { Frame } from "../core/structure.js";
import { readExtxyz } from "./extxyz.js";

/** A frame matched to no row: its index in the file and its candidate_id. */
export interface UnmatchedFrame {
  n: number;
  id: string;
}

export class FramesToRows {
  private readonly near = new NearStructureIndex();
  private readonly indexed = new Set<number>();

  /**
   * `rowOf`: candidate_id -> row. `structuresOf`: the structures of these rows (each row once), for the geometry
   * match; `rows`: how many rows there are.
   */
  constructor(
    private readonly rowOf: ReadonlyMap<string, number>,
    private readonly rows: number,
    private readonly structuresOf: (rows: number[]) => AsyncIterable<{ row: number; frame: Geometry }>,
  ) {}

  /**
   * Reads `file`, takes `extract(frame, n)` of each frame (which throws on a frame it cannot use) and gives it to
   * `put(row, value)` for the row the frame is: by id, else the nearest structure among the rows for which
   * `waiting(row)` holds once the file is read. Returns the frames matched to no row.
   */
  async read<T>(
    file: string,
    extract: (frame: Frame, n: number) => T,
    waiting: (row: number) => boolean,
    put: (row: number, value: T) => void,
  ): Promise<UnmatchedFrame[]> {
    // Only the geometry and the value of a frame wait for the geometry match, not its other arrays.
    const pending: { n: number; id: string; geometry: Geometry; value: T }[] = [];
    let n = 0;
    for await (const frame of readExtxyz(file)) {
      const value = extract(frame, n);
      const id = candidateId(frame);
      const row = this.rowOf.get(id);
      if (row === undefined) pending.push({ n, id, geometry: geometryOf(frame), value });
      else put(row, value);
      n++;
    }
    if (pending.length === 0) return [];
    const fresh: number[] = [];
    for (let row = 0; row < this.rows; row++) if (waiting(row) && !this.indexed.has(row)) fresh.push(row);
    for await (const { row, frame } of this.structuresOf(fresh)) {
      this.near.add(row, frame);
      this.indexed.add(row);
    }
    const unmatched: UnmatchedFrame[] = [];
    for (const { n, id, geometry, value } of pending) {
      const row = this.near.find(geometry);
      if (row === undefined) unmatched.push({ n, id });
      else put(row, value);
    }
    return unmatched;
  }
}

/** candidate_id -> the first row with it. */
export function firstRowOf(ids: Iterable<string>): Map<string, number> {
  const rowOf = new Map<string, number>();
  let row = 0;
  for (const id of ids) {
    if (!rowOf.has(id)) rowOf.set(id, row);
    row++;
  }
  return rowOf;
}
