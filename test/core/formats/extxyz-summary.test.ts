/**
 * The summary scanner against the full parser: whatever it accepts must give exactly the ids, atom counts,
 * formulas, species and frame offsets of parsing the frames in full; anything outside its plain form makes
 * it give up (then the caller uses the full parser).
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { ExtxyzSummaryScanner, type NativeFrameScan, type SummaryReading } from "../../../src/core/formats/extxyz-summary.js";
import { CandidateSummaryBuilder, type CandidateSummaries } from "../../../src/core/select/candidate-id.js";
import { nativeExtxyzFrames } from "../../../src/exec/native-kernels.js";
import { realPath } from "../../helpers/real-data.js";
import { seededRandom } from "../select/fps-oracle.js";

/**
 * The scanner's result on `bytes` pushed in chunks of the given sizes (cycled); undefined when it gave up. `reading`
 * as the scanner takes it (projections by default).
 */
function scan(
  bytes: Uint8Array, chunkSizes = [bytes.length], reading?: SummaryReading,
): { summary: CandidateSummaries; starts: [number, number][] } | undefined {
  const starts: [number, number][] = [];
  const scanner = new ExtxyzSummaryScanner((offset, line) => starts.push([offset, line]), false, reading);
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = Math.max(1, chunkSizes[k % chunkSizes.length]);
    if (!scanner.push(bytes.subarray(at, at + size))) return undefined;
    at += size;
  }
  return scanner.end() ? { summary: scanner.summaries(), starts } : undefined;
}

/** What the full parser makes of the same bytes. */
function parsed(bytes: Uint8Array, projections = true): { summary: CandidateSummaries; starts: [number, number][] } {
  const items = parseExtxyz(bytes);
  return { summary: new CandidateSummaryBuilder(projections).add(items.map((i) => i.frame)).finish(), starts: items.map((i) => [i.start, i.line]) };
}

/** Info keys of comment lines as MD pools have them, and forms the frame reader reads otherwise or refuses. */
const INFO_KEYS = [
  "energy=-1.5", "free_energy=-3.25", "REF_energy=-12.5e+2", "x=1e3", "step=42", "flag=T", "config_type=bulk", "w=nan",
  'note="a b"', 'stress="1 2 3 4 5 6 7 8 9"', 'stress="-1.5e-3 2 3 4 5 6"', 'virial="1 0 0 0 1 0 0 0 1.5e-3"',
  'dipole="0.1 -0.2 0.3"', 'tags="T F T"',
];
const ODD_INFO_KEYS = [
  "flag", 'stress="1 2 3"', 'stress="1 2 3 4 5 x"', 'virial="+1 2 3 4 5 6"', "stress=5", "uid=abc", "UID=7", 'note="_JSON 5"',
  "big=12345678901234567890", 'list="1 2, 3"', "a=[1,2]", 'q="a\\"b"', "e= 5", 'empty=""', "k=v=w", "Lattice=1", "pbc=T",
  "s=+1.5", "u=1_000", "x.y=1", 'stress="1 2 3 4 5 6 7 8 99999999999999999"',
];

/** Texts the full parser refuses that this scanner once read (found by fuzzing rank with and without the native reader). */
const MISREAD_BEFORE: Record<string, string> = {
  // An empty Properties matched the empty text the scanner started with.
  "an empty Properties": "2\nProperties= energy=1\nH 0 0 0\nH 0 0 0.75\n",
  // The second frame's Properties went through the comment reader (its note has a comma): the third frame's, equal to
  // the first's, then took the second's columns, and its extra column passed.
  "a Properties read through the comment reader, then the one before": [
    "1", "Properties=species:S:1:pos:R:3:tags:I:1", "H 0.0 0.0 0.0 1",
    "1", 'Properties=species:S:1:pos:R:3:tags:I:1:q:R:1 note="a,b"', "H 0.0 0.0 1.0 1 0.5",
    "1", "Properties=species:S:1:pos:R:3:tags:I:1", "H 0.0 0.0 2.0 1 0.5", "",
  ].join("\n"),
};

