import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import { hillFormula } from "../../../src/core/structure.js";
import { OutcarParser, parseOutcar, splitFusedField, type OutcarResult } from "../../../src/core/vasp/outcar.js";
import type { VaspStep } from "../../../src/core/vasp/types.js";
import { aseReference, realPath, type AseFrameRef } from "../../helpers/real-data.js";

const TOL = 1e-6;
/** 1 GPa in eV/A^3 from CODATA 2014 e = 1.6021766208e-19 C (ASE 3.22.1 default). */
const GPA = 1 / 160.21766208;

const ref = aseReference();
const outcarKeys = Object.keys(ref).filter((k) => k.endsWith("/OUTCAR"));
const newerAse = JSON.parse(readFileSync(realPath("reference/ASE_READ_ase-3.25.0b1_differences.json"), "utf8")) as {
  differences: Record<string, { n_frames: number; frames: AseFrameRef[] }>;
};

interface TextScan {
  NIONS: number;
  n_TOTAL_FORCE_headers: number;
  n_in_kB_lines: number;
  has_General_timing: boolean;
  TOTEN_values: number[];
  energy_sigma0_values: number[];
  n_ML_TOTEN_lines: number;
}

function readReal(key: string): string {
  return readFileSync(realPath(key), "latin1");
}

function parseReal(key: string): OutcarResult {
  return parseOutcar(readReal(key), { file: key });
}

function maxForceNorm(step: VaspStep): number {
  let max = 0;
  for (let a = 0; a < step.symbols.length; a++) {
    max = Math.max(max, Math.hypot(step.forces[3 * a], step.forces[3 * a + 1], step.forces[3 * a + 2]));
  }
  return max;
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tol = TOL): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tol);
}

/** Compares one step with one ASE frame: everything ASE_READ.json records. */
function expectMatchesAse(step: VaspStep, f: AseFrameRef): void {
  const n = step.symbols.length;
  expect(n).toBe(f.n_atoms);
  expect(hillFormula(step.symbols)).toBe(f.formula);
  expect(step.symbols[0]).toBe(f.first_atom.symbol);
  expect(step.symbols[n - 1]).toBe(f.last_atom.symbol);
  expectClose(step.cell, f.cell.flat());
  expectClose(step.positions.subarray(0, 3), f.first_atom.position);
  expectClose(step.positions.subarray(3 * n - 3), f.last_atom.position);
  expect(Math.abs(step.energySigma0 - (f.energy as number))).toBeLessThanOrEqual(TOL);
  expect(Math.abs(step.freeEnergy - (f.free_energy as number))).toBeLessThanOrEqual(TOL);
  expectClose(step.forces.subarray(0, 3), f.force_first_atom as number[]);
  expectClose(step.forces.subarray(3 * n - 3), f.force_last_atom as number[]);
  expect(Math.abs(maxForceNorm(step) - (f.max_force_norm as number))).toBeLessThanOrEqual(TOL);
  if (f.stress_voigt_eV_per_A3 === null) expect(step.stress).toBeNull();
  else expectClose(step.stress as Float64Array, f.stress_voigt_eV_per_A3);
}

describe("OUTCAR: real files against ASE 3.22.1 (reference/ASE_READ.json)", () => {
  it("covers every OUTCAR of the real data set", () => {
    expect(outcarKeys.length).toBe(19);
  });

  for (const key of outcarKeys.filter((k) => ref[k].ase_ok)) {
    it(key, () => {
      const { steps, summary } = parseReal(key);
      const frames = ref[key].frames ?? [];
      expect(steps.length).toBe(ref[key].n_frames);
      expect(summary.stepsRead).toBe(frames.length);
      steps.forEach((step, i) => {
        expect(step.index).toBe(i);
        expectMatchesAse(step, frames[i]);
      });
    });
  }
});

