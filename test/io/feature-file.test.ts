import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseFeatureFile } from "../../src/core/select/feature-file.js";
import { readFeatureFile, readNpyFeatures, readNpyRows } from "../../src/io/feature-file.js";
import { scatteredRows } from "../core/select/placed-rows.js";
import { NUMPY_VALUES, numpyArray, numpyArrays } from "../helpers/numpy-arrays.js";

const dir = numpyArrays();
const ids = ["a", "b", "c", "d"];

describe("readFeatureFile", () => {
  it("reads float32 and float64 .npy files in pieces, with the parser's values", async () => {
    for (const name of ["f4.npy", "f8.npy"]) {
      const file = path.join(dir, name);
      const m = await readFeatureFile(file, ids);
      expect([m.rows, m.cols]).toEqual([4, 3]);
      expect(Array.from(m.data)).toEqual(NUMPY_VALUES);
      expect(m).toEqual(parseFeatureFile(readFileSync(file), file, ids));
    }
    // float64 converted a row at a time here (5 values hold one row of 3), rounded as the parser rounds.
    const rows = Array.from({ length: 7 }, (_, i) => [Math.PI * i, 1 / (i + 3), -Math.E * 1e-3 * (i + 1)]);
    const f8 = numpyArray(rows, path.join(dir, "pieces.npy"), "<f8");
    const read = await readNpyFeatures(f8, 5);
    expect(Array.from(read!.data)).toEqual(rows.flat().map(Math.fround));
    expect(read!.data).toEqual(parseFeatureFile(readFileSync(f8), f8, Array.from({ length: 7 }, String)).data);
  });

  it("reads a .npy into rows laid out elsewhere (the selection's memory), float32 and float64", async () => {
    const rows = Array.from({ length: 7 }, (_, i) => [Math.PI * i, 1 / (i + 3), -Math.E * 1e-3 * (i + 1)]);
    for (const dtype of ["<f4", "<f8"] as const) {
      const file = numpyArray(rows, path.join(dir, `placed${dtype.slice(1)}.npy`), dtype);
      const read = await readNpyRows(file, (n, cols) => scatteredRows(n, cols), 7);
      expect([read!.rows, read!.cols]).toEqual([7, 3]);
      for (let r = 0; r < 7; r++) expect(Array.from(read!.data.subarray(read!.start(r), read!.start(r) + 3))).toEqual(rows[r].map(Math.fround));
      // The 4 gaps before the runs and the last block's unused row stay as they were.
      expect(read!.data.filter((v) => v === 7)).toHaveLength(5 * 3);
    }
  });

  it("gives the parser's errors: a non-finite value, a short file, a layout it does not read, a missing file", async () => {
    const nan = path.join(dir, "nan.npy");
    await expect(readFeatureFile(nan, ids)).rejects.toThrow(`${nan}: row 2: column 1 of candidate 2 (c) is NaN`);
    const cut = path.join(dir, "cut.npy");
    copyFileSync(path.join(dir, "f4.npy"), cut);
    truncateSync(cut, readFileSync(cut).length - 4);
    await expect(readFeatureFile(cut, ids)).rejects.toThrow(`${cut}: holds 44 data bytes, expected 48 for shape (4, 3)`);
    await expect(readFeatureFile(path.join(dir, "fortran.npy"), ids)).rejects.toThrow(/Fortran-ordered arrays are not supported/);
    await expect(readFeatureFile(path.join(dir, "missing.npy"), ids)).rejects.toThrow(`${path.join(dir, "missing.npy")}: no such file`);
    // A 3 GB JSON file (sparse: it takes no disk) is more than Node reads at once.
    const huge = path.join(dir, "huge.json");
    writeFileSync(huge, "");
    truncateSync(huge, 3e9);
    await expect(readFeatureFile(huge, ids)).rejects.toThrow(`${huge}: is too large to read as JSON; save the features as a .npy file (np.save) instead`);
    rmSync(huge);
  });
});