/** A small extxyz text with random forms, mostly valid: numbers, columns, comment keys, spacing and line ends. */
function randomText(random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  /** `common` most of the time, else one of `rare`. */
  const mostly = <T>(common: T, rare: readonly T[], p = 0.97): T => (random() < p ? common : pick(rare));
  const number = (): string => {
    const r = random();
    if (r < 0.85) return (random() * 20 - 10).toFixed(Math.floor(random() * 10));
    if (r < 0.93) return String(Math.floor(random() * 100) - 50);
    if (r < 0.97) return `${(random() * 9).toFixed(3)}e${pick(["-", "+", ""])}${Math.floor(random() * 12)}`;
    return pick(["-0.0", "0.0000005", "-0.0000005", "1.23456789012345678", "5.", ".5", "+1.5", "1e", "nan", "-"]);
  };
  const extras = pick([[], [], [["forces", "R", 3]], [["tags", "I", 1]], [["fixed", "L", 1], ["label", "S", 1]], [["Z", "I", 1]]] as [string, string, number][][]);
  const value = (type: string): string =>
    type === "R" ? number() : type === "I" ? mostly("3", ["-7", "1.5", "-"], 0.9) : type === "L" ? mostly("T", ["F", "True", "x"], 0.9) : pick(["a", "b2", "T"]);
  const sep = (): string => mostly(" ", ["  ", "\t"], 0.95);
  const frames: string[] = [];
  for (let f = 0, n = 1 + Math.floor(random() * 3); f < n; f++) {
    const natoms = 1 + Math.floor(random() * 3);
    const keys = [
      random() < 0.8 ? `Lattice="${Array.from({ length: mostly(9, [8]) }, number).join(" ")}"` : "",
      random() < 0.5 ? `pbc="${Array.from({ length: 3 }, () => mostly(pick(["T", "F"]), ["True"])).join(" ")}"` : "",
      random() < 0.9 ? `Properties=species:S:1:pos:R:3${extras.map(([name, type, count]) => `:${name}:${type}:${count}`).join("")}` : "",
      ...Array.from({ length: pick([0, 0, 1, 2, 3]) }, () => mostly(pick(INFO_KEYS), ODD_INFO_KEYS, 0.85)),
    ].filter((k) => k !== "");
    const lines = [String(natoms), keys.sort(() => random() - 0.5).join(sep())];
    for (let a = 0; a < natoms; a++) {
      const columns = [mostly(pick(["H", "O", "Zr", "mg"]), ["Xx"]), number(), number(), number()];
      for (const [, type, count] of mostly(extras, [[]])) for (let k = 0; k < count; k++) columns.push(value(type));
      lines.push(mostly("", [" "], 0.9) + columns.join(sep()) + mostly("", [" "], 0.9));
    }
    frames.push(lines.join(mostly("\n", ["\r\n"])) + "\n");
  }
  return frames.join("") + mostly("", ["\n", " \n"], 0.9);
}

const plain = [
  "2",
  'Lattice="4.3133 0.0 0.0 0.0 4.3133 0.0 0.0 0.0 4.3133" Properties=species:S:1:pos:R:3 pbc="T T T"',
  "O 1.55329335 0.30447949 -0.00000049",
  "Zr -0.0000005 2.5 3.75515103",
  "3",
  'pbc="T F T"   Properties=species:S:1:pos:R:3:forces:R:3 Lattice="5 0 0 0 5 0 0.1 0 5"',
  "  MG   0.1   0.2  0.3   1.0 2.0 -3.0  ",
  "h 0.0000015 -0.0000025 12.0000005 0 0 0",
  "He 7 8 9 1 1 1",
  "1",
  "Properties=species:S:1:pos:R:3",
  "C 0 0 0",
  "",
].join("\n");