describe("OUTCAR: files ASE 3.22.1 cannot read", () => {
  // ASE 3.22.1 raises AssertionError on these VASP 6.2/6.4 spin-polarised relaxations (its
  // magnetisation parsing); ASE 3.25.0b1 reads them, so its frames are the reference here.
  for (const key of ["vasp/aiidavasp_Si_relax_isif3_spin_v620/OUTCAR", "vasp/custodian_Si_relax_killed_v642/OUTCAR"]) {
    it(`${key} matches ASE 3.25.0b1`, () => {
      expect(ref[key].ase_ok).toBe(false);
      const newer = newerAse.differences[key];
      const { steps } = parseReal(key);
      expect(steps.length).toBe(newer.n_frames);
      steps.forEach((step, i) => expectMatchesAse(step, newer.frames[i]));
    });
  }

  it("the ML force-field OUTCAR keeps only the DFT steps (both ASE versions fail on its ML blocks)", () => {
    const key = "vasp/dpdata_ch4_mlff_md_v630/OUTCAR";
    const scan = ref[key].raw_outcar_text_scan as unknown as TextScan;
    const { steps, summary } = parseReal(key);
    expect(summary.mlStepsSkipped).toBe(scan.n_ML_TOTEN_lines);
    expect(steps.length).toBe(scan.n_TOTAL_FORCE_headers - scan.n_ML_TOTEN_lines);
    expect(steps.map((s) => s.freeEnergy)).toEqual(scan.TOTEN_values);
    expect(steps.map((s) => s.energySigma0)).toEqual(scan.energy_sigma0_values);
    // PROVENANCE: species order H4 then C.
    expect(steps[0].symbols).toEqual(["H", "H", "H", "H", "C"]);
    // Stress of the first DFT step, not of the all-zero ML block before it:
    // `in kB      -0.26557    -0.26404    -0.26295    -0.00057     0.00000    -0.00031`.
    expectClose(steps[0].stress as Float64Array, [0.26557, 0.26404, 0.26295, -0.0, 0.00031, 0.00057].map((x) => x * 0.1 * GPA), 1e-12);
  });

  it("the OUTCAR that crashed before the first ionic step gives no step, a truncation note and its header", () => {
    const key = "vasp/custodian_large_cell_crashed_at_start/OUTCAR";
    const scan = ref[key].raw_outcar_text_scan as unknown as TextScan;
    const { steps, summary } = parseReal(key);
    expect(steps).toEqual([]);
    expect(summary.truncated).toMatch(/no "General timing" footer; the file ends before the first ionic step/);
    expect(summary.symbols.length).toBe(scan.NIONS);
    // Hand-read: POTCAR lines O_h, Al, Ca_pv and "ions per type = 66 28 24", as in the POSCAR beside it
    // ("O Al Ca" / "66 28 24"). PROVENANCE.md's "Al66Ca28O24 per OUTCAR" pairs the counts with the wrong species.
    expect(hillFormula(summary.symbols)).toBe("Al28Ca24O66");
    expect(summary.symbols[0]).toBe("O");
    expect(summary.vaspVersion).toBe("5.3.5");
  });
});

describe("OUTCAR: every file against the plain text scan", () => {
  for (const key of outcarKeys) {
    it(key, () => {
      const scan = ref[key].raw_outcar_text_scan as unknown as TextScan;
      const { steps, summary } = parseReal(key);
      expect(steps.map((s) => s.freeEnergy)).toEqual(scan.TOTEN_values);
      expect(steps.map((s) => s.energySigma0)).toEqual(scan.energy_sigma0_values);
      expect(steps.every((s) => s.stress !== null)).toBe(scan.n_in_kB_lines === scan.n_TOTAL_FORCE_headers);
      expect(summary.truncated === null).toBe(scan.has_General_timing);
      expect(summary.skipped).toEqual([]);
      if (steps.length > 0) expect(steps[0].symbols.length).toBe(scan.NIONS);
    });
  }
});

describe("OUTCAR: energies agree with vasprun.xml of the same run (ASE reference of the vasprun)", () => {
  const pairs = outcarKeys.filter((k) => {
    const xml = k.replace(/OUTCAR$/, "vasprun.xml");
    return ref[xml]?.ase_ok && (ref[xml].frames ?? []).some((f) => f.energy !== null);
  });
  it("has pairs to compare", () => expect(pairs.length).toBeGreaterThanOrEqual(6));
  for (const key of pairs) {
    it(key, () => {
      const xmlFrames = ref[key.replace(/OUTCAR$/, "vasprun.xml")].frames ?? [];
      const { steps } = parseReal(key);
      expect(steps.length).toBe(xmlFrames.length);
      steps.forEach((s, i) => {
        expect(Math.abs(s.energySigma0 - (xmlFrames[i].energy as number))).toBeLessThanOrEqual(TOL);
        expect(Math.abs(s.freeEnergy - (xmlFrames[i].free_energy as number))).toBeLessThanOrEqual(TOL);
      });
    });
  }
});

