import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { hillFormula } from "../../../src/core/structure.js";
import type { VaspStep } from "../../../src/core/vasp/types.js";
import { parseVasprun, scanNumbers, VasprunReader } from "../../../src/core/vasp/vasprun.js";
import { aseReference, realPath, type AseFileRef } from "../../helpers/real-data.js";
import { inputErrorOf } from "../../helpers/input-error.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../fixtures/vasprun");
const TOL = 1e-6;

interface RawEnergyBlocks {
  n_complete_calculation_blocks: number;
  xml_well_formed: boolean;
  final_energy_blocks: { e_fr_energy: number }[];
  xml_parse_error?: string;
}

const reference = aseReference();
const vasprunFiles = Object.keys(reference).filter((k) => k.endsWith("vasprun.xml")).sort();

function raw(ref: AseFileRef): RawEnergyBlocks {
  return ref.raw_vasprun_energy_blocks as unknown as RawEnergyBlocks;
}

function read(rel: string): Buffer {
  return readFileSync(realPath(rel));
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs(actual[i] - expected[i]), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(TOL);
  }
}

function atom(values: Float64Array, i: number): number[] {
  return Array.from(values.subarray(3 * i, 3 * i + 3));
}

function maxForceNorm(step: VaspStep): number {
  let max = 0;
  for (let a = 0; a < step.symbols.length; a++) max = Math.max(max, Math.hypot(...atom(step.forces, a)));
  return max;
}

function parseInChunks(data: Buffer, size: number, file = "x"): { steps: VaspStep[]; summary: ReturnType<VasprunReader["end"]> } {
  const reader = new VasprunReader(file);
  const steps: VaspStep[] = [];
  for (let i = 0; i < data.length; i += size) steps.push(...reader.push(data.subarray(i, i + size)));
  return { steps, summary: reader.end() };
}

/** 1-based line of a character offset, counted by hand. */
function lineOfOffset(text: string, offset: number): number {
  return text.slice(0, offset).split("\n").length;
}


describe("vasprun.xml against ASE 3.22.1 (reference/ASE_READ.json)", () => {
  it("covers every vasprun.xml of the reference", () => {
    expect(vasprunFiles.length).toBe(14);
  });

  describe.each(vasprunFiles)("%s", (rel) => {
    const ref = reference[rel];
    const blocks = raw(ref);
    const { steps, summary } = parseVasprun(read(rel), rel);
    // ASE returns a bare initial structure (no energy) when no calculation finished; those are not labels.
    const labelled = (ref.frames ?? []).filter((f) => f.energy !== null);

    it("returns one step per complete <calculation> block", () => {
      expect(steps.length).toBe(blocks.n_complete_calculation_blocks);
      expect(summary.stepsRead).toBe(steps.length);
      expect(steps.map((s) => s.index)).toEqual(steps.map((_, i) => i));
    });

    it("matches ASE frame by frame: atoms, cell, positions, energies, forces, stress", () => {
      expect(steps.length).toBe(labelled.length);
      steps.forEach((step, i) => {
        const f = labelled[i];
        const where = `${rel} frame ${i}`;
        expect(step.symbols.length, where).toBe(f.n_atoms);
        expect(hillFormula(step.symbols), where).toBe(f.formula);
        // VaspStep carries no pbc: a vasprun.xml structure is always periodic, as ASE reports.
        expect(f.pbc).toEqual([true, true, true]);
        expectClose(step.cell, f.cell.flat(), `${where} cell`);
        expect(step.symbols[0]).toBe(f.first_atom.symbol);
        expect(step.symbols[f.n_atoms - 1]).toBe(f.last_atom.symbol);
        expectClose(atom(step.positions, 0), f.first_atom.position, `${where} first position`);
        expectClose(atom(step.positions, f.n_atoms - 1), f.last_atom.position, `${where} last position`);
        expectClose([step.energySigma0], [f.energy!], `${where} energy`);
        expectClose([step.freeEnergy], [f.free_energy!], `${where} free_energy`);
        expectClose(atom(step.forces, 0), f.force_first_atom!, `${where} first force`);
        expectClose(atom(step.forces, f.n_atoms - 1), f.force_last_atom!, `${where} last force`);
        expectClose([maxForceNorm(step)], [f.max_force_norm!], `${where} max force`);
        if (f.stress_voigt_eV_per_A3 === null) expect(step.stress, where).toBeNull();
        else expectClose(step.stress!, f.stress_voigt_eV_per_A3, `${where} stress`);
      });
    });

    it("takes the free energy from each calculation's own <energy> block", () => {
      expectClose(
        steps.map((s) => s.freeEnergy),
        blocks.final_energy_blocks.map((b) => b.e_fr_energy),
        `${rel} e_fr_energy`,
      );
    });

    it("reports truncation exactly when the XML is not well-formed, at the line where the parser ran out", () => {
      if (blocks.xml_well_formed) {
        expect(summary.truncated).toBeNull();
      } else {
        const line = /line (\d+)/.exec(blocks.xml_parse_error!)![1];
        expect(summary.truncated).toMatch(new RegExp(`^line ${line}, `));
      }
    });

    it("parses identically when fed 7 bytes at a time", () => {
      const chunked = parseInChunks(read(rel), 7, rel);
      expect(chunked.steps).toEqual(steps);
      expect(chunked.summary).toEqual(summary);
    });
  });
});

