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

/**
 * How many frames wait for the geometry match before the rows still waiting are indexed and the later frames are
 * matched as they come. Waiting for the file's end indexes only the rows that no id matched, but holds every such
 * frame: a million descriptor vectors whose ids all differ took 5.9 GB.
 */
const PENDING_FRAMES = 1 << 15;

/** A frame matched to no row: its index in the file and its candidate_id. */
export interface UnmatchedFrame {
  n: number;
  id: string;
}

/** The progress phase of reading structures for the geometry match. */
export const GEOMETRY_MATCH_PHASE = "matching by geometry";

export interface MatchOptions {
  /** How many frames may wait for the geometry match (PENDING_FRAMES). */
  pendingFrames?: number;
  /** Progress of reading the waiting rows' structures for the geometry match: structures read, of `total`. */
  onIndexing?: (done: number, total: number) => void;
}

export class FramesToRows {
  private readonly near = new NearStructureIndex();
  /** 1 for the rows whose structures are in `near`. */
  private readonly indexed: Uint8Array;
  /** How many frames read so far went to a row by geometry (their ids differ). */
  matchedByGeometry = 0;

  /**
   * `rowOf`: candidate_id -> row. `structuresOf`: the structures of these rows (each row once), for the geometry
   * match; `rows`: how many rows there are.
   */
  constructor(
    private readonly rowOf: ReadonlyMap<string, number>,
    private readonly rows: number,
    private readonly structuresOf: (rows: number[]) => AsyncIterable<{ row: number; frame: Geometry }>,
    private readonly options: MatchOptions = {},
  ) {
    this.indexed = new Uint8Array(rows);
  }

  /**
   * Reads `file`, takes `extract(frame, n)` of each frame (which throws on a frame it cannot use) and gives it to
   * `put(row, value)` for the row the frame is: by id, else the nearest structure among the rows for which
   * `waiting(row)` holds once the file is read (or once options.pendingFrames frames wait). Returns the frames
   * matched to no row, in file order.
   */
  async read<T>(
    file: string,
    extract: (frame: Frame, n: number) => T,
    waiting: (row: number) => boolean,
    put: (row: number, value: T) => void,
  ): Promise<UnmatchedFrame[]> {
    // Only the geometry and the value of a frame wait for the geometry match, not its other arrays.
    const pending: { n: number; id: string; geometry: Geometry; value: T }[] = [];
    const unmatched: UnmatchedFrame[] = [];
    const match = ({ n, id, geometry, value }: { n: number; id: string; geometry: Geometry; value: T }): void => {
      const row = this.near.find(geometry);
      if (row === undefined) unmatched.push({ n, id });
      else {
        this.matchedByGeometry++;
        put(row, value);
      }
    };
    let asTheyCome = false;
    let n = 0;
    for await (const frame of readExtxyz(file)) {
      const value = extract(frame, n);
      const id = candidateId(frame);
      const row = this.rowOf.get(id);
      if (row !== undefined) put(row, value);
      else if (asTheyCome) match({ n, id, geometry: frame, value });
      else if (pending.push({ n, id, geometry: geometryOf(frame), value }) >= (this.options.pendingFrames ?? PENDING_FRAMES)) {
        await this.indexWaiting(waiting);
        asTheyCome = true;
        pending.splice(0).forEach(match);
      }
      n++;
    }
    if (pending.length) {
      await this.indexWaiting(waiting);
      pending.forEach(match);
    }
    return unmatched;
  }

  /** Adds the structures of the rows waiting now to the geometry index, each row once. */
  private async indexWaiting(waiting: (row: number) => boolean): Promise<void> {
    const fresh: number[] = [];
    for (let row = 0; row < this.rows; row++) if (waiting(row) && !this.indexed[row]) fresh.push(row);
    let done = 0;
    for await (const { row, frame } of this.structuresOf(fresh)) {
      this.near.add(row, frame);
      this.indexed[row] = 1;
      if (++done % 1024 === 0) this.options.onIndexing?.(done, fresh.length);
    }
    if (done > 0) this.options.onIndexing?.(done, fresh.length);
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

/**
 * Whether two readings of one structure agree, value by value within 1e-6 + 1e-5 * |value| (numpy.allclose's
 * defaults, tighter): a model run twice on a GPU may differ in the last float32 digits, another model does not.
 * Both absent agree.
 */
export function sameValues(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i] - b[i]) <= 1e-6 + 1e-5 * Math.max(Math.abs(a[i]), Math.abs(b[i])))) return false;
  return true;
}
