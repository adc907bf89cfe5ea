/** `--features FILE` as .npy: arrays written by NumPy itself, read back value for value; unsupported layouts are refused. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseFeatureFile } from "../../../src/core/select/feature-file.js";
import { NUMPY_VALUES, numpyArrays } from "../../helpers/numpy-arrays.js";

const dir = numpyArrays();
const ids = ["a", "b", "c", "d"];
const read = (name: string, rows = ids) => parseFeatureFile(readFileSync(path.join(dir, name)), name, rows);

describe("parseFeatureFile (.npy)", () => {
  it("reads float32 and float64 arrays as NumPy wrote them", () => {
    for (const name of ["f4.npy", "f8.npy"]) {
      const m = read(name);
      expect([m.rows, m.cols]).toEqual([4, 3]);
      expect(Array.from(m.data)).toEqual(NUMPY_VALUES);
    }
  });

  it("refuses layouts it does not read, naming the file and what it expected", () => {
    expect(() => read("big-endian.npy")).toThrow(/^big-endian\.npy: expected little-endian float32 or float64 data \('<f4' or '<f8'\), found '>f4'/);
    expect(() => read("fortran.npy")).toThrow(/^fortran\.npy: Fortran-ordered arrays are not supported/);
    expect(() => read("one-d.npy")).toThrow(/^one-d\.npy: expected a 2-D array \(candidates x features\), found shape \(4\)/);
    expect(() => read("int.npy")).toThrow(/found '<i4'/);
    expect(() => parseFeatureFile(Buffer.from("not numpy"), "x.npy", ids)).toThrow(/^x\.npy: not a \.npy file/);
  });

  it("names the candidate of a non-finite value and checks the row count", () => {
    expect(() => read("nan.npy")).toThrow(/^nan\.npy: row 2: column 1 of candidate 2 \(c\) is NaN/);
    expect(() => read("f4.npy", ["a", "b"])).toThrow(/^f4\.npy: has 4 feature rows, expected 2/);
  });

  it("refuses a file whose data is cut short", () => {
    const bytes = readFileSync(path.join(dir, "f4.npy"));
    expect(() => parseFeatureFile(bytes.subarray(0, bytes.length - 4), "cut.npy", ids)).toThrow(/^cut\.npy: holds 44 data bytes, expected 48/);
  });
});

describe("parseFeatureFile (JSON)", () => {
  // As Python's json module writes them: NaN and Infinity bare, which JSON itself does not allow.
  const pythonJson = (rows: string): Buffer =>
    execFileSync("/usr/bin/python3", ["-c", `import json, math; print(json.dumps(${rows}))`]);
  const json = (text: string | Buffer) => parseFeatureFile(Buffer.from(text), "f.json", ["a", "b"]);

  it("reads rows of numbers", () => {
    expect(Array.from(json(pythonJson("[[1.5, -2], [3, 4e-3]]")).data)).toEqual([1.5, -2, 3, Math.fround(4e-3)]);
  });

  it("names the row and column of a value that is no finite float32 number, however it was written", () => {
    expect(() => json(pythonJson("[[1, 2], [3, math.nan]]"))).toThrow(/^f\.json: row 1: column 1 of candidate 1 \(b\) is NaN, expected a finite number within float32 range$/);
    expect(() => json(pythonJson("[[1, -math.inf], [3, 4]]"))).toThrow(/^f\.json: row 0: column 1 of candidate 0 \(a\) is -Infinity, expected/);
    expect(() => json("[[1, 2], [null, 4]]")).toThrow(/^f\.json: row 1: column 0 of candidate 1 \(b\) is null, expected/);
    expect(() => json('[[1, "2.5"], [3, 4]]')).toThrow(/^f\.json: row 0: column 1 of candidate 0 \(a\) is "2\.5", expected/);
    expect(() => json("[[1, 1e39], [3, 4]]")).toThrow(/^f\.json: row 0: column 1 of candidate 0 \(a\) is 1e\+39, expected a finite number within float32 range$/);
    expect(() => json("[[1, 2], [3, 4]")).toThrow(/^f\.json: not valid JSON/);
    expect(() => json('{"rows": [[1]]}')).toThrow(/^f\.json: expected a JSON array of rows, each an array of numbers/);
  });
});
