/**
 * What `relabel round` does in a local workspace: the events GitHub would deliver to the App (an issue opened, a
 * comment, a pull request opened or merged, a poller tick), made by the person at the keyboard, and the files a
 * results pull request carries, copied from VASP run folders.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { z } from "zod";
import { CONFIG_FILE, defaultRelabelConfig, parseRelabelConfig, type RelabelConfig } from "../core/app/config.js";
import { parseRoundIssue, roundIssueBody, type RoundIssueFields } from "../core/app/issue-form.js";
import { effectiveState, roundPaths, type RoundManifest } from "../core/app/manifest.js";
import type { JobRecord } from "../core/exec/ledger.js";
import { InputError, UsageError } from "../core/errors.js";
import { readLedger } from "../exec/ledger-file.js";
import { COMPRESSED_ENDING, isRunDir, labelFiles } from "../io/run-files.js";
import { fileError } from "../io/open.js";
import { readJsonFile } from "../io/json-file.js";
import { discoverRuns } from "../io/rundir.js";
import type { LedgerFile } from "../ledger/ledger.js";
import type { PullRequestInfo } from "./forge.js";
import type { RecordedOutcome } from "./round.js";
import { gzippedIfLarge } from "./large-files.js";
import { createWorkspace, openWorkspace, WORKSPACE_FILE, WORKSPACE_REPO, writeWorkspaceRecord, type Workspace } from "./local-workspace.js";

/**
 * Makes DIR a workspace. Without `repo`, DIR/data-repo.git is a new data repository whose first commit holds
 * `config` (else a starter config: stages on this host, under DIR/state/runs) and the pool files, as pools/NAME.
 * With `repo`, the config and pools given are committed to it; without them it is used as it is (an empty one
 * gets the starter config). A pool may be a folder. DIR/workspace.json is written last.
 */
