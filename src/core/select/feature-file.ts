/** User-supplied feature matrices for `relabel rank --features FILE`: JSON (array of rows) or NumPy .npy (2-D, float32/float64, C order). */
import { InputError } from "../errors.js";
import { CANDIDATE_ROWS, createFeatureMatrix, featureMatrixFromRows, validateFeatureMatrix, type FeatureMatrix } from "./feature-matrix.js";

export function parseFeatureFile(bytes: Uint8Array, file: string, ids: readonly string[], names = CANDIDATE_ROWS): FeatureMatrix {
  if (file.toLowerCase().endsWith(".npy")) {
    const matrix = parseNpy(bytes, file);
    validateFeatureMatrix(matrix, ids, file, undefined, names);
    return matrix;
  }
  const text = Buffer.from(bytes).toString("utf8");
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch (err) {
    // Python's json module writes NaN and Infinity bare, which JSON does not allow: read as strings, named below by row.
    const bare = /(?<=[[,]\s*)(-?Infinity|NaN)(?=\s*[\],])/g;
    try {
      rows = JSON.parse(text.replace(bare, '"$1"'));
    } catch {
      throw new InputError(file, undefined, `not valid JSON (${(err as Error).message}); expected an array of rows of numbers, or a .npy file`);
    }
  }
  if (!Array.isArray(rows) || !rows.every((r) => Array.isArray(r))) {
    throw new InputError(file, undefined, `expected a JSON array of rows, each an array of numbers (one row per ${names.one})`);
  }
  return featureMatrixFromRows(rows as unknown[][], ids, file, undefined, names);
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Where and how a 2-D float .npy array keeps its values. */
export interface NpyLayout {
  rows: number;
  cols: number;
  /** Bytes per value: 4 (float32) or 8 (float64), little-endian. */
  width: 4 | 8;
  /** Byte offset of the first value. */
  dataStart: number;
}

/** The layout from the start of a .npy file (format versions 1-3); `head` must hold the whole header. */
export function npyLayout(head: Uint8Array, file: string): NpyLayout {
  if (head.length < 10 || NPY_MAGIC.some((b, i) => head[i] !== b)) throw new InputError(file, undefined, "not a .npy file (missing the \\x93NUMPY magic)");
  const major = head[6];
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  if (head.length < headerStart + headerLength) throw new InputError(file, undefined, "the .npy header is cut short");
  const header = Buffer.from(head.subarray(headerStart, headerStart + headerLength)).toString("latin1");
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*True/.test(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (!shape || shape.length !== 2 || shape.some((n) => !Number.isInteger(n))) throw new InputError(file, undefined, `expected a 2-D array (candidates x features), found shape (${shape?.join(", ") ?? "?"})`);
  if (fortran) throw new InputError(file, undefined, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  if (descr !== "<f4" && descr !== "<f8") throw new InputError(file, undefined, `expected little-endian float32 or float64 data ('<f4' or '<f8'), found '${descr}'`);
  return { rows: shape[0], cols: shape[1], width: descr === "<f4" ? 4 : 8, dataStart: headerStart + headerLength };
}

/** An error unless the file's size fits the layout exactly. */
export function checkNpySize(layout: NpyLayout, fileBytes: number, file: string): void {
  const want = layout.rows * layout.cols * layout.width;
  if (fileBytes - layout.dataStart !== want) {
    throw new InputError(file, undefined, `holds ${fileBytes - layout.dataStart} data bytes, expected ${want} for shape (${layout.rows}, ${layout.cols})`);
  }
}

/** Reads a 2-D little-endian float32/float64 .npy array. */
function parseNpy(bytes: Uint8Array, file: string): FeatureMatrix {
  const layout = npyLayout(bytes, file);
  checkNpySize(layout, bytes.length, file);
  const { rows, cols, width, dataStart } = layout;
  const matrix = createFeatureMatrix(rows, cols);
  if (layout.width === 4 && LITTLE_ENDIAN_HOST) {
    new Uint8Array(matrix.data.buffer).set(bytes.subarray(dataStart));
    return matrix;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < rows * cols; i++) matrix.data[i] = width === 4 ? view.getFloat32(dataStart + 4 * i, true) : view.getFloat64(dataStart + 8 * i, true);
  return matrix;
}

/** .npy values (little-endian) are this host's own: typed arrays can be read from the bytes as they are. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
