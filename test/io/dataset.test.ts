import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { DEFAULT_FRACTIONS, splitDraw, splitOfDraw, type SplitFractions, type SplitName } from "../../src/core/dataset/split.js";
import type { DatasetSummary, SplitFile } from "../../src/core/dataset/summary.js";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { infoNumber, type Frame } from "../../src/core/structure.js";
import { UsageError } from "../../src/core/errors.js";
import { buildDataset, type DatasetBuildOptions } from "../../src/io/dataset.js";
import { copyRealRun, h2oOutcarRun, h2oRun, h2oVasprun, replaceOnce, siDoubleRelax, tempDir } from "../fixtures/dataset/runs.js";
import { aseReference } from "../helpers/real-data.js";

const H2O_REF = aseReference()["vasp/dpdata_h2o_md10/vasprun.xml"].frames!;
const H2O_FRAMES = H2O_REF.length;
const HALVES: SplitFractions = { train: 0.5, valid: 0.25, test: 0.25 };

function options(runRoots: string[], out: string, extra: Partial<DatasetBuildOptions> = {}): DatasetBuildOptions {
  return {
    runRoots,
    previous: null,
    out,
    energy: "free",
    frames: "all",
    requireConverged: false,
    head: "omat_pbe",
    configType: "Default",
    fractions: DEFAULT_FRACTIONS,
    seed: 0,
    maxForce: 50,
    energyZ: 5,
    allowMixedSettings: false,
    allowEmptySplit: false,
    growTest: false,
    ...extra,
  };
}

function frames(file: string): Frame[] {
  return parseExtxyz(readFileSync(file), file).map((f) => f.frame);
}

function str(frame: Frame, key: string): unknown {
  const v = frame.info.get(key);
  return v && "value" in v ? v.value : undefined;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

/** The split each id should get from its draw, as the issue defines it. */
function expectedSplit(id: string, seed: number, fractions: SplitFractions): SplitName {
  return splitOfDraw(splitDraw(id, seed), fractions);
}

/** A seed under which the given run ids fill all three splits (a fixture choice, found with the draw itself). */
function seedFillingAllSplits(ids: string[], fractions: SplitFractions): number {
  for (let seed = 0; seed < 100; seed++) {
    const splits = new Set(ids.map((id) => expectedSplit(id, seed, fractions)));
    if (splits.size === 3) return seed;
  }
  throw new Error("no seed fills all splits");
}

/** A run tree with `n` distinct h2o runs named batch/rNN, variants from `first`. */
function h2oTree(n: number, first = 0, root = tempDir()): { root: string; ids: string[] } {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `batch/r${String(first + i).padStart(2, "0")}`;
    h2oRun(root, id, first + i + 1);
    ids.push(id);
  }
  return { root, ids };
}

