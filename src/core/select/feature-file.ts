/** User-supplied feature matrices for `relabel rank --features FILE`: JSON (array of rows) or NumPy .npy (2-D, float32/float64, C order). */
import { InputError } from "../errors.js";
import { createFeatureMatrix, featureMatrixFromRows, validateFeatureMatrix, type FeatureMatrix } from "./feature-matrix.js";

export function parseFeatureFile(bytes: Uint8Array, file: string, ids: readonly string[]): FeatureMatrix {
  if (file.toLowerCase().endsWith(".npy")) {
    const matrix = parseNpy(bytes, file);
    validateFeatureMatrix(matrix, ids, file);
    return matrix;
  }
  let rows: unknown;
  try {
    rows = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new InputError(file, undefined, `not valid JSON (${(err as Error).message}); expected an array of rows of numbers, or a .npy file`);
  }
  if (!Array.isArray(rows) || !rows.every((r) => Array.isArray(r) && r.every((x) => typeof x === "number"))) {
    throw new InputError(file, undefined, "expected a JSON array of rows, each an array of numbers (one row per candidate)");
  }
  return featureMatrixFromRows(rows as number[][], ids, file);
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Reads a 2-D little-endian float32/float64 .npy array (format versions 1-3). */
function parseNpy(bytes: Uint8Array, file: string): FeatureMatrix {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) throw new InputError(file, undefined, "not a .npy file (missing the \\x93NUMPY magic)");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(headerStart, headerStart + headerLength)).toString("latin1");
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*True/.test(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (!shape || shape.length !== 2 || shape.some((n) => !Number.isInteger(n))) throw new InputError(file, undefined, `expected a 2-D array (candidates x features), found shape (${shape?.join(", ") ?? "?"})`);
  if (fortran) throw new InputError(file, undefined, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  if (descr !== "<f4" && descr !== "<f8") throw new InputError(file, undefined, `expected little-endian float32 or float64 data ('<f4' or '<f8'), found '${descr}'`);
  const [rows, cols] = shape;
  const dataStart = headerStart + headerLength;
  const width = descr === "<f4" ? 4 : 8;
  if (bytes.length - dataStart !== rows * cols * width) throw new InputError(file, undefined, `holds ${bytes.length - dataStart} data bytes, expected ${rows * cols * width} for shape (${rows}, ${cols})`);
  const matrix = createFeatureMatrix(rows, cols);
  if (width === 4 && LITTLE_ENDIAN_HOST) {
    // Already the in-memory layout: one copy of the bytes.
    new Uint8Array(matrix.data.buffer).set(bytes.subarray(dataStart));
    return matrix;
  }
  for (let i = 0; i < rows * cols; i++) matrix.data[i] = width === 4 ? view.getFloat32(dataStart + 4 * i, true) : view.getFloat64(dataStart + 8 * i, true);
  return matrix;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
