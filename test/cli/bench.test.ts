import { createHash } from "node:crypto";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { MetricsJson } from "../../src/core/bench/bench.js";
import { parseExtxyz, writeExtxyzFrame } from "../../src/core/formats/extxyz.js";
import { candidateId } from "../../src/core/select/candidate-id.js";
import type { Frame } from "../../src/core/structure.js";
import { checkWellFormedXml } from "../core/bench/xml-check.js";
import { realPath } from "../helpers/real-data.js";
import { runCli, type CliResult } from "../helpers/run-cli.js";

const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/bench");
const EVAL = realPath("mace/imagdau_mace01_eval_solvent_train.xyz");
const LOG = realPath("mace/imagdau_mace01_run-123.log");
const RESULTS = realPath("mace/imagdau_mace01_run-123_train.txt");
const XTB_KEYS = ["--ref-energy-key", "energy_xtb", "--ref-forces-key", "forces_xtb"];

const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-bench-"));

/** Runs `relabel bench` in-process. */
const bench = (...argv: string[]): Promise<CliResult> => runCli("bench", ...argv);

function metricsOf(dir: string): MetricsJson {
  return JSON.parse(readFileSync(path.join(dir, "metrics.json"), "utf8")) as MetricsJson;
}

/** A copy of the fixture dataset whose summary.json has some fields changed. */
function datasetWith(change: (summary: Record<string, Record<string, unknown>>) => void): string {
  const dir = path.join(tmp(), "dataset");
  cpSync(path.join(FIXTURES, "dataset"), dir, { recursive: true });
  const file = path.join(dir, "summary.json");
  const summary = JSON.parse(readFileSync(file, "utf8"));
  change(summary);
  writeFileSync(file, JSON.stringify(summary));
  return dir;
}

