/**
 * `relabel round`: the App's round workflow on a local git data repository, one command per event, each a fresh
 * start from what the workspace recorded (threads in forge.json, the ledger in a real bare repository). The
 * pool is the initial structures of the bundled real VASP runs, and the labels are those runs. With the MACE test
 * doubles on PATH (stand-ins, not results) the local executor runs the stages.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify as stringifyYaml } from "yaml";
import { runDemo } from "../../src/cli/commands/demo.js";
import { main } from "../../src/cli/main.js";
import { recordedRuns, writeInitialStructurePool, type RecordedRun } from "../../src/workflow/recorded-runs.js";
import { SAMPLE_VASP } from "../helpers/app-harness.js";
import { initBare, pushFiles, show } from "../helpers/git-repo.js";
import { runCommand, type CliResult } from "../helpers/run-command.js";

const DOUBLES = path.resolve(import.meta.dirname, "../doubles");
const roots: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-round-"));
  roots.push(dir);
  return dir;
};
afterAll(() => roots.forEach((d) => rmSync(d, { recursive: true, force: true })));

let runs: RecordedRun[];
let pool: string;
beforeAll(async () => {
  runs = await recordedRuns(SAMPLE_VASP);
  pool = path.join(tmp(), "sample-runs.extxyz");
  await writeInitialStructurePool(runs, pool);
});

/** `relabel round ...` through the CLI's main (exit codes as a user sees them), with only the MACE doubles as MACE. */
async function round(...argv: string[]): Promise<CliResult> {
  const original = process.env.PATH;
  process.env.PATH = [DOUBLES, ...(original ?? "").split(path.delimiter).filter((d) => d !== "" && !existsSync(path.join(d, "mace_run_train")))].join(path.delimiter);
  try {
    return await runCommand(main, "round", ...argv);
  } finally {
    process.env.PATH = original;
  }
}

/** A config like the demo's: the bundled runs mix DFT settings, and four runs need fractions that fill each split. */
function configFile(dir: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, "relabel.yml");
  const config = {
    selection: { select: 4 },
    dataset: { allow_mixed_settings: true, fractions: { train: 0.5, valid: 0.25, test: 0.25 }, seed: 12 },
    stage: { device: "cpu" },
    executor: "here",
    executors: { here: { backend: "local", remote_root: path.join(dir, "runs") } },
    comment_pacing_ms: 0,
    ...extra,
  };
  writeFileSync(file, stringifyYaml(config));
  return file;
}

const git = (bare: string, ...args: string[]) => execFileSync("git", ["--git-dir", bare, ...args], { encoding: "utf8" });
const runFor = (candidateId: string) => runs.find((r) => r.candidateId === candidateId)!;
const selectedIds = (ws: string, roundNumber = 1) =>
  (JSON.parse(git(path.join(ws, "data-repo.git"), "show", `relabel/round-${String(roundNumber).padStart(4, "0")}-selection:rounds/${String(roundNumber).padStart(4, "0")}/selection/ranking.json`)) as { selected: { candidate_id: string }[] }).selected.map((s) => s.candidate_id);

