import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import { hillFormula, type Frame } from "../../../src/core/structure.js";
import { elementSymbol, inVacuumBox, parsePoscar, SELECTIVE_DYNAMICS_KEY, writePoscar } from "../../../src/core/vasp/poscar.js";
import { aseReference, realPath, type AseFrameRef } from "../../helpers/real-data.js";

const ref = aseReference();
const runs = [
  "aiidavasp_Si_relax_ionic_unconverged",
  "aiidavasp_Si_relax_isif3_spin_v620",
  "aiidavasp_Si_relax_killed_sigterm",
  "aiidavasp_Si_static_unfinished",
  "custodian_large_cell_crashed_at_start",
  "custodian_lobster_NaCl_static",
  "custodian_postprocess_FeO_relax_isif3",
  "custodian_potim_FeS_relax_killed",
];
const structureFiles = runs.flatMap((run) =>
  ["POSCAR", "CONTCAR"].map((name) => `vasp/${run}/${name}`).filter((rel) => existsSync(realPath(rel))),
);

function readReal(rel: string) {
  return parsePoscar(readFileSync(realPath(rel), "latin1"), { file: rel });
}

/** The first frame ASE read for this run: from the OUTCAR, or the vasprun.xml where ASE 3.22.1 cannot read the OUTCAR. */
function initialFrame(run: string): AseFrameRef | undefined {
  for (const name of ["OUTCAR", "vasprun.xml"]) {
    const r = ref[`vasp/${run}/${name}`];
    if (r?.ase_ok && r.frames && r.frames.length > 0) return r.frames[0];
  }
  return undefined;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tol);
}

describe("POSCAR/CONTCAR: real files", () => {
  it("finds the structure files of the real runs", () => expect(structureFiles.length).toBe(13));

  for (const rel of structureFiles) {
    const run = rel.split("/")[1];
    const first = initialFrame(run);
    it(`${rel} parses with the species and atom count of its run`, () => {
      const { frame } = readReal(rel);
      expect(frame.natoms).toBe(frame.symbols.length);
      expect(frame.positions.length).toBe(3 * frame.natoms);
      expect(frame.pbc).toEqual([true, true, true]);
      if (first) {
        expect(hillFormula(frame.symbols)).toBe(first.formula);
        expect(frame.symbols[0]).toBe(first.first_atom.symbol);
      }
    });
  }

  // The first ionic step of a run is computed at the POSCAR geometry (OUTCAR prints 5 decimals).
  for (const run of runs.filter((r) => initialFrame(r) && existsSync(realPath(`vasp/${r}/POSCAR`)))) {
    it(`vasp/${run}/POSCAR equals the first step ASE read from the run`, () => {
      const f = initialFrame(run) as AseFrameRef;
      const { frame } = readReal(`vasp/${run}/POSCAR`);
      expectClose(frame.cell, f.cell.flat(), 1e-5);
      expectClose(frame.positions.subarray(0, 3), f.first_atom.position, 1e-5);
      expectClose(frame.positions.subarray(3 * frame.natoms - 3), f.last_atom.position, 1e-5);
      expect(frame.symbols[frame.natoms - 1]).toBe(f.last_atom.symbol);
    });
  }

  it("the CONTCAR of a static run is the POSCAR geometry", () => {
    const poscar = readReal("vasp/custodian_lobster_NaCl_static/POSCAR").frame;
    const contcar = readReal("vasp/custodian_lobster_NaCl_static/CONTCAR").frame;
    expectClose(contcar.positions, poscar.positions, 1e-12);
    expectClose(contcar.cell, poscar.cell, 1e-12);
  });

  it("reads a CONTCAR (velocities after the positions ignored) by hand-computed numbers", () => {
    // Direct 0.1000000000000014 0 -0 with a1 = (2.3683772079224257, 2.3683772079224257, -0).
    const p = readReal("vasp/aiidavasp_Si_relax_isif3_spin_v620/CONTCAR");
    expect(p.coordinates).toBe("direct");
    expect(p.frame.symbols).toEqual(["Si"]);
    expectClose(p.frame.positions, [0.1000000000000014 * 2.3683772079224257, 0.1000000000000014 * 2.3683772079224257, 0], 1e-15);
    expect(p.frame.cell[5]).toBe(2.368377207922427);
  });

  it("keeps selective dynamics flags (FeS: 24 atoms F F F, 24 atoms T T T, labels after the flags ignored)", () => {
    const p = readReal("vasp/custodian_potim_FeS_relax_killed/POSCAR");
    expect(p.selectiveDynamics).toBe(true);
    const flags = p.frame.arrays.get(SELECTIVE_DYNAMICS_KEY);
    expect(flags?.dtype).toBe("L");
    expect(flags?.ncols).toBe(3);
    const data = flags?.data as Uint8Array;
    let fixed = 0;
    let free = 0;
    for (let a = 0; a < p.frame.natoms; a++) {
      const row = [data[3 * a], data[3 * a + 1], data[3 * a + 2]].join("");
      if (row === "000") fixed++;
      if (row === "111") free++;
    }
    expect([fixed, free]).toEqual([24, 24]);
    // First atom line: "0.000000 0.500000 0.208333 T T T Fe4+".
    expect([data[0], data[1], data[2]]).toEqual([1, 1, 1]);
  });

  it("reads per-atom trailing labels and lower-case 'direct' (large cell POSCAR)", () => {
    const p = readReal("vasp/custodian_large_cell_crashed_at_start/POSCAR");
    expect(hillFormula(p.frame.symbols)).toBe("Al28Ca24O66");
    // First atom: direct 0.846420 0.279546 0.177843 in a 12.0788 x 12.0788 x 11.970182 box.
    expectClose(p.frame.positions.subarray(0, 3), [0.84642 * 12.0788, 0.279546 * 12.0788, 0.177843 * 11.970182], 1e-12);
  });
});

