import { accessSync, constants, existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseRoundManifest, roundPaths, type RoundManifest } from "../../core/app/manifest.js";
import { parseRankingJson } from "../../core/app/ranking-json.js";
import { counted } from "../../core/counted.js";
import { UsageError } from "../../core/errors.js";
import { isOpen, jobStateText, lastAttempt } from "../../core/exec/ledger.js";
import { shellQuote } from "../../core/stage/render.js";
import { Ledger } from "../../ledger/ledger.js";
import type { LocalForge } from "../../workflow/local-forge.js";
import { mergePullRequest, openRoundIssue, postComment, resultsRuns, roundJobs, submitResults } from "../../workflow/local-commands.js";
import { createWorkspace, openWorkspace, WORKSPACE_REPO, type Workspace } from "../../workflow/local-workspace.js";
import { recordedRuns, writeInitialStructurePool, type RecordedRun } from "../../workflow/recorded-runs.js";
import { helpText, parseCommand, type CommandSpec } from "../args.js";
import { stringify as stringifyYaml } from "yaml";

export const demoSpec = {
  name: "demo",
  summary: "Run one complete active-learning round on a local git data repository with the bundled real sample data.",
  usage: "relabel demo [-o DIR]",
  help: `Runs the GitHub App's round workflow without GitHub: a bare git repository under DIR is the data repository
(the ledger), and issues, pull requests, comments and check runs are recorded as Markdown under DIR/forge.

  1. pool: the initial structures (first DFT ionic step) of the bundled VASP runs in examples/sample-data
     (see its PROVENANCE.md), one candidate per run
  2. a round issue opens the round: ranking, selection branch and pull request, summary comment
  3. merging the selection pull request freezes the selection
  4. the "DFT" step is REPLAYED, not computed: the recorded VASP run folder of each selected structure is copied
     into rounds/0001/labels/ on a results branch; its pull request gets the dry-run check of the rebuild
  5. merging it rebuilds the dataset and renders the MACE training stage
  6. with mace_run_train on PATH the stage runs through the local executor, then evaluation and the benchmark;
     without it the demo stops there and prints the exact command and directory

options:
  -o, --output DIR   where to work (default: demo-out); a DIR from an earlier demo is replaced, any other
                     existing non-empty DIR is refused
  -h, --help         show this help`,
  options: { output: { type: "string", short: "o" } },
} satisfies CommandSpec;

export const SAMPLE_DATA = fileURLToPath(new URL("../../../examples/sample-data", import.meta.url));

/** Marks a directory as made by the demo, so a rerun may replace it. */
const MARKER = ".relabel-demo";
/** What the earlier demo (convert + inspect) left in its output directory. */
const OLD_DEMO_FILES = new Set(["sample-labels.extxyz"]);

const say = (text = "") => process.stdout.write(`${text}\n`);

async function prepareOutput(out: string): Promise<void> {
  if (existsSync(out)) {
    const entries = await readdir(out);
    const ours = entries.includes(MARKER) || (entries.length > 0 && entries.every((e) => OLD_DEMO_FILES.has(e)));
    if (entries.length > 0 && !ours) throw new UsageError(`${out} exists and was not made by relabel demo; choose another -o DIR (nothing was changed)`);
    if (ours) await rm(out, { recursive: true, force: true });
  }
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, MARKER), "made by relabel demo; the next relabel demo with this -o replaces this directory\n");
}

