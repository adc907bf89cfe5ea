/**
 * The fast paths of the extxyz reader against its general paths: comment lines read straight from bytes
 * (parseKeyValuesBytes vs parseKeyValues), atom lines read by the plain-frame reader vs the general one, and chunk
 * boundaries, including chunks large enough that a frame left over from one chunk is finished from the start of
 * the next without copying it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ExtxyzParser, parseExtxyz, parseKeyValues, parseKeyValuesBytes, type ExtxyzFrameAt } from "../../../src/core/formats/extxyz.js";
import type { InfoValue } from "../../../src/core/structure.js";
import { realPath } from "../../helpers/real-data.js";

const realFiles = [
  ...readdirSync(realPath("extxyz")).map((f) => `extxyz/${f}`),
  ...readdirSync(realPath("mace"))
    .filter((f) => f.endsWith(".xyz"))
    .map((f) => `mace/${f}`),
];

/** A seeded PRNG (LCG), so that generated cases are the same on every run. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

type Outcome = { kind: "values"; values: [string, InfoValue][] } | { kind: "error"; message: string };

function general(text: string): Outcome {
  try {
    return { kind: "values", values: [...parseKeyValues(text.trim())] };
  } catch (err) {
    return { kind: "error", message: (err as Error).message };
  }
}

function fast(text: string): Map<string, InfoValue> | undefined {
  const bytes = Buffer.from(text, "utf8");
  return parseKeyValuesBytes(bytes, 0, bytes.length);
}

/** The fast path may decline a line, but what it returns must be what the general grammar gives. */
function expectAgreement(text: string): boolean {
  const got = fast(text);
  const want = general(text);
  if (got === undefined) return false;
  expect(want.kind, `the general path rejects ${JSON.stringify(text)}, the fast path does not`).toBe("values");
  expect([...got], JSON.stringify(text)).toEqual((want as { values: unknown }).values);
  return true;
}

const GRAMMAR_CASES = [
  'Lattice="8.60110375 0.0 0.0 0.0 8.60110375 0.0 0.0 0.0 8.60110375" Properties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=-172.74645537 REF_stress="-0.0043066 -0.00330699 0.00006543 0.00176657 0.00260799 0.00491457" config_type=bulk pbc="T T T"',
  "n=12 m=+12 k=-12 z=012 w=-0 big=99999999999999999999 huge=123456789012345678",
  "x=12.0 y=-0.12 z=.5 w=5. e=12E+12 f=-012.0e-12 g=1e400 h=-0.0 i=1e-05 j=1.e5",
  "a=1_000 b=1_0.5 c=nan d=NaN e=inf f=-Infinity g=+inf h=infinity_x i=nano",
  "x=1.0d2 y=0x10 z=1e w=1e+ v=+-1 u=1-2 t=. s=- r=e5 q=.e5",
  "b=T c=F d=True e=False f=true g=false h=TRUE i=FALSE j=tRUE k=Tr",
  'v="1 2 3" w="1,2,3" x="1, 2.5, 3" y="-0 1" z="-0 1.5" q="T F T" r="T 1" s="a b" t="1 a"',
  'empty="" blank="   " comma="," key= last=',
  "flag other=1 flag2",
  'k = 1 spaced  =  "2 3"  tail',
  'stress="1 2 3 4 5 6" virial="1 2 3 4 5 6 7 8 9"',
  'stress="1 2 3"',
  "stress=T",
  'pbc="T T F" Lattice="1 0 0 0 1 0 0 0 1"',
  'class="_JSON [1.0, 0.0, 0.0]" j="_JSON {\\"a\\": 1}" bad="_JSON [1,"',
  "a=1 a=2 b=3 a=4",
  "uid=0042 UID=x",
  'q="unterminated',
  "=1",
  "a=[1, 2, 3] b=[[1, 2], [3, 4]] c={1 2 3} d='x y'",
  'a="x\\"y" b=c\\ d e="1\\n2"',
  'a="b"c d="e" f',
  "a=b=c",
  "comment with words only",
  "Comp=DMC(1) Nmols=1 path=run_iter_0/run_VASP_37oj_bd2 sym=\"1 P1 P 1 @ 0.01\"",
  "énergie=1 x=é",
  "a=\u0001 b=\t1\t",
  "\t Lattice=\"1 0 0 0 1 0 0 0 1\"  \r",
  "",
  "   ",
];

