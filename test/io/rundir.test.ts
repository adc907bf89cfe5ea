import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { VaspStep } from "../../src/core/vasp/types.js";
import { discoverRuns, readRun, type RunReport } from "../../src/io/rundir.js";
import { realPath } from "../helpers/real-data.js";

async function collect(dir: string): Promise<{ steps: VaspStep[]; report: RunReport }> {
  const steps: VaspStep[] = [];
  const gen = readRun(dir);
  for (;;) {
    const next = await gen.next();
    if (next.done) return { steps, report: next.value };
    steps.push(next.value);
  }
}

const VASP = realPath("vasp");
const runs = readdirSync(VASP).sort();

// DFT steps each run should give, from the raw text scans in reference/ASE_READ.json (complete <calculation>
// blocks, or OUTCAR TOTEN lines when there is no usable vasprun.xml).
const expectedSteps: Record<string, number> = {
  aiidavasp_Si_relax_ionic_unconverged: 5,
  aiidavasp_Si_relax_isif3_spin_v620: 5,
  aiidavasp_Si_relax_killed_sigterm: 2,
  aiidavasp_Si_static_unfinished: 0,
  aiidavasp_Si_static_v621: 1,
  custodian_Si_relax_killed_v642: 2,
  custodian_Y2O3_static_v641: 1,
  custodian_auto_nbands_CO_v621: 1,
  custodian_large_cell_crashed_at_start: 0,
  custodian_lobster_NaCl_static: 1,
  custodian_npt_common_LiPS_md_npt: 10,
  custodian_postprocess_FeO_relax_isif3: 28,
  custodian_potim_FeS_relax_killed: 3,
  "dpdata_Ti-O-Ti_static_v630": 1,
  dpdata_ch4_md_scf_unconverged: 3,
  dpdata_ch4_mlff_md_v630: 4,
  dpdata_h2o_md10: 10,
  dpdata_h2o_md_triclinic: 3,
  dpdata_h2o_static_hard_pp: 1,
  fairchem_oc20_ReIr_slab_selective: 1,
  flare_NiTi_static: 1,
  flare_methanol_md2: 2,
  parsevasp_Si_relax_unfinished: 12,
  pyiron_FeSe_static: 1,
};

describe("discoverRuns", () => {
  it("finds every run directory of the corpus in sorted order", async () => {
    const found = await discoverRuns(VASP);
    expect(found.map((d) => d.slice(VASP.length + 1))).toEqual(runs);
  });

  it("follows links to run directories (runs linked in from scratch space), and a link back up only once", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-linked-runs-"));
    symlinkSync(realPath("vasp/dpdata_h2o_md10"), path.join(dir, "water"));
    mkdirSync(path.join(dir, "batch"));
    symlinkSync(realPath("vasp/flare_methanol_md2"), path.join(dir, "batch", "methanol"));
    symlinkSync(dir, path.join(dir, "batch", "loop"));
    expect(await discoverRuns(dir)).toEqual([path.join(dir, "batch", "methanol"), path.join(dir, "water")]);
  });
});

describe("readRun over the real corpus", () => {
  it.each(runs)("%s", async (run) => {
    const { steps, report } = await collect(realPath(`vasp/${run}`));
    expect(steps.length).toBe(expectedSteps[run]);
    // vasprun.xml and OUTCAR of the same run agree step by step wherever both exist.
    expect(report.disagreements).toEqual([]);
    expect(steps.map((s) => s.index)).toEqual(steps.map((_, i) => i));
  });

  it("says where a killed vasprun.xml was cut", async () => {
    const { report } = await collect(realPath("vasp/aiidavasp_Si_static_unfinished"));
    expect(report.summary?.truncated).toMatch(/inside <calculation>/);
  });

  it("falls back to OUTCAR when vasprun.xml has no complete step, and says so", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-rundir-"));
    const run = realPath("vasp/dpdata_h2o_md10");
    copyFileSync(path.join(run, "OUTCAR"), path.join(dir, "OUTCAR"));
    const xml = readFileSync(path.join(run, "vasprun.xml"), "latin1");
    writeFileSync(path.join(dir, "vasprun.xml"), xml.slice(0, xml.indexOf("<calculation>") + 200), "latin1");
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(10);
    expect(report.primary).toBe(path.join(dir, "OUTCAR"));
    expect(report.notes.join("\n")).toMatch(/vasprun\.xml has no complete DFT step \(cut at line \d+/);
  });

  it("reports a run where neither file has a step as an error, without throwing", async () => {
    const { steps, report } = await collect(realPath("vasp/custodian_large_cell_crashed_at_start"));
    expect(steps).toEqual([]);
    expect(report.primary === null || report.summary?.stepsRead === 0).toBe(true);
  });

  it("prefers vasprun.xml when both files are complete", async () => {
    const { report } = await collect(realPath("vasp/dpdata_h2o_md10"));
    expect(report.primary).toMatch(/vasprun\.xml$/);
  });
});