describe("vasprun.xml files ASE misreads or rejects", () => {
  it("static run cut inside its first SCF loop: no step (ASE returns the bare initial structure as a frame)", () => {
    const rel = "vasp/aiidavasp_Si_static_unfinished/vasprun.xml";
    expect(reference[rel].frames![0].energy).toBeNull();
    const { steps, summary } = parseVasprun(read(rel), rel);
    expect(steps).toEqual([]);
    expect(summary.truncated).toBe("line 680, inside <calculation> 1, in <scstep>");
    expect(summary.symbols).toEqual(["Si", "Si"]);
  });

  it("run that crashed after </parameters>: zero steps and a truncation report, where ASE raises", () => {
    const rel = "vasp/custodian_large_cell_crashed_at_start/vasprun.xml";
    expect(reference[rel].ase_ok).toBe(false);
    const { steps, summary } = parseVasprun(read(rel), rel);
    expect(steps).toEqual([]);
    expect(summary.truncated).toBe("line 442, after </parameters>, before any <calculation>");
    expect(summary.symbols).toEqual([]);
    expect(summary.vaspVersion).toBe("5.3.5");
  });

  it("run killed after its 2nd ionic step keeps both steps", () => {
    const rel = "vasp/aiidavasp_Si_relax_killed_sigterm/vasprun.xml";
    const { steps, summary } = parseVasprun(read(rel), rel);
    expect(steps.length).toBe(2);
    expect(summary.truncated).toBe("line 4817, after <calculation> 2 (no </modeling>)");
  });
});

