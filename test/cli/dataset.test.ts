import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { splitDraw, splitOfDraw, DEFAULT_FRACTIONS } from "../../src/core/dataset/split.js";
import type { DatasetSummary } from "../../src/core/dataset/summary.js";
import { h2oRun, replaceOnce, tempDir } from "../fixtures/dataset/runs.js";
import { runCli } from "../helpers/run-cli.js";

/** Runs `relabel dataset ...` in-process. */
const dataset = (...argv: string[]) => runCli("dataset", ...argv);

/** Ten h2o runs named rNN, in a fresh root. */
function tenRuns(): { root: string; ids: string[] } {
  const root = tempDir();
  const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
  ids.forEach((id, i) => h2oRun(root, id, i + 1));
  return { root, ids };
}

describe("relabel dataset build", () => {
  it("builds a dataset, prints the split table and gates, and exits 0", async () => {
    const { root, ids } = tenRuns();
    const seed = [...Array(100).keys()].find((s) => new Set(ids.map((id) => splitOfDraw(splitDraw(id, s), DEFAULT_FRACTIONS))).size === 3)!;
    const out = path.join(tempDir(), "ds");
    const res = await dataset("build", "--runs", root, "-o", out, "--seed", String(seed), "--head", "my_head", "--config-type", "bulk");
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8")) as DatasetSummary;
    expect(summary.options).toMatchObject({ head: "my_head", config_type: "bulk", seed, energy: "free" });
    const lines = res.stdout.split("\n");
    expect(lines[0]).toBe(`runs: 10 found, 10 used, 0 skipped; 100 DFT steps read`);
    for (const s of ["train", "valid", "test"] as const) {
      const c = summary.splits[s];
      expect(lines).toContain(`${s.padEnd(5)} ${String(c.frames).padStart(8)} ${String(c.runs).padStart(7)} ${String(c.atoms).padStart(9)}`);
    }
    expect(res.stdout).toContain("  mixed_settings  pass\n");
    expect(res.stdout).toContain("  new_elements    not checked (no --previous)\n");
    expect(res.stdout).toMatch(new RegExp(`wrote ${out.replace(/[.]/g, "\\.")}: train\\.extxyz, valid\\.extxyz, test\\.extxyz, split\\.json, summary\\.json \\(REF_energy = free energy, head my_head\\); test fingerprint ${summary.fingerprint.test_content.slice(0, 12)}\\n$`));
  });

  it("accepts several roots after one --runs", async () => {
    const a = tempDir();
    const b = tempDir();
    h2oRun(a, "x", 1);
    h2oRun(b, "y", 2);
    const out = path.join(tempDir(), "ds");
    const res = await dataset("build", "--runs", a, b, "-o", out, "--allow-empty-split");
    expect(res.code).toBe(0);
    const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8")) as DatasetSummary;
    expect(summary.options.runs).toEqual([a, b]);
    expect(summary.reading.runs_used).toBe(2);
  });

  it("exits 1 on a gate error, prints each error on one line and writes nothing", async () => {
    const root = tempDir();
    h2oRun(root, "only", 1);
    const out = path.join(tempDir(), "ds");
    const res = await dataset("build", "--runs", root, "-o", out);
    expect(res.code).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(path.dirname(out))).toEqual([]);
    const errors = res.stderr.split("\n").filter((l) => l.startsWith("error: "));
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^error: valid split is empty: none of the 1 run\(s\) drew a value in \[0\.8, 0\.9\) .*draws: only 0\.\d+ -> \w+; add runs, try another --seed, or pass --allow-empty-split/);
    expect(errors[1]).toMatch(/^error: test split is empty: /);
    expect(errors[2]).toBe(`error: nothing written to ${out}`);
  });

  it("answers bad input with a one-line error and exit code 1", async () => {
    const missing = path.join(tempDir(), "missing");
    const res = await dataset("build", "--runs", missing, "-o", path.join(tempDir(), "ds"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${missing}: no such directory (--runs takes folders holding VASP run directories)\n`);

  });

  it("refuses an existing -o as a usage error (exit code 2), as rank does", async () => {
    const { root } = tenRuns();
    const existing = tempDir();
    const again = await dataset("build", "--runs", root, "-o", existing);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`relabel dataset: ${existing} already exists: a dataset directory is written once; choose a new -o\n`);
    expect(readdirSync(existing)).toEqual([]);
  });

  it("prints a step a reader left out as a warning naming file and element, writes the rest and exits 1", async () => {
    const root = tempDir();
    // Step 0, atom 1 of dpdata_h2o_md10: a force VASP printed as ******** (a Fortran field overflow).
    const dir = h2oRun(root, "a", 1, (x) => replaceOnce(x, "<v>      -0.14198623      -0.57372915       0.35651545 </v>", "<v>      ********      -0.57372915       0.35651545 </v>"));
    const out = path.join(tempDir(), "ds");
    const res = await dataset("build", "--runs", root, "-o", out, "--allow-empty-split");
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("; 9 DFT steps read\n");
    const file = path.join(dir, "vasprun.xml").replace(/[.*]/g, "\\$&");
    expect(res.stderr).toMatch(new RegExp(`^warning: run a: step left out: ${file}: block 0: <calculation> 1 \\(line \\d+\\): <varray name="forces"> line \\d+: "\\*{8}" is not a number$`, "m"));
    expect(res.stderr.trimEnd().split("\n").at(-1)).toBe("error: some input had problems (1 step(s) left out, see the warnings above); the dataset holds the rest");
    const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8")) as DatasetSummary;
    expect(summary.reading.notes).toEqual([{ run: "a", note: expect.stringMatching(/^block 0: .*"\*{8}" is not a number$/) }]);
    expect(summary.warnings[0]).toMatch(/^run a: step left out: /);
  });

  it("prints a killed run's cut last step as a note, a run killed before its first step as a warning, and exits 0", async () => {
    const root = tempDir();
    // dpdata_h2o_md10/vasprun.xml cut at byte 40000, inside its third <calculation>, as a killed job leaves it;
    // and cut at byte 20000, inside the first (bytes 18382-28592).
    h2oRun(root, "killed", 1, (x) => x.slice(0, 40000));
    h2oRun(root, "killed_early", 2, (x) => x.slice(0, 20000));
    const res = await dataset("build", "--runs", root, "-o", path.join(tempDir(), "ds"), "--allow-empty-split");
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/^note: run killed: run stopped early: cut at line \d+, inside <calculation> 3, .*; kept 2 complete steps$/m);
    expect(res.stderr).toMatch(/^warning: run killed_early skipped: no complete DFT step \(cut at line \d+, inside <calculation> 1/m);
    expect(res.stderr).not.toMatch(/^(warning: run killed:|error: )/m);
  });

  it("exits 1 when a run is skipped as unreadable, after building from the others", async () => {
    const root = tempDir();
    h2oRun(root, "good", 1);
    mkdirSync(path.join(root, "garbage"));
    writeFileSync(path.join(root, "garbage", "OUTCAR"), "garbage\n");
    const out = path.join(tempDir(), "ds");
    const res = await dataset("build", "--runs", root, "-o", out, "--allow-empty-split");
    expect(res.code).toBe(1);
    expect(existsSync(path.join(out, "summary.json"))).toBe(true);
    expect(res.stderr).toMatch(/^warning: run garbage skipped: .*OUTCAR:1: not an OUTCAR/m);
    expect(res.stderr).toContain("error: some input had problems (1 run(s) unreadable, see the warnings above); the dataset holds the rest\n");
  });

  it.each([
    [["build", "-o", "x"], /^relabel dataset: --runs DIR is required\nusage: relabel dataset build/],
    [["build", "runs", "-o", "x"], /^relabel dataset: --runs DIR is required \(to build from runs, write --runs runs\)\nusage: /],
    [["build", "--runs", "r"], /^relabel dataset: -o OUT is required\n/],
    [["make", "--runs", "r", "-o", "x"], /^relabel dataset: unknown subcommand "make"; expected build\n/],
    [[], /^relabel dataset: no subcommand given; expected build\n/],
    [["build", "--runs", "r", "-o", "x", "--fractions", "0.8,0.3,0.1"], /^relabel dataset: --fractions: fractions must sum to 1 \(got "0\.8,0\.3,0\.1", sum 1\.2\)\n$/],
    [["build", "--runs", "r", "-o", "x", "--seed", "1.5"], /^relabel dataset: --seed must be a non-negative integer \(got "1\.5"\)\n$/],
    [["build", "--runs", "r", "-o", "x", "--max-force", "0"], /^relabel dataset: --max-force must be a positive number \(got "0"\)\n$/],
    [["build", "--runs", "r", "-o", "x", "--energy", "total"], /^relabel dataset: --energy must be one of free, sigma0 \(got "total"\)\n$/],
    [["build", "--runs", "r", "-o", "x", "--head", "two words"], /^relabel dataset: --head must be letters, digits or _ \. \+ - \(got "two words"\)\n$/],
    [["build", "--runs", "r", "-o", "x", "--grow-test"], /^relabel dataset: --grow-test only applies with --previous/],
    [["build", "--frobnicate"], /^relabel dataset: unknown option --frobnicate\n/],
    [["build", "--run", "x"], /^relabel dataset: unknown option --run \(did you mean --runs\?\)\n/],
    [["build", "--runs", "r", "-o", "x", "--energy", "free", "--energy", "sigma0"], /^relabel dataset: --energy is given twice: give it once\n/],
    [["build", "--runs", "r", "-o=x"], /^relabel dataset: -o=\.\.\.: write -o VALUE or --output=VALUE\n/],
    [["build", "--runs", "--energy", "free", "-o", "x"], /^relabel dataset: --runs needs a value before --energy\n/],
    [["build", "--runs", "r", "-o", "x", "--max-force", "-5"], /^relabel dataset: --max-force must be a positive number \(got "-5"\)\n$/],
    [["build", "--runs", "r", "-o", "-x"], /^relabel dataset: -o -x: a value that starts with "-" is written -o-x\n/],
  ])("refuses %j with exit code 2", async (argv, message) => {
    const res = await dataset(...argv);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it("prints help", async () => {
    const res = await dataset("build", "--help");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: relabel dataset build --runs DIR\.\.\. \[--previous DATASET_DIR\] -o OUT /);
    expect(res.stdout).toContain("--allow-mixed-settings");
  });
});