describe("comment lines read straight from bytes", () => {
  it("agree with parseKeyValues on every comment line of the real files, all of which take the fast path", () => {
    let lines = 0;
    for (const rel of realFiles) {
      const bytes = readFileSync(realPath(rel));
      const text = bytes.toString("utf8").split("\n");
      for (const { line } of parseExtxyz(bytes, rel)) {
        expect(expectAgreement(text[line]), `${rel}:${line + 1}`).toBe(true);
        lines++;
      }
    }
    expect(lines).toBeGreaterThan(1000);
  });

  it("agree with parseKeyValues on the grammar cases, and take the fast path for the common forms", () => {
    for (const text of GRAMMAR_CASES) expectAgreement(text);
    expect(fast(GRAMMAR_CASES[0])?.get("REF_stress")).toEqual({
      kind: "array",
      dtype: "float",
      shape: [6],
      data: [-0.0043066, -0.00330699, 0.00006543, 0.00176657, 0.00260799, 0.00491457],
    });
    // Only stress and virial become 3x3: Voigt xx yy zz yz xz xy as a symmetric matrix.
    expect(fast('stress="1 2 3 4 5 6"')?.get("stress")).toEqual({ kind: "array", dtype: "int", shape: [3, 3], data: [1, 6, 5, 6, 2, 4, 5, 4, 3] });
    expect(fast("n=-0 x=-0.0 v=\"-0 1.5\"")).toEqual(
      new Map<string, InfoValue>([
        ["n", { kind: "int", value: 0 }],
        ["x", { kind: "float", value: -0 }],
        ["v", { kind: "array", dtype: "float", shape: [2], data: [-0, 1.5] }],
      ]),
    );
    expect(Object.is((fast("x=-0.0")?.get("x") as { value: number }).value, -0)).toBe(true);
    expect(Object.is((fast("n=-0")?.get("n") as { value: number }).value, 0)).toBe(true);
    for (const text of ["a=1_000", "c=nan", "e=-Infinity", "uid=0042", "a=[1, 2]", 'a="x\\"y"', "big=123456789012345678", "q=\"unterminated", "=1"]) {
      expect(fast(text), text).toBeUndefined();
    }
  });

  it("agree with parseKeyValues on 30000 mutated lines", () => {
    const pieces = [" ", "\t", '"', "'", "=", "_", ",", "[", "]", "{", "}", "\\", "-", "+", ".", "e", "E", "0", "1", "9", "T", "F", "True", "nan", "inf", "-0", "1_0", "_JSON ", "uid", "stress", "virial", "Lattice", "pbc", "Properties", "\r", "\u0001", "é", "x", "1e5", "1.", ".5", "1e", "99999999999999999"];
    const rand = prng(20240611);
    let taken = 0;
    for (let k = 0; k < 30000; k++) {
      let s = GRAMMAR_CASES[rand(GRAMMAR_CASES.length)];
      for (let m = 1 + rand(4); m > 0; m--) {
        const at = rand(s.length + 1);
        const op = rand(3);
        s = op === 0 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + pieces[rand(pieces.length)] + s.slice(at + (op === 2 ? 1 : 0));
      }
      if (expectAgreement(s)) taken++;
    }
    // Most mutations keep a line the fast path can read; the rest must have been declined, not misread.
    expect(taken).toBeGreaterThan(10000);
  });
});