export async function initWorkspace(dir: string, o: { repo?: string; config?: string; pools?: readonly string[] }): Promise<{ committed: string[] }> {
  const existed = await stat(dir).then(() => true, () => false);
  const entries: string[] = existed ? await readdir(dir) : [];
  if (entries.includes(WORKSPACE_FILE)) throw new UsageError(`${dir} is a relabel workspace already`);
  if (entries.length > 0) {
    const leftover = entries.every((e) => [WORKSPACE_REPO, "state", "forge", ".lock"].includes(e));
    throw new UsageError(`${dir} is not empty: a workspace needs a folder of its own${leftover ? " (these files look left by an init that was stopped: remove the folder and run init again)" : ""}`);
  }
  const files: LedgerFile[] = [];
  const pools = o.pools ?? [];
  const poolPaths = pools.map((p) => `pools/${path.basename(path.resolve(p))}`);
  if (new Set(poolPaths).size < poolPaths.length) throw new UsageError(`--pool: two files have the same name; each goes to pools/NAME`);
  let config: string | undefined;
  if (o.config !== undefined) {
    const text = (await readGiven(o.config)).toString("utf8");
    let data: unknown;
    try {
      data = parseYaml(text);
    } catch (err) {
      throw new InputError(o.config, undefined, `not valid YAML (${(err as Error).message.split("\n")[0]})`);
    }
    const parsed = parseRelabelConfig(data, o.config);
    if (!parsed.ok) throw new InputError(o.config, parsed.problems[0].path || undefined, parsed.problems[0].message);
    config = text;
  }
  for (let i = 0; i < pools.length; i++) files.push(...(await poolFiles(pools[i], poolPaths[i])));
  const starter = () => {
    const text = starterConfig(path.resolve(dir, "state", "runs"), poolPaths);
    const parsed = parseRelabelConfig(parseYaml(text));
    // Its runs folder is the workspace's: a path an executor cannot take (spaces, quotes) would refuse every round.
    if (!parsed.ok) throw new UsageError(`${dir}: the starter config would run stages under ${path.resolve(dir, "state", "runs")}, which it cannot take (${parsed.problems[0].path}: ${parsed.problems[0].message}); make the workspace elsewhere, or give --config with another remote_root`);
    return text;
  };
  if (config === undefined && o.repo === undefined) config = starter();
  try {
    // workspace.json comes last: a command stopped before it leaves a folder that is no workspace, not one whose
    // data repository lacks the config and pools it was given.
    const record = await createWorkspace(dir, o.repo, { write: false });
    const ws = await openWorkspace(dir, { record });
    try {
      // A new repository (or an empty one given by --repo) gets the starter config when none is given: without one,
      // nothing could be exported from it, and no executor named.
      if (config === undefined && (await ws.ledger.head()) === null) config = starter();
      if (config !== undefined) files.unshift({ path: CONFIG_FILE, content: config });
      if (files.length > 0) await ws.ledger.commit({ message: "relabel round init: configuration and pools", files });
    } finally {
      await ws.close();
    }
    await writeWorkspaceRecord(dir, record);
  } catch (err) {
    // The folder was empty or absent: leave it so, not a workspace that names a repository it could not reach.
    if (existed) for (const entry of await readdir(dir)) await rm(path.join(dir, entry), { recursive: true, force: true });
    else await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { committed: files.map((f) => f.path) };
}

/** A file the user named, or one line saying why it cannot be read. */
const readGiven = (file: string): Promise<Buffer> =>
  readFile(file).catch((err: unknown) => {
    throw fileError(file, err, "a file");
  });

/**
 * A pool file as pools/NAME, or a pool folder (POSCARs, extxyz files, VASP runs: what a pool path may name) as
 * pools/NAME/... with the regular files below it; links and other entries are not followed.
 */
async function poolFiles(given: string, target: string): Promise<LedgerFile[]> {
  const info = await stat(given).catch(() => null);
  if (info === null) throw new InputError(given, undefined, "--pool: no such file or folder");
  if (!info.isDirectory()) return [{ path: target, content: await readGiven(given) }];
  const files: LedgerFile[] = [];
  for (const e of (await readdir(given, { recursive: true, withFileTypes: true })).sort((a, b) => (path.join(a.parentPath, a.name) < path.join(b.parentPath, b.name) ? -1 : 1))) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    files.push({ path: `${target}/${path.relative(given, file).split(path.sep).join("/")}`, content: await readGiven(file) });
  }
  if (files.length === 0) throw new InputError(given, undefined, "--pool: a folder without files");
  return files;
}

function starterConfig(runsRoot: string, pools: readonly string[]): string {
  const config = {
    ...(pools.length ? { pool: { paths: pools } } : {}),
    executor: "here",
    executors: { here: { backend: "local", remote_root: runsRoot } },
    comment_pacing_ms: 0,
  };
  return `# relabel-loop settings (templates/relabel.yml in relabel-loop documents every key and its default).\n# Stages run on this machine, under the workspace's state/runs; an ssh+slurm executor sends them to a cluster.\n# MACE trains on the GPU (stage.device: cuda); add stage: {device: cpu} for a machine without one.\n${stringifyYaml(config)}`;
}

/** The data repository's config; null when it does not parse (the workflow reports that on the thread). */
async function parsedConfig(ws: Workspace): Promise<RelabelConfig | null> {
  const file = await ws.forge.loadConfig();
  const parsed = file.error ? null : parseRelabelConfig(file.data);
  return parsed?.ok ? parsed.config : null;
}

/** The config's labels; a config that does not parse is reported on the thread by the workflow, so defaults do here. */
async function labelsOf(ws: Workspace): Promise<Pick<RelabelConfig, "round_label" | "results_label">> {
  return (await parsedConfig(ws)) ?? defaultRelabelConfig();
}

/**
 * Opens a round issue as the issue form would; returns it and the round it opened (null when it did not). What
 * the form's own checks refuse (no pool, a path from the root, one committee file), and pool or committee paths
 * the data repository does not have, are refused before an issue is opened: a local issue cannot be edited, so
 * it would stay open for nothing.
 */