describe("relabel round", () => {
  it("runs a whole round, one command per event, from a new data repository to the benchmark", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    const init = await round("init", "-w", ws, "--config", configFile(dir), "--pool", pool);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("committed pools/sample-runs.extxyz");

    const opened = await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz");
    expect(opened.stderr).toBe("");
    expect(opened.code).toBe(0);
    expect(opened.stdout).toContain("issue #1 opened");
    expect(opened.stdout).toContain("round 1: selection pull request #2 on branch relabel/round-0001-selection");
    // The App's answer, as a reader sees it: the hidden markers are not printed.
    expect(opened.stdout).toContain("### Round 1: selection");
    expect(opened.stdout).not.toContain("<!--");
    expect(opened.stdout).toContain("next: review the selection");

    expect((await round("merge", "-w", ws, "2")).stdout).toContain("Round 1: selection frozen");

    // One run folder also holds files that must not go into the repository.
    const picked = selectedIds(ws).map(runFor);
    expect(picked).toHaveLength(4);
    const copy = path.join(dir, "runs-done", picked[0].name);
    cpSync(picked[0].dir, copy, { recursive: true });
    writeFileSync(path.join(copy, "WAVECAR"), "wavefunctions\n");
    writeFileSync(path.join(copy, "POTCAR"), "licensed\n");
    const results = await round("results", "-w", ws, "--round", "1", copy, ...picked.slice(1).map((r) => r.dir));
    expect(results.stderr).toBe("");
    expect(results.code).toBe(0);
    expect(results.stdout).toContain("left out POTCAR: VASP's licence forbids sharing POTCARs");
    expect(results.stdout).toContain("left out WAVECAR: not a VASP output or input the rebuild reads");
    expect(results.stdout).toMatch(/results pull request #3 \(branch results\/round-0001\)/);
    expect(results.stdout).toMatch(/check "relabel-loop: rebuild dry run \(round 1\)" on \w+: success/);
    const committed = git(path.join(ws, "data-repo.git"), "ls-tree", "-r", "--name-only", "results/round-0001", "rounds/0001/labels").trim().split("\n");
    expect(committed).toContain(`rounds/0001/labels/${picked[0].name}/OUTCAR`);
    expect(committed.filter((f) => /WAVECAR|\/POTCAR$/.test(f))).toEqual([]);

    // Merging rebuilds the dataset and submits the train stage; polling follows it to the benchmark.
    const merged = await round("merge", "-w", ws, "3");
    expect(merged.code).toBe(0);
    expect(merged.stdout).toContain("Round 1: dataset rebuilt");
    const polled = await round("poll", "-w", ws, "--wait", "--interval", "0.2");
    expect(polled.code).toBe(0);
    const status = await round("status", "-w", ws);
    expect(status.stdout).toContain("round 1: complete; issue #1, selection #2, results #3");
    expect(git(path.join(ws, "data-repo.git"), "ls-tree", "--name-only", "main", "rounds/0001/benchmark/")).toContain("metrics.json");
  }, 90_000);

  it("carries on in the folder the demo leaves: the next round continues its threads and starts from its dataset", async () => {
    const out = path.join(tmp(), "demo");
    const original = process.env.PATH;
    process.env.PATH = (original ?? "").split(path.delimiter).filter((d) => !existsSync(path.join(d, "mace_run_train"))).join(path.delimiter);
    try {
      expect((await runCommand(runDemo, "-o", out)).code).toBe(0);
    } finally {
      process.env.PATH = original;
    }
    const opened = await round("open", "-w", out, "--select", "1", "--title", "Round 2");
    expect(opened.code).toBe(0);
    expect(opened.stdout).toContain("issue #4 opened");
    expect(opened.stdout).toContain("round 2: selection pull request #5");
    expect(opened.stdout).toContain("seeded by 16 labelled structures");
    // The one run the demo's round left unlabelled.
    const labelled = new Set(selectedIds(out, 1));
    expect(selectedIds(out, 2)).toEqual(runs.filter((r) => !labelled.has(r.candidateId)).map((r) => r.candidateId));
    const forge = JSON.parse(readFileSync(path.join(out, "forge/forge.json"), "utf8")) as { threads: { number: number }[] };
    expect(forge.threads.map((t) => t.number)).toEqual([1, 2, 3, 4, 5]);
  }, 60_000);

  it("refuses to merge results whose check failed unless --force, and commits nothing for a folder that is no run", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    // Default fractions (0.8/0.1/0.1) leave a split empty with four runs: the check fails.
    expect((await round("init", "-w", ws, "--config", configFile(dir, { dataset: { allow_mixed_settings: true } }), "--pool", pool)).code).toBe(0);
    expect((await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz")).code).toBe(0);
    expect((await round("merge", "-w", ws, "2")).code).toBe(0);
    const picked = selectedIds(ws).map(runFor);

    const notARun = path.join(dir, "empty");
    cpSync(path.join(SAMPLE_VASP, "..", "PROVENANCE.md"), path.join(notARun, "PROVENANCE.md"));
    const refused = await round("results", "-w", ws, "--round", "1", picked[0].dir, notARun);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`error: ${notARun}: no VASP run folder`);
    expect(refused.stderr).toContain("nothing was committed");
    expect(git(path.join(ws, "data-repo.git"), "branch", "--list", "results/*")).toBe("");

    const results = await round("results", "-w", ws, "--round", "1", ...picked.map((r) => r.dir));
    expect(results.code).toBe(1);
    expect(results.stdout).toMatch(/check "[^"]+" on \w+: failure: Round 1: the rebuild would fail/);
    const blocked = await round("merge", "-w", ws, "3");
    expect(blocked.code).toBe(2);
    expect(blocked.stderr).toMatch(/#3: check "relabel-loop: rebuild dry run \(round 1\)" is failure: .*merge anyway with --force/);
    expect(git(path.join(ws, "data-repo.git"), "log", "--format=%s", "main")).not.toContain("Merge pull request #3");
    const forced = await round("merge", "-w", ws, "3", "--force");
    expect(forced.stdout).toContain("#3 merged");
    expect(git(path.join(ws, "data-repo.git"), "log", "--format=%s", "main")).toContain("Merge pull request #3");
  }, 60_000);

  it("works on a data repository of the team's (--repo), and leaves no workspace behind when it cannot reach one", async () => {
    const dir = tmp();
    const team = initBare(path.join(dir, "team-data.git"));
    pushFiles(team, "main", { ".github/relabel.yml": readFileSync(configFile(dir), "utf8"), "pools/sample-runs.extxyz": { copy: pool } });
    const ws = path.join(dir, "ws");
    const init = await round("init", "-w", ws, "--repo", team);
    expect(init.code).toBe(0);
    expect(init.stdout).not.toContain("committed");
    const opened = await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz");
    expect(opened.code).toBe(0);
    expect(opened.stdout).toContain("round 1: selection pull request #2");
    expect(show(team, "relabel/round-0001-selection", "rounds/0001/selection/ranking.json")).toContain('"selection_size": 4');
    expect((await round("status", "-w", ws)).stdout).toContain(`data repository: ${team} (local/team-data)`);

    const missing = path.join(dir, "nowhere.git");
    const unreachable = await round("init", "-w", path.join(dir, "ws2"), "--repo", missing);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^error: git ls-remote with the remote failed: fatal: '.*nowhere\.git' does not appear to be a git repository.*\n$/);
    expect(existsSync(path.join(dir, "ws2"))).toBe(false);
    const empty = path.join(dir, "ws3");
    mkdirSync(empty);
    expect((await round("init", "-w", empty, "--repo", missing)).code).toBe(1);
    expect(readdirSync(empty)).toEqual([]);
  }, 60_000);

  it("holds one command at a time per workspace, and takes over a lock whose process has ended", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    expect((await round("init", "-w", ws, "--config", configFile(dir))).code).toBe(0);
    const sleeper = spawn("sleep", ["30"]);
    try {
      writeFileSync(path.join(ws, ".lock"), `${sleeper.pid}\n`);
      const busy = await round("status", "-w", ws);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toBe(`relabel round: ${ws} is in use by another relabel command (pid ${sleeper.pid}); run this one when it has ended\n`);
    } finally {
      sleeper.kill();
    }
    await new Promise((resolve) => sleeper.once("exit", resolve));
    const status = await round("status", "-w", ws);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain("no rounds yet");
    expect(existsSync(path.join(ws, ".lock"))).toBe(false);
  });

  it("answers bad use and a damaged record with one line each", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    expect((await round("status", "-w", dir)).stderr).toBe(`relabel round: ${dir} is not a relabel workspace (no workspace.json): 'relabel round init -w ${dir}' makes one\n`);
    expect((await round("init", "-w", ws, "--config", configFile(dir))).code).toBe(0);
    expect((await round("init", "-w", ws)).stderr).toBe(`relabel round: ${ws} is a relabel workspace already\n`);
    expect((await round("frobnicate", "-w", ws)).code).toBe(2);
    expect((await round("open", "-w", ws, "--round", "2")).stderr).toBe("relabel round: --round does not go with 'relabel round open'\n");
    expect((await round("open", "-w", ws, "--select", "0")).stderr).toBe('relabel round: --select: expected a whole number of at least 1 (got "0")\n');
    expect((await round("open", "-w", ws, "--weights", "div=x")).stderr).toMatch(/^relabel round: --weights: expected weights as div=W,dis=W/);
    expect((await round("merge", "-w", ws, "7")).stderr).toBe("relabel round: there is no issue or pull request #7 in local/data-repo ('relabel round status' lists them)\n");
    expect((await round("results", "-w", ws, "--round", "1", SAMPLE_VASP)).stderr).toBe("relabel round: there is no round 1 in local/data-repo ('relabel round status' lists the rounds)\n");
    const bad = path.join(dir, "bad.yml");
    writeFileSync(bad, "selection: {select: many}\n");
    const refusedConfig = await round("init", "-w", path.join(dir, "ws2"), "--config", bad);
    expect(refusedConfig.code).toBe(1);
    expect(refusedConfig.stderr).toMatch(new RegExp(`^error: ${bad}: selection\\.select: .+\\n$`));
    mkdirSync(path.join(ws, "forge"), { recursive: true });
    writeFileSync(path.join(ws, "forge", "forge.json"), '{"threads": [{"number": "one"}], "checks": []}\n');
    const damaged = await round("status", "-w", ws);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toBe(`error: ${path.join(ws, "forge", "forge.json")}: threads.0.number: not a record of relabel's local threads: Invalid input: expected number, received string\n`);
  });
});