describe("OUTCAR: header facts from real files", () => {
  it("reads repeated species in POTCAR order (Ti O Ti, ions per type = 3 2 3)", () => {
    const { steps, summary } = parseReal("vasp/dpdata_Ti-O-Ti_static_v630/OUTCAR");
    expect(steps[0].symbols).toEqual(["Ti", "Ti", "Ti", "O", "O", "Ti", "Ti", "Ti"]);
    // No TITEL lines in this OUTCAR: the pseudopotentials from the header's POTCAR lines, one per type.
    expect(summary.potentials).toEqual(["PAW_PBE Ti 08Apr2002", "PAW_PBE O 08Apr2002", "PAW_PBE Ti 08Apr2002"]);
  });

  it("gives each type's pseudopotential title: PW91 (PAW_GGA) and LDA (PAW) potentials too", () => {
    expect(parseReal("vasp/dpdata_ch4_mlff_md_v630/OUTCAR").summary.potentials).toEqual(["PAW_GGA H 07Jul1998", "PAW_GGA C 05Jan2001"]);
    expect(parseReal("vasp/flare_NiTi_static/OUTCAR").summary.potentials.map((t) => t.split(" ").slice(0, 2).join(" "))).toEqual(["PAW Ni", "PAW Ti"]);
  });

  it("takes the symbol of 'PAW Ni' potentials and of hard/semicore ones (Na_pv, H_h)", () => {
    expect(parseReal("vasp/flare_NiTi_static/OUTCAR").summary.symbols.slice(0, 1)).toEqual(["Ni"]);
    expect(hillFormula(parseReal("vasp/custodian_lobster_NaCl_static/OUTCAR").summary.symbols)).toBe("Cl4Na4");
    expect(hillFormula(parseReal("vasp/dpdata_h2o_static_hard_pp/OUTCAR").summary.symbols)).toBe("H4O2");
  });

  it("flags SCF loops that hit NELM (VASP 5 still prints 'EDIFF is reached' there)", () => {
    // PROVENANCE: steps 1 and 2 stop at NELM = 15 without reaching EDIFF, step 3 converges.
    const { steps, summary } = parseReal("vasp/dpdata_ch4_md_scf_unconverged/OUTCAR");
    expect(summary.nelm).toBe(15);
    expect(steps.map((s) => s.scfConverged)).toEqual([false, false, true]);
    expect(steps[0].scfSteps).toBe(15);
    expect(steps[2].scfSteps).toBeLessThan(15);
  });

  it("flags the VASP 6 'EDIFF was not reached (unconverged)' step", () => {
    // Line 1980 of this file closes the SCF loop of ionic step 1 with that marker.
    const { steps } = parseReal("vasp/aiidavasp_Si_relax_isif3_spin_v620/OUTCAR");
    expect(steps[0].scfConverged).toBe(false);
    expect(steps[1].scfConverged).toBe(true);
  });

  it("reads the parameter echo, including LDA+U", () => {
    const { summary } = parseReal("vasp/custodian_postprocess_FeO_relax_isif3/OUTCAR");
    // From the echo: "LDA+U is selected, type is set to LDAUTYPE =  2", "LDAUL =     2    0", "LDAUU =   4.0  0.0".
    expect(summary.parameters).toMatchObject({ LDAU: true, LDAUTYPE: 2, LDAUL: [2, 0], LDAUU: [4, 0], LDAUJ: [0, 0] });
    expect(summary.parameters).toMatchObject({ ENCUT: 520, ISPIN: 2, ISIF: 3, ISMEAR: 0, SIGMA: 0.05, EDIFF: 2e-4, PREC: "accurate", GGA: "--" });
  });

  it("reads the parameter echo, not the VASP 6 INCAR copy above it", () => {
    // The INCAR copy says "EDIFF = 1e-09" and "ENCUT = 240", the echo "EDIFF  = 0.1E-08", "ENCUT  =  240.0 eV".
    const { summary } = parseReal("vasp/aiidavasp_Si_relax_isif3_spin_v620/OUTCAR");
    expect(summary.parameters).toMatchObject({ ENCUT: 240, EDIFF: 1e-9, ISPIN: 2, NELM: 15, LASPH: false, PREC: "normal" });
    expect(summary.vaspVersion).toBe("6.2.0");
  });
});