/** The first executable `name` on PATH, or null. */
function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** The config the demo commits, in YAML's JSON form (the local flow reads JSON). */
function demoConfig(runsRoot: string): string {
  const config = {
    pool: { paths: ["pools/sample-runs.extxyz"] },
    selection: { select: 4 },
    // The bundled runs are different systems computed with different settings (ENCUT 350-800 eV): allowed here
    // so that the demo can build a dataset at all; a real project keeps one DFT setup.
    // Seed 12 puts at least one of the four selected runs in each split.
    dataset: { allow_mixed_settings: true, fractions: { train: 0.5, valid: 0.25, test: 0.25 }, seed: 12 },
    stage: { device: "cpu" },
    executor: "local",
    executors: { local: { backend: "local", remote_root: runsRoot } },
    comment_pacing_ms: 0,
  };
  return `# relabel-loop demo configuration (see templates/relabel.yml for every key)\n${stringifyYaml(config)}`;
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseCommand(demoSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(demoSpec));
    return 0;
  }
  const out = path.resolve(values.output ?? "demo-out");
  const show = (p: string) => path.relative(process.cwd(), p) || ".";
  await prepareOutput(out);
  const vasp = path.join(SAMPLE_DATA, "vasp");
  const runs = await recordedRuns(vasp);

  // 1. The data repository: config and pool. The folder is a workspace: `relabel round -w DIR` carries on from here.
  await createWorkspace(out);
  const bare = path.join(out, WORKSPACE_REPO);
  const pool = path.join(out, "sample-runs.extxyz");
  await writeInitialStructurePool(runs, pool);
  const snapshot = path.join(out, "data-repo");
  const ws = await openWorkspace(out, {
    link: (file) => path.join(snapshot, file),
    autoSubmit: false,
    author: { name: "relabel demo", email: "demo@relabel.invalid" },
  });
  try {
    return await runRound(ws, { runs, vasp, bare, pool, snapshot, show });
  } finally {
    await ws.close();
  }
}

