import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AseTrajectoryReader, parseJson, TrajectoryCut, type ByteSource } from "../../../src/core/formats/ase-trajectory.js";
import { InputError } from "../../../src/core/errors.js";
import type { Frame } from "../../../src/core/structure.js";
import { aseTrajectories, type AseFrame } from "../../helpers/ase-trajectories.js";

const trajectories = aseTrajectories();
const fileOf = (name: string): string => path.join(trajectories.dir, name);
const bytesOf = (bytes: Uint8Array): ByteSource => ({ size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) });
const readerOf = (bytes: Uint8Array, name = "x.traj"): AseTrajectoryReader => new AseTrajectoryReader(bytesOf(bytes), name);
const framesOf = (reader: AseTrajectoryReader): Frame[] => Array.from({ length: reader.length }, (_, i) => reader.frame(i));

function expectAseFrame(frame: Frame, ase: AseFrame): void {
  expect(frame.natoms).toBe(ase.numbers.length);
  expect(frame.symbols).toHaveLength(ase.numbers.length);
  // Binary float64 on both sides: the very same numbers.
  expect(Array.from(frame.positions)).toEqual(ase.positions.flat());
  expect(Array.from(frame.cell)).toEqual(ase.cell.flat());
  expect(frame.pbc).toEqual(ase.pbc);
  // The per-atom arrays ASE keeps, under the names its extxyz writer gives them.
  expect(Object.fromEntries([...frame.arrays].map(([name, a]) => [name, Array.from(a.data as Float64Array)]))).toEqual(
    Object.fromEntries(Object.entries(ase.arrays).map(([name, values]) => [name, values.flat()])),
  );
}

