/**
 * What `relabel round` does in a local workspace: the events GitHub would deliver to the App (an issue opened, a
 * comment, a pull request opened or merged, a poller tick), made by the person at the keyboard, and the files a
 * results pull request carries, copied from VASP run folders.
 */
import { readdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { CONFIG_FILE, defaultRelabelConfig, parseRelabelConfig, type RelabelConfig } from "../core/app/config.js";
import { roundIssueBody, type RoundIssueFields } from "../core/app/issue-form.js";
import { effectiveState, roundPaths, type RoundManifest } from "../core/app/manifest.js";
import { InputError, UsageError } from "../core/errors.js";
import { COMPRESSED_ENDING, isRunDir, labelFiles } from "../io/run-files.js";
import { discoverRuns } from "../io/rundir.js";
import type { LedgerFile } from "../ledger/ledger.js";
import type { PullRequestInfo } from "./forge.js";
import { gzippedIfLarge } from "./large-files.js";
import { createWorkspace, openWorkspace, WORKSPACE_FILE, type Workspace } from "./local-workspace.js";

/**
 * Makes DIR a workspace. Without `repo`, DIR/data-repo.git is a new data repository whose first commit holds
 * `config` (else a starter config: stages on this host, under DIR/state/runs) and the pool files, as pools/NAME.
 * With `repo`, the config and pools given are committed to it; without them it is used as it is.
 */
export async function initWorkspace(dir: string, o: { repo?: string; config?: string; pools?: readonly string[] }): Promise<{ committed: string[] }> {
  const existed = await stat(dir).then(() => true, () => false);
  const entries: string[] = existed ? await readdir(dir) : [];
  if (entries.includes(WORKSPACE_FILE)) throw new UsageError(`${dir} is a relabel workspace already`);
  if (entries.length > 0) throw new UsageError(`${dir} is not empty: a workspace needs a folder of its own`);
  const files: LedgerFile[] = [];
  const pools = o.pools ?? [];
  const poolPaths = pools.map((p) => `pools/${path.basename(p)}`);
  if (new Set(poolPaths).size < poolPaths.length) throw new UsageError(`--pool: two files have the same name; each goes to pools/NAME`);
  if (o.config !== undefined) {
    const text = await readFile(o.config, "utf8");
    let data: unknown;
    try {
      data = parseYaml(text);
    } catch (err) {
      throw new InputError(o.config, undefined, `not valid YAML (${(err as Error).message.split("\n")[0]})`);
    }
    const parsed = parseRelabelConfig(data, o.config);
    if (!parsed.ok) throw new InputError(o.config, parsed.problems[0].path || undefined, parsed.problems[0].message);
    files.push({ path: CONFIG_FILE, content: text });
  } else if (o.repo === undefined) {
    files.push({ path: CONFIG_FILE, content: starterConfig(path.resolve(dir, "state", "runs"), poolPaths) });
  }
  for (let i = 0; i < pools.length; i++) files.push({ path: poolPaths[i], content: await readFile(pools[i]) });
  try {
    await createWorkspace(dir, o.repo);
    const ws = await openWorkspace(dir);
    try {
      if (files.length > 0) await ws.ledger.commit({ message: "relabel round init: configuration and pools", files });
    } finally {
      await ws.close();
    }
  } catch (err) {
    // The folder was empty or absent: leave it so, not a workspace that names a repository it could not reach.
    if (existed) for (const entry of await readdir(dir)) await rm(path.join(dir, entry), { recursive: true, force: true });
    else await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { committed: files.map((f) => f.path) };
}

function starterConfig(runsRoot: string, pools: readonly string[]): string {
  const config = {
    ...(pools.length ? { pool: { paths: pools } } : {}),
    executor: "here",
    executors: { here: { backend: "local", remote_root: runsRoot } },
    comment_pacing_ms: 0,
  };
  return `# relabel-loop settings (templates/relabel.yml in relabel-loop documents every key and its default).\n# Stages run on this machine, under the workspace's state/runs; an ssh+slurm executor sends them to a cluster.\n${stringifyYaml(config)}`;
}

/** The config's labels; a config that does not parse is reported on the thread by the workflow, so defaults do here. */
async function labelsOf(ws: Workspace): Promise<Pick<RelabelConfig, "round_label" | "results_label">> {
  const file = await ws.forge.loadConfig();
  const parsed = file.error ? null : parseRelabelConfig(file.data);
  return parsed?.ok ? parsed.config : defaultRelabelConfig();
}

/** Opens a round issue as the issue form would; returns it and the round it opened (null when it did not). */
export async function openRoundIssue(ws: Workspace, title: string, fields: RoundIssueFields): Promise<{ issue: number; round: RoundManifest | null }> {
  const { round_label } = await labelsOf(ws);
  const issue = await ws.forge.openIssue({ title, body: roundIssueBody(fields), labels: [round_label], author: ws.me.login });
  await ws.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: ws.me });
  await ws.ledger.sync();
  return { issue: issue.number, round: (await ws.workflow.manifests()).find((m) => m.issue === issue.number) ?? null };
}

/** Posts a comment (a `/relabel` command) on an issue or pull request. */
export async function postComment(ws: Workspace, thread: number, body: string): Promise<void> {
  const issue = await ws.forge.issue(threadOf(ws, thread).number);
  const id = await ws.forge.addComment(thread, ws.me.login, body);
  await ws.workflow.onComment({ delivery: null, issue, comment: { id, body }, sender: ws.me });
}