export async function openRoundIssue(ws: Workspace, title: string, fields: RoundIssueFields): Promise<{ issue: number; round: RoundManifest | null }> {
  const config = await parsedConfig(ws);
  const round_label = (config ?? defaultRelabelConfig()).round_label;
  const body = roundIssueBody(fields);
  if (config !== null) {
    const form = parseRoundIssue(body, [round_label], config);
    if (form.kind === "problems") throw new UsageError(`no round opened: ${form.problems.join("; ")}`);
    if (form.kind === "request") await refuseMissingPaths(ws, [...form.request.pool, ...(typeof form.request.committee === "object" ? form.request.committee.files : [])]);
  }
  const issue = await ws.forge.openIssue({ title, body, labels: [round_label], author: ws.me.login });
  await ws.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: ws.me });
  await ws.ledger.sync();
  return { issue: issue.number, round: (await ws.workflow.manifests()).find((m) => m.issue === issue.number) ?? null };
}

/** Refuses repository paths that the data repository's default branch does not have, naming them all in one line. */
async function refuseMissingPaths(ws: Workspace, paths: readonly string[]): Promise<void> {
  await ws.ledger.sync();
  const hasCommits = (await ws.ledger.head()) !== null;
  const missing: string[] = [];
  for (const p of paths) {
    const clean = p.replace(/\/+$/, "");
    const parent = path.posix.dirname(clean);
    const entries = hasCommits ? await ws.ledger.list(parent === "." ? "" : parent) : [];
    if (!entries.some((e) => e.name === path.posix.basename(clean))) missing.push(p);
  }
  if (missing.length === 0) return;
  const them = missing.length === 1 ? "it" : "them";
  throw new InputError(missing.join(", "), undefined, `not in the data repository (${ws.ledger.defaultBranch} of ${ws.remote}), so no round was opened: add ${them} in a clone (git clone ${ws.remote}, copy ${them} there, git add, git commit, git push), then open the round again`);
}

/**
 * Whether the workspace holds the round's threads: its issue, and its pull requests on the round's branches. A
 * round opened from another workspace on the same data repository, or on GitHub before the repository moved, has
 * its threads there.
 */
export function holdsRound(ws: Workspace, m: RoundManifest): boolean {
  const threads = new Map(ws.forge.threadList().map((t) => [t.number, t]));
  const issue = threads.get(m.issue);
  if (issue === undefined || issue.pull !== null) return false;
  if (m.prs.selection !== undefined && threads.get(m.prs.selection)?.pull?.head !== m.branches.selection) return false;
  if (m.prs.results !== undefined && !threads.get(m.prs.results)?.pull) return false;
  return true;
}

/** The rounds the poller would act on whose threads are not in this workspace. */
export async function foreignRoundsInProgress(ws: Workspace): Promise<RoundManifest[]> {
  const active = new Set<RoundManifest["state"]>(["ranking", "selection-review", "training", "benchmarking"]);
  return (await ws.workflow.manifests()).filter((m) => active.has(m.state) && !holdsRound(ws, m));
}

/** Refuses an event on thread `number` when the data repository gives that number to a round whose threads are elsewhere. */
async function refuseForeignThread(ws: Workspace, number: number): Promise<void> {
  await ws.ledger.sync();
  const m = (await ws.workflow.manifests()).find((r) => r.issue === number || r.prs.selection === number || r.prs.results === number);
  if (m !== undefined && !holdsRound(ws, m)) {
    throw new UsageError(`#${number} here is not a thread of round ${m.round}, whose threads (issue #${m.issue}) are in another workspace or on GitHub; the App would take this event as one of round ${m.round}`);
  }
}

/**
 * Posts a comment (a `/relabel` command) on an issue or pull request; returns what the workflow recorded for it
 * (nothing for a comment without a `/relabel` line), each outcome marked when the command was not carried out, and
 * the conclusions (or states) of the check runs it created (`/relabel rebuild --dry-run` creates one).
 */