describe("ExtxyzSummaryScanner", () => {
  it("gives the full parser's ids, counts, formulas, species and frame starts, in chunks of any size", () => {
    const bytes = Buffer.from(plain);
    const expected = parsed(bytes);
    expect(expected.summary.ids).toHaveLength(3);
    for (const sizes of [[bytes.length], [1], [2, 3, 5, 7], [64]]) expect(scan(bytes, sizes), `chunks ${sizes}`).toEqual(expected);
  });

  it("reads a frame split between chunks after some of its atoms with its own species", () => {
    // The second frame's first species makes the last frame's list look like its own, [O, O]: it is compared
    // afresh once the rest arrives.
    const text = ["2", "Properties=species:S:1:pos:R:3", "Zr 0 0 0", "O 1 1 1", "2", "Properties=species:S:1:pos:R:3", "O 0 0 0", "O 1 1 1", ""].join("\n");
    const bytes = Buffer.from(text);
    const split = text.indexOf("O 0 0 0") + "O 0 0 0\n".length;
    const expected = parsed(bytes);
    expect(expected.summary.formulas).toEqual(["OZr", "O2"]);
    expect(scan(bytes, [split, bytes.length])).toEqual(expected);
    expect(scan(bytes, [1])).toEqual(expected);
  });

  it("keeps the frames, as the frame reader gives them, while they have only species and positions and a plain comment line", () => {
    const plainOnly = ["2", 'Lattice="4 0 0 0 4 0 0 0 4.5" Properties=species:S:1:pos:R:3 pbc="T F T"', "O 1.5 0.25 -0.125", "mg 0 0 0",
      "1", "Properties=species:S:1:pos:R:3", "C 0.1 0.2 0.3", "1", "", "H 1 2 3", ""].join("\n");
    const bytes = Buffer.from(plainOnly);
    const scanner = new ExtxyzSummaryScanner(undefined, true);
    expect(scanner.push(bytes) && scanner.end()).toBe(true);
    expect(scanner.frames).toEqual(parseExtxyz(bytes).map((item) => item.frame));
    // Another column, or another key on the comment line: no frames (the caller reads them with the frame reader).
    for (const other of [plain, plainOnly.replace("pbc=", 'energy=-1.5 pbc=')]) {
      const keeping = new ExtxyzSummaryScanner(undefined, true);
      expect(keeping.push(Buffer.from(other)) && keeping.end()).toBe(true);
      expect(keeping.frames).toBeNull();
    }
    expect(new ExtxyzSummaryScanner().frames).toBeNull();
  });

  it("reads every real extxyz file of the corpus as the full parser does", () => {
    for (const dir of ["extxyz", "mace"]) {
      for (const name of readdirSync(realPath(dir)).filter((n) => /\.(xyz|extxyz)$/.test(n))) {
        const bytes = readFileSync(path.join(realPath(dir), name));
        expect(scan(bytes, [4096]), name).toEqual(parsed(bytes));
      }
    }
  });

  it("reads any comment line as the frame reader does, and I, L and S columns", () => {
    const frame = (comment: string, atom: string): string => `1\n${comment}\n${atom}\n`;
    const lattice = 'Lattice="1 0 0 0 1 0 0 0 1"';
    const cases: Record<string, string> = {
      "an info key": frame(`${lattice} energy=-1.5 stress="1 2 3 4 5 6 7 8 9" note="a b"`, "H 0 0 0"),
      "an MD step's keys": frame(`${lattice} Properties=species:S:1:pos:R:3:forces:R:3 energy=-60.51387008 stress="0.0017 -1.5e-3 0 0 0 0" free_energy=-60.2797 config_type=md pbc="T T T"`, "H 0 0 0 0.5 -0.25 1e-3"),
      "a virial in Voigt form": frame(`virial="1 2 3 4 5 6" ${lattice}`, "H 0 0 0"),
      "uid": frame(`${lattice} uid=a1b2`, "H 0 0 0"),
      "free text": frame("just text", "H 0 0 0"),
      "an exponent in the cell": frame('Lattice="1e1 0 0 0 1 0 0 0 1" pbc="T T F"', "H 0 0 0"),
      "pbc spelled out": frame('pbc="True False True"', "H 0 0 0"),
      "pbc alone": frame('pbc="F T F"', "H 0 0 0"),
      "a key twice": frame(`${lattice} ${lattice.replace("1 0 0", "2 0 0")}`, "H 0 0 0"),
      "blank lines at the end": `${frame(lattice, "H 0 0 0")}\n  \n\t\n`,
      "other columns": frame("Properties=species:S:1:pos:R:3:tags:I:1:fixed:L:1:label:S:1:forces:R:3", "H 0 0 0 -7 T x1 9.748e-05 2 -17.647712543889742"),
    };
    for (const [what, text] of Object.entries(cases)) {
      const bytes = Buffer.from(text);
      expect(scan(bytes), what).toEqual(parsed(bytes));
    }
  });

  it("on random texts, accepts only what the full parser reads, and reads it the same", () => {
    const random = seededRandom(2026);
    let accepted = 0;
    for (let n = 0; n < 1500; n++) {
      const bytes = Buffer.from(randomText(random));
      const fast = scan(bytes, [1 + Math.floor(random() * 40)]);
      let full: ReturnType<typeof parsed> | undefined;
      try {
        full = parsed(bytes);
      } catch {
        full = undefined;
      }
      if (fast === undefined) continue;
      accepted++;
      expect(fast, bytes.toString()).toEqual(full);
    }
    expect(accepted).toBeGreaterThan(300);
  });

  it("gives up on anything outside its plain form", () => {
    const frame = (comment: string, atom: string): string => `1\n${comment}\n${atom}\n`;
    const lattice = 'Lattice="1 0 0 0 1 0 0 0 1"';
    const cases: Record<string, string> = {
      "a Z column": frame("Properties=species:S:1:pos:R:3:Z:I:1", "H 0 0 0 1"),
      "positions first": frame("Properties=pos:R:3:species:S:1", "0 0 0 H"),
      "a bad stress": frame(`${lattice} stress="1 2 3"`, "H 0 0 0"),
      "an exponent": frame(lattice, "H 1e-3 0 0"),
      "a bare point": frame(lattice, "H 5. 0 0"),
      "a plus sign": frame(lattice, "H +1 0 0"),
      "a boolean spelled out": frame("Properties=species:S:1:pos:R:3:fixed:L:1", "H 0 0 0 True"),
      "an exponent without digits": frame("Properties=species:S:1:pos:R:3:forces:R:1", "H 0 0 0 1e"),
      "a lone minus for an integer": frame("Properties=species:S:1:pos:R:3:tags:I:1", "H 0 0 0 -"),
      "a tab": frame(lattice, "H\t0 0 0"),
      "CRLF": frame(lattice, "H 0 0 0").replaceAll("\n", "\r\n"),
      "an unknown species": frame(lattice, "Xx 0 0 0"),
      "a missing column": frame(lattice, "H 0 0"),
      "an extra column": frame(lattice, "H 0 0 0 0"),
      "no atoms": "0\nProperties=species:S:1:pos:R:3\n",
      "spaces around the count": ` 1\n${lattice}\nH 0 0 0\n`,
      "a frame after a blank line": `${frame(lattice, "H 0 0 0")}\n${frame(lattice, "H 0 0 0")}`,
      "no final newline": frame(lattice, "H 0 0 0").slice(0, -1),
      "VEC lines": "1\nProperties=species:S:1:pos:R:3\nH 0 0 0\nVEC1 1 0 0\n",
      "a too long mantissa": frame(lattice, "H 1.23456789012345678 0 0"),
      "a byte-order mark": `\ufeff${frame(lattice, "H 0 0 0")}`,
      ...MISREAD_BEFORE,
    };
    for (const [what, text] of Object.entries(cases)) expect(scan(Buffer.from(text)), what).toBeUndefined();
    expect(scan(Buffer.from(frame(lattice, "H 0 0 0")))).toBeDefined();
  });
});

