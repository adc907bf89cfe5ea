/**
 * `--features FILE` as .npy: arrays written by NumPy itself (Debian's python3-numpy, which the test
 * environment installs with python3-ase), read back value for value; unsupported layouts are refused.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseFeatureFile } from "../../../src/core/select/feature-file.js";

const dir = mkdtempSync(path.join(tmpdir(), "relabel-npy-"));

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
execFileSync("/usr/bin/python3", ["-c", WRITE_NPY, dir]);

const ids = ["a", "b", "c", "d"];
const read = (name: string, rows = ids) => parseFeatureFile(readFileSync(path.join(dir, name)), name, rows);
const expected = Array.from({ length: 12 }, (_, i) => Math.fround((i - 5.5) / 3));

describe("parseFeatureFile (.npy)", () => {
  it("reads float32 and float64 arrays as NumPy wrote them", () => {
    for (const name of ["f4.npy", "f8.npy"]) {
      const m = read(name);
      expect([m.rows, m.cols]).toEqual([4, 3]);
      expect(Array.from(m.data)).toEqual(expected);
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
    expect(() => read("nan.npy")).toThrow(/^nan\.npy: row 3: column 2 of candidate 2 \(c\) is NaN/);
    expect(() => read("f4.npy", ["a", "b"])).toThrow(/^f4\.npy: has 4 feature rows, expected 2/);
  });

  it("refuses a file whose data is cut short", () => {
    const bytes = readFileSync(path.join(dir, "f4.npy"));
    expect(() => parseFeatureFile(bytes.subarray(0, bytes.length - 4), "cut.npy", ids)).toThrow(/^cut\.npy: holds 44 data bytes, expected 48/);
  });
});