describe("ASE trajectories", () => {
  it("reads every frame as ASE does, past the 42 slots of the first item table", () => {
    const reader = readerOf(readFileSync(fileOf("md.traj")));
    expect(reader.length).toBe(60);
    const frames = framesOf(reader);
    frames.forEach((frame, i) => expectAseFrame(frame, trajectories.frames["md.traj"][i]));
    expect(new Set(frames.flatMap((f) => f.symbols))).toEqual(new Set(["Si"]));
    // Model energies and forces are not DFT labels: not carried.
    expect(frames[0].info.size).toBe(0);
    expect(frames[0].arrays.size).toBe(0);
  });

  it("follows a change of species, slabs and cells of zero, and keeps scalar info with its Python type", () => {
    const reader = readerOf(readFileSync(fileOf("mixed.traj")));
    const frames = framesOf(reader);
    const ase = trajectories.frames["mixed.traj"];
    expect(frames).toHaveLength(4);
    frames.forEach((frame, i) => expectAseFrame(frame, ase[i]));
    expect(frames.map((f) => f.symbols.join(""))).toEqual(["CuCu", "AlAlAlAlAlAlAlAl", "OHH", "CuCu"]);
    expect(frames[1].pbc).toEqual([true, true, false]);
    expect([...frames[0].arrays.keys()]).toEqual(["momenta", "initial_magmoms", "initial_charges", "masses"]);
    expect(frames[0].arrays.get("momenta")?.ncols).toBe(3);
    expect(frames[1].arrays.get("tags")).toEqual({ dtype: "I", ncols: 1, data: Float64Array.of(2, 2, 2, 2, 1, 1, 1, 1) });
    expect(frames[2].pbc).toEqual([false, false, false]);
    expect(Array.from(frames[2].cell)).toEqual(new Array(9).fill(0));
    const kinds: Record<string, string> = { int: "int", float: "float", bool: "bool", str: "string" };
    expect(Object.fromEntries(frames[0].info)).toEqual(
      Object.fromEntries(Object.entries(ase[0].info).map(([key, [type, value]]) => [key, { kind: kinds[type], value }])),
    );
    expect(frames[0].info.get("temperature")).toEqual({ kind: "float", value: 300 });
    expect(frames[0].info.get("label")).toEqual({ kind: "string", value: 'start "quoted" é' });
    // ASE's fcc111 puts a dict (adsorbate_info) in info as well.
    expect([...reader.leftOutInfo]).toEqual(["spins", "meta", "adsorbate_info"]);
  });

  it("types info values written in another order, or beside a NaN, as Python wrote them", () => {
    const [withNan, infoFirst] = framesOf(readerOf(readFileSync(fileOf("info-first.traj"))));
    expect(Object.fromEntries(withNan.info)).toEqual({ n: { kind: "int", value: 3 }, x: { kind: "float", value: 2 }, bad: { kind: "float", value: NaN } });
    expect(Object.fromEntries(infoFirst.info)).toEqual({ n: { kind: "int", value: 4 }, x: { kind: "float", value: 3 } });
    expect(infoFirst.symbols).toEqual(["Si", "Si"]);
  });

  it("reads an empty trajectory as no frames", () => {
    expect(readerOf(readFileSync(fileOf("empty.traj"))).length).toBe(0);
  });

  it("reads the frames before a cut, and says which frame was cut", () => {
    const whole = readFileSync(fileOf("md.traj"));
    const last = trajectories.offsets["md.traj"][59];
    // Inside the last frame's JSON, inside its length, and before its positions.
    for (const end of [last + 30, last + 4, last - 100]) {
      const reader = readerOf(whole.subarray(0, end));
      expect(reader.length).toBe(60);
      for (let i = 0; i < 59; i++) expectAseFrame(reader.frame(i), trajectories.frames["md.traj"][i]);
      const cut = (() => {
        try {
          reader.frame(59);
        } catch (err) {
          return err;
        }
      })();
      expect(cut).toBeInstanceOf(TrajectoryCut);
      expect((cut as TrajectoryCut).message).toMatch(/^x\.traj: frame 59: .*(beyond|past) the end of the file/);
    }
  });

  it("says which file is not a trajectory, and why", () => {
    const error = (bytes: Uint8Array, name = "x.traj"): string => {
      try {
        framesOf(readerOf(bytes, name));
      } catch (err) {
        expect(err).toBeInstanceOf(InputError);
        return (err as Error).message;
      }
      throw new Error("expected an error");
    };
    expect(error(new Uint8Array(0))).toBe("x.traj: empty file, expected an ASE trajectory");
    expect(error(Buffer.from("3\nLattice=...\n"))).toBe('x.traj: not an ASE trajectory (it does not start with ULM\'s "- of Ulm")');
    expect(error(readFileSync(fileOf("other.ulm")), "other.ulm")).toBe('other.ulm: a ULM file tagged "GPAW", expected an ASE trajectory (tag "ASE-Trajectory")');
    expect(error(readFileSync(fileOf("md.traj")).subarray(0, 30))).toBe("x.traj: the file ends inside its 48-byte header");

    // An atomic number that is no element (ASE's dummy atom X is 0), in the first frame's numbers array.
    const bytes = Buffer.from(readFileSync(fileOf("md.traj")));
    const first = trajectories.offsets["md.traj"][0];
    const json = bytes.toString("utf8", first + 8, first + 8 + Number(bytes.readBigInt64LE(first)));
    const numbersAt = Number(/"numbers\.": \{"ndarray": \[\[8\], "int64", (\d+)\]/.exec(json)![1]);
    bytes.writeBigInt64LE(0n, numbersAt + 3 * 8);
    expect(error(bytes)).toBe("x.traj: frame 0: atom 3: atomic number 0 is not an element");

    // An array reference to a negative byte offset (the JSON's length unchanged).
    const positionsAt = /"positions\.": \{"ndarray": \[\[8, 3\], "float64", (\d+)\]/.exec(json)!;
    const broken = Buffer.from(readFileSync(fileOf("md.traj")));
    const at = first + 8 + positionsAt.index + positionsAt[0].length - 1 - positionsAt[1].length;
    broken.write(`-${positionsAt[1].slice(1)}`, at, "latin1");
    expect(error(broken)).toBe(`x.traj: frame 0: positions has a broken array reference (shape [8,3], byte -${positionsAt[1].slice(1)})`);
  });
});

describe("parseJson (Python's json output)", () => {
  it("reads NaN and infinities, and keeps which numbers were floats", () => {
    const value = parseJson('{"a": 1, "b": 1.0, "c": 1e-05, "d": NaN, "e": -Infinity, "f": [1, 2.5], "g": "x\\"y\\u00e9", "h": {"i": true, "j": null}}') as Record<string, unknown>;
    expect(value).toEqual({ a: 1, b: 1, c: 1e-5, d: NaN, e: -Infinity, f: [1, 2.5], g: 'x"yé', h: { i: true, j: null } });
    const floats = Object.getOwnPropertySymbols(value).map((s) => (value as Record<symbol, Set<string>>)[s])[0];
    expect([...floats]).toEqual(["b", "c", "d", "e"]);
  });

  it("names what is wrong and where", () => {
    expect(() => parseJson('{"a": }')).toThrow("expected a value at character 6");
    expect(() => parseJson('{"a": 1')).toThrow("expected ',' or '}' at character 7");
    expect(() => parseJson('{"a": "b')).toThrow("unterminated string");
    expect(() => parseJson("[1] 2")).toThrow("unexpected text after the value at character 4");
  });
});