describe("buildDataset: a clean build", () => {
  const { root, ids } = h2oTree(8);
  const seed = seedFillingAllSplits(ids, HALVES);

  it("splits by run with the draw, writes MACE keys and a complete summary", async () => {
    const out = path.join(tempDir(), "round1");
    const res = await buildDataset(options([root], out, { fractions: HALVES, seed }));
    expect(res.errors).toEqual([]);
    expect(res.written).toBe(true);
    expect(readdirSync(out).sort()).toEqual(["split.json", "summary.json", "test.extxyz", "train.extxyz", "valid.extxyz"]);

    const split = readJson<SplitFile>(path.join(out, "split.json"));
    expect(split.runs).toEqual(Object.fromEntries(ids.map((id) => [id, expectedSplit(id, seed, HALVES)])));
    expect(split.seed).toBe(seed);
    expect(split.fractions).toEqual(HALVES);

    const summary = readJson<DatasetSummary>(path.join(out, "summary.json"));
    for (const s of ["train", "valid", "test"] as const) {
      const runsIn = ids.filter((id) => split.runs[id] === s);
      const written = frames(path.join(out, `${s}.extxyz`));
      expect(summary.splits[s]).toEqual({ frames: runsIn.length * H2O_FRAMES, runs: runsIn.length, atoms: runsIn.length * H2O_FRAMES * 6 });
      expect(written).toHaveLength(runsIn.length * H2O_FRAMES);
      // Runs in sorted id order, frames in file order.
      expect(written.map((f) => `${str(f, "source")}#${str(f, "ionic_step")}`)).toEqual(runsIn.flatMap((id) => H2O_REF.map((_, i) => `${id}#${i}`)));
      for (const f of written) {
        expect(str(f, "head")).toBe("omat_pbe");
        expect(str(f, "config_type")).toBe("Default");
        expect(f.arrays.get("REF_forces")?.ncols).toBe(3);
        expect(f.info.get("REF_stress")).toMatchObject({ kind: "array", shape: [6] });
      }
      expect(infoNumber(written[0], "REF_energy")).toBeCloseTo(H2O_REF[0].free_energy!, 8);
    }
    expect(summary.elements).toEqual(["H", "O"]);
    expect(summary.per_element.H.train).toEqual({ frames: summary.splits.train.frames, atoms: summary.splits.train.frames * 4 });
    expect(summary.labels).toMatchObject({ energy: "free", stress_frames: ids.length * H2O_FRAMES, frames: ids.length * H2O_FRAMES, head: "omat_pbe" });
    expect(summary.options).toMatchObject({ energy: "free", head: "omat_pbe", seed, fractions: HALVES, frames: "all", max_force: 50 });
    expect(summary.files).toEqual(["train.extxyz", "valid.extxyz", "test.extxyz"]);
    expect(summary.fingerprint).toEqual(split.fingerprint);
    expect(summary.gates.mixed_settings).toMatchObject({ status: "pass", mixed: [] });
    expect(summary.gates.mixed_settings.values.PREC).toEqual({ accurate: expect.objectContaining({ runs: ids.length }) });
    expect(summary.changes).toBeNull();
    expect(readdirSync(path.dirname(out))).toEqual(["round1"]);
  });

  it("rebuilds byte for byte, whatever the order of the --runs roots", async () => {
    const other = h2oTree(3, 20);
    const a = path.join(tempDir(), "a");
    const b = path.join(tempDir(), "b");
    await buildDataset(options([root, other.root], a, { fractions: HALVES, seed }));
    await buildDataset(options([other.root, root], b, { fractions: HALVES, seed }));
    for (const file of ["train.extxyz", "valid.extxyz", "test.extxyz", "split.json"]) {
      expect(readFileSync(path.join(b, file)).equals(readFileSync(path.join(a, file)))).toBe(true);
    }
    const c = path.join(tempDir(), "c");
    await buildDataset(options([root, other.root], c, { fractions: HALVES, seed }));
    for (const file of readdirSync(a)) expect(readFileSync(path.join(c, file)).equals(readFileSync(path.join(a, file)))).toBe(true);
  });

  it("uses the sigma->0 energy and the final step when asked", async () => {
    const out = path.join(tempDir(), "final");
    const res = await buildDataset(options([root], out, { fractions: HALVES, seed, energy: "sigma0", frames: "final" }));
    expect(res.summary.labels.frames).toBe(ids.length);
    expect(res.summary.reading.steps_not_final).toBe(ids.length * (H2O_FRAMES - 1));
    const f = frames(path.join(out, "train.extxyz"))[0];
    expect(str(f, "ionic_step")).toBe(H2O_FRAMES - 1);
    expect(infoNumber(f, "REF_energy")).toBeCloseTo(H2O_REF.at(-1)!.energy!, 8);
    expect(readJson<DatasetSummary>(path.join(out, "summary.json")).options.energy).toBe("sigma0");
  });
});