describe("POSCAR: write -> read round trip", () => {
  for (const rel of structureFiles) {
    for (const coordinates of ["cartesian", "direct"] as const) {
      it(`${rel} (${coordinates})`, () => {
        const original = readReal(rel);
        const text = writePoscar(original.frame, { comment: original.comment, coordinates });
        const back = parsePoscar(text, { file: "written" });
        expect(back.comment).toBe(original.comment);
        expect(back.coordinates).toBe(coordinates);
        expect(back.frame.symbols).toEqual(original.frame.symbols);
        expectClose(back.frame.cell, original.frame.cell, 1e-15);
        expectClose(back.frame.positions, original.frame.positions, 1e-12);
        expect(back.selectiveDynamics).toBe(original.selectiveDynamics);
        expect(back.frame.arrays.get(SELECTIVE_DYNAMICS_KEY)).toEqual(original.frame.arrays.get(SELECTIVE_DYNAMICS_KEY));
        // Cartesian numbers survive the trip exactly, so writing again gives the same bytes.
        if (coordinates === "cartesian") expect(writePoscar(back.frame, { comment: back.comment, coordinates })).toBe(text);
      });
    }
  }

  it("writes the VASP 5 layout with fixed-width numbers", () => {
    const frame: Frame = {
      natoms: 3,
      symbols: ["Ti", "O", "Ti"],
      positions: new Float64Array([0, 0, 0, 1, 1.5, -2, 0.25, 0.5, 0.75]),
      cell: new Float64Array([4, 0, 0, 0, 5, 0, 0, 0, -12.5]),
      pbc: [true, true, true],
      info: new Map(),
      arrays: new Map([["move_mask", { dtype: "L" as const, ncols: 1, data: new Uint8Array([1, 0, 1]) }]]),
    };
    expect(writePoscar(frame)).toBe(
      [
        "OTi2",
        "   1.00000000000000",
        "     4.0000000000000000    0.0000000000000000    0.0000000000000000",
        "     0.0000000000000000    5.0000000000000000    0.0000000000000000",
        "     0.0000000000000000    0.0000000000000000  -12.5000000000000000",
        "   Ti    O   Ti",
        "     1     1     1",
        "Selective dynamics",
        "Cartesian",
        "  0.0000000000000000  0.0000000000000000  0.0000000000000000   T   T   T",
        "  1.0000000000000000  1.5000000000000000 -2.0000000000000000   F   F   F",
        "  0.2500000000000000  0.5000000000000000  0.7500000000000000   T   T   T",
        "",
      ].join("\n"),
    );
    const direct = writePoscar(frame, { coordinates: "direct", comment: "two\nlines" });
    expect(direct.split("\n")[0]).toBe("two lines");
    // 1.5 / 5 = 0.3, -2 / -12.5 = 0.16 (hand-computed fractional coordinates of atom 2).
    expect(direct.split("\n")[10]).toBe("  0.2500000000000000  0.3000000000000000  0.1600000000000000   F   F   F");
  });

  it("refuses to write a frame without a cell", () => {
    const frame = readReal("vasp/custodian_lobster_NaCl_static/POSCAR").frame;
    expect(() => writePoscar({ ...frame, cell: new Float64Array(9) }, { source: "in.xyz frame 3" })).toThrow(
      "in.xyz frame 3: cannot write a POSCAR: the frame has no (or a singular) cell",
    );
  });
});