describe("OUTCAR: chunking and line endings do not matter", () => {
  function feed(text: string, sizes: () => number, species?: string[]): OutcarResult {
    const p = new OutcarParser({ file: "OUTCAR", species });
    const steps: VaspStep[] = [];
    for (let i = 0; i < text.length; ) {
      const n = sizes();
      steps.push(...p.push(text.slice(i, i + n)));
      i += n;
    }
    const end = p.end();
    return { steps: [...steps, ...end.steps], summary: end.summary };
  }
  let seed = 12345;
  const random = (max: number) => () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return 1 + (seed % max);
  };

  for (const key of ["vasp/dpdata_ch4_mlff_md_v630/OUTCAR", "vasp/custodian_Si_relax_killed_v642/OUTCAR", "vasp/dpdata_h2o_md10/OUTCAR"]) {
    it(`${key}: random chunks give the same steps and summary`, () => {
      const text = readReal(key);
      const whole = parseOutcar(text, { file: "OUTCAR" });
      expect(feed(text, random(4000))).toEqual(whole);
      expect(feed(text, random(17))).toEqual(whole);
    });
  }

  it("one character at a time, and with CRLF line endings", () => {
    const text = readFileSync(new URL("../../fixtures/outcar/GaAs_two_steps.OUTCAR", import.meta.url), "latin1");
    const whole = parseOutcar(text, { file: "OUTCAR" });
    expect(feed(text, () => 1)).toEqual(whole);
    expect(parseOutcar(text.replace(/\n/g, "\r\n"), { file: "OUTCAR" })).toEqual(whole);
    expect(feed(text.replace(/\n/g, "\r\n"), random(7))).toEqual(whole);
  });
});