describe("buildDataset: rebuilding with --previous", () => {
  it("keeps every old run's split and the test set when runs are added in any order", async () => {
    const first = h2oTree(8);
    const seed = seedFillingAllSplits(first.ids, HALVES);
    const round1 = path.join(tempDir(), "round1");
    await buildDataset(options([first.root], round1, { fractions: HALVES, seed }));
    const split1 = readJson<SplitFile>(path.join(round1, "split.json"));

    // New runs in a second root and inside the first one, found in a different order.
    const added = h2oTree(6, 40);
    h2oRun(first.root, "batch/a-new", 90);
    const round2 = path.join(tempDir(), "round2");
    const res = await buildDataset(options([added.root, first.root], round2, { fractions: HALVES, seed, previous: round1 }));
    expect(res.errors).toEqual([]);
    const split2 = readJson<SplitFile>(path.join(round2, "split.json"));
    for (const id of first.ids) expect(split2.runs[id]).toBe(split1.runs[id]);
    expect(split2.fingerprint).toEqual(split1.fingerprint);
    expect(readFileSync(path.join(round2, "test.extxyz")).equals(readFileSync(path.join(round1, "test.extxyz")))).toBe(true);
    const newIds = [...added.ids, "batch/a-new"];
    for (const id of newIds) expect(split2.runs[id]).not.toBe("test");

    const changes = readJson<DatasetSummary>(path.join(round2, "summary.json")).changes!;
    expect(changes.runs_added).toEqual(newIds.sort());
    expect(changes.runs_missing).toEqual([]);
    expect(changes.split_changed).toEqual([]);
    expect(changes.test_membership_changed).toBe(false);
    expect(changes.test_content_changed).toBe(false);
    expect(changes.previous_fingerprint).toEqual(split1.fingerprint);

    // --grow-test: old runs still stay put; new runs follow their draw, test included.
    const grown = path.join(tempDir(), "grown");
    await buildDataset(options([added.root, first.root], grown, { fractions: HALVES, seed, previous: round1, growTest: true }));
    const split3 = readJson<SplitFile>(path.join(grown, "split.json"));
    for (const id of first.ids) expect(split3.runs[id]).toBe(split1.runs[id]);
    for (const id of newIds) expect(split3.runs[id]).toBe(expectedSplit(id, seed, HALVES));
    const grewTest = newIds.some((id) => split3.runs[id] === "test");
    expect(split3.fingerprint.test_membership !== split1.fingerprint.test_membership).toBe(grewTest);
  });

  it("keeps a vanished run's split, keeps old frames over a new duplicate, and reports new elements", async () => {
    const first = h2oTree(8);
    const seed = seedFillingAllSplits(first.ids, HALVES);
    const round1 = path.join(tempDir(), "round1");
    await buildDataset(options([first.root], round1, { fractions: HALVES, seed }));
    const split1 = readJson<SplitFile>(path.join(round1, "split.json"));

    // Round 2: one old run gone, a new run that repeats an old test-or-other run and sorts before it, and a Si run.
    const root2 = tempDir();
    const [gone, copied] = [first.ids[0], first.ids[1]];
    first.ids.slice(1).forEach((id, i) => h2oRun(root2, id, i + 2));
    h2oRun(root2, "batch/a-copy", 2);
    copyRealRun(root2, "si", "aiidavasp_Si_static_v621");
    const round2 = path.join(tempDir(), "round2");
    const res = await buildDataset(options([root2], round2, { fractions: HALVES, seed, previous: round1, allowMixedSettings: true }));
    const split2 = readJson<SplitFile>(path.join(round2, "split.json"));
    const summary = readJson<DatasetSummary>(path.join(round2, "summary.json"));
    expect(split2.runs[gone]).toBe(split1.runs[gone]);
    expect(summary.changes!.runs_missing).toEqual([gone]);
    expect(summary.gates.duplicates.frames).toBe(H2O_FRAMES);
    expect(summary.gates.duplicates.examples[0]).toMatchObject({ run: "batch/a-copy", ionic_step: 0, first_seen: { run: copied, ionic_step: 0 } });
    expect(summary.gates.new_elements).toEqual({ action: "warn", status: "warning", elements: ["Si"] });
    expect(summary.changes!.elements_added).toEqual(["Si"]);
    expect(res.summary.warnings.some((w) => w.startsWith("elements new relative to the previous dataset: Si"))).toBe(true);
    const goneWasTest = split1.runs[gone] === "test";
    expect(summary.changes!.test_content_changed).toBe(goneWasTest);
  });

  it("counts test runs missing from the inputs as a membership change and names them", async () => {
    const first = h2oTree(8);
    const seed = seedFillingAllSplits(first.ids, HALVES);
    const round1 = path.join(tempDir(), "round1");
    await buildDataset(options([first.root], round1, { fractions: HALVES, seed }));
    const split1 = readJson<SplitFile>(path.join(round1, "split.json"));
    const testIds = first.ids.filter((id) => split1.runs[id] === "test");

    // Round 2 is given only the runs that were not in test (same variants, so the same frames).
    const root2 = tempDir();
    first.ids.forEach((id, i) => split1.runs[id] !== "test" && h2oRun(root2, id, i + 1));
    const round2 = path.join(tempDir(), "round2");
    const res = await buildDataset(options([root2], round2, { fractions: HALVES, seed, previous: round1, allowEmptySplit: true }));
    expect(res.written).toBe(true);
    expect(res.summary.splits.test.frames).toBe(0);
    const changes = res.summary.changes!;
    expect(changes.test_membership_changed).toBe(true);
    expect(changes.test_content_changed).toBe(true);
    expect(changes.test_runs_missing).toEqual(testIds);
    expect(res.summary.warnings).toContain(`${testIds.length} test run(s) of the previous dataset have no test frames now (not among the inputs, skipped, or every frame dropped): ${testIds.join(", ")}`);
    expect(res.summary.warnings).toContain("the held-out test set differs from the previous dataset (test runs and test frames changed): metrics are not comparable with earlier rounds");
    // They keep their split for the round that brings them back.
    const split2 = readJson<SplitFile>(path.join(round2, "split.json"));
    for (const id of testIds) expect(split2.runs[id]).toBe("test");
    expect(split2.fingerprint.test_membership).not.toBe(split1.fingerprint.test_membership);
  });
});

