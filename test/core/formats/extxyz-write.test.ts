/**
 * The writer: ASE's layout (Lattice, Properties, info keys, pbc), value formatting that reads back to the same
 * value and type, and read -> write -> read identity for hand-made edge cases. Expected texts follow from the
 * formatting rules in formats.md 1.5 (checked by hand against ASE 3.22.1's reader).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ExtxyzEncoder, formatComment, formatFloat, parseExtxyz, writeExtxyzFrame } from "../../../src/core/formats/extxyz.js";
import type { AtomArray, Frame, InfoValue, Pbc } from "../../../src/core/structure.js";

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../fixtures/extxyz/edge-cases.extxyz");

function frame(parts: Partial<Frame> & { symbols: string[] }): Frame {
  const natoms = parts.symbols.length;
  return {
    natoms,
    positions: new Float64Array(3 * natoms),
    cell: new Float64Array(9),
    pbc: [false, false, false] as Pbc,
    info: new Map<string, InfoValue>(),
    arrays: new Map<string, AtomArray>(),
    ...parts,
  };
}

/** Deep equality plus the order of info keys and arrays (toEqual ignores Map order). */
function expectSameFrame(got: Frame, want: Frame): void {
  expect(got).toEqual(want);
  expect([...got.info.keys()]).toEqual([...want.info.keys()]);
  expect([...got.arrays.keys()]).toEqual([...want.arrays.keys()]);
}

function readBack(f: Frame): Frame {
  const parsed = parseExtxyz(writeExtxyzFrame(f));
  expect(parsed).toHaveLength(1);
  return parsed[0].frame;
}