async function runRound(ws: Workspace, o: { runs: RecordedRun[]; vasp: string; bare: string; pool: string; snapshot: string; show: (p: string) => string }): Promise<number> {
  const { ledger, forge, workflow, stateDir, messages } = ws;
  const { runs, vasp, bare, pool, snapshot, show } = o;
  const out = ws.dir;
  await ledger.commit({
    message: "Data repository for the relabel-loop demo",
    files: [
      { path: ".github/relabel.yml", content: demoConfig(path.join(stateDir, "runs")) },
      { path: "pools/sample-runs.extxyz", content: await readFile(pool) },
      {
        path: "pools/README.md",
        content:
          `sample-runs.extxyz: the initial structure (first DFT ionic step: species, positions, cell) of each bundled VASP run ` +
          `in relabel-loop's examples/sample-data/vasp (provenance: examples/sample-data/PROVENANCE.md), one frame per run, no labels.\n`,
      },
    ],
  });
  say(`== 1. data repository (a bare git repository: the ledger) at ${show(bare)}`);
  say(`   pool: pools/sample-runs.extxyz = the initial structures of the ${runs.length} bundled VASP runs (${show(vasp)}):`);
  for (const r of runs) say(`     ${r.candidateId}  ${r.name}`);

  // 2. The round issue.
  const { issue } = await openRoundIssue(ws, "Round 1", { pool: ["pools/sample-runs.extxyz"], select: 4, committee: "none" });
  let manifest = await readManifest(ledger, 1);
  const rankingText = await ledger.read(roundPaths(1).rankingJson, manifest.branches.selection);
  if (rankingText === null || manifest.prs.selection === undefined) return stop(messages, forge, issue);
  const ranking = parseRankingJson(rankingText.toString("utf8"), roundPaths(1).rankingJson);
  if (!ranking.ok) throw new Error(ranking.problem);
  say(`\n== 2. round issue #${issue} opened round 1: ${ranking.ranking.selection_size} of ${runs.length} candidates selected`);
  say(`   rule: ${ranking.ranking.rule}`);
  for (const s of ranking.ranking.selected) say(`   ${String(s.rank).padStart(3)}  ${s.candidate_id}  ${s.formula.padEnd(8)} ${runs.find((r) => r.candidateId === s.candidate_id)?.name ?? "?"}`);
  say(`   selection pull request #${manifest.prs.selection} (branch ${manifest.branches.selection})`);

  // 3. Merge the selection.
  const selectionPr = await mergePullRequest(ws, manifest.prs.selection);
  manifest = await readManifest(ledger, 1);
  if (manifest.state !== "labeling") return stop(messages, forge, issue);
  say(`\n== 3. selection pull request #${selectionPr.number} merged: selection frozen in ${manifest.commits.frozen?.slice(0, 12)}`);

  // 4. The DFT step, replayed from the recorded runs.
  say(`\n== 4. the "DFT" step is REPLAYED, not computed: for each selected structure, the recorded VASP run whose`);
  say(`   initial structure it is (same candidate_id) is copied unchanged into ${roundPaths(1).labels}/`);
  const replayed: string[] = [];
  for (const s of ranking.ranking.selected) {
    const run = runs.find((r) => r.candidateId === s.candidate_id);
    if (!run) throw new Error(`no recorded run for candidate ${s.candidate_id}`);
    replayed.push(run.dir);
    say(`   ${s.candidate_id} <- ${show(run.dir)}`);
  }
  const { runs: labelRuns, problems } = await resultsRuns(replayed);
  if (problems.length > 0) throw new Error(problems.join("; "));
  const { pr: resultsNumber } = await submitResults(ws, 1, labelRuns);
  const check = forge.checkRuns().at(-1);
  say(`   results pull request #${resultsNumber}: check "${check?.name}" ${check?.conclusion}: ${check?.title}`);
  if (check?.conclusion !== "success") return stop(messages, forge, resultsNumber);

  // 5. Merge the results: dataset rebuilt, train stage rendered.
  await mergePullRequest(ws, resultsNumber);
  manifest = await readManifest(ledger, 1);
  if (!manifest.finished_steps.includes("dataset")) return stop(messages, forge, resultsNumber);
  const summary = JSON.parse((await ledger.read("datasets/current/summary.json"))!.toString("utf8")) as { splits: Record<string, { frames: number; runs: number }> };
  say(`\n== 5. results pull request #${resultsNumber} merged: dataset rebuilt in ${manifest.commits.dataset?.slice(0, 12)}`);
  say(`   ${["train", "valid", "test"].map((s) => `${s} ${counted(summary.splits[s].frames, "frame")} (${counted(summary.splits[s].runs, "run")})`).join(", ")}`);
  const stageDir = path.join(stateDir, "rounds", "0001", "stages", "train");
  const params = JSON.parse(await readFile(path.join(stageDir, "params.json"), "utf8")) as { commands: string[][] };

  // 6. Training, evaluation, benchmark: only with MACE installed.
  const mace = onPath("mace_run_train");
  if (mace === null) {
    await ledger.sync();
    await ledger.exportTree(ledger.defaultBranch, snapshot, []);
    say(`\n== 6. MACE is needed from here: mace_run_train is not on PATH, so nothing was trained (the round stays in "${manifest.state}").`);
    say(`   the rendered train stage (with its data): ${show(stageDir)}`);
    say(`   its command (run.sh runs it and records status.json, logs/ and FINISHED):`);
    for (const c of params.commands) say(`     ${c.map(shellQuote).join(" ")}`);
    say(`   to train by hand:  cd ${show(stageDir)} && bash run.sh`);
    say(`   or install MACE (pip install mace-torch) and run the demo again: it then submits the stage through the local executor,`);
    say(`   evaluates the model on the test split and writes the benchmark. The stage fine-tunes the foundation model mh-1, which MACE downloads.`);
    printArtifacts(show, snapshot, out, forge, manifest, stageDir, issue, resultsNumber);
    return 0;
  }
  say(`\n== 6. training with ${mace} through the local executor (runs under ${show(path.join(stateDir, "runs"))})`);
  await postComment(ws, resultsNumber, "/relabel submit");
  let seen = "";
  for (;;) {
    manifest = await readManifest(ledger, 1);
    const jobs = (await roundJobs(ws, [manifest]))[0]?.jobs ?? [];
    const line = jobs.map(jobStateText).join(", ");
    if (line !== seen) say(`   ${new Date().toISOString().slice(11, 19)} ${line || "no jobs yet"}`);
    seen = line;
    if (manifest.state === "complete" || manifest.state === "failed" || (jobs.length > 0 && !jobs.some(isOpen) && jobs.some((j) => lastAttempt(j).outcome !== "succeeded"))) break;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await workflow.poll();
  }
  await ledger.sync();
  await ledger.exportTree(ledger.defaultBranch, snapshot, []);
  if (manifest.state !== "complete") {
    say(`   the round stopped: ${manifest.failure?.message ?? manifest.state}`);
    printArtifacts(show, snapshot, out, forge, manifest, stageDir, issue, resultsNumber);
    return 1;
  }
  say(`   round 1 complete: benchmark in ${roundPaths(1).benchmark}/ (commit ${manifest.commits.benchmark?.slice(0, 12)})`);
  printArtifacts(show, snapshot, out, forge, manifest, stageDir, issue, resultsNumber);
  return 0;
}