describe("buildDataset: quality gates", () => {
  it("drops frames of a duplicated run", async () => {
    const { root, ids } = h2oTree(8);
    h2oRun(root, "batch/zz-copy", 1); // the same structures as batch/r00
    const seed = seedFillingAllSplits(ids, HALVES);
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { fractions: HALVES, seed }));
    expect(res.summary.gates.duplicates).toMatchObject({ action: "drop", status: "dropped", frames: H2O_FRAMES });
    expect(res.summary.gates.duplicates.examples[0]).toMatchObject({ run: "batch/zz-copy", ionic_step: 0, first_seen: { run: "batch/r00", ionic_step: 0 } });
    expect(res.summary.labels.frames).toBe(ids.length * H2O_FRAMES);
    expect(res.summary.gates.label_conflicts).toMatchObject({ status: "pass", frames: 0, runs: [] });
  });

  it("reports a duplicate whose labels disagree with the kept frame's, naming both frames and energies", async () => {
    const root = tempDir();
    // The same one-atom Si cell, step 0 of both runs, computed with other settings (ISPIN, ...): -1.387 vs -4.883 eV.
    copyRealRun(root, "isif3_spin", "aiidavasp_Si_relax_isif3_spin_v620");
    copyRealRun(root, "killed", "aiidavasp_Si_relax_killed_sigterm");
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { allowEmptySplit: true, allowMixedSettings: true }));
    expect(res.summary.gates.duplicates.frames).toBe(1);
    const gate = res.summary.gates.label_conflicts;
    expect(gate).toMatchObject({ action: "warn", status: "warning", energy_tolerance: 0.001, force_tolerance: 0.05, frames: 1 });
    expect(gate.runs).toEqual([
      {
        run: "killed",
        kept_run: "isif3_spin",
        frames: 1,
        example: {
          run: "killed",
          ionic_step: 0,
          energy: -4.88259887,
          energy_per_atom: -4.88259887,
          max_force: expect.any(Number),
          kept: { run: "isif3_spin", ionic_step: 0, energy: -1.38713455, energy_per_atom: -1.38713455, max_force: 0 },
        },
      },
    ]);
    expect(res.summary.warnings).toContainEqual(
      expect.stringMatching(/^killed step 0 repeats the structure of isif3_spin step 0 with other labels: REF_energy -4\.8826 vs -1\.3871 eV \(-4\.8826 vs -1\.3871 eV\/atom\), max \|F\| 0 vs 0 eV\/A; dropped, isif3_spin step 0 kept/),
    );
  });

  it("keeps the later calculation's step when a custodian job's next calculation repeats the structure", async () => {
    const root = tempDir();
    siDoubleRelax(root, "double", 0.1);
    const out = path.join(tempDir(), "o");
    const res = await buildDataset(options([root], out, { allowEmptySplit: true }));
    expect(res.summary.reading.steps_read).toBe(6);
    const written = frames(path.join(out, res.summary.files[0]));
    // relax1's last step (4) and relax2's first (5) are one structure: relax2's labels stay.
    expect(written.map((f) => str(f, "ionic_step"))).toEqual([0, 1, 2, 3, 5]);
    expect(infoNumber(written[4], "REF_energy")).toBeCloseTo(-1.87479978, 8);
    expect(res.summary.gates.duplicates).toMatchObject({ frames: 1, examples: [{ run: "double", ionic_step: 4, first_seen: { run: "double", ionic_step: 5 }, superseded: true }] });
    expect(res.summary.gates.label_conflicts.frames).toBe(0);

    // Same inputs, same bytes.
    const again = path.join(tempDir(), "o");
    await buildDataset(options([root], again, { allowEmptySplit: true }));
    for (const name of [res.summary.files[0], "split.json", "summary.json"]) {
      expect(readFileSync(path.join(again, name)).equals(readFileSync(path.join(out, name)))).toBe(true);
    }
  });

  it("does not score CH4 runs with other POTCARs as energy outliers, but still names a diverged step", async () => {
    const root = tempDir();
    // Three PBE steps 28-36 meV/atom above four PW91 steps that spread by 0.1 meV/atom: without a MAD floor, z ~ 300.
    copyRealRun(root, "ch4_pbe", "dpdata_ch4_md_scf_unconverged");
    copyRealRun(root, "ch4_pw91", "dpdata_ch4_mlff_md_v630");
    // A relaxation that diverges: step 2 at +1.74 eV/atom against about -5.9.
    copyRealRun(root, "fes", "custodian_potim_FeS_relax_killed");
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { allowEmptySplit: true, allowMixedSettings: true }));
    const g = res.summary.gates.energy_outliers;
    expect(g).toMatchObject({ frames: 1, min_mad: 0.01, compositions_tested: 2 });
    expect(g.by_composition).toEqual([{ formula: "FeS2", frames: 1, worst: expect.objectContaining({ run: "fes", ionic_step: 2 }) }]);
    expect(res.summary.warnings).toContainEqual(expect.stringMatching(/^1 FeS2 frame\(s\) have an energy per atom with robust \|z\| > 5 \(kept\); worst: fes step 2 1\.7412 eV\/atom/));
  });

  it("drops frames with an atom's force above --max-force", async () => {
    const { root, ids } = h2oTree(8);
    // Step 0, atom 1 of the OUTCAR: (-0.141986, -0.573729, 0.356515) -> (-0.141986, -60.573729, 0.356515).
    h2oOutcarRun(root, "batch/strong", (t) => replaceOnce(t, "-0.141986     -0.573729      0.356515", "-0.141986    -60.573729      0.356515"));
    const seed = seedFillingAllSplits(ids, HALVES);
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { fractions: HALVES, seed }));
    expect(res.errors).toEqual([]);
    expect(res.summary.gates.force_outliers.frames).toBe(1);
    const e = res.summary.gates.force_outliers.examples[0];
    expect(e).toMatchObject({ run: "batch/strong", ionic_step: 0 });
    expect(e.max_force).toBeCloseTo(Math.hypot(0.141986, 60.573729, 0.356515), 6);
    expect(res.summary.labels.frames).toBe((ids.length + 1) * H2O_FRAMES - 1);

    const lenient = await buildDataset(options([root], path.join(tempDir(), "o"), { fractions: HALVES, seed, maxForce: 100 }));
    expect(lenient.summary.gates.force_outliers.frames).toBe(0);
  });

  it("reports an energy outlier within its composition and keeps it", async () => {
    const { root, ids } = h2oTree(8);
    // dpdata_h2o_md10 step 3 free energy -28.42963138 eV -> +30 eV (the calculation-level line, indented by 3).
    h2oRun(root, "batch/hot", 50, (x) => replaceOnce(x, '\n   <i name="e_fr_energy">    -28.42963138 </i>', '\n   <i name="e_fr_energy">      1.57036862 </i>'));
    const seed = seedFillingAllSplits(ids, HALVES);
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { fractions: HALVES, seed }));
    const g = res.summary.gates.energy_outliers;
    expect(g).toMatchObject({ action: "warn", status: "warning" });
    expect(g.examples[0]).toMatchObject({ run: "batch/hot", ionic_step: 3, formula: "H2O" });
    expect(g.examples[0].energy_per_atom).toBeCloseTo(1.57036862 / 6, 8);
    expect(res.summary.labels.frames).toBe((ids.length + 1) * H2O_FRAMES);
  });

  it("keeps SCF-unconverged steps flagged, or drops them with --require-converged", async () => {
    const root = tempDir();
    copyRealRun(root, "ch4", "dpdata_ch4_md_scf_unconverged");
    const kept = path.join(tempDir(), "kept");
    const res = await buildDataset(options([root], kept, { allowEmptySplit: true }));
    expect(res.summary.gates.scf_unconverged).toMatchObject({ action: "keep-flagged", status: "flagged", frames: 2 });
    const written = frames(path.join(kept, "train.extxyz"));
    expect(written.map((f) => str(f, "scf_converged"))).toEqual([false, false, true]);
    expect(res.summary.files).toEqual(["train.extxyz"]);
    expect(existsSync(path.join(kept, "valid.extxyz"))).toBe(false);

    const strict = await buildDataset(options([root], path.join(tempDir(), "strict"), { allowEmptySplit: true, requireConverged: true }));
    expect(strict.summary.gates.scf_unconverged).toMatchObject({ action: "drop", status: "dropped", frames: 2 });
    expect(strict.summary.labels.frames).toBe(1);
  });

  it("refuses mixed DFT settings without writing anything, unless allowed", async () => {
    const { root, ids } = h2oTree(8);
    const seed = seedFillingAllSplits(ids, HALVES);
    h2oRun(root, "batch/encut", 60, (x) => replaceOnce(x, '<i name="ENMAX">    800.00000000</i>', '<i name="ENMAX">    520.00000000</i>'));
    // An OUTCAR-only run takes IVDW, which its OUTCAR does not echo, from its INCAR.
    const vdw = h2oOutcarRun(root, "batch/vdw");
    writeFileSync(path.join(vdw, "INCAR"), "ENCUT = 800\nIVDW = 12 ! D3(BJ)\n");
    const out = path.join(tempDir(), "o");
    const res = await buildDataset(options([root], out, { fractions: HALVES, seed }));
    expect(res.written).toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(path.dirname(out))).toEqual([]);
    expect(res.summary.gates.mixed_settings).toMatchObject({ action: "error", status: "error", mixed: ["ENCUT", "IVDW"] });
    expect(res.errors).toEqual([
      `mixed DFT settings across runs: ENCUT = 800 in ${ids.length + 1} run(s), e.g. batch/r00, batch/r01, batch/r02; 520 in 1 run(s), e.g. batch/encut; pass --allow-mixed-settings to build anyway`,
      `mixed DFT settings across runs: IVDW = 0 in ${ids.length + 1} run(s), e.g. batch/encut, batch/r00, batch/r01; 12 in 1 run(s), e.g. batch/vdw; pass --allow-mixed-settings to build anyway`,
    ]);

    const allowed = await buildDataset(options([root], out, { fractions: HALVES, seed, allowMixedSettings: true }));
    expect(allowed.written).toBe(true);
    expect(allowed.summary.gates.mixed_settings.status).toBe("warning");
  });

  it("refuses runs whose functional or pseudopotentials differ although GGA reads -- in each (PBE, PW91 and LDA POTCARs)", async () => {
    const root = tempDir();
    copyRealRun(root, "pbe", "dpdata_ch4_md_scf_unconverged");
    copyRealRun(root, "pw91", "dpdata_ch4_mlff_md_v630");
    copyRealRun(root, "lda", "flare_NiTi_static");
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { allowEmptySplit: true }));
    expect(res.written).toBe(false);
    const gate = res.summary.gates.mixed_settings;
    expect(gate.mixed).toEqual(expect.arrayContaining(["GGA", "POTCAR[C]", "POTCAR[H]"]));
    expect(Object.keys(gate.values.GGA).sort()).toEqual(["91", "CA", "PE"]);
    expect(gate.values["POTCAR[C]"]).toEqual({
      "PAW_GGA C 05Jan2001": { runs: 1, examples: ["pw91"] },
      "PAW_PBE C 08Apr2002": { runs: 1, examples: ["pbe"] },
    });
    expect(res.errors).toContain("mixed DFT settings across runs: GGA = 91 in 1 run(s), e.g. pw91; CA in 1 run(s), e.g. lda; PE in 1 run(s), e.g. pbe; pass --allow-mixed-settings to build anyway");
  });

  it("refuses an empty held-out split and says why, or builds without its file when allowed", async () => {
    const root = tempDir();
    // Three runs whose draws all miss test (fixture ids picked with the draw).
    const ids = Array.from({ length: 40 }, (_, i) => `run${i}`)
      .filter((id) => expectedSplit(id, 0, DEFAULT_FRACTIONS) !== "test")
      .slice(0, 3);
    ids.forEach((id, i) => h2oRun(root, id, i + 1));
    const out = path.join(tempDir(), "o");
    const res = await buildDataset(options([root], out));
    expect(res.written).toBe(false);
    expect(existsSync(out)).toBe(false);
    const testError = res.errors.find((e) => e.startsWith("test split is empty"))!;
    expect(testError).toContain("none of the 3 run(s) drew a value in [0.9, 1)");
    for (const id of ids) expect(testError).toContain(`${id} ${Number(splitDraw(id, 0).toFixed(3))} -> ${expectedSplit(id, 0, DEFAULT_FRACTIONS)}`);

    const allowed = await buildDataset(options([root], out, { allowEmptySplit: true }));
    expect(allowed.written).toBe(true);
    expect(existsSync(path.join(out, "test.extxyz"))).toBe(false);
    expect(allowed.summary.files).not.toContain("test.extxyz");
    expect(allowed.summary.gates.empty_splits.status).toBe("warning");
    expect(allowed.summary.fingerprint.test_content).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});

