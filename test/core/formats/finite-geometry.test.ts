import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { extxyzNonFiniteGeometryError, nonFiniteGeometry } from "../../../src/core/formats/finite-geometry.js";

// Two frames of two atoms; extxyz (and ASE) read nan and inf as numbers.
const text = (second: { lattice?: string; atom1?: string } = {}): string =>
  '2\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3\nH 0 0 0\nH 0 0 0.74\n' +
  `2\nLattice="${second.lattice ?? "4 0 0 0 4 0 0 0 4"}" Properties=species:S:1:pos:R:3\nH 0 0 0\nH ${second.atom1 ?? "0 0 0.74"}\n`;

describe("non-finite geometry", () => {
  it("finds the first position or cell value that is not finite, and names its line in an extxyz file", () => {
    const errors = (t: string) => parseExtxyz(t, "f.xyz").map(({ frame, line }) => extxyzNonFiniteGeometryError("f.xyz", frame, line)?.message);
    expect(errors(text())).toEqual([undefined, undefined]);
    expect(errors(text({ atom1: "0 -inf 0.74" }))).toEqual([undefined, "f.xyz:8: atom 1 (0-based): position y is -inf; positions must be finite numbers"]);
    expect(errors(text({ lattice: "4 0 0 0 nan 0 0 0 4", atom1: "nan 0 0" }))).toEqual([undefined, "f.xyz:6: the cell (Lattice) holds nan; a cell must be finite numbers"]);
    const [, second] = parseExtxyz(text({ atom1: "0 0 inf" }));
    expect(nonFiniteGeometry(second.frame)).toEqual({ atom: 1, axis: "z", value: Infinity });
  });
});
