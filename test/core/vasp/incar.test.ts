import { describe, expect, it } from "vitest";
import { normaliseSettings } from "../../../src/core/dataset/settings.js";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { checkIncarTemplate, ichargFromHead, incarForPick, initialMomentsInOrder, parseIncar, parseLdauSpec, parseMagmomSpec, type SpeciesIncarValues } from "../../../src/core/vasp/incar.js";

describe("parseIncar", () => {
  it("reads tags, comments, ; separators, repeats, booleans and strings", () => {
    const incar = parseIncar(
      [
        "SYSTEM = Fe oxide  ! a comment",
        "encut = 520 ; ISPIN = 2",
        "# ENCUT = 999 commented out",
        "LASPH = .TRUE.",
        "LDAU = T",
        "LDAUL = 2 -1",
        "LDAUU = 2*4.0 0",
        "PREC = Accurate",
        "not a statement",
        "GGA = PE",
      ].join("\n"),
    );
    expect(incar).toEqual({
      SYSTEM: "Fe",
      ENCUT: 520,
      ISPIN: 2,
      LASPH: true,
      LDAU: true,
      LDAUL: [2, -1],
      LDAUU: [4, 4, 0],
      PREC: "Accurate",
      GGA: "PE",
    });
  });
});

const names = { magmom: "--magmom", ldau: "--ldau" };
const feS = { species: ["Fe", "S"], counts: [16, 32], name: "rank 2 (Fe16S32)" };
const values = (v: Omit<SpeciesIncarValues, "names">): SpeciesIncarValues => ({ ...v, names });

