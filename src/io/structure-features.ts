/**
 * `--features` from extxyz files of descriptors (mace_eval_configs --return_descriptors): one row per structure
 * (structureFeatures), matched to the pool's candidates and to the labelled structures by candidate_id or geometry,
 * so the files may come in any order, split in any way, and hold more structures than needed.
 */
import { InputError } from "../core/errors.js";
import { createFeatureMatrix, rowsOf, type FeatureMatrix, type PlacedRows } from "../core/select/feature-matrix.js";
import { structureFeatures } from "../core/select/frame-features.js";
import type { Geometry } from "../core/select/near-match.js";
import type { CandidateMeta } from "../core/select/ranking.js";
import type { Frame } from "../core/structure.js";
import { firstRowOf, FramesToRows, GEOMETRY_MATCH_PHASE, sameValues } from "./matched-frames.js";

/** Extxyz files holding a feature vector (or per-atom features) of each structure under `key`. */
export interface StructureFeatureFiles {
  files: string[];
  key: string;
  /** Composition-weighted means per element instead of one mean (structureFeatures). */
  perElement?: boolean;
}

export interface LabelledStructures {
  /** candidate_id of each labelled structure (a pool candidate's id when it was found in the pool). */
  ids: readonly string[];
  /** Where each one was read: file and frame. */
  origins: readonly { file: string; frame: number }[];
  geometries: readonly Geometry[];
}

export interface StructureFeatureRows {
  candidates: FeatureMatrix | PlacedRows;
  /** The labelled structures' rows, in their order; undefined without any. */
  labelled?: FeatureMatrix;
  /** Structures in the files that are neither candidates nor labelled structures. */
  unused: number;
  /** Structures in the files found by geometry, their ids differing from the pool's or the labelled set's. */
  byGeometry: number;
}

/**
 * The rows of the candidates (laid out by `place` once the first frame gives the width: the selection's memory, say)
 * and of the labelled structures, from `from`'s files.
 */
export async function readStructureFeatures(
  from: StructureFeatureFiles,
  pool: { meta: readonly CandidateMeta[]; structuresOf: (rows: number[]) => AsyncIterable<{ row: number; frame: Geometry }> },
  labelled: LabelledStructures,
  species: readonly string[],
  place: (rows: number, cols: number) => FeatureMatrix | PlacedRows,
  onProgress?: (phase: string, done: number, total?: number) => void,
): Promise<StructureFeatureRows> {
  const perElement = from.perElement ? species : undefined;
  const { meta } = pool;
  const N = meta.length;
  // Rows 0..N-1 are candidates; N + j the labelled structure j that is not in the pool (the first with its id).
  const rowOf = firstRowOf(meta.map((m) => m.id));
  labelled.ids.forEach((id, j) => {
    if (!rowOf.has(id)) rowOf.set(id, N + j);
  });
  const total = N + labelled.ids.length;
  const structuresOf = async function* (rows: number[]): AsyncGenerator<{ row: number; frame: Geometry }> {
    yield* pool.structuresOf(rows.filter((row) => row < N));
    for (const row of rows) if (row >= N) yield { row, frame: labelled.geometries[row - N] };
  };
  const matcher = new FramesToRows(rowOf, total, structuresOf, { onIndexing: (done, of) => onProgress?.(GEOMETRY_MATCH_PHASE, done, of) });
  const filled = new Uint8Array(total);
  // Laid out by `place` (the selection's memory, say) once the first frame tells the width. A labelled structure
  // not in the pool is filled in place.
  let laidOut: FeatureMatrix | PlacedRows | undefined;
  let candidates: PlacedRows | undefined;
  let labelledRows: FeatureMatrix | undefined;
  let firstFile = "";
  let unused = 0;
  let read = 0;
  for (const file of from.files) {
    const extract = (frame: Frame, n: number): { n: number; row: Float64Array } => {
      if (++read % 1024 === 0) onProgress?.("reading features", read);
      const row = structureFeatures(frame, from.key, perElement);
      if (typeof row === "string") throw new InputError(file, `frame ${n}`, row);
      if (candidates === undefined) {
        firstFile = file;
        laidOut = place(N, row.length);
        candidates = rowsOf(laidOut);
        labelledRows = createFeatureMatrix(labelled.ids.length, row.length);
      } else if (row.length !== candidates.cols) {
        throw new InputError(file, `frame ${n}`, `${from.key} has ${row.length} values per structure, but ${firstFile} gave ${candidates.cols}: the features must come from one model and the same layers`);
      }
      return { n, row };
    };
    const waiting = (row: number): boolean => !filled[row] && rowOf.get(row < N ? meta[row].id : labelled.ids[row - N]) === row;
    const unmatched = await matcher.read(file, extract, waiting, (row, { n, row: values }) => {
      // A structure given twice must have the same features: which one counted would otherwise go unseen.
      if (filled[row]) {
        const at = row < N ? candidates!.start(row) : (row - N) * labelledRows!.cols;
        const kept = (row < N ? candidates! : labelledRows!).data.subarray(at, at + values.length);
        if (sameValues(kept, values)) return;
        const what = row < N ? `candidate ${meta[row].id} (${meta[row].source} frame ${meta[row].frame})` : `labelled structure ${labelled.ids[row - N]}`;
        throw new InputError(file, `frame ${n}`, `gives ${what} other ${from.key} than an earlier frame: each structure needs one feature vector`);
      }
      if (row < N) candidates!.data.set(values, candidates!.start(row));
      else labelledRows!.data.set(values, (row - N) * labelledRows!.cols);
      filled[row] = 1;
    });
    unused += unmatched.length;
  }
  if (candidates === undefined || labelledRows === undefined) throw new InputError(from.files[0], undefined, "holds no structures: expected extxyz frames with features");
  const { cols } = candidates;
  // A duplicated candidate, and a labelled structure in the pool or seen before, take the row of the first with its id.
  const rowData = (row: number): Float32Array => {
    const at = row < N ? candidates!.start(row) : (row - N) * cols;
    return (row < N ? candidates! : labelledRows!).data.subarray(at, at + cols);
  };
  meta.forEach((m, i) => {
    const row = rowOf.get(m.id)!;
    if (!filled[row]) {
      throw new InputError(m.source, `frame ${m.frame}`, `candidate ${m.id} has no ${from.key} in ${from.files.join(", ")}: every pool structure needs its features (run mace_eval_configs --return_descriptors on each pool file)`);
    }
    if (row !== i) candidates!.data.set(rowData(row), candidates!.start(i));
  });
  labelled.ids.forEach((id, j) => {
    const row = rowOf.get(id)!;
    if (!filled[row]) {
      const { file, frame } = labelled.origins[j];
      throw new InputError(file, `frame ${frame}`, `labelled structure ${id} has no ${from.key} in ${from.files.join(", ")}: the selection starts from the labelled set, so it needs their features too (run mace_eval_configs --return_descriptors on it and add the output to --features)`);
    }
    if (row !== N + j) labelledRows!.data.set(rowData(row), j * cols);
  });
  return { candidates: laidOut!, labelled: labelled.ids.length ? labelledRows : undefined, unused, byGeometry: matcher.matchedByGeometry };
}