describe("inVacuumBox", () => {
  const molecule: Frame = {
    natoms: 3, symbols: ["O", "H", "H"], positions: Float64Array.of(-1, 0.5, 2, 0, 0.5, 2.3, -1.4, 1.3, 2), cell: new Float64Array(9),
    pbc: [false, false, false], info: new Map(), arrays: new Map(),
  };

  it("puts a structure without a cell in a cubic box: largest extent plus the vacuum, rounded up to 0.01 A, positions unchanged", () => {
    const { frame, boxed } = inVacuumBox(molecule, 10);
    expect(boxed).toBe(true);
    // Extents 1.4, 0.8 and 0.3 A: the edge is 11.4 A.
    expect(Array.from(frame.cell)).toEqual([11.4, 0, 0, 0, 11.4, 0, 0, 0, 11.4]);
    expect(frame.pbc).toEqual([true, true, true]);
    expect(frame.positions).toBe(molecule.positions);
    expect(inVacuumBox({ ...molecule, natoms: 1, symbols: ["O"], positions: Float64Array.of(1, 2, 3) }, 12.345).frame.cell[0]).toBe(12.35);
    expect(writePoscar(frame)).toContain("11.4000000000000004");
  });

  it("leaves a frame with a cell as it is, whatever its pbc", () => {
    const slab = { ...molecule, cell: Float64Array.of(5, 0, 0, 0, 5, 0, 0, 0, 20), pbc: [true, true, false] as [boolean, boolean, boolean] };
    expect(inVacuumBox(slab, 10)).toEqual({ frame: slab, boxed: false });
  });
});

