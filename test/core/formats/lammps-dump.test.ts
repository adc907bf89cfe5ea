/**
 * The LAMMPS dump parser against dumps LAMMPS wrote and what ASE's lammps-dump-text reader makes of them; then the
 * box conventions, cuts and bad input, one line each.
 */
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import { LammpsDumpParser } from "../../../src/core/formats/lammps-dump.js";
import type { Frame } from "../../../src/core/structure.js";
import { DUMPS, dumpText, lammpsDumps, TYPE_MAP } from "../../helpers/lammps-dumps.js";

function parse(text: string, typeMap: readonly string[] | null = TYPE_MAP, chunk = text.length || 1): { frames: Frame[]; truncated: string | null } {
  const parser = new LammpsDumpParser("md.lammpstrj", typeMap);
  const frames: Frame[] = [];
  for (let i = 0; i < text.length; i += chunk) frames.push(...parser.push(text.slice(i, i + chunk)));
  const end = parser.end();
  return { frames: [...frames, ...end.frames], truncated: end.truncated };
}

function failure(text: string, typeMap: readonly string[] | null = TYPE_MAP): string {
  try {
    parse(text, typeMap);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).not.toContain("\n");
    return (err as Error).message;
  }
  throw new Error("expected an InputError");
}

const ORTHO = (bounds: string, flags = " pp pp pp") => `ITEM: TIMESTEP
5
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS${flags}
${bounds}
ITEM: ATOMS id type x y z
2 2 1.5 1.5 1.5
1 1 0.25 0.5 0.75
`;
const CUBE = "0 4\n0 4\n0 4";

describe("LAMMPS dumps as LAMMPS writes them", () => {
  it("reads every snapshot of each dump as ASE does: atoms by id, species from the type map or the element column, triclinic cell, pbc", () => {
    const { ase } = lammpsDumps();
    for (const name of DUMPS) {
      const text = dumpText(name);
      const { frames, truncated } = parse(text);
      expect(truncated).toBeNull();
      expect(frames).toHaveLength(ase[name].length);
      expect(frames.length).toBe(3);
      frames.forEach((frame, i) => {
        const ref = ase[name][i];
        expect(frame.natoms).toBe(108);
        expect(frame.symbols).toEqual(ref.symbols);
        expect(Array.from(frame.cell)).toEqual(ref.cell.flat());
        expect(frame.pbc).toEqual(ref.pbc);
        const expected = ref.positions.flat();
        // Scaled positions times the cell: the same products, summed as NumPy's matmul sums them or within an ulp.
        frame.positions.forEach((v, k) => expect(Math.abs(v - expected[k])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(expected[k]))));
        expect(frame.info.get("timestep")).toEqual({ kind: "int", value: 10 * i });
      });
      // The same frames whatever the chunk borders.
      const chunked = parse(text, TYPE_MAP, 7).frames;
      expect(chunked.map((f) => Array.from(f.positions))).toEqual(frames.map((f) => Array.from(f.positions)));
    }
    // The three dumps hold one trajectory: the species agree, Hf and O as the type map says.
    const species = DUMPS.map((name) => parse(dumpText(name)).frames[0].symbols.join(","));
    expect(new Set(species).size).toBe(1);
    expect(species[0].split(",").filter((s) => s === "O").length).toBeGreaterThan(0);
  });

  it("keeps the snapshots before a cut and says where the file was cut", () => {
    const text = dumpText("unscaled.lammpstrj");
    const lines = text.split("\n");
    // Snapshot 3 starts at line 2 * (9 + 108) + 1; cut 40 atoms into it.
    const cutAt = 2 * 117 + 9 + 40;
    const { frames, truncated } = parse(lines.slice(0, cutAt).join("\n") + "\n");
    expect(frames).toHaveLength(2);
    expect(truncated).toBe(`line ${cutAt}: the file ends inside the snapshot of timestep 20 (after 40 of 108 atoms; dropped)`);
    expect(parse(lines.slice(0, 2 * 117 + 3).join("\n")).truncated).toBe(`line ${2 * 117 + 3}: the file ends inside the snapshot of timestep 20 (before its atoms; dropped)`);
  });
});

