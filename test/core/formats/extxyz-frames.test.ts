/**
 * Frame layout: natoms line, comment line, atom lines; special keys; streaming over arbitrary chunk boundaries.
 * test/fixtures/extxyz/edge-cases.extxyz was written by hand; the expected values below are worked out from the
 * file text and agree with what ASE 3.22.1 reads (except where noted).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ExtxyzParser, parseExtxyz, type ExtxyzFrameAt } from "../../../src/core/formats/extxyz.js";
import type { Frame, InfoValue } from "../../../src/core/structure.js";

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../fixtures/extxyz/edge-cases.extxyz");
const fixtureBytes = readFileSync(fixture);

const int = (value: number): InfoValue => ({ kind: "int", value });
const float = (value: number): InfoValue => ({ kind: "float", value });
const str = (value: string): InfoValue => ({ kind: "string", value });

function frames(text: string): Frame[] {
  return parseExtxyz(text).map((f) => f.frame);
}

describe("edge-cases.extxyz", () => {
  const parsed = parseExtxyz(fixtureBytes, "edge-cases.extxyz");

  it("has five frames starting at lines 1, 6, 8, 11 and 17", () => {
    expect(parsed.map((f) => f.line)).toEqual([1, 6, 8, 11, 17]);
    expect(parsed.map((f) => f.frame.natoms)).toEqual([3, 0, 1, 2, 1]);
  });

  it("frame 1: padded header with Properties last, pbc before Lattice, every column type", () => {
    const f = parsed[0].frame;
    expect(f.symbols).toEqual(["Si", "O", "Cu"]);
    expect(f.positions).toEqual(new Float64Array([0, 0, 0, 1, 2, 3, 2.5, 2.5, 2.5]));
    expect(f.cell).toEqual(new Float64Array([4, 0, 0, 0, 5, 0, 0.5, 0, 6]));
    expect(f.pbc).toEqual([true, false, true]);
    expect([...f.info.entries()]).toEqual([
      ["energy", float(-1.5)],
      ["config_type", str("bulk")],
    ]);
    expect([...f.arrays.keys()]).toEqual(["forces", "tags", "fixed", "label"]);
    expect(f.arrays.get("forces")).toEqual({ dtype: "R", ncols: 3, data: new Float64Array([0.1, -0.2, 0.3, -0, 0, 0.001, 150, -0.015, 0]) });
    expect(Object.is(f.arrays.get("forces")?.data[3], -0)).toBe(true);
    expect(f.arrays.get("tags")).toEqual({ dtype: "I", ncols: 1, data: new Float64Array([1, -2, 0]) });
    expect(f.arrays.get("fixed")).toEqual({ dtype: "L", ncols: 1, data: new Uint8Array([1, 0, 1]) });
    expect(f.arrays.get("label")).toEqual({ dtype: "S", ncols: 1, data: ["a", "b-c", "x"] });
  });

  it("frame 2: zero atoms and an empty comment line", () => {
    const f = parsed[1].frame;
    expect(f.symbols).toEqual([]);
    expect(f.positions).toEqual(new Float64Array(0));
    expect(f.info.size).toBe(0);
    expect(f.arrays.size).toBe(0);
    expect(f.pbc).toEqual([false, false, false]);
    expect(f.cell).toEqual(new Float64Array(9));
  });

  it("frame 3: Z overrides species (ASE 3.22.1), 6-value stress and 9-value virial become 3x3", () => {
    const f = parsed[2].frame;
    expect(f.symbols).toEqual(["O"]);
    expect(f.arrays.get("Z")).toEqual({ dtype: "I", ncols: 1, data: new Float64Array([8]) });
    // stress Voigt 1..6 = xx yy zz yz xz xy; ASE 3.22.1 rejects 6 values, MACE accepts them.
    expect(f.info.get("stress")).toEqual({ kind: "array", dtype: "int", shape: [3, 3], data: [1, 6, 5, 6, 2, 4, 5, 4, 3] });
    expect(f.info.get("virial")).toEqual({ kind: "array", dtype: "int", shape: [3, 3], data: [1, 4, 7, 2, 5, 8, 3, 6, 9] });
  });

  it("frame 4: VEC1/VEC2 pseudo-atom lines give the cell and pbc, the comment stays text (ASE vec_cell)", () => {
    const f = parsed[3].frame;
    expect(f.symbols).toEqual(["C", "H"]);
    expect(f.cell).toEqual(new Float64Array([3, 0, 0, 0, 3, 0, 0, 0, 0]));
    expect(f.pbc).toEqual([true, true, false]);
    expect([...f.info.entries()]).toEqual([["comment", str("a plain comment")]]);
  });

  it("frame 5: integer Lattice, single pbc, quoted key, bare key, JSON, new-style arrays, untyped uid", () => {
    const f = parsed[4].frame;
    expect(f.cell).toEqual(new Float64Array([2, 0, 0, 0, 2, 0, 0, 0, 2]));
    expect(f.pbc).toEqual([false, false, false]);
    expect([...f.info.entries()]).toEqual([
      ["with space", int(3)],
      ["flag", { kind: "bool", value: true }],
      ["d", { kind: "json", value: { x: [1, 2] } }],
      ["m", { kind: "array", dtype: "float", shape: [2, 2], data: [1, 2, 3, 4.5] }],
      ["s", { kind: "json", value: ["a", "b c"] }],
      ["one", { kind: "array", dtype: "int", shape: [1], data: [7] }],
      ["uid", str("0042")],
    ]);
  });

  it("gives the same frames for every chunking of the bytes, with or without a byte-order mark", () => {
    const whole = parseExtxyz(fixtureBytes);
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), fixtureBytes]);
    for (const bytes of [fixtureBytes, withBom]) {
      for (const size of [1, 2, 3, 5, 7, 13, 64, 100]) {
        const parser = new ExtxyzParser("<string>");
        const got = [];
        for (let o = 0; o < bytes.length; o += size) got.push(...parser.push(bytes.subarray(o, o + size)));
        got.push(...parser.end());
        // Byte offsets count the byte-order mark.
        const shift = bytes.length - fixtureBytes.length;
        expect(got, `chunk size ${size}, ${bytes.length} bytes`).toEqual(whole.map((item) => ({ ...item, start: item.start + shift })));
      }
    }
  });

  it("gives the same frames with CRLF line ends", () => {
    const crlf = fixtureBytes.toString("utf8").replace(/\n/g, "\r\n");
    const withoutOffsets = (items: ExtxyzFrameAt[]) => items.map(({ frame, line }) => ({ frame, line }));
    expect(withoutOffsets(parseExtxyz(crlf))).toEqual(withoutOffsets(parseExtxyz(fixtureBytes)));
  });
});

describe("frame layout", () => {
  it("defaults to species:S:1:pos:R:3, a zero cell and pbc F F F without Lattice", () => {
    const [f] = frames("2\n\nH 0 0 0\nH 0 0 0.74\n");
    expect(f.symbols).toEqual(["H", "H"]);
    expect(f.positions).toEqual(new Float64Array([0, 0, 0, 0, 0, 0.74]));
    expect(f.cell).toEqual(new Float64Array(9));
    expect(f.pbc).toEqual([false, false, false]);
  });

  it("gives pbc T T T to a Lattice without pbc, and honours pbc F F F with a Lattice", () => {
    const [a, b] = frames('1\nLattice="1 0 0 0 1 0 0 0 1"\nH 0 0 0\n1\nLattice="1 0 0 0 1 0 0 0 1" pbc="F F F"\nH 0 0 0\n');
    expect(a.pbc).toEqual([true, true, true]);
    expect(b.pbc).toEqual([false, false, false]);
    expect(b.cell).toEqual(new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]));
  });

  it("reads pbc as one bool, three bools, or 0/1 integers", () => {
    const [a, b, c] = frames("1\npbc=T\nH 0 0 0\n1\npbc=[T, F, T]\nH 0 0 0\n1\npbc=\"1 0 1\"\nH 0 0 0\n");
    expect(a.pbc).toEqual([true, true, true]);
    expect(b.pbc).toEqual([true, false, true]);
    expect(c.pbc).toEqual([true, false, true]);
  });

  it("reads a nested Lattice as rows (libAtoms; ASE 3.22.1 rejects it)", () => {
    const [f] = frames("1\nLattice=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]\nSi 0 0 0\n");
    expect(f.cell).toEqual(new Float64Array([1, 2, 3, 4, 5, 6, 7, 8, 9]));
  });

  it("normalises the case of species (MG -> Mg) and accepts lower case", () => {
    const [f] = frames("3\n\nMG 0 0 0\nh 0 0 1\nCL 0 0 2\n");
    expect(f.symbols).toEqual(["Mg", "H", "Cl"]);
  });

  it("takes symbols from Z alone when there is no species column", () => {
    const [f] = frames("2\nProperties=Z:I:1:pos:R:3\n26 0 0 0\n0 1 1 1\n");
    expect(f.symbols).toEqual(["Fe", "X"]);
  });

  it("accepts pos before species and columns between them", () => {
    const [f] = frames("1\nProperties=pos:R:3:q:R:1:species:S:1\n1 2 3 -0.5 Na\n");
    expect(f.symbols).toEqual(["Na"]);
    expect(f.positions).toEqual(new Float64Array([1, 2, 3]));
    expect(f.arrays.get("q")?.data).toEqual(new Float64Array([-0.5]));
  });

  it("reads the float forms Python's float() accepts in R columns", () => {
    const [f] = frames("1\nProperties=species:S:1:pos:R:3:v:R:7\nH 1e3 -2.5E-3 +.5 nan -inf Infinity 5. 1234567890.12345678 0.1234567890123456789 -0\n");
    expect(f.positions).toEqual(new Float64Array([1000, -0.0025, 0.5]));
    const v = f.arrays.get("v")?.data as Float64Array;
    expect(Number.isNaN(v[0])).toBe(true);
    expect([...v.slice(1)]).toEqual([-Infinity, Infinity, 5, 1234567890.1234567, 0.12345678901234568, -0]);
    expect(Object.is(v[6], -0)).toBe(true);
  });

  it("reads numbers that need more than 15 digits or large exponents exactly (same as Number())", () => {
    const texts = ["3.141592653589793238", "-1.7976931348623157e308", "4.9e-324", "2.2250738585072014e-308", "123456789012345678", "1e23", "0.000000000000000000001"];
    const [f] = frames(`1\nProperties=species:S:1:pos:R:3:v:R:${texts.length}\nH 0 0 0 ${texts.join(" ")}\n`);
    expect([...(f.arrays.get("v")?.data as Float64Array)]).toEqual(texts.map(Number));
  });

  it("reads values typed with up to 15 significant digits exactly, as Number() does", () => {
    const values: string[] = [];
    let seed = 12345;
    for (let k = 0; k < 2000; k++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const digits = 1 + (seed % 15);
      const mantissa = String(seed).padStart(digits, "0").slice(0, digits);
      const point = seed % (digits + 1);
      const exp = (seed >> 8) % 50 - 25;
      values.push(`${seed % 2 ? "-" : ""}${mantissa.slice(0, point)}.${mantissa.slice(point)}e${exp}`);
    }
    const [f] = frames(`1\nProperties=species:S:1:pos:R:3:v:R:${values.length}\nH 0 0 0 ${values.join(" ")}\n`);
    expect([...(f.arrays.get("v")?.data as Float64Array)]).toEqual(values.map(Number));
  });

  it("accepts a last line without a newline, trailing blank lines, a UTF-8 BOM and tabs", () => {
    expect(frames("1\n\nH 0 0 0")).toHaveLength(1);
    expect(frames("1\n\nH 0 0 0\n\n  \n\t\n")).toHaveLength(1);
    expect(frames("\ufeff1\n\nH 0 0 0\n")[0].symbols).toEqual(["H"]);
    expect(frames("\t1 \t\n\n\tH\t0\t0\t0\t\n")[0].symbols).toEqual(["H"]);
  });

  it("reads an empty file as no frames", () => {
    expect(frames("")).toEqual([]);
    expect(frames("\n\n")).toEqual([]);
  });

  it("parses a very long comment line", () => {
    const keys = Array.from({ length: 5000 }, (_, k) => `key${k}=${k}.5`).join(" ");
    const [f] = frames(`1\n${keys}\nH 0 0 0\n`);
    expect(f.info.size).toBe(5000);
    expect(f.info.get("key4999")).toEqual(float(4999.5));
  });

  it("streams a frame larger than any chunk", () => {
    const natoms = 20000;
    const lines = Array.from({ length: natoms }, (_, k) => `Ar ${k}.25 0 ${-k}`);
    const text = `${natoms}\nProperties=species:S:1:pos:R:3\n${lines.join("\n")}\n1\n\nHe 0 0 0\n`;
    const bytes = Buffer.from(text);
    const parser = new ExtxyzParser("big");
    const out = [];
    for (let o = 0; o < bytes.length; o += 4096) out.push(...parser.push(bytes.subarray(o, o + 4096)));
    out.push(...parser.end());
    expect(out.map((f) => [f.line, f.frame.natoms])).toEqual([
      [1, natoms],
      [natoms + 3, 1],
    ]);
    expect(out[0].frame.positions[3 * (natoms - 1)]).toBe(natoms - 1 + 0.25);
  });

  it("returns the frames before a bad frame, then throws on the next call", () => {
    const parser = new ExtxyzParser("f.xyz");
    const good = parser.push(Buffer.from("1\n\nH 0 0 0\n1\n\nH 0 0 0\nbad\n\nH 0 0 0\n"));
    expect(good.map((f) => f.line)).toEqual([1, 4]);
    expect(() => parser.end()).toThrow('f.xyz:7: expected the number of atoms (a non-negative integer), found "bad"');
  });
});
