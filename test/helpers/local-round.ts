/**
 * The round workflow without GitHub, for tests: a real bare git data repository, the Ledger, the LocalForge and
 * the bundled real VASP runs (their initial structures are the pool; their recorded outputs the labels).
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseRoundManifest, roundPaths, type RoundManifest } from "../../src/core/app/manifest.js";
import { Ledger, type LedgerFile } from "../../src/ledger/ledger.js";
import type { ProcessInstance } from "../../src/workflow/instance.js";
import { LocalForge } from "../../src/workflow/local-forge.js";
import { recordedRuns, writeInitialStructurePool, type RecordedRun } from "../../src/workflow/recorded-runs.js";
import { RoundWorkflow } from "../../src/workflow/round.js";
import { SAMPLE_VASP } from "./app-harness.js";
import { afterEach, beforeAll } from "vitest";
import { remoteRoot, sshExecutor, startCluster, type ClusterEnv } from "./cluster.js";
import { initBare } from "./git-repo.js";

const DOUBLES = path.resolve(import.meta.dirname, "../doubles");

export interface LocalRound {
  root: string;
  ledger: Ledger;
  forge: LocalForge;
  workflow: RoundWorkflow;
  runs: RecordedRun[];
  stateDir: string;
  me: { login: string; isBot: boolean };
  manifest(round?: number): Promise<RoundManifest>;
  /** Opens the round issue and merges the selection PR; returns the issue number. */
  selectAndFreeze(): Promise<number>;
  /**
   * Commits run folders (for round 1, and for other rounds by number) on a results branch and opens the results
   * PR (the check runs).
   */
  openResults(folders: Record<string, string>, otherRounds?: Record<number, Record<string, string>>): Promise<number>;
  command(thread: number, body: string): Promise<void>;
  close(): Promise<void>;
}

export function localConfig(runsRoot: string, dataset: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pool: { paths: ["pools/sample-runs.extxyz"] },
    selection: { select: 4 },
    dataset: { allow_mixed_settings: true, fractions: { train: 0.5, valid: 0.25, test: 0.25 }, seed: 12, ...dataset },
    stage: { device: "cpu" },
    executor: "here",
    executors: { here: { backend: "local", remote_root: runsRoot } },
    comment_pacing_ms: 0,
  };
}

/**
 * `allowLocalExecutor`: the workflow runs stages on this host (the local executor with the MACE doubles) only when
 * told, as the App does when its operator sets RELABEL_ALLOW_LOCAL_EXECUTOR=1; these rounds allow it unless a
 * test says otherwise.
 */