describe("box conventions", () => {
  it("orthogonal boxes: positions as written, the bounds' lengths, pbc from the flags (none given: not periodic, as ASE reads it)", () => {
    const [frame] = parse(ORTHO("-1 3\n0 4\n2 8", " pp ff sm")).frames;
    expect(Array.from(frame.cell)).toEqual([4, 0, 0, 0, 4, 0, 0, 0, 6]);
    expect(frame.pbc).toEqual([true, false, false]);
    expect(frame.symbols).toEqual(["Hf", "O"]);
    expect(Array.from(frame.positions)).toEqual([0.25, 0.5, 0.75, 1.5, 1.5, 1.5]);
    expect(parse(ORTHO(CUBE, "")).frames[0].pbc).toEqual([false, false, false]);
  });

  it("tilt factors in the order their names give", () => {
    const text = ORTHO("0 5 0.5\n0 4 -0.25\n0 4 1", " xz yz xy pp pp pp");
    const [frame] = parse(text).frames;
    // xz = 0.5, yz = -0.25, xy = 1: a = 5 - |xy| - |xz|, b = (xy, 4 - |yz|, 0), c = (xz, yz, 4).
    expect(Array.from(frame.cell)).toEqual([3.5, 0, 0, 1, 3.75, 0, 0.5, -0.25, 4]);
  });
});

describe("bad input, one line naming the line", () => {
  it("refuses what cannot be read as a structure", () => {
    expect(failure(ORTHO(CUBE), null)).toBe("md.lammpstrj:9: atom types but no element column: the element of each type is needed, type 1 first (relabel rank --type-map Hf,O; type_map: [Hf, O] in the App's selection config or a stage's eval config)");
    expect(failure(ORTHO(CUBE), ["Hf"])).toBe("md.lammpstrj:10: atom type 2 has no element in the type map (1=Hf)");
    expect(failure(ORTHO(CUBE).replace("id type x y z", "id element x y z").replace("2 2 1.5", "2 Qq 1.5"))).toBe('md.lammpstrj:10: element "Qq" is not an element symbol');
    expect(failure(ORTHO(CUBE).replace("1 1 0.25 0.5 0.75", "1 1 0.25 0.5"))).toBe("md.lammpstrj:11: expected 5 values (id type x y z), found 4");
    expect(failure(ORTHO(CUBE).replace("1 1 0.25", "1 1 abc"))).toBe('md.lammpstrj:11: x: expected a number, found "abc"');
    expect(failure(ORTHO(CUBE).replace("id type x y z", "id type vx vy vz"))).toBe("md.lammpstrj:9: no positions: expected columns x y z, xs ys zs, xu yu zu or xsu ysu zsu");
    expect(failure(ORTHO(CUBE).replace("2 2 1.5", "1 2 1.5"))).toBe("md.lammpstrj:1: atom id 1 appears twice in the snapshot of timestep 5");
    expect(failure(ORTHO("0 4\n0 4 1\n0 4"))).toBe("md.lammpstrj:5: box bounds: expected three lines of lo hi (and a tilt factor each for a triclinic box)");
    expect(failure(ORTHO(CUBE).replace("ITEM: NUMBER OF ATOMS\n2\n", ""))).toBe("md.lammpstrj:7: ITEM: ATOMS before ITEM: NUMBER OF ATOMS");
    expect(failure(`ITEM: UNITS\nlj\n${ORTHO(CUBE)}`)).toBe('md.lammpstrj:2: units "lj": only metal and real units (lengths in Å) can be read');
    expect(failure("3\nSi 0 0 0\n")).toBe('md.lammpstrj:1: expected an "ITEM:" line of a LAMMPS dump, found "3"');
    expect(failure("")).toBe('md.lammpstrj: no snapshot found, expected a LAMMPS text dump ("ITEM: TIMESTEP" blocks)');
  });

  it("takes the decimals LAMMPS prints, exactly, and nothing else for a number", () => {
    const x = (token: string) => parse(ORTHO(CUBE).replace("1 1 0.25", `1 1 ${token}`)).frames[0].positions[0];
    expect([".5", "5.", "-2e-05", "+1E+3", "0.1", "123456789.123456789"].map(x)).toEqual([0.5, 5, -2e-5, 1000, 0.1, 123456789.123456789]);
    for (const bad of ["0x10", "Infinity", "1e", ".", "-", "1.5.2", "nan"]) expect(failure(ORTHO(CUBE).replace("1 1 0.25", `1 1 ${bad}`))).toBe(`md.lammpstrj:11: x: expected a number, found ${JSON.stringify(bad)}`);
  });

  it("reads a dump that states metal units and its time", () => {
    const { frames } = parse(`ITEM: UNITS\nmetal\nITEM: TIME\n0.005\n${ORTHO(CUBE)}`);
    expect(frames).toHaveLength(1);
    expect(frames[0].info.get("timestep")).toEqual({ kind: "int", value: 5 });
  });
});