describe("POSCAR: VASP 4 files, scale factors", () => {
  const vasp4 = ["Si bulk", "1.0", "0 2.7 2.7", "2.7 0 2.7", "2.7 2.7 0", "1 1", "Direct", "0 0 0", "0.25 0.25 0.25", ""].join("\n");

  it("takes species from speciesHint, per type or per atom", () => {
    expect(parsePoscar(vasp4, { file: "POSCAR", speciesHint: ["Ga", "As"] }).frame.symbols).toEqual(["Ga", "As"]);
    expect(parsePoscar(vasp4, { file: "POSCAR", speciesHint: ["GA", "As_d"] }).speciesSource).toBe("hint");
    expect(parsePoscar(vasp4.replace("1 1", "2"), { file: "POSCAR", speciesHint: ["Si", "Si"] }).frame.symbols).toEqual(["Si", "Si"]);
  });

  it("takes species from a formula-like comment line that matches the counts", () => {
    const p = parsePoscar(vasp4.replace("Si bulk", "Ga1 As1"), { file: "POSCAR" });
    expect(p.frame.symbols).toEqual(["Ga", "As"]);
    expect(p.speciesSource).toBe("comment");
    expect(() => parsePoscar(vasp4.replace("Si bulk", "Ga2 As1"), { file: "POSCAR" })).toThrow(InputError);
  });

  it("fails without species", () => {
    expect(() => parsePoscar(vasp4, { file: "POSCAR" })).toThrow(
      "POSCAR:6: VASP 4 POSCAR (no species line before the counts): add the species line above the counts, or write the elements as the comment line, one per type in the order of the counts",
    );
    expect(() => parsePoscar(vasp4, { file: "POSCAR", speciesHint: ["Ga", "As", "P"] })).toThrow(
      "POSCAR:6: speciesHint has 3 entries, expected 2 (one per type) or 2 (one per atom)",
    );
    expect(() => parsePoscar(vasp4, { file: "POSCAR", speciesHint: ["Ga", "Zz"] })).toThrow('POSCAR:6: speciesHint: "Zz" is not a chemical element');
  });

  it("ignores the hint when the file has a species line", () => {
    const text = readFileSync(realPath("vasp/custodian_lobster_NaCl_static/POSCAR"), "latin1");
    expect(parsePoscar(text, { file: "POSCAR", speciesHint: ["K", "Br"] }).frame.symbols[0]).toBe("Na");
  });

  it("applies a negative scale as the cell volume, to the cell and Cartesian positions", () => {
    const text = ["cube", "-8", "1 0 0", "0 1 0", "0 0 1", "H", "2", "Cartesian", "0 0 0", "0.5 0.5 0.5", ""].join("\n");
    const { frame } = parsePoscar(text, { file: "POSCAR" });
    expect([...frame.cell]).toEqual([2, 0, 0, 0, 2, 0, 0, 0, 2]);
    expect([...frame.positions]).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it("applies a positive scale and three per-axis scales", () => {
    const base = ["box", "SCALE", "1 0 0", "0 2 0", "0 0 4", "H", "1", "Cartesian", "1 1 1", ""];
    const one = parsePoscar(base.join("\n").replace("SCALE", "1.5"), { file: "POSCAR" }).frame;
    expect([...one.cell]).toEqual([1.5, 0, 0, 0, 3, 0, 0, 0, 6]);
    expect([...one.positions]).toEqual([1.5, 1.5, 1.5]);
    const three = parsePoscar(base.join("\n").replace("SCALE", "1 2 3"), { file: "POSCAR" }).frame;
    expect([...three.cell]).toEqual([1, 0, 0, 0, 4, 0, 0, 0, 12]);
    expect([...three.positions]).toEqual([1, 2, 3]);
    const direct = parsePoscar(base.join("\n").replace("SCALE", "2").replace("Cartesian", "Direct").replace("1 1 1", "0.5 0.5 0.5"), { file: "POSCAR" }).frame;
    expect([...direct.positions]).toEqual([1, 2, 4]);
  });
});

describe("POSCAR: bad input", () => {
  const good = ["GaAs", "1.0", "0 2.7 2.7", "2.7 0 2.7", "2.7 2.7 0", "Ga As", "1 1", "Selective dynamics", "Direct", "0 0 0 T T F", "0.25 0.25 0.25 F F F", ""];
  const withLine = (index: number, value: string | null) => {
    const lines = [...good];
    if (value === null) lines.splice(index, 1);
    else lines[index] = value;
    return lines.join("\n");
  };
  const cases: [string, string, string][] = [
    ["empty file", "", "POSCAR: empty file, expected a POSCAR/CONTCAR (comment, scale, 3 lattice vectors, species, counts, positions)"],
    ["bad scale", withLine(1, "one"), 'POSCAR:2: expected the scaling factor (one number, or three positive numbers), found "one"'],
    ["zero scale", withLine(1, "0.0"), "POSCAR:2: scaling factor is 0"],
    ["negative per-axis scales", withLine(1, "1 -1 1"), 'POSCAR:2: three scaling factors must all be positive, found "1 -1 1"'],
    ["short lattice vector", withLine(3, "2.7 0"), 'POSCAR:4: expected lattice vector a2 (3 numbers), found "2.7 0"'],
    ["flat cell", withLine(4, "2.7 2.7 5.4"), "POSCAR:3: lattice vectors are linearly dependent (cell volume 0)"],
    ["unknown species", withLine(5, "Ga Xx"), 'POSCAR:6: species line: "Xx" is not a chemical element'],
    ["counts do not match species", withLine(6, "1"), 'POSCAR:7: expected 2 atom counts (positive integers), one per species on line 6, found "1"'],
    ["zero count", withLine(6, "1 0"), 'POSCAR:7: expected 2 atom counts (positive integers), one per species on line 6, found "1 0"'],
    ["missing coordinate mode", withLine(8, null), 'POSCAR:9: expected "Direct" or "Cartesian", found "0 0 0 T T F"'],
    ["bad flags", withLine(9, "0 0 0 T T X"), 'POSCAR:10: expected atom 0 (0-based) of 2: 3 coordinates and 3 T/F flags (Selective dynamics), found "0 0 0 T T X"'],
    ["short coordinates", withLine(10, "0.25 0.25"), 'POSCAR:11: expected atom 1 (0-based) of 2: 3 coordinates and 3 T/F flags, found "0.25 0.25"'],
    ["a coordinate that is nan", withLine(10, "0.25 nan 0.25 T T T"), "POSCAR:11: atom 1 (0-based): position y is nan; expected a finite number"],
    ["a coordinate that is infinite", withLine(9, "-Inf 0 0 T T F"), "POSCAR:10: atom 0 (0-based): position x is -Inf; expected a finite number"],
    ["missing atom line", withLine(10, null), "POSCAR:11: file ends after 1 of 2 atom positions"],
    ["an OUTCAR", readFileSync(realPath("vasp/dpdata_h2o_static_hard_pp/OUTCAR"), "latin1"), "POSCAR:2: expected the scaling factor"],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => {
      expect(() => parsePoscar(text, { file: "POSCAR" })).toThrow(InputError);
      expect(() => parsePoscar(text, { file: "POSCAR" })).toThrow(message);
    });
  }

  it("the good text of these cases parses", () => {
    const p = parsePoscar(good.join("\n"), { file: "POSCAR" });
    expect(p.frame.symbols).toEqual(["Ga", "As"]);
    expect([...(p.frame.arrays.get(SELECTIVE_DYNAMICS_KEY)?.data ?? [])]).toEqual([1, 1, 0, 0, 0, 0]);
  });
});

describe("elementSymbol", () => {
  it("normalises VASP species tokens", () => {
    expect(["Fe", "FE", "fe", "Fe_pv", "H.75", "Si/7a1c2b", "Ca_sv_GW"].map(elementSymbol)).toEqual(["Fe", "Fe", "Fe", "Fe", "H", "Si", "Ca"]);
    expect(["Xx", "Direct", "", "1"].map(elementSymbol)).toEqual([null, null, null, null]);
  });
});