describe("incarForPick", () => {
  it("appends MAGMOM and DFT+U in the order of the pick's species line, with ISPIN, LDAU and LMAXMIX when missing", () => {
    const template = "ENCUT = 520\nISMEAR = 0";
    const incar = incarForPick(template, "INCAR", feS, values({ magmom: new Map([["Fe", 5]]), ldau: new Map([["Fe", { l: 2, u: 5.3, j: 0 }]]) }));
    expect(incar).toBe(
      [
        "ENCUT = 520",
        "ISMEAR = 0",
        "# Per-element values for this POSCAR's species line (Fe S), written by relabel-loop",
        "ISPIN = 2",
        "MAGMOM = 16*5 32*1",
        "LDAU = .TRUE.",
        "LDAUL = 2 -1",
        "LDAUU = 5.3 0",
        "LDAUJ = 0 0",
        "LMAXMIX = 4",
        "",
      ].join("\n"),
    );
    // What the results side reads back from a run of this INCAR: a moment per atom, and U on Fe alone.
    const parsed = parseIncar(incar);
    expect(parsed.MAGMOM).toEqual([...Array(16).fill(5), ...Array(32).fill(1)]);
    const symbols = [...Array(16).fill("Fe"), ...Array(32).fill("S")];
    expect(normaliseSettings({}, parsed, symbols).settings).toMatchObject({ ISPIN: "2", "LDAU[Fe]": "L=2 U=5.3 J=0", "LDAU[S]": "none" });
  });

  it("follows the species line given (S before Fe), takes * for unnamed elements and keeps the template's own ISPIN, LDAU and LMAXMIX", () => {
    const template = "ISPIN = 2\nLDAU = .TRUE.\nLDAUTYPE = 2\nLMAXMIX = 6\n";
    const pick = { species: ["S", "Fe", "Ce"], counts: [2, 1, 3], name: "rank 1" };
    const incar = incarForPick(template, "INCAR", pick, values({ magmom: new Map([["Fe", -4.5], ["*", 0.6]]), ldau: new Map([["Ce", { l: 3, u: 5, j: 0.5 }]]) }));
    expect(incar.slice(template.length).split("\n")).toEqual([
      "# Per-element values for this POSCAR's species line (S Fe Ce), written by relabel-loop",
      "MAGMOM = 2*0.6 -4.5 3*0.6",
      "LDAUL = -1 -1 3",
      "LDAUU = 0 0 5",
      "LDAUJ = 0 0 0.5",
      "",
    ]);
    // A CRLF template gets CRLF lines.
    expect(incarForPick("ENCUT = 520\r\n", "INCAR", pick, values({ magmom: new Map([["Fe", 5]]) }))).toBe(
      "ENCUT = 520\r\n# Per-element values for this POSCAR's species line (S Fe Ce), written by relabel-loop\r\nISPIN = 2\r\nMAGMOM = 2*1 5 3*1\r\n",
    );
    // f electrons ask for LMAXMIX 6 when the template leaves it out.
    expect(incarForPick("", "INCAR", pick, values({ ldau: new Map([["Ce", { l: 3, u: 5, j: 0 }]]) }))).toContain("LMAXMIX = 6\n");
  });

  it("refuses a template that sets what the per-element values write, naming its line", () => {
    const magmom = values({ magmom: new Map([["Fe", 5]]) });
    const ldau = values({ ldau: new Map([["Fe", { l: 2, u: 4, j: 0 }]]) });
    expect(() => checkIncarTemplate("ENCUT = 520\nmagmom = 48*1", "in/INCAR", magmom)).toThrow("in/INCAR:2: sets MAGMOM, which --magmom writes for each pick; leave it out here");
    expect(() => checkIncarTemplate("PREC = Accurate ; ISPIN = 1", "in/INCAR", magmom)).toThrow("in/INCAR:1: sets ISPIN = 1, so VASP would ignore the MAGMOM from --magmom");
    expect(() => checkIncarTemplate("LSORBIT = .TRUE.", "in/INCAR", magmom)).toThrow("in/INCAR:1: sets LSORBIT, which takes three moments per atom");
    expect(() => checkIncarTemplate("\n\nLDAUU = 4 0", "in/INCAR", ldau)).toThrow("in/INCAR:3: sets LDAUU, which --ldau writes for each pick");
    expect(() => checkIncarTemplate("LDAU = F", "in/INCAR", ldau)).toThrow("in/INCAR:1: sets LDAU = .FALSE. while --ldau asks for DFT+U");
    // A commented-out tag is no conflict, and neither are tags of the other option.
    expect(() => checkIncarTemplate("# MAGMOM = 48*1\nLDAUU = 4 0\nISPIN = 2", "in/INCAR", magmom)).not.toThrow();
    expect(() => checkIncarTemplate("MAGMOM = 48*1", "in/INCAR", ldau)).not.toThrow();
  });

  it("copies a template without per-element values as it is, but refuses MAGMOM or LDAU lists that do not fit the pick", () => {
    const template = "ISPIN = 2\r\nMAGMOM = 16*5 32*0.6\r\nLDAUL = 2 -1\r\nLDAU = .TRUE.\r\n";
    const none = values({});
    expect(incarForPick(template, "INCAR", feS, none)).toBe(template);
    const feO = { species: ["Fe", "O"], counts: [4, 4], name: "rank 3 (Fe4O4)" };
    expect(() => incarForPick(template, "in/INCAR", feO, none)).toThrow(
      "in/INCAR:2: MAGMOM has 48 values, but rank 3 (Fe4O4) has 8 atoms: give the moments per element with --magmom and leave MAGMOM out",
    );
    const tiO = { species: ["Ti", "O", "Fe"], counts: [16, 16, 16], name: "rank 1 (Fe16O16Ti16)" };
    expect(() => incarForPick(template, "in/INCAR", tiO, none)).toThrow("in/INCAR:3: LDAUL has 2 values, but rank 1 (Fe16O16Ti16) has 3 species (Ti O Fe): give DFT+U per element with --ldau");
    // VASP ignores them without spin polarisation or LDAU, and so does the check.
    expect(incarForPick("MAGMOM = 16*5 32*0.6\nLDAUL = 2 -1\n", "INCAR", tiO, none)).toBe("MAGMOM = 16*5 32*0.6\nLDAUL = 2 -1\n");
    // Non-collinear moments come three per atom.
    expect(incarForPick("LNONCOLLINEAR = .TRUE.\nMAGMOM = 24*0", "INCAR", feO, none)).toBe("LNONCOLLINEAR = .TRUE.\nMAGMOM = 24*0");
    expect(() => incarForPick("LNONCOLLINEAR = .TRUE.\nMAGMOM = 8*0", "INCAR", feO, none)).toThrow("has 8 atoms (3 values each)");
  });
});

