/**
 * Malformed inputs and the exact one-line InputError each gives: file, 1-based line, what was expected.
 * Each input is checked whole and in 1-byte chunks, so that streaming never changes the error.
 */
import { describe, expect, it } from "vitest";
import { ExtxyzParser, parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { InputError } from "../../../src/core/errors.js";

const H = "H 0 0 0\n";
const PROPS = "Properties=species:S:1:pos:R:3";

const corpus: [name: string, text: string, message: string][] = [
  ["natoms not a number", `abc\n\n${H}`, 'bad.xyz:1: expected the number of atoms (a non-negative integer), found "abc"'],
  ["natoms negative", `-1\n\n${H}`, 'bad.xyz:1: expected the number of atoms (a non-negative integer), found "-1"'],
  ["natoms a float", `2.0\n\n${H}${H}`, 'bad.xyz:1: expected the number of atoms (a non-negative integer), found "2.0"'],
  ["natoms with words", `3 atoms\n\n${H}${H}${H}`, 'bad.xyz:1: expected the number of atoms (a non-negative integer), found "3 atoms"'],
  ["second natoms line bad", `1\n\n${H}x\n`, 'bad.xyz:4: expected the number of atoms (a non-negative integer), found "x"'],
  ["truncated last frame", `1\n\n${H}2\n${PROPS}\n${H}`, "bad.xyz:4: frame has 1 atom line(s), expected 2: the file ends at line 6"],
  ["truncated without final newline", `3\n${PROPS}\nH 0 0 0\nH 0 0 1`, "bad.xyz:1: frame has 2 atom line(s), expected 3: the file ends at line 4"],
  ["only the atom count", "3\n", "bad.xyz:1: file ends after the atom count 3: expected a comment line and 3 atom line(s)"],
  [
    "atom count too large: the next frame's count among the atoms",
    `3\n\n${H}${H}2\n\n${H}${H}`,
    'bad.xyz:1: the atom count says 3, but line 5 ("2") looks like the next frame\'s atom count: this frame has 2 atom line(s) (3-4)',
  ],
  [
    "atom count too small: an atom line where the next count should be",
    `1\n\n${H}${H}1\n\n${H}`,
    'bad.xyz:1: the atom count says 1, but the frame runs on: line 4, after its 1 atom line(s) (3), is one more atom line ("H 0 0 0") where the next frame\'s atom count should be',
  ],
  ["too few columns", `2\n${PROPS}\n${H}H 0 0\n`, "bad.xyz:4: expected 4 columns (species:S:1 pos:R:3), found 3"],
  ["too many columns", `1\n${PROPS}:f:R:3\nH 0 0 0 1 2 3 4\n`, "bad.xyz:3: expected 7 columns (species:S:1 pos:R:3 f:R:3), found 8"],
  ["empty atom line", `2\n\n${H}\n`, "bad.xyz:4: expected 4 columns (species:S:1 pos:R:3), found 0"],
  ["non-numeric real", `1\n\nH 0 x 0\n`, 'bad.xyz:3: column 3 (pos[1]): expected a real number, found "x"'],
  ["Fortran exponent in a real column", `1\n\nH 0 1.0d0 0\n`, 'bad.xyz:3: column 3 (pos[1]): expected a real number, found "1.0d0"'],
  ["two points", `1\n\nH 0 1.2.3 0\n`, 'bad.xyz:3: column 3 (pos[1]): expected a real number, found "1.2.3"'],
  ["lone sign", `1\n\nH 0 - 0\n`, 'bad.xyz:3: column 3 (pos[1]): expected a real number, found "-"'],
  ["float in an integer column", `1\n${PROPS}:tags:I:1\nH 0 0 0 1.5\n`, 'bad.xyz:3: column 5 (tags): expected an integer, found "1.5"'],
  ["word in an integer column", `1\n${PROPS}:tags:I:1\nH 0 0 0 one\n`, 'bad.xyz:3: column 5 (tags): expected an integer, found "one"'],
  ["bad logical", `1\n${PROPS}:move_mask:L:1\nH 0 0 0 yes\n`, 'bad.xyz:3: column 5 (move_mask): expected T or F, found "yes"'],
  ["unknown element", `1\n\nXx 0 0 0\n`, 'bad.xyz:3: column 1 (species): expected a chemical symbol, found "Xx"'],
  ["number as species", `1\n\n1 0 0 0\n`, 'bad.xyz:3: column 1 (species): expected a chemical symbol, found "1"'],
  ["Z out of range", `1\nProperties=Z:I:1:pos:R:3\n200 0 0 0\n`, "bad.xyz:3: Z: 200 is not an atomic number (0-118)"],
  [
    "Properties not triples",
    `1\nProperties=species:S:1:pos:R\n${H}`,
    'bad.xyz:2: bad Properties "species:S:1:pos:R": 5 fields is not a multiple of 3 (expected name:type:count triples, type S, I, R or L, count >= 1)',
  ],
  [
    "Properties unknown type",
    `1\nProperties=species:S:1:pos:D:3\n${H}`,
    'bad.xyz:2: bad Properties "species:S:1:pos:D:3": unknown type "D" for pos (expected name:type:count triples, type S, I, R or L, count >= 1)',
  ],
  [
    "Properties zero count",
    `1\nProperties=species:S:1:pos:R:3:f:R:0\n${H}`,
    'bad.xyz:2: bad Properties "species:S:1:pos:R:3:f:R:0": bad count "0" for f (expected name:type:count triples, type S, I, R or L, count >= 1)',
  ],
  ["Properties without pos", `1\nProperties=species:S:1:x:R:3\n${H}`, 'bad.xyz:2: Properties "species:S:1:x:R:3" has no pos column (expected pos:R:3)'],
  ["pos with two columns", `1\nProperties=species:S:1:pos:R:2\nH 0 0\n`, 'bad.xyz:2: Properties "species:S:1:pos:R:2": expected pos:R:3, found pos:R:2'],
  ["species as a number", `1\nProperties=species:I:1:pos:R:3\n${H}`, 'bad.xyz:2: Properties "species:I:1:pos:R:3": expected species:S:1, found species:I:1'],
  ["neither species nor Z", `1\nProperties=pos:R:3\n0 0 0\n`, 'bad.xyz:2: Properties "pos:R:3" has neither species:S:1 nor Z:I:1'],
  ["Properties a number", `1\nProperties=3\n${H}`, "bad.xyz:2: bad Properties: expected name:type:count triples, found int 3"],
  ["Lattice with 6 numbers", `1\nLattice="1 0 0 0 1 0"\n${H}`, "bad.xyz:2: Lattice: expected 9 numbers (three cell vectors a1 a2 a3), found 6 number(s)"],
  ["Lattice with 10 numbers", `1\nLattice="1 0 0 0 1 0 0 0 1 0"\n${H}`, "bad.xyz:2: Lattice: expected 9 numbers (three cell vectors a1 a2 a3), found 10 number(s)"],
  ["Lattice not numeric", `1\nLattice="1 0 0 0 1 0 0 0 x"\n${H}`, "bad.xyz:2: Lattice: expected 9 numbers (three cell vectors a1 a2 a3), found a string"],
  ["pbc with two values", `1\npbc="T T"\n${H}`, 'bad.xyz:2: pbc: expected T, F or three of them ("T T F"), found bool array of shape [2]'],
  ["pbc a word", `1\npbc=yes\n${H}`, 'bad.xyz:2: pbc: expected T, F or three of them ("T T F"), found string "yes"'],
  ["stress with 5 numbers", `1\nstress="1 2 3 4 5"\n${H}`, "bad.xyz:2: stress: expected 6 (Voigt) or 9 numbers or a 3x3 array, found int array of shape [5]"],
  ["virial a word", `1\nvirial=none\n${H}`, 'bad.xyz:2: virial: expected 6 (Voigt) or 9 numbers or a 3x3 array, found string "none"'],
  ["unterminated quote", `1\nconfig_type="bulk\n${H}`, 'bad.xyz:2: unterminated "..." starting at column 13'],
  ["bad JSON", `1\nd="_JSON {\\"a\\": }"\n${H}`, "bad.xyz:2: _JSON: unexpected }"],
  ["blank line between frames", `1\n\n${H}\n1\n\n${H}`, "bad.xyz:4: blank line between frames (blank lines are allowed only at the end of the file; more frames follow at line 5)"],
  ["VEC lines out of order", `1\nc\n${H}VEC2 1 0 0\n`, 'bad.xyz:4: expected VEC1, found "VEC2"'],
  ["four VEC lines", `1\nc\n${H}VEC1 1 0 0\nVEC2 0 1 0\nVEC3 0 0 1\nVEC4 1 1 1\n`, "bad.xyz:7: more than 3 VEC lines (expected VEC1, VEC2, VEC3 at most)"],
  ["VEC line with two numbers", `1\nc\n${H}VEC1 1 0\n`, 'bad.xyz:4: VEC1: expected 3 numbers, found "1 0"'],
];

function errorOf(run: () => unknown): InputError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error("expected an InputError, but parsing succeeded");
}

describe("malformed extxyz", () => {
  it.each(corpus)("%s", (_name, text, message) => {
    const whole = errorOf(() => parseExtxyz(text, "bad.xyz"));
    expect(whole.message).toBe(message);
    expect(whole.message).not.toContain("\n");
    const bytes = Buffer.from(text);
    const streamed = errorOf(() => {
      const parser = new ExtxyzParser("bad.xyz");
      for (let o = 0; o < bytes.length; o++) parser.push(bytes.subarray(o, o + 1));
      parser.end();
    });
    expect(streamed.message).toBe(message);
  });

  it("names the line of the bad atom in a later frame", () => {
    const text = `2\n${PROPS}\n${H}${H}2\n${PROPS}\n${H}H 0 0 zero\n`;
    expect(errorOf(() => parseExtxyz(text, "f.xyz")).message).toBe('f.xyz:8: column 4 (pos[2]): expected a real number, found "zero"');
  });

  it("shortens a very long bad token", () => {
    const long = "x".repeat(100);
    expect(errorOf(() => parseExtxyz(`1\n\nH 0 ${long} 0\n`, "f.xyz")).message).toBe(`f.xyz:3: column 3 (pos[1]): expected a real number, found "${"x".repeat(40)}..."`);
  });
});