export async function postComment(ws: Workspace, thread: number, body: string): Promise<{ outcomes: RecordedOutcome[]; checks: string[] }> {
  await refuseForeignThread(ws, threadOf(ws, thread).number);
  const issue = await ws.forge.issue(thread);
  const id = await ws.forge.addComment(thread, ws.me.login, body);
  const from = ws.outcomes.length;
  const checksBefore = new Set(ws.forge.checkRuns().map((c) => c.id));
  await ws.workflow.onComment({ delivery: null, issue, comment: { id, body }, sender: ws.me });
  return {
    outcomes: ws.outcomes.slice(from).filter((o) => o.event === "issue_comment.created" && o.thread === thread),
    checks: ws.forge.checkRuns().filter((c) => !checksBefore.has(c.id)).map((c) => c.conclusion ?? c.status),
  };
}

/**
 * Merges a pull request as its merge button would, then lets the workflow hear of it. A results pull request is
 * merged only when its latest checks passed, unless `force`: a branch rule most data repositories would have.
 */
export async function mergePullRequest(ws: Workspace, number: number, o: { force?: boolean } = {}): Promise<PullRequestInfo> {
  const thread = threadOf(ws, number);
  if (thread.pull === null) throw new UsageError(`#${number} is an issue, not a pull request`);
  if (thread.pull.merged || thread.state !== "open") throw new UsageError(`#${number} is ${thread.pull.merged ? "merged" : "closed"} already`);
  await refuseForeignThread(ws, number);
  const pr = await ws.forge.pullRequest(number);
  const results = pr.labels.includes((await labelsOf(ws)).results_label);
  if (results) await refuseUnparsedConfig(ws);
  if (results && !o.force) {
    const checks = latestChecks(ws, pr.head.sha);
    const failed = checks.filter((c) => c.conclusion !== "success");
    if (checks.length === 0) throw new UsageError(`#${number} has no check of its latest commit; 'relabel round check ${number}' runs it (--force merges anyway)`);
    if (failed.length > 0) throw new UsageError(`#${number}: check "${failed[0].name}" is ${failed[0].conclusion ?? failed[0].status}: ${failed[0].title} (${failed[0].file}); fix the runs, or merge anyway with --force`);
  }
  const merged = await ws.forge.merge(number);
  await ws.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: ws.me });
  return merged;
}

/**
 * The checks of a commit that count: the latest run of each check name. A re-run (relabel round check) supersedes
 * the earlier runs of its name, as on GitHub, so a failure fixed since no longer blocks.
 */
export function latestChecks(ws: Workspace, sha: string): ReturnType<Workspace["forge"]["checkRuns"]> {
  const latest = new Map<string, ReturnType<Workspace["forge"]["checkRuns"]>[number]>();
  for (const c of ws.forge.checkRuns()) {
    if (c.headSha !== sha) continue;
    const seen = latest.get(c.name);
    if (seen === undefined || c.id > seen.id) latest.set(c.name, c);
  }
  return [...latest.values()];
}

/** Runs a results pull request's check again (the check run's Re-run button). */
export async function recheck(ws: Workspace, number: number): Promise<void> {
  if (threadOf(ws, number).pull === null) throw new UsageError(`#${number} is an issue, not a pull request`);
  await refuseForeignThread(ws, number);
  await refuseUnparsedConfig(ws);
  await ws.workflow.onPullRequest({ delivery: null, event: "pull_request.synchronize", pr: await ws.forge.pullRequest(number), sender: ws.me });
}

export interface ResultsRun {
  /** The run folder given (or found under a folder given). */
  dir: string;
  /** Its folder name under the round's labels/. */
  name: string;
  files: string[];
  left: { name: string; why: string }[];
}

/** VASP's outputs, one of which a run folder must bring (a calculation's vasprun.xml or OUTCAR, also custodian's). */
const CALCULATION_OUTPUT = /^(vasprun\.xml|OUTCAR)([._-].*)?$/;
/** The largest file read whole (Node's limit); such a file is far above what the ledger takes even gzipped (100 MiB). */
const READABLE_BYTES = 2 ** 31 - 1;