describe("relabel bench", () => {
  it("prints its help", async () => {
    const res = await bench("--help");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: relabel bench --pred PRED\.extxyz/);
  });

  it("benchmarks real mace_eval_configs output with its energy_xtb/forces_xtb labels and the run's training files", async () => {
    const out = path.join(tmp(), "round");
    const res = await bench("--pred", EVAL, ...XTB_KEYS, "--train-log", LOG, RESULTS, "-o", out);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    // The 3 IsolatedAtom frames are left out of the overall errors, as MACE reports them (NumPy over the other 200:
    // 18.854 meV/atom, 184.970 meV/A).
    expect(res.stdout).toBe(`paired 203 frames (5809 atoms): E RMSE 18.85 meV/atom, F RMSE 185.0 meV/A; wrote ${path.join(out, "report.md")}\n`);
    expect(readFileSync(path.join(out, "report.md"), "utf8")).toContain("- 3 IsolatedAtom frame(s) (the E0s' reference) are in their own config_type row only");
    expect(readdirSync(out).sort()).toEqual(["learning_curve.svg", "metrics.json", "parity_energy.svg", "parity_forces.svg", "per_config.csv", "report.md"]);
    for (const svg of ["learning_curve.svg", "parity_energy.svg", "parity_forces.svg"]) {
      const text = readFileSync(path.join(out, svg), "utf8");
      expect(checkWellFormedXml(text)[0]).toBe("svg");
      expect(Buffer.byteLength(text)).toBeLessThan(500_000);
    }
    const m = metricsOf(out);
    expect(m.dataset.test_membership).toBeNull();
    expect(m.dataset.head).toBeNull();
    expect(m.per_config_type.IsolatedAtom.energy_per_atom!.rmse).toBe(0);
    expect(m.training).toHaveLength(1);
    expect(m.training[0]).toMatchObject({ tag: "imagdau_mace01_run-123", log_file: LOG, results_file: RESULTS, mace_version: "0.3.6", swa_start_epoch: 36 });
    const report = readFileSync(path.join(out, "report.md"), "utf8");
    expect(report).toContain("> The dataset identity is unknown");
    expect(report).toContain("| train | 19.1 | 182.0 | 8.36 |");
    // The file has no stress: the report does not name stress keys as if it had used them.
    expect(report).toContain(`- Predictions: \`${EVAL}\` (203 frames; keys \`MACE_energy\`, \`MACE_forces\`; no frame has a predicted and a reference stress)`);
    expect(report).toContain("- References: the `energy_xtb` and `forces_xtb` keys inside the predictions file (no --ref)");
  });

  it("pairs every frame of a dataset built from real VASP runs with predictions printed to 8 decimals, as ASE prints them", async () => {
    const dir = tmp();
    const build = await runCli("dataset", "build", "--runs", realPath("vasp"), "--allow-mixed-settings", "-o", path.join(dir, "dataset"));
    expect(build.code).toBe(0);
    const test = path.join(dir, "dataset", "test.extxyz");
    const frames = parseExtxyz(readFileSync(test)).map((f) => f.frame);
    // mace_eval_configs writes through ASE (%16.8f positions); the dataset keeps every digit of VASP's positions.
    const printed = frames.map((f) => ({ ...f, positions: f.positions.map((x) => Number(x.toFixed(8))) }));
    expect(printed.filter((f, i) => candidateId(f) !== candidateId(frames[i])).length).toBeGreaterThan(0);
    const pred = path.join(dir, "pred.extxyz");
    const energy = (f: Frame) => ({ kind: "float" as const, value: (f.info.get("REF_energy") as { value: number }).value + 0.001 * f.natoms });
    writeFileSync(pred, printed.map((f) => writeExtxyzFrame({ ...f, info: new Map([["MACE_energy", energy(f)]]), arrays: new Map([["MACE_forces", f.arrays.get("REF_forces")!]]) })).join(""));
    const out = path.join(dir, "round");
    const res = await bench("--pred", pred, "--ref", test, "-o", out);
    expect(res.code).toBe(0);
    expect(res.stderr).not.toContain("have no");
    expect(res.stdout).toMatch(new RegExp(`^paired ${frames.length} frames .*: E RMSE 1\\.00 meV/atom, F RMSE 0\\.0 meV/A;`));
    expect(metricsOf(out).counts).toMatchObject({ paired_frames: frames.length, unmatched_predictions: 0, unmatched_references: 0 });
  });

  it("writes byte-identical outputs when run again on the same inputs", async () => {
    const args = ["--pred", path.join(FIXTURES, "pred.extxyz"), "--ref", path.join(FIXTURES, "dataset/test.extxyz"), "--train-log", LOG, RESULTS];
    const a = path.join(tmp(), "a");
    const b = path.join(tmp(), "b");
    expect((await bench(...args, "-o", a)).code).toBe(0);
    expect((await bench(...args, "-o", b)).code).toBe(0);
    const names = readdirSync(a).sort();
    expect(names).toEqual(readdirSync(b).sort());
    expect(names).toContain("parity_stress.svg");
    expect(readFileSync(path.join(a, "report.md"), "utf8")).toMatch(/ frames; keys `MACE_energy`, `MACE_forces`, `MACE_stress`\)\n- References: .* frames; keys `REF_energy`, `REF_forces`, `REF_stress`\)\n/);
    for (const name of names) expect(readFileSync(path.join(b, name)).equals(readFileSync(path.join(a, name)))).toBe(true);
  });

  it("reads the dataset identity next to --ref and reports unmatched frames on stderr", async () => {
    const out = path.join(tmp(), "round");
    const res = await bench("--pred", path.join(FIXTURES, "pred.extxyz"), "--ref", path.join(FIXTURES, "dataset/test.extxyz"), "-o", out);
    expect(res.code).toBe(0);
    expect(res.stderr.trim().split("\n")).toEqual([
      "warning: 1 prediction frame(s) have no reference frame with the same structure (listed in per_config.csv)",
      "warning: 1 reference frame(s) have no prediction (listed in per_config.csv); the metrics do not cover them",
    ]);
    const m = metricsOf(out);
    expect(m.dataset).toMatchObject({ test_membership: "m-1111", test_content: "c-2222", energy: "free", head: "Default" });
    expect(m.warnings).toHaveLength(2);
  });

  it("takes the fingerprint from split.json when summary.json has none", async () => {
    const dataset = datasetWith((s) => {
      delete s.fingerprint;
    });
    writeFileSync(path.join(dataset, "split.json"), JSON.stringify({ runs: {}, fingerprint: { test_membership: "m-split", test_content: "c-split" } }));
    const out = path.join(tmp(), "round");
    expect((await bench("--pred", path.join(FIXTURES, "pred.extxyz"), "--ref", path.join(dataset, "test.extxyz"), "-o", out)).code).toBe(0);
    expect(metricsOf(out).dataset).toMatchObject({ test_membership: "m-split", test_content: "c-split", energy: "free" });
  });

  it("warns when test.extxyz no longer has the sha256 recorded in summary.json", async () => {
    const pred = path.join(FIXTURES, "pred.extxyz");
    const actual = createHash("sha256").update(readFileSync(path.join(FIXTURES, "dataset/test.extxyz"))).digest("hex");
    const intact = datasetWith((s) => {
      s.sha256 = { "test.extxyz": actual };
    });
    const intactRun = await bench("--pred", pred, "--ref", path.join(intact, "test.extxyz"), "-o", path.join(tmp(), "out"));
    expect(intactRun.stderr).not.toMatch(/changed after the dataset was built/);
    const edited = datasetWith((s) => {
      s.sha256 = { "test.extxyz": "0".repeat(64) };
    });
    const res = await bench("--pred", pred, "--ref", path.join(edited, "test.extxyz"), "-o", path.join(tmp(), "out"));
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`warning: ${path.join(edited, "test.extxyz")} changed after the dataset was built: sha256 ${actual.slice(0, 12)}, ${path.join(edited, "summary.json")} says 000000000000`);
  });

  it("compares with --previous and warns loudly when the energy policy changed", async () => {
    const pred = path.join(FIXTURES, "pred.extxyz");
    const round1 = path.join(tmp(), "round1");
    expect((await bench("--pred", pred, "--ref", path.join(FIXTURES, "dataset/test.extxyz"), "-o", round1)).code).toBe(0);
    const dataset = datasetWith((s) => {
      s.options.energy = "sigma0";
    });
    const round2 = path.join(tmp(), "round2");
    const res = await bench("--pred", pred, "--ref", path.join(dataset, "test.extxyz"), "--previous", round1, "-o", round2);
    expect(res.code).toBe(0);
    const first = `warning: not comparable with the previous round (${path.join(round1, "metrics.json")}): energy policy changed: \`free\` -> \`sigma0\``;
    expect(res.stderr.split("\n")[0]).toBe(first);
    const report = readFileSync(path.join(round2, "report.md"), "utf8").split("\n");
    expect(report.slice(2, 4)).toEqual(["> [!WARNING]", expect.stringMatching(/^> \*\*This round is NOT comparable/)]);
    expect(metricsOf(round2).previous).toMatchObject({ comparable: false, problems: ["energy policy changed: `free` -> `sigma0`"] });
  });

  it("shows no comparability warning for the same dataset and gives the changes", async () => {
    const pred = path.join(FIXTURES, "pred.extxyz");
    const ref = path.join(FIXTURES, "dataset/test.extxyz");
    const round1 = path.join(tmp(), "round1");
    await bench("--pred", pred, "--ref", ref, "-o", round1);
    const round2 = path.join(tmp(), "round2");
    const res = await bench("--pred", pred, "--ref", ref, "--previous", round1, "-o", round2);
    expect(res.stderr).not.toMatch(/not comparable/);
    expect(metricsOf(round2).previous!.comparable).toBe(true);
    expect(readFileSync(path.join(round2, "report.md"), "utf8")).toContain("| Energy RMSE (meV/atom) | 66.83 | 66.83 | ±0.00 = |");
  });

  it("finds training files in directories and never writes over an earlier bench directory", async () => {
    const work = tmp();
    mkdirSync(path.join(work, "logs"));
    mkdirSync(path.join(work, "results"));
    // The log linked in, as from the run's scratch folder.
    symlinkSync(LOG, path.join(work, "logs", "ft_run-1.log"));
    copyFileSync(RESULTS, path.join(work, "results", "ft_run-1_train.txt"));
    // A stage's run.sh logs the commands' output beside it (MACE's log repeats in stdout.log): not training runs.
    copyFileSync(LOG, path.join(work, "logs", "stdout.log"));
    writeFileSync(path.join(work, "logs", "stderr.log"), "");
    const out = path.join(tmp(), "round");
    expect((await bench("--pred", path.join(FIXTURES, "pred.extxyz"), "--ref", path.join(FIXTURES, "dataset/test.extxyz"), "-o", out)).code).toBe(0);
    expect(existsSync(path.join(out, "parity_stress.svg"))).toBe(true);
    const again = await bench("--pred", EVAL, ...XTB_KEYS, "--train-log", work, "-o", out);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists and is not empty: a benchmark is never written over an earlier one/);
    const fresh = path.join(tmp(), "round");
    const res = await bench("--pred", EVAL, ...XTB_KEYS, "--train-log", work, "-o", fresh);
    expect(res.code).toBe(0);
    expect(existsSync(path.join(fresh, "parity_stress.svg"))).toBe(false);
    const m = metricsOf(fresh);
    expect(m.training.map((r) => [r.tag, path.basename(r.log_file!), path.basename(r.results_file!)])).toEqual([["ft_run-1", "ft_run-1.log", "ft_run-1_train.txt"]]);
  });

  it("fails in one line when predictions lack MACE_energy", async () => {
    const file = path.join(tmp(), "pred.extxyz");
    writeFileSync(file, "1\nProperties=species:S:1:pos:R:3:MACE_forces:R:3 REF_energy=-1\nH 0 0 0 0 0 0\n");
    const res = await bench("--pred", file, "-o", path.join(tmp(), "out"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${file}:1: frame 0: no MACE_energy in the comment line (mace_eval_configs writes MACE_energy and MACE_forces; see --pred-prefix)\n`);
  });

  it("fails in one line on a file without frames, a missing file, or a reference without energies", async () => {
    const empty = path.join(tmp(), "empty.extxyz");
    writeFileSync(empty, "");
    let res = await bench("--pred", empty, "-o", path.join(tmp(), "out"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${empty}: no frames (expected an extxyz file with MACE predictions)\n`);
    res = await bench("--pred", path.join(tmp(), "missing.extxyz"), "-o", path.join(tmp(), "out"));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: .*missing\.extxyz: no such file\n$/);
    res = await bench("--pred", EVAL, "-o", path.join(tmp(), "out"));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^error: ${EVAL.replace(/[.]/g, "\\.")}:1: frame 0: no REF_energy in the comment line \\(see --ref-prefix, --ref-energy-key and --ref-forces-key\\)\\n$`));
  });

  it("refuses to write into a non-empty directory and leaves its files alone", async () => {
    const out = tmp();
    writeFileSync(path.join(out, "notes.txt"), "mine");
    const res = await bench("--pred", path.join(FIXTURES, "pred.extxyz"), "-o", out);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/exists and is not empty/);
    expect(readdirSync(out)).toEqual(["notes.txt"]);
  });

  it("exits 2 on usage errors", async () => {
    expect((await bench("-o", "x")).code).toBe(2);
    expect((await bench("--pred", "p.extxyz")).stderr).toMatch(/-o OUT is required/);
    const stray = await bench("stray", "--pred", "p.extxyz", "-o", "x");
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/unexpected argument "stray"/);
    expect((await bench("--pred", "p.extxyz", "--previous", "x", "-o", "x")).stderr).toMatch(/--previous and -o name the same directory/);
    expect((await bench("--pred", "p.extxyz", "--bogus", "-o", "x")).code).toBe(2);
  });
});