/** The native frame reader, counting the frames it reads (built on x86-64 Linux, where the native-kernels tests require it). */
function countingNative(): { reading: SummaryReading; frames: () => number } {
  const native = nativeExtxyzFrames("auto");
  if (!native) throw new Error("the native module is not built (npm run build)");
  let frames = 0;
  const counting: NativeFrameScan = (...args) => {
    const count = native(...args);
    frames += count;
    return count;
  };
  return { reading: { projections: false, native: counting }, frames: () => frames };
}

describe.runIf(process.platform === "linux" && process.arch === "x64")("ExtxyzSummaryScanner with the native frame reader", () => {
  it("reads plain frames natively to the full parser's ids, counts, formulas, species and frame starts, in chunks of any size", () => {
    const bytes = Buffer.from(plain);
    const expected = parsed(bytes, false);
    expect(expected.summary.projections).toEqual([]);
    for (const sizes of [[bytes.length], [1], [2, 3, 5, 7], [64]]) {
      const { reading, frames } = countingNative();
      expect(scan(bytes, sizes, reading), `chunks ${sizes}`).toEqual(expected);
      // Frames whose Properties differ from the last frame's are read by the JavaScript reader first.
      if (sizes[0] === bytes.length) expect(frames()).toBe(1);
    }
  });

  it("rounds to micro-Angstrom as Math.round does: halves up, -0 as 0, 2^31 and beyond left to JavaScript", () => {
    const values = [
      "0.0000005", "-0.0000005", "-0.0000015", "0.0000015", "1.0000005", "-1.0000005", "-0.0000004", "-0.0", "0.4999999999999999",
      "2147.483647", "-2147.483647", "2147.4836474", "2147.4836475", "-2147.4836485", "-2147.4836484", "3000", "12.3456785", "0.12345650",
      "9007199254740991", "0.0000000000000000000001", "-123456789.012345",
    ];
    const text = values.map((v) => `1\nLattice="10 0 0 0 10 0 0 0 10" Properties=species:S:1:pos:R:3 pbc="T T T"\nH ${v} 0.25 ${v}\n`).join("");
    const bytes = Buffer.from(text);
    const { reading, frames } = countingNative();
    expect(scan(bytes, [bytes.length], reading)).toEqual(parsed(bytes, false));
    // The 7 frames with a value that rounds to 2^31 micro-Angstrom or more, or of over 19 digits, are read by JavaScript.
    expect(frames()).toBe(values.length - 7);
  });

  it("leaves frames outside its form to the JavaScript reader, frame by frame, and takes up again after them", () => {
    const frame = (comment: string, atoms: string[]): string => `${atoms.length}\n${comment}\n${atoms.join("\n")}\n`;
    const lattice = 'Lattice="4 0 0 0 4 0 0 0 4"';
    const md = `${lattice} Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 config_type=md pbc="T T T"`;
    const text = [
      frame(md, ["O 0 0 0 1 2 3", "h 1 1 1 -1e-3 0 0"]),
      frame(md, ["O 0 0 3000 1 2 3", "H 1 1 1 0 0 0"]), // a position of 2^31 micro-Angstrom or more
      frame(md, ["O 0.5 0 0 1 2 3", "H 1 1 1 0 0 0"]),
      frame(md.replace('Lattice="4 ', 'Lattice="4e0 '), ["O 0.5 0 0 1 2 3", "H 1 1 1 0 0 0"]), // an exponent in the cell
      frame(`${lattice} stress="1 2 3 4 5 6" Properties=species:S:1:pos:R:3:forces:R:3`, ["O 0 0 0 1 2 3", "H 1 1 1 0 0 0"]), // stress
      frame(md, ["Zr 0 0 0 1 2 3", "O 1 1 1 0 0 0"]), // new species
      frame(`${lattice} Properties=species:S:1:pos:R:3`, ["Zr 0 0 0", "O 1 1 1"]), // new Properties
      frame(`${lattice} Properties=species:S:1:pos:R:3`, ["ZR 0 0 0", "o 1 1 2"]),
      frame("Properties=species:S:1:pos:R:3 uid=7", ["C 0 0 0", "C 1 1 1"]), // uid, no cell
      frame("Properties=species:S:1:pos:R:3", ["C 0 0 0", "C 1 1 1"]),
      frame("", ["C 0 0 0", "C 1 1 1.25"]), // no Properties: the default
    ].join("");
    const bytes = Buffer.from(text);
    const expected = parsed(bytes, false);
    expect(expected.summary.ids).toHaveLength(11);
    for (const sizes of [[bytes.length], [7], [40, 3]]) {
      const { reading, frames } = countingNative();
      expect(scan(bytes, sizes, reading), `chunks ${sizes}`).toEqual(expected);
      if (sizes[0] === bytes.length) expect(frames()).toBe(5);
    }
  });

  it("reads every real extxyz file of the corpus as the full parser does", () => {
    let native = 0;
    for (const dir of ["extxyz", "mace"]) {
      for (const name of readdirSync(realPath(dir)).filter((n) => /\.(xyz|extxyz)$/.test(n))) {
        const bytes = readFileSync(path.join(realPath(dir), name));
        const { reading, frames } = countingNative();
        const fast = scan(bytes, [4096], reading);
        const js = scan(bytes, [4096], { projections: false });
        expect(fast, name).toEqual(js);
        if (fast) expect(fast, name).toEqual(parsed(bytes, false));
        native += frames();
      }
    }
    expect(native).toBeGreaterThan(50);
  });

  it("on random texts, gives what the JavaScript reader gives", () => {
    const random = seededRandom(2027);
    let accepted = 0;
    let native = 0;
    for (let n = 0; n < 1500; n++) {
      const bytes = Buffer.from(randomText(random));
      const chunks = [1 + Math.floor(random() * 40)];
      const { reading, frames } = countingNative();
      const fast = scan(bytes, chunks, reading);
      expect(fast, bytes.toString()).toEqual(scan(bytes, chunks, { projections: false }));
      if (fast) accepted++;
      native += frames();
    }
    expect(accepted).toBeGreaterThan(300);
    expect(native).toBeGreaterThan(200);
  });

  it("leaves to the JavaScript reader what it cannot read, which refuses what the full parser refuses", () => {
    for (const [what, text] of Object.entries(MISREAD_BEFORE)) {
      const bytes = Buffer.from(text);
      expect(() => parseExtxyz(bytes), what).toThrow();
      expect(scan(bytes, [bytes.length], countingNative().reading), what).toBeUndefined();
    }
  });

  it("is not used where projections are asked for, or frames kept", () => {
    const { reading, frames } = countingNative();
    const bytes = Buffer.from(plain);
    expect(scan(bytes, [bytes.length], { ...reading, projections: true })).toEqual(parsed(bytes));
    const keeping = new ExtxyzSummaryScanner(undefined, true, reading);
    expect(keeping.push(bytes) && keeping.end()).toBe(true);
    expect(frames()).toBe(0);
  });

  it("checks its arguments: offsets inside the bytes, the end just after a newline, typed arrays of the right kinds", () => {
    const native = nativeExtxyzFrames("auto")!;
    const bytes = Buffer.from("1\nProperties=species:S:1:pos:R:3\nH 0 0 0\n");
    const spec = Buffer.from("species:S:1:pos:R:3");
    const out = (n: number): [Uint8Array, Int32Array, Uint32Array, Int32Array, Uint8Array] =>
      [new Uint8Array(20 * n), new Int32Array(n), new Uint32Array(n + 1), new Int32Array(2 * n), new Uint8Array(64)];
    const [ids, natoms, starts, species, text] = out(4);
    expect(native(bytes, 0, bytes.length, spec, new Uint8Array(0), ids, natoms, starts, species, text)).toBe(1);
    expect(Buffer.from(text.subarray(species[0], species[1])).toString()).toBe("H");
    expect(starts[1]).toBe(bytes.length);
    expect(() => native(bytes, 0, bytes.length + 1, spec, new Uint8Array(0), ids, natoms, starts, species, text)).toThrow(RangeError);
    expect(() => native(bytes, 0, bytes.length - 1, spec, new Uint8Array(0), ids, natoms, starts, species, text)).toThrow(RangeError);
    expect(() => native(bytes, 5, 4, spec, new Uint8Array(0), ids, natoms, starts, species, text)).toThrow(RangeError);
    // Too little room for the ids or the starts of natoms.length frames.
    expect(() => native(bytes, 0, bytes.length, spec, new Uint8Array(0), ids.subarray(1), natoms, starts, species, text)).toThrow(TypeError);
    expect(() => native(bytes, 0, bytes.length, spec, new Uint8Array(0), ids, natoms, starts.subarray(1), species, text)).toThrow(TypeError);
    expect(() => native(bytes, 0, bytes.length, spec, new Uint8Array(0), ids, natoms, new Int32Array(5) as never, species, text)).toThrow(TypeError);
  });
});
