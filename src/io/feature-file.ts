/**
 * `--features FILE` from disk. A .npy is read in pieces into float32 rows (a matrix, or the selection's
 * memory): float32 straight into place, float64 converted piece by piece (at a million candidates x 100 the
 * file is 800 MB, which is never held whole). JSON goes through parseFeatureFile.
 */
import { readSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { InputError } from "../core/errors.js";
import { checkNpySize, LITTLE_ENDIAN_HOST, npyLayout, parseFeatureFile } from "../core/select/feature-file.js";
import {
  CANDIDATE_ROWS, copyRows, createFeatureMatrix, rowRuns, rowsOf, validateFeatureMatrix, type FeatureMatrix, type MatrixRows, type PlacedRows,
} from "../core/select/feature-matrix.js";
import { fileError } from "./open.js";

const HEAD_BYTES = 1 << 16;
/** Bytes read synchronously between turns of the event loop (the App's server stays responsive). */
const SYNC_READ_BYTES = 1 << 24;
/** float64 values converted per read. */
const PIECE_VALUES = 1 << 23;
const EXPECTED = "a feature file (JSON rows or .npy)";

/**
 * The features of `ids` from a .npy or JSON file, checked: one finite row per candidate (`names` says what the rows
 * are). A .npy goes into the rows `place` lays out once the shape is known (the selection's memory), when given;
 * JSON into a matrix.
 */
export async function readFeatureFile(file: string, ids: readonly string[], place?: undefined, names?: MatrixRows): Promise<FeatureMatrix>;
export async function readFeatureFile(
  file: string, ids: readonly string[], place: (rows: number, cols: number) => PlacedRows, names?: MatrixRows,
): Promise<FeatureMatrix | PlacedRows>;
export async function readFeatureFile(
  file: string, ids: readonly string[], place?: (rows: number, cols: number) => PlacedRows, names = CANDIDATE_ROWS,
): Promise<FeatureMatrix | PlacedRows> {
  const read = await readNpyRows<FeatureMatrix | PlacedRows>(file, place ?? ((rows, cols) => createFeatureMatrix(rows, cols)));
  if (read === undefined) {
    try {
      return parseFeatureFile(await readFile(file), file, ids, names);
    } catch (err) {
      // Node reads at most 2 GiB into a buffer and half a gigabyte into a string.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ERR_FS_FILE_TOO_LARGE" || code === "ERR_STRING_TOO_LONG") {
        throw new InputError(file, undefined, "is too large to read as JSON; save the features as a .npy file (np.save) instead, which is read in pieces");
      }
      throw fileError(file, err, EXPECTED);
    }
  }
  validateFeatureMatrix(read, ids, file, undefined, names);
  return read;
}

/**
 * A little-endian float32 or float64 C-order .npy as a float32 matrix, not yet checked against the
 * candidates; undefined for any other file.
 * float64 values are rounded to float32 as parseFeatureFile rounds them, in pieces of whole rows of up to
 * `pieceValues` values (one row when a row is longer).
 */
export async function readNpyFeatures(file: string, pieceValues = PIECE_VALUES): Promise<FeatureMatrix | undefined> {
  return readNpyRows(file, (rows, cols) => createFeatureMatrix(rows, cols), pieceValues);
}

/** readNpyFeatures into the rows `place` lays out once the shape is known (the selection's memory, say). */
export async function readNpyRows<T extends FeatureMatrix | PlacedRows>(
  file: string, place: (rows: number, cols: number) => T, pieceValues = PIECE_VALUES,
): Promise<T | undefined> {
  if (!file.toLowerCase().endsWith(".npy")) return undefined;
  try {
    const handle = await open(file, "r");
    try {
      const head = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
      const layout = npyLayout(head.subarray(0, bytesRead), file);
      if (!LITTLE_ENDIAN_HOST) return undefined;
      checkNpySize(layout, (await handle.stat()).size, file);
      const { rows, cols, width, dataStart } = layout;
      const placed = place(rows, cols);
      const target = rowsOf(placed);
      // Synchronous reads, with a turn of the event loop after every SYNC_READ_BYTES: a promise per read took
      // about twice as long (49 reads of 0.8 MB at N = 1e5, on the selection's critical path).
      let sinceTurn = 0;
      const readFully = async (into: Uint8Array, from: number): Promise<void> => {
        for (let at = 0; at < into.length; ) {
          const got = readSync(handle.fd, into, at, Math.min(SYNC_READ_BYTES, into.length - at), from + at);
          if (got === 0) throw new InputError(file, undefined, "ended early: the file changed while it was read");
          at += got;
          sinceTurn += got;
          if (sinceTurn >= SYNC_READ_BYTES) {
            sinceTurn = 0;
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
      };
      const { data } = target;
      if (width === 4) {
        for (const [row, run] of rowRuns(target, 0, rows)) {
          await readFully(new Uint8Array(data.buffer, data.byteOffset + 4 * target.start(row), 4 * run * cols), dataStart + 4 * row * cols);
        }
      } else {
        const pieceRows = Math.max(1, Math.min(Math.floor(pieceValues / Math.max(1, cols)), rows));
        const piece = new Float64Array(pieceRows * cols);
        for (let row = 0; row < rows; row += pieceRows) {
          const count = Math.min(pieceRows, rows - row);
          const part = piece.subarray(0, count * cols);
          await readFully(new Uint8Array(part.buffer, 0, part.byteLength), dataStart + 8 * row * cols);
          copyRows(part, 0, count, target, row);
        }
      }
      return placed;
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw fileError(file, err, EXPECTED);
  }
}