describe("vasprun.xml semantics", () => {
  it("corrects the VASP 5 e_0_energy bug: sigma->0 energy is not the ~0 eV of the final block", () => {
    const rel = "vasp/custodian_lobster_NaCl_static/vasprun.xml";
    const finalBlock = (reference[rel].raw_vasprun_energy_blocks as { final_energy_blocks: { e_0_energy: number }[] }).final_energy_blocks[0];
    expect(finalBlock.e_0_energy).toBe(0);
    const [step] = parseVasprun(read(rel), rel).steps;
    expect(step.energySigma0).toBeCloseTo(-27.11090125, 8);
  });

  it("gives species per atom across repeated type blocks (Ti, O, Ti)", () => {
    const rel = "vasp/dpdata_Ti-O-Ti_static_v630/vasprun.xml";
    const { steps, summary } = parseVasprun(read(rel), rel);
    // PROVENANCE.md: 'ions per type = 3 2 3' with types Ti, O, Ti.
    const expected = ["Ti", "Ti", "Ti", "O", "O", "Ti", "Ti", "Ti"];
    expect(summary.symbols).toEqual(expected);
    expect(steps[0].symbols).toEqual(expected);
    expect(summary.potentials).toEqual(["PAW_PBE Ti 08Apr2002", "PAW_PBE O 08Apr2002", "PAW_PBE Ti 08Apr2002"]);
  });

  it("case-normalises element names and restores names VASP cut short from the pseudopotential title", () => {
    const row = (el: string, type: number) => `<rc><c>${el}</c><c>   ${type}</c></rc>`;
    const potcar = (el: string, title: string) => `<rc><c>   1</c><c>${el}</c><c>1.0</c><c>1.0</c><c>  ${title}  </c></rc>`;
    const doc = `<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
 <atominfo>
  <atoms>       3 </atoms>
  <array name="atoms" ><set>${row("X ", 1)}${row("r ", 2)}${row("MG", 3)}</set></array>
  <array name="atomtypes" ><set>${potcar("X ", "PAW_PBE Xe 07Sep2000")}${potcar("r ", "PAW_PBE Zr_sv 04Jan2005")}${potcar("MG", "PAW_PBE Mg 13Apr2007")}</set></array>
 </atominfo>
</modeling>
`;
    expect(parseVasprun(doc, "names.xml").summary.symbols).toEqual(["Xe", "Zr", "Mg"]);
  });

  it("does not take the top-level primitive_cell structure for a step's structure", () => {
    const rel = "vasp/aiidavasp_Si_relax_ionic_unconverged/vasprun.xml";
    const text = read(rel).toString("latin1");
    expect(text.indexOf('<structure name="primitive_cell"')).toBeLessThan(text.indexOf("<calculation>"));
    const [first] = parseVasprun(read(rel), rel).steps;
    // Fractional (0.78, 0.77, 0.73) of initialpos and the first step, not primitive_cell's (-0.22, -0.23, -0.27).
    const a = 2.734364;
    expectClose(atom(first.positions, 0), [0.77 * a + 0.73 * a, 0.78 * a + 0.73 * a, 0.78 * a + 0.77 * a], "position");
  });

  it("flags SCF loops that hit NELM (200 scsteps at NELM = 200)", () => {
    const rel = "vasp/custodian_Y2O3_static_v641/vasprun.xml";
    const text = read(rel).toString("latin1");
    const { steps, summary } = parseVasprun(read(rel), rel);
    expect(summary.nelm).toBe(200);
    expect(steps[0].scfSteps).toBe(text.split("<scstep>").length - 1);
    expect(steps[0].scfSteps).toBe(200);
    expect(steps[0].scfConverged).toBe(false);
  });

  it("counts scsteps per calculation and reads NELM from <parameters>, not the response-function echo", () => {
    const rel = "vasp/aiidavasp_Si_static_v621/vasprun.xml";
    const text = read(rel).toString("latin1");
    // This file lists NELM twice in <parameters>: 60 (electronic convergence) and 1 (response functions).
    expect([...text.matchAll(/name="NELM">\s*(\d+)/g)].map((m) => m[1])).toEqual(["60", "1"]);
    const { steps, summary } = parseVasprun(read(rel), rel);
    expect(summary.nelm).toBe(60);
    expect(steps[0].scfSteps).toBe(text.split("<scstep>").length - 1);
    expect(steps[0].scfConverged).toBe(true);
  });

  it("reports the run settings, LDAU lists whole from <incar>", () => {
    const rel = "vasp/custodian_postprocess_FeO_relax_isif3/vasprun.xml";
    const incar = readFileSync(realPath("vasp/custodian_postprocess_FeO_relax_isif3/INCAR"), "latin1");
    const tag = (name: string) => new RegExp(`^\\s*${name}\\s*=\\s*([^\\n!#]+)`, "m").exec(incar)![1].trim();
    const { summary } = parseVasprun(read(rel), rel);
    expect(summary.vaspVersion).toBe("5.3.5");
    expect(summary.parameters.ENCUT).toBe(Number(tag("ENCUT")));
    expect(summary.parameters.ISIF).toBe(Number(tag("ISIF")));
    expect(summary.parameters.ISPIN).toBe(Number(tag("ISPIN")));
    expect(summary.parameters.SIGMA).toBe(Number(tag("SIGMA")));
    expect(summary.parameters.LDAU).toBe(true);
    expect(summary.parameters.LDAUL).toEqual(tag("LDAUL").split(/\s+/).map(Number));
    expect(summary.parameters.LDAUU).toEqual(tag("LDAUU").split(/\s+/).map(Number));
    expect(summary.parameters.LDAUJ).toEqual(tag("LDAUJ").split(/\s+/).map(Number));
  });

  it("reports GGA as resolved in <parameters> and stress as null without a stress block (ISIF = 0)", () => {
    const rel = "vasp/fairchem_oc20_ReIr_slab_selective/vasprun.xml";
    const { steps, summary } = parseVasprun(read(rel), rel);
    expect(summary.parameters.GGA).toBe("RP");
    expect(summary.parameters.ISIF).toBe(0);
    expect(steps[0].stress).toBeNull();
  });
});

