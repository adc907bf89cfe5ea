import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { extxyzNonFiniteGeometryError, nonFiniteGeometry } from "../../../src/core/formats/finite-geometry.js";

// Two frames of two atoms; extxyz (and ASE) read nan and inf as numbers.
const text = (second: { lattice?: string; atom1?: string } = {}): string =>
  '2\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3\nH 0 0 0\nH 0 0 0.74\n' +
  `2\nLattice="${second.lattice ?? "4 0 0 0 4 0 0 0 4"}" Properties=species:S:1:pos:R:3\nH 0 0 0\nO ${second.atom1 ?? "0 0 0.74"}\n`;

describe("non-finite geometry", () => {
  it("names the atom line and the axis of a nan or inf position, the comment line for the cell", () => {
    const [, nanAtom] = parseExtxyz(text({ atom1: "1 nan 0" }));
    expect(nonFiniteGeometry(nanAtom.frame, nanAtom.line)).toEqual({ line: 8, detail: "atom 1 (O, 0-based): position y is nan; expected a finite number" });
    // The cell is checked first.
    const [, infCell] = parseExtxyz(text({ lattice: "4 0 0 0 -inf 0 0 0 4", atom1: "nan 0 0" }));
    expect(nonFiniteGeometry(infCell.frame, infCell.line)).toEqual({ line: 6, detail: "cell vector a2 has y = -inf; expected finite numbers" });
  });

  it("passes finite frames, whatever their info holds, and makes the InputError of a file's frame", () => {
    const errors = (t: string) => parseExtxyz(t, "f.xyz").map(({ frame, line }) => extxyzNonFiniteGeometryError("f.xyz", frame, line)?.message);
    expect(errors(text().replace("Properties", "energy=nan Properties"))).toEqual([undefined, undefined]);
    expect(errors(text({ atom1: "0 0 inf" }))).toEqual([undefined, "f.xyz:8: atom 1 (O, 0-based): position z is inf; expected a finite number"]);
  });
});
