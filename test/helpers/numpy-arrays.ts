/**
 * Small .npy files written by NumPy itself (Debian's python3-numpy, which the test environment installs
 * with python3-ase): the 4 x 3 array (i - 5.5) / 3 in several layouts, and one float32 copy with a NaN.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const WRITE_NPY = `
import sys, numpy as np
out = sys.argv[1]
x = (np.arange(12, dtype=np.float64).reshape(4, 3) - 5.5) / 3
np.save(out + "/f4.npy", x.astype("<f4"))
np.save(out + "/f8.npy", x)
np.save(out + "/big-endian.npy", x.astype(">f4"))
np.save(out + "/fortran.npy", np.asfortranarray(x.astype("<f4")))
np.save(out + "/one-d.npy", x[:, 0].astype("<f4"))
np.save(out + "/int.npy", np.arange(12, dtype="<i4").reshape(4, 3))
bad = x.astype("<f4"); bad[2, 1] = np.nan
np.save(out + "/nan.npy", bad)
`;

/** A new folder holding f4, f8, big-endian, fortran, one-d, int and nan .npy files. */
export function numpyArrays(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-npy-"));
  execFileSync("/usr/bin/python3", ["-c", WRITE_NPY, dir]);
  return dir;
}

/** The values NumPy wrote, as float32. */
export const NUMPY_VALUES = Array.from({ length: 12 }, (_, i) => Math.fround((i - 5.5) / 3));

/** Writes `rows` with NumPy as a .npy file of little-endian float32 (or float64). */
export function numpyArray(rows: number[][], file: string, dtype: "<f4" | "<f8" = "<f4"): string {
  const script = "import sys, json, numpy as np\nnp.save(sys.argv[1], np.array(json.load(sys.stdin), dtype=sys.argv[2]))";
  execFileSync("/usr/bin/python3", ["-c", script, file, dtype], { input: JSON.stringify(rows) });
  return file;
}