describe("OUTCAR: hand-made file (test/fixtures/outcar/GaAs_two_steps.OUTCAR)", () => {
  const FIXTURE = readFileSync(new URL("../../fixtures/outcar/GaAs_two_steps.OUTCAR", import.meta.url), "latin1");
  const parse = (text: string, species?: string[]) => parseOutcar(text, { file: "OUTCAR", species });
  /** 1-based line number of the n-th line containing `needle`. */
  const lineOf = (text: string, needle: string, n = 0) => {
    const lines = text.split("\n");
    const hits = lines.flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
    return hits[n];
  };
  const replaceNth = (text: string, needle: string, n: number, replacement: string) => {
    const lines = text.split("\n");
    const hits = lines.flatMap((l, i) => (l.includes(needle) ? [i] : []));
    lines[hits[n]] = replacement;
    return lines.join("\n");
  };
  /** Text up to and including the line with the n-th `needle`. */
  const cutAfter = (text: string, needle: string, n = 0) => text.split("\n").slice(0, lineOf(text, needle, n)).join("\n") + "\n";

  it("reads both steps with the numbers written in the file", () => {
    const { steps, summary } = parse(FIXTURE);
    expect(steps.length).toBe(2);
    const [a, b] = steps;
    expect(a.symbols).toEqual(["Ga", "As"]);
    expect([...a.positions]).toEqual([0, 0, 0, 1.4125, 1.4125, 1.4125]);
    expect([...a.forces]).toEqual([0.1, -0.2, 0.3, -0.1, 0.2, -0.3]);
    expect([...a.cell]).toEqual([0, 2.825, 2.825, 2.825, 0, 2.825, 2.825, 2.825, 0]);
    expect(a.freeEnergy).toBe(-10.5);
    expect(a.energySigma0).toBe(-10.49);
    // in kB XX YY ZZ XY YZ ZX = 10 -20 30 1 2 3 -> Voigt xx yy zz yz zx xy, times -0.1 GPa.
    expectClose(a.stress as Float64Array, [-1, 2, -3, -0.2, -0.3, -0.1].map((x) => x * GPA), 1e-15);
    expect([a.scfSteps, a.nelm, a.scfConverged]).toEqual([3, 4, true]);
    expect([...b.positions]).toEqual([0.01, -0.02, 0.03, 1.425, 1.425, 1.425]);
    expect([...b.forces]).toEqual([-1.25, 0, 2, 1.25, 0, -2]);
    expect(b.cell[1]).toBe(2.85);
    expect([b.freeEnergy, b.energySigma0]).toEqual([-10.6, -10.59]);
    expectClose(b.stress as Float64Array, [0.5, 0, 0, 0, 0.4, 0].map((x) => x * GPA), 1e-15);
    // 4 iterations = NELM: unconverged although the file says "EDIFF is reached".
    expect([b.scfSteps, b.scfConverged]).toEqual([4, false]);
    expect(summary).toMatchObject({
      format: "outcar",
      vaspVersion: "5.4.4.18Apr17-6-g9f103f2a35",
      nelm: 4,
      symbols: ["Ga", "As"],
      stepsRead: 2,
      skipped: [],
      mlStepsSkipped: 0,
      truncated: null,
    });
    expect(summary.parameters).toEqual({
      PREC: "accurate", ISPIN: 1, LASPH: true, METAGGA: false, ENCUT: 450, NELM: 4, EDIFF: 1e-6, ISIF: 2, ISMEAR: 0, SIGMA: 0.05, GGA: "--",
    });
  });

  it("splits fused Fortran fields in a needed block", () => {
    const fused = replaceNth(FIXTURE, "1.41250      1.41250", 0, "      1.41250      1.41250      1.41250       -12.345678-9.876543      0.300000");
    const { steps } = parse(fused);
    expect([...steps[0].forces.subarray(3)]).toEqual([-12.345678, -9.876543, 0.3]);
    // Position (5 decimals) fused with force (6 decimals): no unambiguous split, so the step is skipped.
    const mixed = replaceNth(FIXTURE, "1.41250      1.41250", 0, "      1.41250      1.41250 12345678.12345-1234567.123456     -0.200000      0.300000");
    expect(parse(mixed).summary.skipped).toEqual([
      { block: 0, reason: `line ${lineOf(mixed, "12345678.12345")}: bad TOTAL-FORCE row (cannot read field "12345678.12345-1234567.123456")` },
    ]);
    const fusedKb = replaceNth(FIXTURE, "in kB", 0, "  in kB  -12345.67890-23456.78901    30.00000     1.00000     2.00000     3.00000");
    expectClose(parse(fusedKb).steps[0].stress as Float64Array, [12345.6789, 23456.78901, -30, -2, -3, -1].map((x) => x * 0.1 * GPA), 1e-12);
  });

  it("splitFusedField splits only where the split is unambiguous", () => {
    expect(splitFusedField("0.5079271E+00-0.229E+00")).toEqual([0.5079271, -0.229]);
    expect(splitFusedField("-12.345678-9.876543")).toEqual([-12.345678, -9.876543]);
    expect(splitFusedField("5.871982203100.000000000")).toEqual([5.871982203, 100]);
    expect(splitFusedField("0.814E+01-.395E+00")).toEqual([8.14, -0.395]);
    expect(splitFusedField("1.5-2")).toBeNull();
    expect(splitFusedField("12-34")).toBeNull();
    expect(splitFusedField("abc")).toBeNull();
  });

  it("skips a step with a '*' overflow in its force block, naming the line, and keeps the next", () => {
    const bad = replaceNth(FIXTURE, "1.41250      1.41250", 0, "      1.41250      1.41250      1.41250        -0.100000************** -0.300000");
    const { steps, summary } = parse(bad);
    expect(steps.map((s) => s.index)).toEqual([1]);
    expect(summary.stepsRead).toBe(1);
    expect(summary.skipped).toEqual([
      { block: 0, reason: `line ${lineOf(bad, "************** -0.3")}: bad TOTAL-FORCE row (overflow field "-0.100000**************")` },
    ]);
  });

  it("skips a step whose stress row or energy overflows", () => {
    const badKb = replaceNth(FIXTURE, "in kB", 1, "  in kB  ************   0.00000     0.00000     0.00000     0.00000    -4.00000");
    const r1 = parse(badKb);
    expect(r1.steps.map((s) => s.index)).toEqual([0]);
    expect(r1.summary.skipped).toEqual([{ block: 1, reason: `line ${lineOf(badKb, "in kB", 1)}: bad "in kB" stress row (overflow field "************")` }]);
    const badE = replaceNth(FIXTURE, "free  energy   TOTEN", 0, "  free  energy   TOTEN  = ***************** eV");
    const r2 = parse(badE);
    expect(r2.steps.map((s) => s.index)).toEqual([1]);
    expect(r2.summary.skipped[0].reason).toBe(`line ${lineOf(badE, "free  energy   TOTEN")}: bad "free  energy   TOTEN" line (overflow field "*****************")`);
  });

  it("skips a step whose lattice vectors overflow", () => {
    const bad = replaceNth(FIXTURE, "2.850000000  0.000000000  2.850000000", 0, "     ***********  0.000000000  2.850000000     0.175438596 -0.175438596  0.175438596");
    const { steps, summary } = parse(bad);
    expect(steps.map((s) => s.index)).toEqual([0]);
    expect(summary.skipped[0].reason).toMatch(new RegExp(`^line ${lineOf(bad, "***********")}: bad lattice vector row`));
  });

  it("skips a step whose force block has fewer rows than NIONS", () => {
    const lines = FIXTURE.split("\n");
    lines.splice(lineOf(FIXTURE, "1.42500      1.42500") - 1, 1);
    const bad = lines.join("\n");
    const { steps, summary } = parse(bad);
    expect(steps.length).toBe(1);
    expect(summary.skipped).toEqual([{ block: 1, reason: `line ${lineOf(bad, "POSITION", 1)}: TOTAL-FORCE block has 1 rows, expected NIONS = 2` }]);
  });

  it("keeps complete steps of a file cut inside a step and says where", () => {
    for (const cut of [cutAfter(FIXTURE, "Iteration      2(   2)"), cutAfter(FIXTURE, "1.42500      1.42500"), cutAfter(FIXTURE, "free  energy   TOTEN", 1)]) {
      const { steps, summary } = parse(cut);
      expect(steps.map((s) => s.index)).toEqual([0]);
      const lastLine = cut.split("\n").length - 1;
      expect(summary.truncated).toBe(`line ${lastLine}: no "General timing" footer; the file ends inside DFT ionic step 2 (dropped)`);
      expect(summary.skipped).toEqual([]);
    }
    const afterStep1 = cutAfter(FIXTURE, "energy(sigma->0) =      -10.49000000", 1);
    expect(parse(afterStep1).summary.truncated).toMatch(/the file ends after DFT ionic step 1$/);
  });

  it("reports stress null without a FORCE on cell block (ISIF = 0)", () => {
    const noStress = FIXTURE.replace(/ {2}FORCE on cell[\s\S]*?external pressure[^\n]*\n/g, "");
    const { steps } = parse(noStress);
    expect(steps.map((s) => s.stress)).toEqual([null, null]);
    expect(steps[0].freeEnergy).toBe(-10.5);
  });

  it("marks a step unconverged on the VASP 6 marker even below NELM", () => {
    const marked = replaceNth(FIXTURE, "aborting loop", 0, "------------------------ aborting loop EDIFF was not reached (unconverged)  ----------------------------");
    const { steps } = parse(marked);
    expect([steps[0].scfSteps, steps[0].scfConverged]).toEqual([3, false]);
  });

  it("leaves out ML force-field blocks and counts them", () => {
    const ml = [
      "  ML FORCE on cell =-STRESS in cart. coord. units (eV/cell)",
      "  in kB     100.00000   100.00000   100.00000     0.00000     0.00000     0.00000",
      "      direct lattice vectors                 reciprocal lattice vectors",
      "     0.000000000  9.000000000  9.000000000    -0.055555556  0.055555556  0.055555556",
      "     9.000000000  0.000000000  9.000000000     0.055555556 -0.055555556  0.055555556",
      "     9.000000000  9.000000000  0.000000000     0.055555556  0.055555556 -0.055555556",
      "  POSITION                                       TOTAL-FORCE (eV/Angst) (ML)",
      " -----------------------------------------------------------------------------------",
      "      5.00000      5.00000      5.00000         9.000000      9.000000      9.000000",
      "      6.00000      6.00000      6.00000        -9.000000     -9.000000     -9.000000",
      " -----------------------------------------------------------------------------------",
      "  ML FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)",
      "  free  energy ML TOTEN  =       -99.00000000 eV",
      "  ML energy  without entropy=      -99.00000000  ML energy(sigma->0) =      -99.00000000",
      "",
    ].join("\n");
    // An ML block before each DFT step, as VASP 6.3 writes them in on-the-fly training.
    const withMl = FIXTURE.replace(/(-+ Iteration {6}\d\( {3}1\))/g, `${ml}$1`);
    const { steps, summary } = parse(withMl);
    expect(summary.mlStepsSkipped).toBe(2);
    expect(parse(FIXTURE).steps).toEqual(steps);
  });

  it("takes species from the hint when the OUTCAR has no POTCAR lines, else fails clearly", () => {
    const noSpecies = FIXTURE.split("\n").filter((l) => !l.includes("POTCAR:") && !l.includes("TITEL")).join("\n");
    expect(() => parse(noSpecies)).toThrow(InputError);
    expect(() => parse(noSpecies)).toThrow(
      `OUTCAR:${lineOf(noSpecies, "ions per type")}: cannot tell the species of every atom (0 POTCAR species, ions per type = 1 1, NIONS = 2); give its run directory instead of the file, with the POSCAR, CONTCAR or vasprun.xml that name them`,
    );
    expect(parse(noSpecies, ["Ga", "As"]).steps[0].symbols).toEqual(["Ga", "As"]);
    expect(() => parse(noSpecies, ["Ga", "As", "As"])).toThrow("the species given beside the OUTCAR (3 entries) do not fit NIONS = 2");
    // The file's own species win over the hint.
    expect(parse(FIXTURE, ["As", "Ga"]).steps[0].symbols).toEqual(["Ga", "As"]);
  });

  it("uses TITEL lines when POTCAR lines are missing", () => {
    const titelOnly = FIXTURE.split("\n").filter((l) => !l.includes("POTCAR:")).join("\n");
    expect(parse(titelOnly).steps[0].symbols).toEqual(["Ga", "As"]);
  });

  it("completes an 'ions per type' line cut after 10 numbers from NIONS, else needs the hint", () => {
    const elements = ["H", "Li", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P"];
    const header = (types: string[], printed: number[], nions: number) =>
      [
        " vasp.5.4.4 (build) complex",
        ...types.map((t) => ` POTCAR:    PAW_PBE ${t} 01Jan2000`),
        ...types.map((t) => ` POTCAR:    PAW_PBE ${t} 01Jan2000`),
        `   number of dos      NEDOS =    301   number of ions     NIONS =      ${nions}`,
        `   ions per type =  ${printed.map((n) => String(n).padStart(3)).join(" ")}`,
        "",
      ].join("\n");
    // 11 types, 10 counts printed (1 each), NIONS = 12: the 11th type has 2 atoms.
    const eleven = parseOutcar(header(elements.slice(0, 11), Array(10).fill(1), 12), { file: "OUTCAR" });
    expect(eleven.summary.symbols).toEqual([...elements.slice(0, 10), "Si", "Si"]);
    // 12 types, 10 counts printed: two unknown counts.
    const twelve = header(elements, Array(10).fill(1), 14);
    expect(parseOutcar(twelve, { file: "OUTCAR" }).summary.symbols).toEqual([]);
    const hint = [...elements.slice(0, 10), "Si", "Si", "P", "P"];
    expect(parseOutcar(twelve, { file: "OUTCAR", species: hint }).summary.symbols).toEqual(hint);
  });
});

describe("OUTCAR: files that are not OUTCARs", () => {
  const parse = (text: string) => () => parseOutcar(text, { file: "run/OUTCAR" });
  it("rejects an empty file", () => {
    expect(parse("")).toThrow('run/OUTCAR: empty file, expected an OUTCAR (first line "vasp.X.Y.Z ...")');
    expect(parse("\n  \n")).toThrow("run/OUTCAR: empty file");
  });
  it("rejects a vasprun.xml", () => {
    const xml = readFileSync(realPath("vasp/dpdata_h2o_md10/vasprun.xml"), "latin1");
    expect(parse(xml)).toThrow(
      'run/OUTCAR:1: not an OUTCAR: expected the VASP version line ("vasp.X.Y.Z ..."), found "<?xml version=\\"1.0\\" encoding=\\"ISO-8859-1\\"?>" (this is XML, e.g. a vasprun.xml; read it with the vasprun reader)',
    );
  });
  it("rejects other text, naming its first line", () => {
    expect(parse("\nhello world\nvasp.5.4.4\n")).toThrow('run/OUTCAR:2: not an OUTCAR: expected the VASP version line ("vasp.X.Y.Z ..."), found "hello world"');
    expect(parse(readFileSync(realPath("vasp/custodian_potim_FeS_relax_killed/POSCAR"), "latin1"))).toThrow('run/OUTCAR:1: not an OUTCAR: expected the VASP version line ("vasp.X.Y.Z ..."), found "Fe16 S32"');
  });
});