describe("machine-learned force-field steps", () => {
  const file = path.join(FIXTURES, "ml_ff_minimal.xml");
  const { steps, summary } = parseVasprun(readFileSync(file), file);

  it("keeps only calculations with scsteps and counts the ML-predicted ones", () => {
    expect(steps.length).toBe(2);
    expect(steps.map((s) => s.index)).toEqual([0, 1]);
    // One bare structure/forces block outside <calculation>, one <calculation> without <scstep>.
    expect(summary.mlStepsSkipped).toBe(2);
    expect(summary.skipped).toEqual([]);
    expect(summary.parameters.ML_LMLFF).toBe(true);
    expect(summary.vaspVersion).toBe("6.3.0");
  });

  it("parses identically when fed one byte at a time", () => {
    const chunked = parseInChunks(readFileSync(file), 1, file);
    expect(chunked.steps).toEqual(steps);
    expect(chunked.summary).toEqual(summary);
  });

  it("computes each DFT step's labels by hand", () => {
    const [a, b] = steps;
    expect(a.freeEnergy).toBe(-6.5);
    expect(a.energySigma0).toBeCloseTo(-6.5 + (-6.502 + 6.5), 12);
    expectClose(a.positions, [0.1 * 4, 0.2 * 5, 0.3 * 6, 0.5 * 4, 0.5 * 5, 0.5 * 6], "positions");
    expect(Array.from(a.forces)).toEqual([0.1, -0.2, 0.3, -0.1, 0.2, -0.3]);
    // kBar (VASP sign) -> eV/A^3 (ASE sign), Voigt xx yy zz yz xz xy.
    expectClose(a.stress!, [10, 20, 30, 3, 2, 1].map((v) => -v / 1602.1766208), "stress");
    expect([a.scfSteps, a.nelm, a.scfConverged]).toEqual([2, 3, true]);
    expect(b.freeEnergy).toBe(-6.26);
    expect(b.energySigma0).toBeCloseTo(-6.26 + (-6.253 + 6.25), 12);
    expect(b.stress).toBeNull();
    expect([b.scfSteps, b.nelm, b.scfConverged]).toEqual([3, 3, false]);
  });
});

