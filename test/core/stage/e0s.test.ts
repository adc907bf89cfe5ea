import { describe, expect, it } from "vitest";
import { e0sTable, parseE0sFile, stageE0s } from "../../../src/core/stage/e0s.js";

describe("stage E0s", () => {
  it("reads symbol or atomic-number keys and keeps exactly the dataset's elements, ascending Z", () => {
    const table = parseE0sFile('{"O": -2041.8, "1": -13.6, "Fe": -3.2}', "e0s.json");
    expect(new Map([...table].sort((a, b) => a[0] - b[0]))).toEqual(new Map([[1, -13.6], [8, -2041.8], [26, -3.2]]));
    const out = stageE0s(table, [1, 8], "e0s.json");
    expect(JSON.parse(out.text)).toEqual({ "1": -13.6, "8": -2041.8 });
    expect(out.text.indexOf('"1"')).toBeLessThan(out.text.indexOf('"8"'));
    expect(out.dropped).toEqual([26]);
  });

  it("refuses a table missing a dataset element, a duplicate element, a non-number and bad JSON", () => {
    expect(() => stageE0s(new Map([[1, -13.6]]), [1, 8], "e0s.json")).toThrow("e0s.json: E0s has no energy for O (Z=8), which the dataset contains");
    expect(() => e0sTable({ O: 1, "8": 2 }, "e0s.json")).toThrow("e0s.json: E0s lists element O (Z=8) twice");
    expect(() => e0sTable({ O: "x" }, "e0s.json")).toThrow('e0s.json: E0s of "O" must be a number (eV), got "x"');
    expect(() => e0sTable({ "119": 1 }, "e0s.json")).toThrow(/"119" is neither an element symbol nor an atomic number/);
    expect(() => parseE0sFile('{"O": -1,\n}', "e0s.json")).toThrow(/^e0s\.json:2: not valid JSON/);
    expect(() => parseE0sFile("[1]", "e0s.json")).toThrow(/expected an E0s object/);
  });
});