/**
 * Merges a pull request as its merge button would, then lets the workflow hear of it. A results pull request is
 * merged only when its latest checks passed, unless `force`: a branch rule most data repositories would have.
 */
export async function mergePullRequest(ws: Workspace, number: number, o: { force?: boolean } = {}): Promise<PullRequestInfo> {
  const thread = threadOf(ws, number);
  if (thread.pull === null) throw new UsageError(`#${number} is an issue, not a pull request`);
  if (thread.pull.merged || thread.state !== "open") throw new UsageError(`#${number} is ${thread.pull.merged ? "merged" : "closed"} already`);
  const pr = await ws.forge.pullRequest(number);
  if (pr.labels.includes((await labelsOf(ws)).results_label) && !o.force) {
    const checks = ws.forge.checkRuns().filter((c) => c.headSha === pr.head.sha);
    const failed = checks.filter((c) => c.conclusion !== "success");
    if (checks.length === 0) throw new UsageError(`#${number} has no check of its latest commit; 'relabel round check ${number}' runs it (--force merges anyway)`);
    if (failed.length > 0) throw new UsageError(`#${number}: check "${failed[0].name}" is ${failed[0].conclusion ?? failed[0].status}: ${failed[0].title} (${failed[0].file}); fix the runs, or merge anyway with --force`);
  }
  const merged = await ws.forge.merge(number);
  await ws.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: ws.me });
  return merged;
}

/** Runs a results pull request's check again (the check run's Re-run button). */
export async function recheck(ws: Workspace, number: number): Promise<void> {
  if (threadOf(ws, number).pull === null) throw new UsageError(`#${number} is an issue, not a pull request`);
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

/**
 * The run folders among `paths`: a path that is a VASP run directory is one run, a folder of runs gives each run
 * under it. Problems (a path that is neither, two runs of the same name) are listed, one line each.
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
    for (const dir of dirs) runs.push({ dir, name: path.basename(path.resolve(dir)), ...labelFiles(dir) });
  }
  const byName = new Map<string, string>();
  for (const r of runs) {
    const other = byName.get(r.name);
    if (other !== undefined) problems.push(`${r.dir}: has the same folder name as ${other}; each run of a round needs a name of its own`);
    else byName.set(r.name, r.dir);
  }
  return { runs, problems };
}

/**
 * Commits the runs' files under the round's labels/ on a results branch (or on the branch of the open results
 * pull request `to`), opens the pull request and runs its check. Files over the ledger's size limit are committed
 * gzipped, as the readers take them.
 */
export async function submitResults(ws: Workspace, round: number, runs: readonly ResultsRun[], o: { to?: number } = {}): Promise<{ pr: number; branch: string }> {
  await ws.ledger.sync();
  const manifest = (await ws.workflow.manifests()).find((m) => m.round === round);
  if (!manifest) throw new UsageError(`there is no round ${round} in ${ws.record.repo} ('relabel round status' lists the rounds)`);
  if (effectiveState(manifest) !== "labeling") throw new UsageError(`round ${round} is in state "${effectiveState(manifest)}": labels go in while it is "labeling" (after its selection pull request is merged)`);
  const { results_label } = await labelsOf(ws);
  let branch: string;
  if (o.to !== undefined) {
    const thread = threadOf(ws, o.to);
    if (thread.pull === null || thread.state !== "open" || !thread.labels.includes(results_label)) throw new UsageError(`--to #${o.to}: expected an open pull request labelled ${results_label}`);
    branch = thread.pull.head;
  } else {
    branch = `results/round-${String(round).padStart(4, "0")}`;
    for (let n = 2; (await ws.ledger.head(branch)) !== null; n++) branch = `results/round-${String(round).padStart(4, "0")}-${n}`;
  }
  const files: LedgerFile[] = [];
  const compressed = new RegExp(`${COMPRESSED_ENDING.replace("?", "")}$`);
  for (const run of runs) {
    for (const name of run.files) {
      const target = `${roundPaths(round).labels}/${run.name}/${name}`;
      const content = await readFile(path.join(run.dir, name));
      files.push(compressed.test(name) ? { path: target, content } : await gzippedIfLarge(ws.ledger, target, content));
    }
  }
  const list = runs.map((r) => `- \`${r.name}\` (${r.files.join(", ")})`).join("\n");
  await ws.ledger.commit({ branch, message: `Round ${round}: VASP runs ${runs.map((r) => r.name).join(", ")}`, files });
  const pr = await ws.forge.openPullRequest({
    head: branch,
    base: ws.ledger.defaultBranch,
    title: `Round ${round}: labels`,
    body: `VASP runs for round ${round}, copied by \`relabel round results\`:\n\n${list}\n`,
    labels: [results_label],
    author: ws.me.login,
  });
  await ws.workflow.onPullRequest({ delivery: null, event: o.to === undefined ? "pull_request.opened" : "pull_request.synchronize", pr: await ws.forge.pullRequest(pr), sender: ws.me });
  return { pr, branch };
}

function threadOf(ws: Workspace, number: number): ReturnType<Workspace["forge"]["threadList"]>[number] {
  const thread = ws.forge.threadList().find((t) => t.number === number);
  if (thread === undefined) throw new UsageError(`there is no issue or pull request #${number} in ${ws.record.repo} ('relabel round status' lists them)`);
  return thread;
}