describe("formatFloat", () => {
  const cases: [number, string][] = [
    [1, "1.0"],
    [100, "100.0"],
    [0, "0.0"],
    [-0, "-0.0"],
    [0.1, "0.1"],
    [-2.5, "-2.5"],
    [15.804699620277187, "15.804699620277187"],
    [0.30000000000000004, "0.30000000000000004"],
    [1e-7, "1e-7"],
    [1e21, "1e+21"],
    [5e-324, "5e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
    [NaN, "nan"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
  ];
  it.each(cases)("%s -> %s", (x, text) => {
    expect(formatFloat(x)).toBe(text);
  });
});

describe("comment line", () => {
  it("is Lattice, Properties, info keys in order, pbc", () => {
    const f = frame({
      symbols: ["Si"],
      cell: new Float64Array([4, 0, 0, 0, 5, 0, 0.5, 0, 6]),
      pbc: [true, false, true],
      info: new Map<string, InfoValue>([
        ["energy", { kind: "float", value: -1.5 }],
        ["config_type", { kind: "string", value: "bulk" }],
      ]),
      arrays: new Map<string, AtomArray>([["forces", { dtype: "R", ncols: 3, data: new Float64Array(3) }]]),
    });
    expect(formatComment(f)).toBe('Lattice="4.0 0.0 0.0 0.0 5.0 0.0 0.5 0.0 6.0" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 config_type=bulk pbc="T F T"');
  });

  it("leaves out Lattice when there is no cell", () => {
    expect(formatComment(frame({ symbols: ["H"] }))).toBe('Properties=species:S:1:pos:R:3 pbc="F F F"');
  });

  const values: [string, InfoValue, string][] = [
    ["k", { kind: "int", value: 3 }, "k=3"],
    ["k", { kind: "int", value: -12 }, "k=-12"],
    ["k", { kind: "float", value: 3 }, "k=3.0"],
    ["k", { kind: "float", value: -0 }, "k=-0.0"],
    ["k", { kind: "bool", value: true }, "k=T"],
    ["k", { kind: "bool", value: false }, "k=F"],
    ["k", { kind: "string", value: "bulk" }, "k=bulk"],
    ["k", { kind: "string", value: "DMC(1)" }, "k=DMC(1)"],
    ["k", { kind: "string", value: "1.0d2" }, "k=1.0d2"],
    ["k", { kind: "string", value: "650 eV" }, 'k="650 eV"'],
    ["k", { kind: "string", value: 'say "hi"' }, 'k="say \\"hi\\""'],
    ["k", { kind: "string", value: "a\\b" }, 'k="a\\\\b"'],
    ["k", { kind: "string", value: "a=b" }, 'k="a=b"'],
    ["k", { kind: "string", value: "{x}" }, 'k="{x}"'],
    // Text that would read back as a number, a bool, an array or JSON is written as a JSON string.
    ["k", { kind: "string", value: "3" }, 'k="_JSON \\"3\\""'],
    ["k", { kind: "string", value: "T" }, 'k="_JSON \\"T\\""'],
    ["k", { kind: "string", value: "1 2" }, 'k="_JSON \\"1 2\\""'],
    ["k", { kind: "string", value: "" }, 'k="_JSON \\"\\""'],
    ["k", { kind: "string", value: "_JSON 1" }, 'k="_JSON \\"_JSON 1\\""'],
    ["k", { kind: "string", value: "line\nbreak" }, 'k="_JSON \\"line\\\\nbreak\\""'],
    // uid is never typed by readers, so it is written as plain text.
    ["uid", { kind: "string", value: "0042" }, "uid=0042"],
    ["with space", { kind: "int", value: 1 }, '"with space"=1'],
    ["k", { kind: "array", dtype: "int", shape: [3], data: [1, 2, 3] }, 'k="1 2 3"'],
    ["k", { kind: "array", dtype: "float", shape: [2], data: [1, 2.5] }, 'k="1.0 2.5"'],
    ["k", { kind: "array", dtype: "bool", shape: [2], data: [true, false] }, 'k="T F"'],
    ["k", { kind: "array", dtype: "int", shape: [1], data: [5] }, 'k="_JSON [5]"'],
    ["k", { kind: "array", dtype: "float", shape: [1], data: [1] }, 'k="_JSON [1.0]"'],
    ["k", { kind: "array", dtype: "float", shape: [0], data: [] }, 'k="_JSON []"'],
    ["k", { kind: "array", dtype: "int", shape: [2, 2], data: [1, 2, 3, 4] }, 'k="_JSON [[1, 2], [3, 4]]"'],
    ["k", { kind: "array", dtype: "float", shape: [1, 2], data: [NaN, 1] }, 'k="_JSON [[NaN, 1.0]]"'],
    ["k", { kind: "array", dtype: "bool", shape: [1, 2], data: [true, false] }, 'k="_JSON [[true, false]]"'],
    ["k", { kind: "json", value: { a: [1, "b"], c: null } }, 'k="_JSON {\\"a\\": [1, \\"b\\"], \\"c\\": null}"'],
    ["k", { kind: "json", value: ["a", "b c"] }, 'k="_JSON [\\"a\\", \\"b c\\"]"'],
    // stress and virial: 9 values, column-major, as ASE reads them back into 3x3.
    ["stress", { kind: "array", dtype: "int", shape: [3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, 'stress="1 4 7 2 5 8 3 6 9"'],
    ["virial", { kind: "array", dtype: "float", shape: [6], data: [1, 2, 3, 4, 5, 6] }, 'virial="1.0 6.0 5.0 6.0 2.0 4.0 5.0 4.0 3.0"'],
  ];
  it.each(values)("%s = %j -> %s", (key, value, text) => {
    const comment = formatComment(frame({ symbols: [], info: new Map([[key, value]]) }));
    expect(comment).toBe(`Properties=species:S:1:pos:R:3 ${text} pbc="F F F"`);
  });
});

describe("atom lines", () => {
  it("writes every column type, shortest digits, -0 with its sign", () => {
    const f = frame({
      symbols: ["Cu", "H"],
      positions: new Float64Array([0, 2.55265548, 13, -0, 1e-9, -33.266996999999996]),
      arrays: new Map<string, AtomArray>([
        ["move_mask", { dtype: "L", ncols: 1, data: new Uint8Array([0, 1]) }],
        ["tags", { dtype: "I", ncols: 1, data: new Float64Array([0, -7]) }],
        ["forces", { dtype: "R", ncols: 3, data: new Float64Array([-0.00001079, -0.0000038, 0.11356054, 6.1871405, 1e21, NaN]) }],
        ["name", { dtype: "S", ncols: 1, data: ["a", "b-c"] }],
      ]),
    });
    expect(writeExtxyzFrame(f)).toBe(
      [
        "2",
        'Properties=species:S:1:pos:R:3:move_mask:L:1:tags:I:1:forces:R:3:name:S:1 pbc="F F F"',
        "Cu 0 2.55265548 13 F 0 -0.00001079 -0.0000038 0.11356054 a",
        "H -0 1e-9 -33.266996999999996 T -7 6.1871405 1e+21 nan b-c",
        "",
      ].join("\n"),
    );
  });

  it("gives the same text through the byte encoder and the string writer", () => {
    const frames = parseExtxyz(readFileSync(fixture)).map((f) => f.frame);
    const encoder = new ExtxyzEncoder(16);
    for (const f of frames) encoder.frame(f);
    expect(encoder.take().toString("utf8")).toBe(frames.map(writeExtxyzFrame).join(""));
  });

  it("refuses what an atom line cannot hold", () => {
    expect(() => writeExtxyzFrame(frame({ symbols: ["H H"] }))).toThrow('extxyz writer: symbol "H H" cannot be written in an atom line');
    const sCol = frame({ symbols: ["H"], arrays: new Map<string, AtomArray>([["s", { dtype: "S", ncols: 1, data: ["a b"] }]]) });
    expect(() => writeExtxyzFrame(sCol)).toThrow('extxyz writer: string value "a b" cannot be written in an atom line');
    const iCol = frame({ symbols: ["H"], arrays: new Map<string, AtomArray>([["i", { dtype: "I", ncols: 1, data: new Float64Array([1.5]) }]]) });
    expect(() => writeExtxyzFrame(iCol)).toThrow("extxyz writer: an I column holds 1.5, which is not an integer");
    const colon = frame({ symbols: ["H"], arrays: new Map<string, AtomArray>([["a:b", { dtype: "R", ncols: 1, data: new Float64Array(1) }]]) });
    expect(() => writeExtxyzFrame(colon)).toThrow('extxyz writer: per-atom array name "a:b" cannot be written');
    const pbcInfo = frame({ symbols: ["H"], info: new Map<string, InfoValue>([["pbc", { kind: "bool", value: true }]]) });
    expect(() => writeExtxyzFrame(pbcInfo)).toThrow("extxyz writer: info must not hold pbc; it is written from the frame");
    expect(() => writeExtxyzFrame({ ...frame({ symbols: ["H"] }), natoms: 2 })).toThrow("extxyz writer: frame has natoms 2 but 1 symbols and 1 positions");
  });

  it("leaves the shared writer usable after a refused frame", () => {
    expect(() => writeExtxyzFrame(frame({ symbols: ["H", "H H"] }))).toThrow();
    expect(writeExtxyzFrame(frame({ symbols: ["He"] }))).toBe('1\nProperties=species:S:1:pos:R:3 pbc="F F F"\nHe 0 0 0\n');
  });
});

describe("read -> write -> read gives identical frames", () => {
  it("for the edge-case fixture, and writing again gives the same text", () => {
    const first = parseExtxyz(readFileSync(fixture)).map((f) => f.frame);
    const text = first.map(writeExtxyzFrame).join("");
    const second = parseExtxyz(text).map((f) => f.frame);
    expect(second).toHaveLength(first.length);
    second.forEach((f, k) => expectSameFrame(f, first[k]));
    expect(second.map(writeExtxyzFrame).join("")).toBe(text);
  });

  it("for every kind of info value", () => {
    const info = new Map<string, InfoValue>([
      ["i", { kind: "int", value: -42 }],
      ["big", { kind: "int", value: 9007199254740991 }],
      ["f", { kind: "float", value: 2 }],
      ["negzero", { kind: "float", value: -0 }],
      ["nan", { kind: "float", value: NaN }],
      ["tiny", { kind: "float", value: 5e-324 }],
      ["t", { kind: "bool", value: true }],
      ["s", { kind: "string", value: "plain" }],
      ["s2", { kind: "string", value: "two words, \"quoted\" and \\ backslash" }],
      ["s3", { kind: "string", value: "1.5" }],
      ["s4", { kind: "string", value: "line\nbreak\ttab" }],
      ["s5", { kind: "string", value: "[1, 2]" }],
      ["s6", { kind: "string", value: "ünïcödé" }],
      ["empty", { kind: "string", value: "" }],
      ["key with \"quote\"", { kind: "int", value: 1 }],
      ["ia", { kind: "array", dtype: "int", shape: [3], data: [1, -2, 3] }],
      ["fa", { kind: "array", dtype: "float", shape: [3], data: [1, -0, 0.1] }],
      ["ba", { kind: "array", dtype: "bool", shape: [2], data: [false, true] }],
      ["one", { kind: "array", dtype: "float", shape: [1], data: [1] }],
      ["m", { kind: "array", dtype: "float", shape: [2, 3], data: [1, 2, 3, 4, 5, 6.5] }],
      ["bm", { kind: "array", dtype: "bool", shape: [2, 1], data: [true, false] }],
      ["stress", { kind: "array", dtype: "float", shape: [3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9] }],
      ["virial", { kind: "array", dtype: "int", shape: [3, 3], data: [1, 0, 0, 0, 1, 0, 0, 0, 1] }],
      ["d", { kind: "json", value: { a: { b: [1, 2.5, "x", null, true] } } }],
      ["strs", { kind: "json", value: ["a", "b c"] }],
      ["uid", { kind: "string", value: "0042" }],
    ]);
    const f = frame({ symbols: ["H"], info, cell: new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]), pbc: [true, true, false] });
    expectSameFrame(readBack(f), f);
  });

  it("for every kind of per-atom array and awkward doubles", () => {
    const doubles = [0, -0, 1, -1, 0.1, 1 / 3, Math.PI * 1e10, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.12345678, 0.00001079, NaN, Infinity, -Infinity];
    let seed = 7;
    for (let k = 0; k < 3000; k++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      doubles.push((seed / 2147483648 - 0.5) * 10 ** ((seed % 40) - 20));
      doubles.push(Math.round((seed / 2147483648 - 0.5) * 2e9) / 1e8);
    }
    const n = doubles.length / 3;
    const f = frame({
      symbols: Array.from({ length: n }, (_, k) => ["H", "He", "Og", "X"][k % 4]),
      positions: Float64Array.from(doubles),
      cell: new Float64Array([0, 3.57, 3.57, 3.57, 0, 3.57, 3.57, 3.57, 0]),
      pbc: [true, true, true],
      arrays: new Map<string, AtomArray>([
        ["r", { dtype: "R", ncols: 3, data: Float64Array.from(doubles).reverse() }],
        ["i", { dtype: "I", ncols: 1, data: Float64Array.from({ length: n }, (_, k) => (k % 2 ? -k : k) * 1000003) }],
        ["l", { dtype: "L", ncols: 2, data: Uint8Array.from({ length: 2 * n }, (_, k) => k % 3 === 0 ? 1 : 0) }],
        ["s", { dtype: "S", ncols: 1, data: Array.from({ length: n }, (_, k) => `tag${k}é`) }],
      ]),
    });
    expectSameFrame(readBack(f), f);
  });

  it("for a 0-atom frame", () => {
    const f = frame({ symbols: [], info: new Map<string, InfoValue>([["note", { kind: "string", value: "empty" }]]) });
    expectSameFrame(readBack(f), f);
  });
});