/**
 * A folder as custodian leaves a job of several steps (a double relaxation): each step's outputs renamed with its
 * suffix and gzipped, no plain vasprun.xml or OUTCAR. `steps` maps a suffix to the real run standing in for it.
 */
function custodianFolder(steps: Record<string, string>, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-custodian-"));
  for (const [suffix, run] of Object.entries(steps)) {
    for (const name of readdirSync(realPath(`vasp/${run}`))) {
      writeFileSync(path.join(dir, `${name}${suffix}.gz`), gzipSync(readFileSync(path.join(realPath(`vasp/${run}`), name))));
    }
  }
  for (const [name, content] of Object.entries(extra)) writeFileSync(path.join(dir, name), content);
  return dir;
}

describe("readRun on custodian's folders of several calculations", () => {
  it("reads vasprun.xml.relax1.gz, then .relax2.gz as one run, steps numbered on, each cross-checked with its OUTCAR", async () => {
    // relax10 sorts after relax2: suffixes compare their numbers as numbers.
    const dir = custodianFolder({ ".relax1": "aiidavasp_Si_relax_isif3_spin_v620", ".relax2": "aiidavasp_Si_relax_ionic_unconverged", ".relax10": "aiidavasp_Si_static_v621" });
    expect(await discoverRuns(dir)).toEqual([dir]);
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(5 + 5 + 1);
    expect(steps.map((s) => s.index)).toEqual(steps.map((_, i) => i));
    expect(steps[0].symbols).toEqual(["Si"]);
    expect(steps[5].symbols).toEqual(["Si", "Si"]);
    expect(report.error).toBeNull();
    expect(report.disagreements).toEqual([]);
    expect(report.notes).toEqual([]);
    expect(report.primary).toBe(path.join(dir, "vasprun.xml.relax1.gz"));
    expect(report.files).toEqual(["relax1", "relax2", "relax10"].map((s) => path.join(dir, `vasprun.xml.${s}.gz`)));
    expect(report.summary?.stepsRead).toBe(11);
  });

  it("cross-checks each calculation with its own OUTCAR", async () => {
    const dir = custodianFolder({ ".relax1": "aiidavasp_Si_relax_isif3_spin_v620", ".relax2": "aiidavasp_Si_relax_ionic_unconverged" });
    // The second step's OUTCAR swapped for the first one's: every one of its steps disagrees.
    copyFileSync(path.join(dir, "OUTCAR.relax1.gz"), path.join(dir, "OUTCAR.relax2.gz"));
    const { report } = await collect(dir);
    expect(report.disagreements.length).toBeGreaterThan(0);
    expect(report.disagreements.every((d) => d.startsWith("vasprun.xml.relax2.gz: "))).toBe(true);
  });

  it("keeps the steps of the calculations it can read, and says which one it left out and why", async () => {
    // The second step crashed before its first ionic step (custodian_large_cell_crashed_at_start).
    const dir = custodianFolder({ ".relax1": "dpdata_h2o_md10", ".relax2": "custodian_large_cell_crashed_at_start" });
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(10);
    expect(report.error).toBeNull();
    expect(report.files).toEqual([path.join(dir, "vasprun.xml.relax1.gz")]);
    expect(report.notes.join("\n")).toMatch(/^vasprun\.xml\.relax2\.gz: left out \(/m);
  });

  it("says where a calculation was cut, by its file", async () => {
    const dir = custodianFolder({ ".relax1": "aiidavasp_Si_relax_isif3_spin_v620", ".relax2": "aiidavasp_Si_relax_killed_sigterm" });
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(5 + 2);
    expect(report.summary?.truncated).toMatch(/^vasprun\.xml\.relax2\.gz line \d+/);
  });

  it("reads only vasprun.xml and OUTCAR when the folder has them (custodian copies a step's outputs before the next one)", async () => {
    const dir = custodianFolder({ ".relax1": "aiidavasp_Si_relax_isif3_spin_v620" });
    copyFileSync(path.join(realPath("vasp/aiidavasp_Si_relax_ionic_unconverged"), "vasprun.xml"), path.join(dir, "vasprun.xml"));
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(5);
    expect(steps[0].symbols).toEqual(["Si", "Si"]);
    expect(report.primary).toBe(path.join(dir, "vasprun.xml"));
    expect(report.files).toBeUndefined();
  });
});

describe("readRun on run folders compressed with xz or bzip2", () => {
  /** A copy of real run `run` with `files` compressed by the real `program` (xz or bzip2), keeping no original. */
  function compressedRun(run: string, program: "xz" | "bzip2", files: string[]): string {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), "relabel-compressed-")), run);
    cpSync(realPath(`vasp/${run}`), dir, { recursive: true });
    execFileSync(program, files.map((f) => path.join(dir, f)));
    return dir;
  }

  it.each(["xz", "bzip2"] as const)("reads vasprun.xml and OUTCAR compressed with %s as the plain files, cross-checked", async (program) => {
    const plain = await collect(realPath("vasp/custodian_postprocess_FeO_relax_isif3"));
    const dir = compressedRun("custodian_postprocess_FeO_relax_isif3", program, ["vasprun.xml", "OUTCAR"]);
    const read = await collect(dir);
    expect(read.steps).toEqual(plain.steps);
    expect(read.report.primary).toBe(path.join(dir, program === "xz" ? "vasprun.xml.xz" : "vasprun.xml.bz2"));
    expect(read.report.disagreements).toEqual([]);
    expect(read.report.summary?.potentials).toEqual(plain.report.summary?.potentials);
  });

  it("reads a folder of calculations under suffixed, xz-compressed names (vasprun.xml.relax1.xz) as one run", async () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), "relabel-compressed-")), "job");
    mkdirSync(dir);
    for (const [suffix, run] of [[".relax1", "aiidavasp_Si_relax_isif3_spin_v620"], [".relax2", "aiidavasp_Si_relax_ionic_unconverged"]]) {
      for (const name of ["vasprun.xml", "OUTCAR", "INCAR"]) copyFileSync(path.join(realPath(`vasp/${run}`), name), path.join(dir, `${name}${suffix}`));
    }
    execFileSync("xz", readdirSync(dir).map((f) => path.join(dir, f)));
    expect(await discoverRuns(dir)).toEqual([dir]);
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(10);
    expect(report.files).toEqual([".relax1", ".relax2"].map((s) => path.join(dir, `vasprun.xml${s}.xz`)));
    expect(report.disagreements).toEqual([]);
  });

  it("keeps the steps before the cut of a cut xz file, as of a cut plain one", async () => {
    const dir = compressedRun("aiidavasp_Si_relax_isif3_spin_v620", "xz", ["vasprun.xml"]);
    rmSync(path.join(dir, "OUTCAR"), { force: true });
    const file = path.join(dir, "vasprun.xml.xz");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const { steps, report } = await collect(dir);
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.length).toBeLessThan(5);
    expect(report.summary?.truncated).not.toBeNull();
  });

  it("names the program a compressed file needs when it is not installed", async () => {
    const dir = compressedRun("dpdata_h2o_md10", "xz", ["vasprun.xml"]);
    rmSync(path.join(dir, "OUTCAR"));
    const saved = process.env.PATH;
    process.env.PATH = path.join(tmpdir(), "no-programs-here");
    try {
      const { report } = await collect(dir);
      expect(report.error).toBe(`vasprun.xml unusable (${path.join(dir, "vasprun.xml.xz")}: is xz-compressed, and reading it needs the xz program (Debian: apt-get install xz-utils))`);
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe("readRun on non-self-consistent calculations (ICHARG >= 10)", () => {
  it("gives no steps of a run that kept its charge density fixed, and says why", async () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), "relabel-nscf-")), "bands");
    cpSync(realPath("vasp/aiidavasp_Si_relax_isif3_spin_v620"), dir, { recursive: true });
    writeFileSync(path.join(dir, "INCAR"), `${readFileSync(path.join(dir, "INCAR"), "utf8")}ICHARG = 11\n`);
    const { steps, report } = await collect(dir);
    expect(steps).toEqual([]);
    expect(report.error).toBe("a non-self-consistent calculation (ICHARG = 11 in INCAR: the charge density is kept fixed, as for a band structure), so its energies and forces are no DFT labels");
    // Without an INCAR, from the parameters vasprun.xml echoes.
    rmSync(path.join(dir, "INCAR"));
    rmSync(path.join(dir, "OUTCAR"));
    const vasprun = path.join(dir, "vasprun.xml");
    writeFileSync(vasprun, readFileSync(vasprun, "latin1").replace(/(name="ICHARG">)\s*2</, "$1    11<"), "latin1");
    expect((await collect(dir)).report.error).toMatch(/^a non-self-consistent calculation \(ICHARG = 11 in vasprun\.xml:/);
  });

  it("leaves the band-structure step of a job out and keeps its self-consistent ones", async () => {
    const dir = custodianFolder({ ".relax1": "aiidavasp_Si_relax_isif3_spin_v620", ".static": "aiidavasp_Si_static_v621", ".bands": "aiidavasp_Si_static_v621" });
    writeFileSync(path.join(dir, "INCAR.bands.gz"), gzipSync("ICHARG = 11\nLORBIT = 11\n"));
    const { steps, report } = await collect(dir);
    expect(steps.length).toBe(5 + 1);
    expect(report.files).toEqual([".relax1", ".static"].map((s) => path.join(dir, `vasprun.xml${s}.gz`)));
    expect(report.notes).toContain("vasprun.xml.bands.gz: left out (a non-self-consistent calculation (ICHARG = 11 in INCAR.bands.gz: the charge density is kept fixed, as for a band structure), so its energies and forces are no DFT labels)");
  });
});