describe("malformed input", () => {
  it("rejects an empty file", () => {
    expect(inputErrorOf(() => parseVasprun("", "empty.xml")).message).toBe("empty.xml: empty file; expected vasprun.xml");
    expect(inputErrorOf(() => parseVasprun(" \n\n ", "blank.xml")).message).toBe("blank.xml: empty file; expected vasprun.xml");
  });

  it("rejects an OUTCAR with the line and what it found", () => {
    const outcar = read("vasp/dpdata_h2o_md10/OUTCAR");
    const err = inputErrorOf(() => parseVasprun(outcar, "OUTCAR"));
    expect(err.message).toMatch(/^OUTCAR:1: not a vasprun\.xml: expected XML starting with "<\?xml" or "<modeling>", found " ?vasp\.5\.4\.4/);
  });

  it("rejects random text and XML of another kind", () => {
    expect(inputErrorOf(() => parseVasprun("hello world\n", "notes.txt")).message).toBe(
      'notes.txt:1: not a vasprun.xml: expected XML starting with "<?xml" or "<modeling>", found "hello world"',
    );
    expect(inputErrorOf(() => parseVasprun('<?xml version="1.0"?>\n<cml>\n</cml>\n', "mol.cml")).message).toBe(
      "mol.cml:2: not a vasprun.xml: root element is <cml>, expected <modeling>",
    );
    expect(inputErrorOf(() => parseVasprun('<?xml version="1.0"?>\n', "decl.xml")).message).toBe(
      "decl.xml:2: file ends before the <modeling> root element; expected vasprun.xml",
    );
  });

  it("keeps the complete steps of a file cut in the middle of a step", () => {
    const rel = "vasp/custodian_postprocess_FeO_relax_isif3/vasprun.xml";
    const text = read(rel).toString("latin1");
    let at = -1;
    for (let k = 0; k < 3; k++) at = text.indexOf('<varray name="stress"', at + 1);
    const cut = text.slice(0, at + 30);
    const { steps, summary } = parseVasprun(cut, "cut.xml");
    const ase = reference[rel].frames!;
    expect(steps.length).toBe(2);
    expectClose(steps.map((s) => s.energySigma0), [ase[0].energy!, ase[1].energy!], "energies");
    expect(summary.truncated).toBe(`line ${lineOfOffset(cut, cut.length)}, inside <calculation> 3, in <varray>`);
  });

  it("skips a step with ***** in a force row, naming the element and line, and keeps the rest", () => {
    const rel = "vasp/dpdata_h2o_md10/vasprun.xml";
    const text = read(rel).toString("latin1");
    const forces2 = text.indexOf('<varray name="forces"', text.indexOf('<varray name="forces"') + 1);
    const valueAt = text.indexOf("<v>", forces2) + 3 + 6;
    const broken = text.slice(0, valueAt) + "***********" + text.slice(valueAt + 11);
    const { steps, summary } = parseVasprun(broken, "stars.xml");
    expect(steps.map((s) => s.index)).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(summary.skipped).toEqual([
      {
        block: 1,
        reason: `<calculation> 2 (line ${lineOfOffset(text, text.indexOf("<calculation>", text.indexOf("<calculation>") + 1))}): <varray name="forces"> line ${lineOfOffset(broken, valueAt)}: "***********" is not a number`,
      },
    ]);
    const ase = reference[rel].frames!;
    expectClose(steps.map((s) => s.energySigma0), [0, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => ase[i].energy!), "energies");
  });

  it("splits Fortran fields that ran into each other", () => {
    const rel = "vasp/dpdata_h2o_md10/vasprun.xml";
    const text = read(rel).toString("latin1");
    const row = "<v>      -0.14198623      -0.57372915       0.35651545 </v>";
    expect(text.indexOf(row)).toBeGreaterThan(0);
    const fused = text.replace(row, "<v>-0.14198623-0.57372915       0.35651545 </v>");
    const { steps } = parseVasprun(fused, "fused.xml");
    expect(atom(steps[0].forces, 0)).toEqual([-0.14198623, -0.57372915, 0.35651545]);
  });

  it("refuses steps before any <atominfo>", () => {
    const rel = "vasp/dpdata_h2o_md10/vasprun.xml";
    const text = read(rel).toString("latin1");
    const start = text.indexOf(" <atominfo>");
    const noInfo = text.slice(0, start) + text.slice(text.indexOf("</atominfo>") + "</atominfo>\n".length);
    const err = inputErrorOf(() => parseVasprun(noInfo, "noinfo.xml"));
    expect(err.message).toBe(
      `noinfo.xml:${lineOfOffset(noInfo, noInfo.indexOf("<calculation>"))}: <calculation> 1 comes before any <atominfo>; expected <atominfo> with <array name="atoms"> listing the species`,
    );
  });

  it("rejects mismatched closing tags as malformed XML", () => {
    const doc = "<modeling>\n <calculation>\n </structure>\n";
    expect(inputErrorOf(() => parseVasprun(doc, "bad.xml")).message).toBe(
      "bad.xml:3: malformed XML: </structure> inside <calculation>, expected </calculation>",
    );
  });
});

describe("scanNumbers", () => {
  const scan = (s: string, max = 3) => {
    const out = new Float64Array(max);
    const n = scanNumbers(s, 0, s.length, out, 0, max);
    return n < 0 ? { bad: s.slice(-n - 1) } : Array.from(out.subarray(0, Math.min(n, max)));
  };

  it("reads plain, signed, exponent and Fortran D-exponent numbers exactly as Number() does", () => {
    expect(scan("  1.5 -2.25e-3  +3.0D+02 ")).toEqual([1.5, -0.00225, 300]);
    const values = ["-28.38622624", "0.00000001", "123456789.123456789", "6.02214076E23", "-1e-300", "0.1"];
    for (const v of values) expect(scan(v, 1)).toEqual([Number(v)]);
    expect(Object.is((scan("-0.00000000", 1) as number[])[0], -0)).toBe(true);
  });

  it("splits fused fields at the sign that starts a new number", () => {
    expect(scan("-12.345678-9.876543 1.0")).toEqual([-12.345678, -9.876543, 1]);
    expect(scan("0.5079271E+00-0.229E+00 2", 3)).toEqual([0.5079271, -0.229, 2]);
  });

  it("flags overflow stars, NaN and a sign that may be an exponent without E", () => {
    expect(scan("1.0 ***** 2.0")).toEqual({ bad: "***** 2.0" });
    expect(scan("NaN 1 2")).toEqual({ bad: "NaN 1 2" });
    expect(scan("0.1234567-100", 1)).toEqual({ bad: "0.1234567-100" });
  });

  it("says when a row has more numbers than wanted", () => {
    const out = new Float64Array(3);
    expect(scanNumbers("1 2 3 4", 0, 7, out, 0, 3)).toBe(4);
  });
});