async function readManifest(ledger: Ledger, round: number): Promise<RoundManifest> {
  await ledger.sync();
  const file = roundPaths(round).manifest;
  const text = await ledger.read(file);
  if (text === null) throw new Error(`${file} was not written`);
  const parsed = parseRoundManifest(text.toString("utf8"), file);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.manifest;
}

/** The workflow refused or failed a step: say where it said why. */
function stop(messages: string[], forge: LocalForge, thread: number): number {
  for (const m of messages) process.stderr.write(`relabel demo: ${m}\n`);
  process.stderr.write(`relabel demo: the round stopped; the reason is in ${forge.threadFile(thread)}\n`);
  return 1;
}

function printArtifacts(show: (p: string) => string, snapshot: string, out: string, forge: LocalForge, m: RoundManifest, stageDir: string, issue: number, results: number): void {
  const p = roundPaths(m.round);
  const at = (file: string) => show(path.join(snapshot, file));
  const rows: [string, string][] = [
    ["data repository (bare git; clone it)", show(path.join(out, "data-repo.git"))],
    ["its main branch, exported", show(snapshot)],
    ["round manifest", at(p.manifest)],
    ["ranking (JSON, CSV)", `${at(p.rankingJson)}, ${at(p.rankingCsv)}`],
    ["selected structures", `${at(p.selectedExtxyz)}, ${at(p.poscars)}/`],
    ["labels (recorded VASP runs)", `${at(p.labels)}/`],
    ["dataset summary", `${at(p.datasetSummary)}, ${at(p.datasetSplit)}`],
    ["dataset files", `${at("datasets/current")}/ (train/valid/test.extxyz)`],
    ["train stage (run.sh, params.json, stage.json)", `${at(`${p.stages}/train`)}/`],
    ["train stage with its data", `${show(stageDir)}/`],
  ];
  if (m.finished_steps.includes("jobs")) rows.push(["jobs", at(p.jobs)], ["eval stage", `${at(`${p.stages}/eval`)}/`]);
  if (m.finished_steps.includes("benchmark")) rows.push(["benchmark (metrics.json, report.md, plots)", `${at(p.benchmark)}/`]);
  rows.push(
    ["round issue thread", show(forge.threadFile(issue))],
    ["results pull request thread", show(forge.threadFile(results))],
    ["event log", at("ledger/events.jsonl")],
  );
  const width = Math.max(...rows.map(([k]) => k.length));
  say("\nartifacts:");
  for (const [k, v] of rows) say(`  ${k.padEnd(width)}  ${v}`);
  say(`\nthe folder is a workspace of relabel round: 'relabel round status -w ${show(out)}' shows it, 'relabel round open -w ${show(out)}' starts the next round`);
}