/**
 * The run folders among `paths`: a path that is a VASP run directory is one run, a folder of runs gives each run
 * under it. Problems (a path that is neither, two runs of the same name, a run whose outputs cannot be copied, a
 * file too large to read) are listed, one line each.
 */
export async function resultsRuns(paths: readonly string[]): Promise<{ runs: ResultsRun[]; problems: string[] }> {
  const runs: ResultsRun[] = [];
  const problems: string[] = [];
  for (const given of paths) {
    const info = await stat(given).catch(() => null);
    if (info === null || !info.isDirectory()) {
      problems.push(`${given}: expected a VASP run folder (vasprun.xml or OUTCAR) or a folder of them${info === null ? "; it does not exist" : ""}`);
      continue;
    }
    const dirs = isRunDir(given) ? [given] : await discoverRuns(given);
    if (dirs.length === 0) problems.push(`${given}: no VASP run folder (vasprun.xml or OUTCAR, also custodian's .relax1 ...) in it`);
    for (const dir of dirs) {
      const run: ResultsRun = { dir, name: path.basename(path.resolve(dir)), ...labelFiles(dir) };
      // A run whose outputs are links (never copied) would go in without them, and its structure would count as unlabelled.
      if (!run.files.some((f) => CALCULATION_OUTPUT.test(f))) {
        const linked = run.left.filter((l) => CALCULATION_OUTPUT.test(l.name)).map((l) => l.name);
        problems.push(`${dir}: no vasprun.xml or OUTCAR to copy${linked.length > 0 ? ` (${linked.join(", ")}: a link, and links are never copied; put the file itself there, e.g. with cp -L)` : ""}`);
      }
      for (const name of run.files) {
        const bytes = (await stat(path.join(dir, name))).size;
        if (bytes > READABLE_BYTES) problems.push(`${path.join(dir, name)}: ${(bytes / 2 ** 30).toFixed(1)} GiB, too large for the data repository (a file goes in up to 100 MiB, gzipped above 50 MiB); move it out of the run folder`);
      }
      runs.push(run);
    }
  }
  const byName = new Map<string, string>();
  for (const r of runs) {
    const other = byName.get(r.name);
    if (other !== undefined) problems.push(`${r.dir}: has the same folder name as ${other}; each run of a round needs a name of its own`);
    else byName.set(r.name, r.dir);
  }
  return { runs, problems };
}

/** The round `round`, refused unless it is waiting for labels (its selection merged, no results merged yet). */
export async function labelingRound(ws: Workspace, round: number): Promise<RoundManifest> {
  await ws.ledger.sync();
  const manifest = (await ws.workflow.manifests()).find((m) => m.round === round);
  if (!manifest) throw new UsageError(`there is no round ${round} in ${ws.record.repo} ('relabel round status' lists the rounds)`);
  if (effectiveState(manifest) !== "labeling") throw new UsageError(`round ${round} is in state "${effectiveState(manifest)}": labels go in while it is "labeling" (after its selection pull request is merged)`);
  return manifest;
}

/** What went into the ledger for one run: its files as committed (`X.gz` for one gzipped for size), and what was removed. */
export interface CommittedRun {
  run: ResultsRun;
  committed: string[];
  /** Files of an earlier run folder of the same name on the pull request's branch that the new one does not have. */
  removed: string[];
}

/**
 * Commits the runs' files under the round's labels/ on a results branch (or on the branch of the open results
 * pull request `to`), opens the pull request and runs its check. Files over the ledger's size limit are committed
 * gzipped, as the readers take them. A run folder already on the branch of `to` is replaced: files the new one
 * does not have are removed, so that the check never reads an output left from the earlier copy.
 */