describe("a pick's own initial moments", () => {
  it("are taken in POSCAR order before the per-element values, runs of one value written as count*value", () => {
    // FeO with alternating species and antiferromagnetic Fe, as ASE writes initial_magmoms.
    const frame = parseExtxyz(
      '4\nLattice="4.3 0 0 0 4.3 0 0 0 4.3" Properties=species:S:1:pos:R:3:initial_magmoms:R:1 pbc="T T T"\n' +
        "Fe 0 0 0 4\nO 2.15 0 0 0\nFe 0 2.15 2.15 -4\nO 2.15 2.15 2.15 0\n",
    )[0].frame;
    const moments = initialMomentsInOrder(frame, ["O", "Fe"], "sel.extxyz", "frame 0");
    expect(moments).toEqual([0, 0, 4, -4]);
    const pick = { species: ["O", "Fe"], counts: [2, 2], name: "rank 1 (Fe2O2)", moments };
    const incar = incarForPick("ISPIN = 2\n", "INCAR", pick, values({ magmom: new Map([["Fe", 5]]) }));
    expect(incar).toBe("ISPIN = 2\n# Per-element values for this POSCAR's species line (O Fe), written by relabel-loop; MAGMOM from the structure's initial_magmoms\nMAGMOM = 2*0 4 -4\n");
    // Without them, the per-element values.
    expect(incarForPick("ISPIN = 2\n", "INCAR", { ...pick, moments: undefined }, values({ magmom: new Map([["Fe", 5]]) }))).toContain("MAGMOM = 2*1 2*5\n");
    const noncollinear = { ...frame, arrays: new Map([["initial_magmoms", { dtype: "R" as const, ncols: 3, data: new Float64Array(12) }]]) };
    expect(() => initialMomentsInOrder(noncollinear, ["O", "Fe"], "sel.extxyz", "frame 3")).toThrow("sel.extxyz: frame 3: initial_magmoms has 3 values per atom, expected one: MAGMOM is written collinear");
    expect(initialMomentsInOrder({ ...frame, arrays: new Map() }, ["O", "Fe"], "sel.extxyz", "frame 0")).toBeUndefined();
  });
});

describe("parseMagmomSpec and parseLdauSpec", () => {
  it("read element lists and name what is wrong", () => {
    expect(parseMagmomSpec("Fe=5, O=0.6,*=-0.5")).toEqual(new Map([["Fe", 5], ["O", 0.6], ["*", -0.5]]));
    expect(parseMagmomSpec("pool")).toEqual(new Map());
    expect(parseMagmomSpec("pool,Fe=5")).toEqual(new Map([["Fe", 5]]));
    expect(parseMagmomSpec("Fe:5")).toBe('expected ELEMENT=MOMENT pairs such as Fe=5,O=0.6, or pool (got "Fe:5")');
    expect(parseMagmomSpec("Xx=1")).toBe('"Xx" is not an element symbol (or * for every other element)');
    expect(parseMagmomSpec("Fe=1,Fe=2")).toBe("Fe is given twice");
    expect(parseLdauSpec("Fe=2:5.3,Ce=3:6:0.5")).toEqual(new Map([["Fe", { l: 2, u: 5.3, j: 0 }], ["Ce", { l: 3, u: 6, j: 0.5 }]]));
    expect(parseLdauSpec("Fe=5.3")).toBe('expected ELEMENT=L:U or ELEMENT=L:U:J such as Fe=2:5.3 (got "Fe=5.3")');
    expect(parseLdauSpec("Fe=4:5")).toBe("Fe: L must be -1 (none), 0, 1, 2 (d) or 3 (f), got 4");
    expect(parseLdauSpec("*=2:1")).toBe('expected ELEMENT=L:U or ELEMENT=L:U:J such as Fe=2:5.3 (got "*=2:1")');
  });
});

describe("ichargFromHead", () => {
  it("reads ICHARG from vasprun.xml's parameters and from OUTCAR's parameter echo", () => {
    expect(ichargFromHead('<parameters>\n  <i type="int" name="ICHARG">     11</i>\n')).toBe(11);
    expect(ichargFromHead("   ICHARG =      2    charge: 1-file 2-atom 10-const\n")).toBe(2);
    expect(ichargFromHead("   ISTART =      0\n")).toBeNull();
  });
});