export async function startLocalRound(
  o: {
    config?: (runsRoot: string) => Record<string, unknown>;
    autoSubmit?: boolean;
    mergeLockWaitMs?: number;
    instance?: ProcessInstance;
    largeFileBytes?: number;
    gitattributes?: string;
    allowLocalExecutor?: boolean;
  } = {},
): Promise<LocalRound> {
  for (const d of ["mace_run_train", "mace_eval_configs"]) chmodSync(path.join(DOUBLES, d), 0o755);
  const root = mkdtempSync(path.join(tmpdir(), "relabel-round-"));
  const bare = initBare(path.join(root, "data.git"));
  const stateDir = path.join(root, "state");
  const runs = await recordedRuns(SAMPLE_VASP);
  const pool = path.join(root, "pool.extxyz");
  await writeInitialStructurePool(runs, pool);
  const ledger = await Ledger.open({ remote: bare, workdir: path.join(root, "clone"), author: { name: "test", email: "test@example.invalid" } });
  const config = (o.config ?? localConfig)(path.join(root, "runs"));
  // Committed first, so that the files after it follow it (Git LFS routing).
  if (o.gitattributes !== undefined) await ledger.commit({ message: "attributes", files: [{ path: ".gitattributes", content: o.gitattributes }] });
  await ledger.commit({
    message: "data repo",
    files: [
      { path: ".github/relabel.yml", content: JSON.stringify(config) },
      { path: "pools/sample-runs.extxyz", content: readFileSync(pool) },
    ],
  });
  const forge = new LocalForge({ dir: path.join(root, "forge"), ledger, repo: "local/data", link: (file, sha) => `${sha}:${file}` });
  const messages: string[] = [];
  const workflow = new RoundWorkflow({ forge, ledger, stateDir, software: { name: "relabel-loop", version: "test" }, log: { info: () => undefined, warn: (m) => messages.push(m), error: (m) => messages.push(m) }, autoSubmit: o.autoSubmit, mergeLockWaitMs: o.mergeLockWaitMs, instance: o.instance, largeFileBytes: o.largeFileBytes, allowLocalExecutor: o.allowLocalExecutor ?? true });
  const me = { login: "you", isBot: false };
  const originalPath = process.env.PATH;
  process.env.PATH = `${DOUBLES}:${originalPath}`;

  const manifest = async (round = 1) => {
    await ledger.sync();
    const parsed = parseRoundManifest((await ledger.read(roundPaths(round).manifest))!.toString("utf8"), "round.json");
    if (!parsed.ok) throw new Error(parsed.problem);
    return parsed.manifest;
  };
  return {
    root,
    ledger,
    forge,
    workflow,
    runs,
    stateDir,
    me,
    manifest,
    async selectAndFreeze() {
      const issue = await forge.openIssue({ title: "Round 1", labels: ["al-round"], author: me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
      await workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: me });
      const m = await manifest();
      if (m.prs.selection === undefined) throw new Error(`no selection PR; messages: ${messages.join("; ")}`);
      await workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await forge.merge(m.prs.selection), sender: me });
      return issue.number;
    },
    async openResults(folders, otherRounds = {}) {
      const files: LedgerFile[] = [];
      for (const [round, runs] of Object.entries({ ...otherRounds, 1: folders })) {
        for (const [name, dir] of Object.entries(runs)) {
          for (const f of readdirSync(dir)) files.push({ path: `${roundPaths(Number(round)).labels}/${name}/${f}`, content: readFileSync(path.join(dir, f)) });
        }
      }
      await ledger.commit({ branch: "results", message: "labels", files });
      const number = await forge.openPullRequest({ head: "results", base: ledger.defaultBranch, title: "labels", body: "", labels: ["labeled-results"], author: me.login });
      await workflow.onPullRequest({ delivery: null, event: "pull_request.opened", pr: await forge.pullRequest(number), sender: me });
      return number;
    },
    async command(thread, body) {
      const id = await forge.addComment(thread, me.login, body);
      await workflow.onComment({ delivery: null, issue: await forge.issue(thread), comment: { id, body }, sender: me });
    },
    async close() {
      process.env.PATH = originalPath;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The recorded run folders of the round's selected candidates, by folder name. */
export async function selectedRunFolders(r: LocalRound, round = 1): Promise<Record<string, string>> {
  const ranking = JSON.parse((await r.ledger.read(roundPaths(round).rankingJson))!.toString("utf8")) as { selected: { candidate_id: string }[] };
  const out: Record<string, string> = {};
  for (const s of ranking.selected) {
    const run = r.runs.find((x) => x.candidateId === s.candidate_id)!;
    out[run.name] = run.dir;
  }
  return out;
}

/**
 * For a test file of rounds whose stages run on the loopback Slurm over SSH (the MACE doubles on the job's PATH):
 * starts the cluster before its tests, and after each test closes its round and brings back any stopped service.
 */
export function slurmRounds(): { env(): ClusterEnv; start(label: string): Promise<LocalRound> } {
  let env: ClusterEnv;
  let current: LocalRound | null = null;
  beforeAll(() => {
    env = startCluster();
  });
  afterEach(async () => {
    await current?.close();
    current = null;
    startCluster();
  });
  return {
    env: () => env,
    async start(label) {
      const root = remoteRoot(env, label);
      current = await startLocalRound({
        config: (runsRoot) => ({
          ...localConfig(runsRoot),
          executor: "hpc",
          executors: { hpc: sshExecutor(env, "ssh+slurm", root, { setup: [`export PATH=${DOUBLES}:$PATH`] }) },
        }),
      });
      return current;
    },
  };
}

/** Runs the App's poller until the round is complete. */
export async function pollUntilComplete(r: LocalRound, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await r.manifest()).state !== "complete") {
    if (Date.now() > deadline) throw new Error(`round not complete: ${(await r.manifest()).state}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await r.workflow.poll();
  }
}

/** The round's jobs.json as committed: each stage with its attempts' outcomes. */
export async function committedJobOutcomes(r: LocalRound, round = 1): Promise<[string, (string | null)[]][]> {
  const jobs = JSON.parse((await r.ledger.read(roundPaths(round).jobs))!.toString("utf8")) as { jobs: { stage: string; attempts: { outcome: string | null }[] }[] };
  return jobs.jobs.map((j) => [j.stage, j.attempts.map((a) => a.outcome)]);
}