describe("buildDataset: broken runs and bad input", () => {
  it("skips broken runs with their reason and reports steps the reader left out", async () => {
    const { root, ids } = h2oTree(8);
    copyRealRun(root, "broken/unfinished", "aiidavasp_Si_static_unfinished");
    // vasprun.xml and OUTCAR of one run that disagree on step 0's TOTEN.
    const dir = h2oOutcarRun(root, "broken/disagree", (t) => replaceOnce(t, "free  energy   TOTEN  =       -28.38622624 eV", "free  energy   TOTEN  =       -27.38622624 eV"));
    writeFileSync(path.join(dir, "vasprun.xml"), readFileSync(path.join(h2oRun(tempDir(), "x", 0), "vasprun.xml")));
    // A NaN force in step 0: the reader leaves that step out and says so.
    h2oRun(root, "batch/nan", 70, (x) => replaceOnce(x, "<v>      -0.14198623      -0.57372915       0.35651545 </v>", "<v>      NaN      -0.57372915       0.35651545 </v>"));
    const seed = seedFillingAllSplits(ids, HALVES);
    const res = await buildDataset(options([root], path.join(tempDir(), "o"), { fractions: HALVES, seed }));
    expect(res.written).toBe(true);
    expect(res.summary.reading.runs_skipped).toEqual([
      { run: "broken/disagree", reason: expect.stringMatching(/^vasprun\.xml\/OUTCAR disagree: step 0: free energy -28\.38622624 vs -27\.38622624 eV in OUTCAR/) },
      { run: "broken/unfinished", reason: expect.stringMatching(/^no complete DFT step \(cut at line \d+, inside <calculation> 1/) },
    ]);
    expect(res.summary.reading.runs_found).toBe(ids.length + 3);
    expect(res.summary.reading.runs_used).toBe(ids.length + 1);
    expect(res.summary.reading.steps_left_out_by_reader).toBe(1);
    expect(res.summary.reading.notes).toEqual([{ run: "batch/nan", note: expect.stringMatching(/^block 0: .*"NaN" is not a number/) }]);
  });

  it("takes custodian's folder of a double relaxation (vasprun.xml.relax1.gz, .relax2.gz) as one run, with its last step's INCAR", async () => {
    const { root, ids } = h2oTree(8);
    const dir = path.join(root, "custodian", "double");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "vasprun.xml.relax1.gz"), gzipSync(Buffer.from(h2oVasprun(101), "latin1")));
    writeFileSync(path.join(dir, "vasprun.xml.relax2.gz"), gzipSync(Buffer.from(h2oVasprun(102), "latin1")));
    writeFileSync(path.join(dir, "INCAR.relax1.gz"), gzipSync("ENCUT = 400\n"));
    writeFileSync(path.join(dir, "INCAR.relax2.gz"), gzipSync("ENCUT = 123\n"));
    const seed = seedFillingAllSplits([...ids, "custodian/double"], HALVES);
    const out = path.join(tempDir(), "o");
    const res = await buildDataset(options([root], out, { fractions: HALVES, seed }));
    expect(res.written).toBe(true);
    expect(res.summary.reading.runs_found).toBe(ids.length + 1);
    expect(res.summary.reading.runs_used).toBe(ids.length + 1);
    const split = expectedSplit("custodian/double", seed, HALVES);
    const mine = frames(path.join(out, `${split}.extxyz`)).filter((f) => str(f, "source") === "custodian/double");
    expect(mine.map((f) => infoNumber(f, "ionic_step"))).toEqual(Array.from({ length: 2 * H2O_FRAMES }, (_, i) => i));
    expect(res.summary.reading.notes).toContainEqual({ run: "custodian/double", note: expect.stringMatching(/^INCAR sets ENCUT = 123 but the run used /) });
  });

  it("refuses two runs with one id under different roots, naming both", async () => {
    const a = tempDir();
    const b = tempDir();
    h2oRun(a, "same/run", 1);
    h2oRun(b, "same/run", 2);
    await expect(buildDataset(options([a, b], path.join(tempDir(), "o")))).rejects.toThrow(
      `${path.join(b, "same/run")}: run id "same/run" is also the id of ${path.join(a, "same/run")}; runs under different --runs roots need different relative paths`,
    );
  });

  it("refuses missing roots, roots without runs, an existing OUT and a bad previous dataset", async () => {
    const empty = tempDir();
    const { root } = h2oTree(1);
    const missing = path.join(empty, "nope");
    await expect(buildDataset(options([missing], path.join(tempDir(), "o")))).rejects.toThrow(`${missing}: no such directory`);
    await expect(buildDataset(options([empty], path.join(tempDir(), "o")))).rejects.toThrow(`${empty}: no VASP run directory (vasprun.xml or OUTCAR) found below it`);
    const existing = tempDir();
    await expect(buildDataset(options([root], existing))).rejects.toThrow(new UsageError(`${existing} already exists: a dataset directory is written once; choose a new -o`));
    const prev = tempDir();
    await expect(buildDataset(options([root], path.join(tempDir(), "o"), { previous: prev }))).rejects.toThrow(`${path.join(prev, "split.json")}: not found`);
    mkdirSync(path.join(prev, "sub"));
    writeFileSync(path.join(prev, "split.json"), '{"runs": {"a": "holdout"}}');
    await expect(buildDataset(options([root], path.join(tempDir(), "o"), { previous: prev }))).rejects.toThrow(`${path.join(prev, "split.json")}: runs.a: `);
  });
});