export async function submitResults(ws: Workspace, round: number, runs: readonly ResultsRun[], o: { to?: number } = {}): Promise<{ pr: number; branch: string; runs: CommittedRun[]; reused: boolean }> {
  await labelingRound(ws, round);
  await refuseUnparsedConfig(ws);
  const { results_label } = await labelsOf(ws);
  let branch: string;
  let reused = false;
  if (o.to !== undefined) {
    const thread = threadOf(ws, o.to);
    if (thread.pull === null || thread.state !== "open" || !thread.labels.includes(results_label)) throw new UsageError(`--to #${o.to}: expected an open pull request labelled ${results_label}`);
    branch = thread.pull.head;
  } else {
    ({ branch, reused } = await newResultsBranch(ws, round));
  }
  const files: LedgerFile[] = [];
  const done: CommittedRun[] = [];
  const compressed = new RegExp(`${COMPRESSED_ENDING.replace("?", "")}$`);
  for (const run of runs) {
    const folder = `${roundPaths(round).labels}/${run.name}`;
    const committed: string[] = [];
    for (const name of run.files) {
      const content = await readFile(path.join(run.dir, name));
      const file = compressed.test(name) ? { path: `${folder}/${name}`, content } : await gzippedIfLarge(ws.ledger, `${folder}/${name}`, content);
      files.push(file);
      committed.push(file.path.slice(folder.length + 1));
    }
    const removed: string[] = [];
    if (o.to !== undefined) {
      for (const e of await ws.ledger.list(folder, branch, { recursive: true })) {
        const name = e.path.slice(folder.length + 1);
        if (e.type === "submodule" || committed.includes(name)) continue;
        files.push({ path: e.path, content: null });
        removed.push(name);
      }
    }
    done.push({ run, committed, removed });
  }
  const list = done.map((r) => `- \`${r.run.name}\` (${r.committed.join(", ")})`).join("\n");
  // Each commit is noted before its push, so that a run stopped before the pull request opens leaves a branch the
  // next run knows as its own (newResultsBranch).
  const pushing = o.to === undefined ? { branch, shas: [] as string[] } : null;
  const beforePush = async (sha: string) => {
    if (pushing === null) return;
    pushing.shas.push(sha);
    await writeUnopenedBranches(ws, [...(await unopenedBranches(ws)).filter((b) => b.branch !== branch), pushing]);
  };
  await ws.ledger.commit({ branch, message: `Round ${round}: VASP runs ${runs.map((r) => r.name).join(", ")}`, files, beforePush });
  const pr = await ws.forge.openPullRequest({
    head: branch,
    base: ws.ledger.defaultBranch,
    title: `Round ${round}: labels`,
    body: `VASP runs for round ${round}, copied by \`relabel round results\`:\n\n${list}\n`,
    labels: [results_label],
    author: ws.me.login,
  });
  if (pushing !== null) await writeUnopenedBranches(ws, (await unopenedBranches(ws)).filter((b) => b.branch !== branch));
  await ws.workflow.onPullRequest({ delivery: null, event: o.to === undefined ? "pull_request.opened" : "pull_request.synchronize", pr: await ws.forge.pullRequest(pr), sender: ws.me });
  return { pr, branch, runs: done, reused };
}

/** Results branches this workspace pushed whose pull request did not open (yet), with the commits it pushed to them. */
const UNOPENED_FILE = "unopened-results-branches.json";
const unopenedSchema = z.array(z.object({ branch: z.string(), shas: z.array(z.string()) }));
type UnopenedBranch = z.infer<typeof unopenedSchema>[number];

async function unopenedBranches(ws: Workspace): Promise<UnopenedBranch[]> {
  return (await readJsonFile(path.join(ws.stateDir, UNOPENED_FILE), unopenedSchema, "a list of relabel's unopened results branches")) ?? [];
}