/** Frames as comparable data: typed arrays by their bytes, so that -0 and NaN compare exactly. */
function comparable(items: ExtxyzFrameAt[]): unknown[] {
  const bytes = (a: Float64Array | Uint8Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("hex");
  return items.map(({ frame, line }) => ({
    line,
    natoms: frame.natoms,
    symbols: frame.symbols,
    positions: bytes(frame.positions),
    cell: bytes(frame.cell),
    pbc: frame.pbc,
    info: [...frame.info],
    arrays: [...frame.arrays].map(([name, a]) => [name, a.dtype, a.ncols, a.dtype === "S" ? a.data : bytes(a.data as Float64Array | Uint8Array)]),
  }));
}

type Parsed = { frames: unknown[]; error: string | undefined };

function parseChunked(bytes: Uint8Array, size: number): Parsed {
  const parser = new ExtxyzParser("f.xyz");
  const out: ExtxyzFrameAt[] = [];
  try {
    for (let o = 0; o < bytes.length; o += size) out.push(...parser.push(bytes.subarray(o, o + size)));
    out.push(...parser.end());
  } catch (err) {
    return { frames: comparable(out), error: (err as Error).message };
  }
  return { frames: comparable(out), error: undefined };
}

/**
 * The same file with a vertical tab before each atom-line column: still whitespace to the grammar, but the plain
 * atom-line reader declines it, so its frames come from the general reader.
 */
function viaGeneralReader(text: string): string {
  const lines = text.split("\n");
  const out: string[] = [];
  let k = 0;
  while (k < lines.length) {
    const natoms = /^\s*\d+\s*$/.test(lines[k]) ? Number(lines[k]) : 0;
    out.push(lines[k], ...(k + 1 < lines.length ? [lines[k + 1]] : []));
    for (let a = 0; a < natoms && k + 2 + a < lines.length; a++) out.push(lines[k + 2 + a].replace(/ +/g, " \v"));
    k += 2 + natoms;
  }
  return out.join("\n");
}

/** A seeded multi-frame file in the usual training-set layout; frame 7 has 3000 atoms when `bigFrame`. */
function trainingSet(frames: number, seed: number, bigFrame: boolean): string {
  const rand = prng(seed);
  const num = (scale: number): string => ((rand(2) ? -1 : 1) * (rand(1e8) / 1e8) * scale).toFixed(1 + rand(9));
  const parts: string[] = [];
  for (let f = 0; f < frames; f++) {
    const natoms = bigFrame && f === 7 ? 3000 : 1 + rand(40);
    const cell = Array.from({ length: 9 }, (_, k) => (k % 4 === 0 ? (8 + rand(1e6) / 1e5).toFixed(6) : "0.0")).join(" ");
    const stress = Array.from({ length: 6 }, () => num(0.01)).join(" ");
    parts.push(`${natoms}\nLattice="${cell}" Properties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=${num(300)} REF_stress="${stress}" config_type=bulk pbc="T T T"`);
    for (let a = 0; a < natoms; a++) parts.push(`${rand(3) ? "Si" : "O"} ${num(20)} ${num(20)} ${num(20)} ${num(2)} ${num(2)} ${num(2)}`);
  }
  return `${parts.join("\n")}\n`;
}

describe("frames read by the plain-frame reader", () => {
  it("equal the general reader's on every real file", () => {
    for (const rel of realFiles) {
      const text = readFileSync(realPath(rel), "utf8");
      const plain = parseChunked(Buffer.from(text), 1 << 20);
      expect(plain.error, rel).toBeUndefined();
      expect(parseChunked(Buffer.from(viaGeneralReader(text)), 1 << 20), rel).toEqual(plain);
    }
  });

  it("equal the general reader's for every number form and for CRLF line ends", () => {
    const forms = ["1e3", "-2.5E-3", "+.5", ".5", "5.", "-0", "-0.0", "0.0", "007.5", "1234567890.12345678", "0.1234567890123456789", "3.141592653589793238", "-1.7976931348623157e308", "4.9e-324", "1e23", "123456789012345678", "nan", "-inf", "Infinity", "9007199254740993", "12345678901234.5"];
    const rand = prng(7);
    const lines = Array.from({ length: 200 }, () => `H ${Array.from({ length: 6 }, () => forms[rand(forms.length)]).join(" ")} ${rand(100) - 50} ${rand(2) ? "T" : "F"} tag${rand(9)}`);
    const text = `200\nProperties=species:S:1:pos:R:3:v:R:3:n:I:1:ok:L:1:tag:S:1 e=1\n${lines.join("\n")}\n`;
    for (const t of [text, text.replace(/\n/g, "\r\n")]) {
      const plain = parseChunked(Buffer.from(t), t.length);
      expect(plain.error).toBeUndefined();
      expect(parseChunked(Buffer.from(viaGeneralReader(t)), t.length)).toEqual(plain);
    }
    // Anchor the comparison to Number(), the reference for what a float token means.
    const [first] = parseExtxyz(text);
    const v = first.frame.arrays.get("v")?.data as Float64Array;
    const tokens = lines[0].split(" ");
    expect([...first.frame.positions.subarray(0, 3), ...v.subarray(0, 3)].map(String)).toEqual(tokens.slice(1, 7).map((x) => String(Number(x))));
  });

  it("equal the whole-buffer frames for chunks around and beyond the 64 KiB bridge, with a frame larger than it", () => {
    const bytes = Buffer.from(trainingSet(400, 99, true));
    expect(bytes.length).toBeGreaterThan(600_000);
    const whole = parseChunked(bytes, bytes.length);
    expect(whole.error).toBeUndefined();
    expect(whole.frames).toHaveLength(400);
    for (const size of [4096, 65_535, 65_537, 100_003, 131_072, 250_000, 1 << 20]) {
      expect(parseChunked(bytes, size), `chunk size ${size}`).toEqual(whole);
    }
  });

  it("give the same frames before an error, and the same error, wherever the chunks end", () => {
    const text = trainingSet(400, 5, false);
    const lines = text.split("\n");
    const rand = prng(11);
    const breakers: ((line: string) => string)[] = [
      (l) => l.replace(/ \S+$/, " 1.2.3"),
      (l) => l.replace(/ \S+$/, ""),
      (l) => `${l} 0.5`,
      (l) => l.replace(/^\S+/, "Qq"),
      () => "",
      (l) => l.replace(/Properties=\S+/, "Properties=species:S:1:pos:R:2"),
      (l) => l.replace('pbc="T T T"', 'pbc="T T"'),
      (l) => l.replace(/^(\d+)$/, (_, n: string) => String(Number(n) + 1)),
    ];
    for (let k = 0; k < 40; k++) {
      const at = 2 + rand(lines.length - 3);
      const broken = [...lines];
      broken[at] = breakers[k % breakers.length](broken[at]);
      const bytes = Buffer.from(broken.join("\n"));
      const whole = parseChunked(bytes, bytes.length);
      for (const size of k < 4 ? [1, 97] : [97, 4096, 65_537, 70_001]) {
        expect(parseChunked(bytes, size), `line ${at + 1}, breaker ${k % breakers.length}, chunk size ${size}`).toEqual(whole);
      }
    }
  });
});
