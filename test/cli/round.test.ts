/**
 * `relabel round`: the App's round workflow on a local git data repository, one command per event, each a fresh
 * start from what the workspace recorded (threads in forge.json, the ledger in a real bare repository). The
 * pool is the initial structures of the bundled real VASP runs, and the labels are those runs. With the MACE test
 * doubles on PATH (stand-ins, not results) the local executor runs the stages.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
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

/** The same, with no mace_run_train on PATH: a train stage submitted this way fails (exit 127). */
async function roundWithoutMace(...argv: string[]): Promise<CliResult> {
  const original = process.env.PATH;
  process.env.PATH = (original ?? "").split(path.delimiter).filter((d) => d !== "" && !existsSync(path.join(d, "mace_run_train"))).join(path.delimiter);
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

/** A team's data repository (config and pool) with a workspace on it for me and one for a colleague. */
async function twoWorkspacesOnOneRepository(): Promise<{ team: string; mine: string; colleague: string }> {
  const dir = tmp();
  const team = initBare(path.join(dir, "team-data.git"));
  pushFiles(team, "main", { ".github/relabel.yml": readFileSync(configFile(dir), "utf8"), "pools/sample-runs.extxyz": { copy: pool } });
  const [mine, colleague] = [path.join(dir, "mine"), path.join(dir, "colleague")];
  for (const ws of [mine, colleague]) expect((await round("init", "-w", ws, "--repo", team)).code).toBe(0);
  return { team, mine, colleague };
}

describe("relabel round", () => {
  it("runs a whole round, one command per event, from a new data repository to the benchmark", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    // Two models, so that the next round can rank with their committee.
    const init = await round("init", "-w", ws, "--config", configFile(dir, { stage: { device: "cpu", committee: 2 } }), "--pool", pool);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("committed pools/sample-runs.extxyz");

    const opened = await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz");
    expect(opened.stderr).toBe("");
    expect(opened.code).toBe(0);
    expect(opened.stdout).toContain("issue #1 opened");
    expect(opened.stdout).toContain("round 1: selection pull request #2 on branch relabel/round-0001-selection");
    // The App's answer, as a reader sees it: the hidden markers are not printed.
    expect(opened.stdout).toContain("### Round 1: selection");
    // The whole summary, down to the last of the top picks.
    expect(opened.stdout).toMatch(/\n {2}\| 4 \| `\w{20}` \|/);
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

    // The next round's committee is this one's models: they predict the pool first, and a poll brings the ranking.
    const next = await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz", "--select", "1", "--committee", "previous-round");
    expect(next.code).toBe(0);
    expect(next.stdout).toContain("round 2: waiting for the previous round's models to predict the pool (stage pool-eval); the selection pull request follows");
    expect(next.stdout).toContain(`next: relabel round poll -w ${ws} --wait`);
    const ranked = await round("poll", "-w", ws, "--wait", "--interval", "0.2");
    expect(ranked.code).toBe(0);
    expect(ranked.stdout).toContain(`next: review the selection (${path.join(ws, "forge", "threads", "5.md")}), then: relabel round merge -w ${ws} 5`);
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
    expect((await round("open", "-w", ws, "--select", "0")).stderr).toBe('relabel round: --select must be a positive integer (got "0")\n');
    expect((await round("poll", "-w", ws, "--interval", "-5")).stderr).toBe('relabel round: --interval must be a positive number (got "-5")\n');
    expect((await round("open", "-w", ws, "--weights", "div=x")).stderr).toMatch(/^relabel round: --weights: expected weights as div=W,dis=W/);
    expect((await round("merge", "-w", ws, "7")).stderr).toBe("relabel round: there is no issue or pull request #7 in local/data-repo ('relabel round status' lists them)\n");
    expect((await round("results", "-w", ws, "--round", "1", SAMPLE_VASP)).stderr).toBe("relabel round: there is no round 1 in local/data-repo ('relabel round status' lists the rounds)\n");
    // Pool and committee paths the data repository does not have open no issue (a local one could not be edited).
    const notPushed = await round("open", "-w", ws, "--pool", "pools/missing.extxyz", "--pool", "pools/md/", "--committee-file", "preds/a.xyz", "--committee-file", "preds/b.xyz");
    expect(notPushed.code).toBe(1);
    const bare = path.join(ws, "data-repo.git");
    expect(notPushed.stderr).toBe(`error: pools/missing.extxyz, pools/md/, preds/a.xyz, preds/b.xyz: not in the data repository (main of ${bare}), so no round was opened: add them in a clone (git clone ${bare}, copy them there, git add, git commit, git push), then open the round again\n`);
    expect(existsSync(path.join(ws, "forge", "threads"))).toBe(false);
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
  it("exits 1 when the App does not carry a comment's command out, and prints its answer", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    expect((await round("init", "-w", ws, "--config", configFile(dir), "--pool", pool)).code).toBe(0);
    expect((await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz", "--select", "1")).code).toBe(0);

    const unknown = await round("comment", "-w", ws, "1", "/relabel rnak");
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain("Unknown command `/relabel rnak`. Did you mean `/relabel rank`?");
    expect(unknown.stderr).toBe("relabel round: #1: /relabel rnak was not carried out (replied: usage); the App's answer is above\n");
    const badOption = await round("comment", "-w", ws, "1", "/relabel rank --slect 2");
    expect(badOption.code).toBe(1);
    expect(badOption.stdout).toContain('unknown option "--slect" (did you mean --select?)');
    const noRound = await round("comment", "-w", ws, "2", "/relabel rebuild --dry-run");
    expect(noRound.code).toBe(1);
    expect(noRound.stdout).toContain("Round 1: no open results PR to check (the round is selection-review).");

    const carriedOut = await round("comment", "-w", ws, "1", "/relabel status");
    expect(carriedOut.code).toBe(0);
    expect(carriedOut.stderr).toBe("");
    const plain = await round("comment", "-w", ws, "1", "looks good to me");
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain("#1: the comment has no line starting with /relabel, so the App does nothing with it");

    // Not allowed in this state: the selection is frozen once its pull request is merged.
    expect((await round("merge", "-w", ws, "2")).code).toBe(0);
    const frozen = await round("comment", "-w", ws, "1", "/relabel rank --select 2");
    expect(frozen.code).toBe(1);
    expect(frozen.stdout).toContain("Round 1: the selection is frozen");
    expect(frozen.stderr).toBe("relabel round: #1: /relabel rank --select 2 was not carried out (refused: selection frozen); the App's answer is above\n");
  }, 30_000);

  it("counts a check's latest run, so a results PR whose check passed on a re-run merges; a comment's failing dry run exits 1; a config that does not parse stops the re-run", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    const bare = path.join(ws, "data-repo.git");
    // Default fractions leave a split empty with four runs: the first check fails.
    expect((await round("init", "-w", ws, "--config", configFile(dir, { dataset: { allow_mixed_settings: true } }), "--pool", pool)).code).toBe(0);
    expect((await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz")).code).toBe(0);
    const frozen = await round("merge", "-w", ws, "2");
    expect(frozen.stdout).toContain(`next: run VASP in each folder of rounds/0001/selection/poscars/ (git clone ${bare}), then: relabel round results -w ${ws} --round 1 RUN_DIR...`);
    expect((await round("results", "-w", ws, "--round", "1", ...selectedIds(ws).map((id) => runFor(id).dir))).code).toBe(1);
    // The same dry run asked for in a comment fails the step too.
    const dryRun = await round("comment", "-w", ws, "3", "/relabel rebuild --dry-run");
    expect(dryRun.code).toBe(1);
    expect(dryRun.stdout).toMatch(/check "relabel-loop: rebuild dry run \(round 1\)" on \w+: failure/);
    expect(dryRun.stderr).toBe("relabel round: #3: /relabel rebuild --dry-run: the check did not pass (failure); its report is above\n");

    pushFiles(bare, "main", { ".github/relabel.yml": "selection: {select: many}\n" });
    const unparsed = await round("check", "-w", ws, "3");
    expect(unparsed.code).toBe(1);
    expect(unparsed.stderr).toMatch(/^error: \.github\/relabel\.yml: on main: does not parse, so the App cannot do this step: selection\.select: .+\n$/);
    expect(readdirSync(path.join(ws, "forge", "checks"))).toEqual(["1.md", "2.md"]);

    pushFiles(bare, "main", { ".github/relabel.yml": readFileSync(configFile(dir), "utf8") });
    const rerun = await round("check", "-w", ws, "3");
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toMatch(/check "relabel-loop: rebuild dry run \(round 1\)" on \w+: success/);
    expect(rerun.stdout).toContain(`next: relabel round merge -w ${ws} 3`);
    const passing = await round("comment", "-w", ws, "3", "/relabel rebuild --dry-run");
    expect(passing.code).toBe(0);
    expect(passing.stderr).toBe("");
    // Merged without --force; the train stage, submitted with no MACE on PATH, fails, and the poll says so.
    const merged = await roundWithoutMace("merge", "-w", ws, "3");
    expect(merged.code).toBe(0);
    expect(merged.stdout).toContain(`next: relabel round poll -w ${ws} --wait`);
    const polled = await roundWithoutMace("poll", "-w", ws, "--wait", "--interval", "0.2");
    expect(polled.code).toBe(1);
    expect(polled.stderr).toMatch(/^relabel round: round 1 stopped: job \d+ \(train\) failed: .*exit code 127.*\(.*threads\/1\.md\)\n$/);
    expect((await roundWithoutMace("poll", "-w", ws)).code).toBe(0);
  }, 30_000);

  it("copies what a run folder holds, not less: a run whose outputs are links, or a file too large to read, stops it; --to replaces a folder of the same name", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    const bare = path.join(ws, "data-repo.git");
    expect((await round("init", "-w", ws, "--config", configFile(dir), "--pool", pool)).code).toBe(0);
    expect((await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz")).code).toBe(0);
    expect((await round("merge", "-w", ws, "2")).code).toBe(0);
    const [first, ...others] = selectedIds(ws).map(runFor);
    const firstFiles = readdirSync(first.dir).filter((f) => /^(vasprun\.xml|OUTCAR)$/.test(f));

    const linked = path.join(dir, "linked", first.name);
    mkdirSync(linked, { recursive: true });
    for (const f of firstFiles) symlinkSync(path.join(first.dir, f), path.join(linked, f));
    const refused = await round("results", "-w", ws, "--round", "1", linked, ...others.map((r) => r.dir));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`error: ${linked}: no vasprun.xml or OUTCAR to copy (${firstFiles.join(", ")}: a link, and links are never copied`);

    const huge = path.join(dir, "huge", first.name);
    cpSync(first.dir, huge, { recursive: true });
    writeFileSync(path.join(huge, "XDATCAR"), "");
    truncateSync(path.join(huge, "XDATCAR"), 2 ** 31 + 1); // sparse: never read
    const tooLarge = await round("results", "-w", ws, "--round", "1", huge);
    expect(tooLarge.code).toBe(1);
    expect(tooLarge.stderr).toContain(`error: ${path.join(huge, "XDATCAR")}: 2.0 GiB, too large for the data repository`);
    expect(git(bare, "branch", "--list", "results/*")).toBe("");

    // The first copy holds a gzipped OUTCAR; the second a plain one and a large XDATCAR, which goes in gzipped.
    const gzipped = path.join(dir, "first", first.name);
    mkdirSync(gzipped, { recursive: true });
    writeFileSync(path.join(gzipped, "OUTCAR.gz"), gzipSync(readFileSync(path.join(first.dir, "OUTCAR"))));
    expect((await round("results", "-w", ws, "--round", "1", gzipped, ...others.map((r) => r.dir))).code).toBe(0);
    const again = path.join(dir, "again", first.name);
    mkdirSync(again, { recursive: true });
    cpSync(path.join(first.dir, "OUTCAR"), path.join(again, "OUTCAR"));
    writeFileSync(path.join(again, "XDATCAR"), Buffer.alloc(50 * 1024 * 1024 + 1, "0\n"));
    const replaced = await round("results", "-w", ws, "--round", "1", "--to", "3", again);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toContain(`${again} -> rounds/0001/labels/${first.name}/: OUTCAR, XDATCAR.gz\n  replaces the folder of that name on the branch: removed OUTCAR.gz\n`);
    expect(git(bare, "ls-tree", "-r", "--name-only", "results/round-0001", `rounds/0001/labels/${first.name}`).trim().split("\n")).toEqual([
      `rounds/0001/labels/${first.name}/OUTCAR`,
      `rounds/0001/labels/${first.name}/XDATCAR.gz`,
    ]);
  }, 30_000);

  it("starts over on a results branch that a killed 'results' pushed without its pull request, and leaves any other branch alone", async () => {
    const dir = tmp();
    const ws = path.join(dir, "ws");
    const bare = path.join(ws, "data-repo.git");
    expect((await round("init", "-w", ws, "--config", configFile(dir), "--pool", pool)).code).toBe(0);
    expect((await round("open", "-w", ws, "--pool", "pools/sample-runs.extxyz", "--select", "1")).code).toBe(0);
    expect((await round("merge", "-w", ws, "2")).code).toBe(0);
    const picked = runFor(selectedIds(ws)[0]);
    const stale = path.join(dir, "stale-run");
    cpSync(picked.dir, stale, { recursive: true });

    // The data repository holds a results branch up once its push is received; the command is killed before it hears back.
    const killedDuringPush = async (): Promise<void> => {
      const received = path.join(dir, "results-received");
      rmSync(received, { force: true });
      const hook = path.join(bare, "hooks", "post-receive");
      writeFileSync(hook, `#!/bin/sh\nif grep -q ' refs/heads/results/'; then touch '${received}'; sleep 30; fi\n`, { mode: 0o755 });
      const child = spawn(process.execPath, [path.resolve(import.meta.dirname, "../../bin/relabel.js"), "round", "results", "-w", ws, "--round", "1", stale], { detached: true, stdio: "ignore" });
      // Reaped before the next command, which would otherwise find the workspace's lock held by a live pid.
      const ended = new Promise((resolve) => child.once("exit", resolve));
      try {
        for (let i = 0; i < 400 && !existsSync(received); i++) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(existsSync(received)).toBe(true);
      } finally {
        process.kill(-child.pid!, "SIGKILL");
        await ended;
        rmSync(hook);
      }
    };

    await killedDuringPush();
    expect(git(bare, "branch", "--list", "results/*")).toBe("  results/round-0001\n");
    const again = await round("results", "-w", ws, "--round", "1", picked.dir);
    expect(again.stdout).toContain("results/round-0001: started over (a 'relabel round results' stopped before opening its pull request had left it)");
    expect(again.stdout).toContain("results pull request #3 (branch results/round-0001)");
    expect(git(bare, "ls-tree", "--name-only", "results/round-0001", "rounds/0001/labels/")).toBe(`rounds/0001/labels/${picked.name}\n`);
    expect(git(bare, "branch", "--list", "results/*")).toBe("  results/round-0001\n");

    // Stopped again (results/round-0001 is #3's now); someone else pushes onto that branch before the next run:
    // it is no longer the commit this workspace pushed, so it stays as it is.
    await killedDuringPush();
    const theirs = pushFiles(bare, "results/round-0001-2", { "notes.txt": "a colleague's\n" }).trim();
    const next = await round("results", "-w", ws, "--round", "1", picked.dir);
    expect(next.stdout).toContain("results pull request #4 (branch results/round-0001-3)");
    expect(next.stdout).not.toContain("started over");
    expect(git(bare, "rev-parse", "results/round-0001-2").trim()).toBe(theirs);
    expect(git(bare, "ls-tree", "--name-only", "results/round-0001", "rounds/0001/labels/")).toBe(`rounds/0001/labels/${picked.name}\n`);
  }, 60_000);

  it("numbers threads above the data repository's rounds, and leaves a round whose threads are in another workspace alone", async () => {
    const { team, mine, colleague } = await twoWorkspacesOnOneRepository();
    // The colleague's round 1: issue #1, selection PR #2, in their workspace only.
    expect((await round("open", "-w", colleague, "--pool", "pools/sample-runs.extxyz", "--select", "1")).code).toBe(0);

    const status = await round("status", "-w", mine);
    expect(status.stdout).toContain("round 1: selection-review; issue #1, selection #2 (threads not in this workspace: opened from another workspace, or on GitHub)");
    const poll = await round("poll", "-w", mine);
    expect(poll.code).toBe(2);
    expect(poll.stderr).toBe("relabel round: round 1 (issue #1) is in progress with threads that are not in this workspace (opened from another workspace, or on GitHub): poll there; a poll here would act on it with nowhere to report\n");
    expect(show(team, "main", "rounds/0001/round.json")).toContain('"state": "selection-review"');

    const opened = await round("open", "-w", mine, "--pool", "pools/sample-runs.extxyz", "--select", "1");
    expect(opened.code).toBe(0);
    expect(opened.stdout).toContain("issue #3 opened");
    expect(opened.stdout).toContain("round 2: selection pull request #4");
    expect((await round("merge", "-w", mine, "4")).code).toBe(0);
    expect((await round("status", "-w", colleague)).stdout).toContain("round 2: labeling; issue #3, selection #4 (threads not in this workspace");
  }, 30_000);

  it("gives two workspaces that open rounds at the same moment thread numbers of their own", async () => {
    const { mine, colleague } = await twoWorkspacesOnOneRepository();
    const cli = path.resolve(import.meta.dirname, "../../bin/relabel.js");
    const open = (ws: string) =>
      new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, "round", "open", "-w", ws, "--pool", "pools/sample-runs.extxyz", "--select", "1"], { stdio: ["ignore", "pipe", "inherit"] });
        let stdout = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.on("close", (code) => resolve({ code, stdout }));
      });
    const results = await Promise.all([open(mine), open(colleague)]);
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    const numbers = results.flatMap((r) => [/issue #(\d+) opened/.exec(r.stdout)![1], /selection pull request #(\d+)/.exec(r.stdout)![1]]).map(Number);
    expect(numbers.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    // Each workspace holds its own round's threads, and a command on them acts on that round.
    for (const ws of [mine, colleague]) {
      const status = await round("status", "-w", ws);
      expect(status.stdout.match(/\(threads not in this workspace/g)).toHaveLength(1);
      const issue = /#(\d+) issue, open/.exec(status.stdout)![1];
      expect((await round("comment", "-w", ws, issue, "/relabel status")).code).toBe(0);
    }
  }, 60_000);

  it("refuses a command on a thread whose number the repository gives to another workspace's round", async () => {
    const { team, mine, colleague } = await twoWorkspacesOnOneRepository();
    // The colleague's round takes #1; an issue #1 here that opened no round came before workspaces claimed their
    // numbers in the repository (an earlier relabel), as its record says.
    expect((await round("open", "-w", colleague, "--pool", "pools/sample-runs.extxyz", "--select", "1")).code).toBe(0);
    const earlierIssue = { number: 1, title: "Active-learning round", body: "", author: "me", labels: ["al-round"], state: "open", reactions: [], comments: [], pull: null };
    mkdirSync(path.join(mine, "forge"), { recursive: true });
    writeFileSync(path.join(mine, "forge", "forge.json"), `${JSON.stringify({ threads: [earlierIssue], checks: [] })}\n`);
    const refused = await round("comment", "-w", mine, "1", "/relabel rank --select 2");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe("relabel round: #1 here is not a thread of round 1, whose threads (issue #1) are in another workspace or on GitHub; the App would take this event as one of round 1\n");
    expect(JSON.parse(show(team, "relabel/round-0001-selection", "rounds/0001/selection/ranking.json")!).selected).toHaveLength(1);
  }, 30_000);

  it("makes a workspace whole or not at all: pool folders, an empty --repo, a path with spaces, a stopped init, form problems", async () => {
    const dir = tmp();
    // A folder is a pool too (pool paths may name folders), committed file by file; the next step's path is quoted for the shell.
    const folder = path.join(dir, "md-pool");
    cpSync(pool, path.join(folder, "a.extxyz"));
    cpSync(pool, path.join(folder, "hot", "b.extxyz"));
    const spaced = path.join(dir, "my ws");
    const init = await round("init", "-w", spaced, "--config", configFile(dir), "--pool", folder);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("  committed pools/md-pool/ (2 files)\n");
    expect(init.stdout).toContain(`next: relabel round open -w '${spaced}' [--pool pools/NAME] [--select N]`);
    expect(git(path.join(spaced, "data-repo.git"), "ls-tree", "-r", "--name-only", "main", "pools").trim().split("\n")).toEqual(["pools/md-pool/a.extxyz", "pools/md-pool/hot/b.extxyz"]);
    // Form problems are refused before an issue is opened (a local issue cannot be edited).
    const form = await round("open", "-w", spaced, "--pool", "/abs/pool.extxyz");
    expect(form.code).toBe(2);
    expect(form.stderr).toBe('relabel round: no round opened: Pool paths: "/abs/pool.extxyz": expected a path relative to the repository root (no leading /)\n');
    expect(existsSync(path.join(spaced, "forge", "threads"))).toBe(false);
    // A pool folder that is in the repository opens its round.
    expect((await round("open", "-w", spaced, "--pool", "pools/md-pool/", "--select", "1")).stdout).toContain("round 1: selection pull request #2");
    // The starter config runs stages under the workspace, which an executor cannot take with a space in it.
    const refused = await round("init", "-w", path.join(dir, "other ws"));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("the starter config would run stages under");
    expect(existsSync(path.join(dir, "other ws"))).toBe(false);

    // An empty repository gets the starter config, so that a round can open on it.
    const empty = initBare(path.join(dir, "empty.git"));
    const ws = path.join(dir, "ws");
    const onEmpty = await round("init", "-w", ws, "--repo", empty, "--pool", pool);
    expect(onEmpty.stdout).toContain("committed .github/relabel.yml");
    expect(show(empty, "main", ".github/relabel.yml")).toContain("backend: local");

    // An init stopped during its first push leaves no workspace.json: the folder is no workspace yet.
    const slow = initBare(path.join(dir, "slow.git"));
    const started = path.join(dir, "push-started");
    writeFileSync(path.join(slow, "hooks", "pre-receive"), `#!/bin/sh\ntouch '${started}'\nsleep 30\n`, { mode: 0o755 });
    const stopped = path.join(dir, "stopped");
    const child = spawn(process.execPath, [path.resolve(import.meta.dirname, "../../bin/relabel.js"), "round", "init", "-w", stopped, "--repo", slow, "--pool", pool], { detached: true, stdio: "ignore" });
    try {
      for (let i = 0; i < 200 && !existsSync(started); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(existsSync(started)).toBe(true);
    } finally {
      process.kill(-child.pid!, "SIGKILL");
    }
    expect(existsSync(path.join(stopped, "workspace.json"))).toBe(false);
    expect((await round("status", "-w", stopped)).stderr).toContain("is not a relabel workspace");
  }, 30_000);
});