async function writeUnopenedBranches(ws: Workspace, branches: readonly UnopenedBranch[]): Promise<void> {
  const file = path.join(ws.stateDir, UNOPENED_FILE);
  await mkdir(ws.stateDir, { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify(branches, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/**
 * The branch for a new results pull request: results/round-NNNN, else -2, -3, .... A branch of that name that this
 * workspace pushed (its tip is a commit it noted) and that no pull request here uses, open or closed, is left by
 * a `results` that was stopped before its pull request opened: it is deleted and used again, and `reused` says so.
 * Any other existing branch is left as it is.
 */
async function newResultsBranch(ws: Workspace, round: number): Promise<{ branch: string; reused: boolean }> {
  const stem = `results/round-${String(round).padStart(4, "0")}`;
  const unopened = await unopenedBranches(ws);
  const used = new Set(ws.forge.threadList().flatMap((t) => (t.pull === null ? [] : [t.pull.head])));
  for (let n = 1; ; n++) {
    const branch = n === 1 ? stem : `${stem}-${n}`;
    const tip = await ws.ledger.head(branch);
    if (tip === null) return { branch, reused: false };
    const ours = unopened.find((b) => b.branch === branch)?.shas.includes(tip) ?? false;
    if (ours && !used.has(branch) && (await ws.ledger.deleteBranch(branch, tip))) return { branch, reused: true };
  }
}

/**
 * Refuses a step that cannot go through while .github/relabel.yml does not parse: the workflow would fail a
 * results pull request's check, and leave a merge unbuilt until the file parses. Said before anything is committed.
 */
export async function refuseUnparsedConfig(ws: Workspace): Promise<void> {
  const file = await ws.forge.loadConfig();
  const problems = file.error ? [file.error.replace(`${CONFIG_FILE}: `, "")] : (() => {
    const parsed = parseRelabelConfig(file.data);
    return parsed.ok ? [] : parsed.problems.map((p) => `${p.path || "the file"}: ${p.message}`);
  })();
  if (problems.length > 0) throw new InputError(CONFIG_FILE, `on ${ws.ledger.defaultBranch}`, `does not parse, so the App cannot do this step: ${problems.join("; ")} (fix it in a clone and push, then run this again)`);
}

function threadOf(ws: Workspace, number: number): ReturnType<Workspace["forge"]["threadList"]>[number] {
  const thread = ws.forge.threadList().find((t) => t.number === number);
  if (thread === undefined) throw new UsageError(`there is no issue or pull request #${number} in ${ws.record.repo} ('relabel round status' lists them)`);
  return thread;
}

/** The jobs of each round that has any, in round order, as the workspace's state directory records them. */
export async function roundJobs(ws: Workspace, rounds?: readonly RoundManifest[]): Promise<{ round: number; jobs: JobRecord[] }[]> {
  const out: { round: number; jobs: JobRecord[] }[] = [];
  for (const m of rounds ?? (await ws.workflow.manifests())) {
    const jobs = (await readLedger(ws.workflow.jobsFile(m.round))).jobs;
    if (jobs.length > 0) out.push({ round: m.round, jobs });
  }
  return out;
}

/**
 * One tick of the App's poller in the workspace: refused while a round whose threads are elsewhere is in progress
 * (the poll would act on it with nowhere to report). Returns the rounds that stopped during the tick (a job failed
 * or was cancelled) and those whose selection pull request it opened (their previous round's models had predicted
 * the pool).
 */
export async function pollWorkspace(ws: Workspace): Promise<{ stopped: RoundManifest[]; ranked: RoundManifest[] }> {
  await ws.ledger.sync();
  const before = await ws.workflow.manifests();
  const foreign = await foreignRoundsInProgress(ws);
  if (foreign.length > 0) {
    const names = foreign.map((m) => `round ${m.round} (issue #${m.issue})`).join(", ");
    throw new UsageError(`${names} ${foreign.length === 1 ? "is" : "are"} in progress with threads that are not in this workspace (opened from another workspace, or on GitHub): poll there; a poll here would act on ${foreign.length === 1 ? "it" : "them"} with nowhere to report`);
  }
  await ws.workflow.poll();
  const stateBefore = new Map(before.map((m) => [m.round, m.state]));
  const after = await ws.workflow.manifests();
  return {
    stopped: after.filter((m) => m.state === "failed" && stateBefore.get(m.round) !== "failed"),
    ranked: after.filter((m) => stateBefore.get(m.round) === "ranking" && m.state === "selection-review" && m.prs.selection !== undefined),
  };
}
