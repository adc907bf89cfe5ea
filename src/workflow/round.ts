/**
 * The active-learning round, step by step, against a Forge (GitHub or the local demo folder), the git Ledger and
 * the engine. Event handlers here take plain event records (no Probot types):
 *
 *   round issue opened → rank → selection branch + PR "Round N: selection" → merged: selection frozen
 *   results PR (label) → check run = dry run of the rebuild → merged: dataset rebuilt, train stage rendered and
 *   submitted → jobs polled → train done: eval stage rendered and submitted → eval done: benchmark committed,
 *   sticky comment, output contract on the issue, issue closed.
 *
 * Every webhook delivery is claimed once in ledger/events.jsonl (by delivery id, and comment id for commands)
 * before anything happens, so redeliveries do nothing; every step that writes a round holds the round's lock in
 * git, so a second command on a busy round is told so instead of running.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { authorizeCommand, refuseNonWriter, helpText, parseCommands, type RunCommand } from "../core/app/commands.js";
import { defaultRelabelConfig, parseRelabelConfig, previousRoundFeatures, renderConfigProblems, type ConfigProblem, type RelabelConfig } from "../core/app/config.js";
import { parseRoundIssue, roundIssueProblemsComment, type RoundRequest } from "../core/app/issue-form.js";
import {
  advance,
  failRound,
  frozenPathGuard,
  newRoundManifest,
  parseRoundManifest,
  roundId,
  roundOfSelectionBranch,
  roundPaths,
  selectionBranch,
  selectionOpen,
  withRankingFigures,
  type RoundManifest,
  type RoundState,
} from "../core/app/manifest.js";
import {
  benchmarkComment,
  dryRunReport,
  jobsComment,
  marker,
  outputContract,
  plainText,
  pollProblemsComment,
  pollRecoveredComment,
  selectionSummary,
  statusComment,
  stickyComment,
  HISTORY_OPEN,
} from "../core/app/markdown.js";
import { nextPollNotice, type PollProblems } from "../core/app/poll-problems.js";
import { parseRankingJson, type RankingJson } from "../core/app/ranking-json.js";
import { InputError, UsageError } from "../core/errors.js";
import type { ExecutorConfig } from "../core/exec/config.js";
import { emptyLedger, isOpen, lastAttempt, type FileRecord, type JobRecord, type Ledger as JobsFile } from "../core/exec/ledger.js";
import { ConnectionError, ExecError } from "../exec/errors.js";
import { readLedger } from "../exec/ledger-file.js";
import { checkPolicy, SubmitRefused, type ExecutorPolicy } from "../exec/executor.js";
import { JobTracker } from "../exec/tracker.js";
import { sha256File } from "../io/open.js";
import { buildStage } from "../io/stage.js";
import { LedgerError } from "../ledger/errors.js";
import type { Ledger, LedgerEvent, LedgerFile, LockResult, RoundLock } from "../ledger/ledger.js";
import { KeyedMutex } from "../ledger/mutex.js";
import { CURRENT_DATASET, exportCurrentDataset } from "./current-dataset.js";
import { benchRound, buildRoundDataset, datasetFiles, dryRunRebuild, rankSelection, scratchAsRepoPaths, trainingOutputs, withScratch, type DatasetInputs } from "./engine.js";
import { ThreadGoneError, type ConfigFile, type Forge, type IssueInfo, type PullRequestInfo } from "./forge.js";
import type { ProcessInstance } from "./instance.js";

export interface WorkflowLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface WorkflowDeps {
  forge: Forge;
  ledger: Ledger;
  /** Per-repository working state: job files, rendered stages, downloads, scratch space. */
  stateDir: string;
  software: { name: string; version: string };
  log: WorkflowLogger;
  now?: () => Date;
  /**
   * Submit the train stage when the results PR is merged (default). Off, the stage is rendered and committed and
   * waits for `/relabel submit` (the demo, when MACE is not installed).
   */
  autoSubmit?: boolean;
  /** How long the step of a merge waits for a round lock held by another step (default MERGE_LOCK_WAIT_MS; tests shorten it). */
  mergeLockWaitMs?: number;
  /** This App process and the earlier ones on its state directory, whose locks are stale (see instance.ts). */
  instance?: ProcessInstance;
  /** Ledger files over this many bytes are committed gzipped (default LARGE_FILE_BYTES; tests lower it). */
  largeFileBytes?: number;
  /**
   * Whether stages may run on this host: the local backend, also the default without executors. The App allows it
   * only when its operator set RELABEL_ALLOW_LOCAL_EXECUTOR=1, since the config (and its setup lines) comes from
   * the data repo; the demo, on the user's own machine, allows it.
   */
  allowLocalExecutor: boolean;
  /** The App's private key file (PRIVATE_KEY_PATH), never to be used as an executor's SSH key. */
  appKeyFile?: string;
  /** The App: only the SSH keys its operator offers (ExecutorPolicy.offeredKeys); absent, any (the CLI's demo). */
  offeredKeys?: { dir: string | null };
  /**
   * Hears each outcome the workflow records in the event log, marked `refused` when the event was not carried out
   * (refused, answered with usage, busy, failed). The local workspace tells its user so by its exit code; the App
   * sets none.
   */
  onRecord?: (outcome: RecordedOutcome) => void;
}

/** One outcome of an event, as WorkflowDeps.onRecord hears it. */
export interface RecordedOutcome {
  thread: number | null;
  event: string;
  command: string | null;
  outcome: string;
  /** The event was not carried out: refused, answered with usage or "nothing to do here", busy, or failed. */
  refused: boolean;
}

export interface Actor {
  login: string;
  isBot: boolean;
}

export interface IssueEvent {
  /** X-GitHub-Delivery, or null in the local flow. */
  delivery: string | null;
  /** "issues.opened" or "issues.labeled". */
  event: string;
  /** The label just added (issues.labeled). */
  label?: string;
  issue: IssueInfo;
  sender: Actor;
}

export interface CommentEvent {
  delivery: string | null;
  issue: IssueInfo;
  comment: { id: number; body: string };
  sender: Actor;
}

export interface PullRequestEvent {
  delivery: string | null;
  /** "pull_request.opened", ".synchronize", ".reopened", ".labeled" or ".closed". */
  event: string;
  pr: PullRequestInfo;
  sender: Actor;
}

/** What a step tells people: the thread to answer on and, when known, the round. */
interface Where {
  thread: number | null;
  round: number | null;
  delivery: string | null;
  event: string;
  actor: string;
  command?: string | null;
}

/** A user-facing failure: one line, safe to post. It marks the round failed. */
class StepError extends Error {}

/** A step that cannot run now (nothing to do, wrong moment): one line, posted, and the round is left as it was. */
class Refusal extends StepError {}

/** What to configure instead of the local backend when the App's operator has not allowed it. */
const LOCAL_EXECUTOR_HINT = "configure an ssh+shell or ssh+slurm executor under `executors` in .github/relabel.yml, or have the App's operator set RELABEL_ALLOW_LOCAL_EXECUTOR=1";

const STAGE_TRAIN = "train";
const STAGE_EVAL = "eval";
/** The previous round's models predicting this round's pool (committee: previous-round, selection.features: previous-round). */
const STAGE_POOL_EVAL = "pool-eval";
/** The pool-eval stage's outputs that carry member 0's descriptors (eval.descriptors): the pool's, then each split's. */
const DESCRIBED_PREDICTIONS = ["predictions/pool.member-0.extxyz", "predictions/train.extxyz", "predictions/valid.extxyz", "predictions/test.extxyz"];
const CHECK_NAME = "relabel-loop: rebuild dry run";
/**
 * How long the step of a merge event (freezing a selection, rebuilding from results) waits for a round lock held
 * by another step (a re-rank holds it for seconds to a minute, a poll for seconds). A step that still finds the
 * round busy is not lost: the poller does it once the lock is free, without waiting itself.
 */
const MERGE_LOCK_WAIT_MS = 10 * 60_000;
const LOCK_RETRY_MS = 250;
const MAX_LOCK_RETRY_MS = 5000;

/** Openings of one issue run one after another in this process (issues.opened and .labeled arrive together). */
const issueQueue = new KeyedMutex();
/** Sticky comments: find-then-update must not interleave for the same marker. */
const stickyQueue = new KeyedMutex();
/** Refusals of people without write access: one reply each per thread (see refuseNonWriter). */
const refusalQueue = new KeyedMutex();

export class RoundWorkflow {
  private readonly forge: Forge;
  private readonly ledger: Ledger;
  private readonly now: () => Date;

  constructor(private readonly d: WorkflowDeps) {
    this.forge = d.forge;
    this.ledger = d.ledger;
    this.now = d.now ?? (() => new Date());
  }

  // =============================================================================================================
  // Events

  /** issues.opened / issues.labeled: opens a round for a round issue (once per issue). */
  async onIssue(e: IssueEvent): Promise<void> {
    if (e.sender.isBot || e.issue.isPullRequest) return;
    const where: Where = { thread: e.issue.number, round: null, delivery: e.delivery, event: e.event, actor: e.sender.login };
    await this.guard(where, async () => {
      // Other issues and labels are none of our business: nothing is recorded for them.
      const file = await this.forge.loadConfig();
      const parsed = file.error ? null : parseRelabelConfig(file.data);
      const label = parsed?.ok ? parsed.config.round_label : defaultRelabelConfig().round_label;
      if (!e.issue.labels.includes(label) || (e.event === "issues.labeled" && e.label !== label)) return;
      // The issue form sets the label for anyone who opens an issue with it.
      const permission = await this.forge.permission(e.sender.login);
      const nonWriter = refuseNonWriter(e.sender.login, permission);
      if (nonWriter !== null) return this.refuseNonWriter(e.issue.number, e.sender.login, permission, nonWriter.replace("relabel-loop commands need", "opening a round needs"));
      if (!(await this.claim(where))) return;
      const config = await this.config(where, file);
      if (config !== null) await this.openRound(e.issue, e.sender, where, config, true);
    });
  }

  /** issue_comment.created: one `/relabel` command per comment, from people with write access. */
  async onComment(e: CommentEvent): Promise<void> {
    if (e.sender.isBot) return;
    const parsed = parseCommands(e.comment.body);
    if (parsed.kind === "ignore") return;
    const name = parsed.kind === "run" ? parsed.command : parsed.command;
    const where: Where = { thread: e.issue.number, round: null, delivery: e.delivery, event: "issue_comment.created", actor: e.sender.login, command: name ?? "relabel" };
    await this.guard(where, async () => {
      const permission = await this.forge.permission(e.sender.login);
      const nonWriter = refuseNonWriter(e.sender.login, permission);
      if (nonWriter !== null) return this.refuseNonWriter(e.issue.number, e.sender.login, permission, nonWriter);
      if (!(await this.claim(where, `comment:${e.comment.id}`))) return;
      const config = await this.config(where);
      if (config === null) return;
      const auth = authorizeCommand(e.sender.login, permission, config);
      if (!auth.ok) {
        await this.forge.comment(e.issue.number, auth.reply);
        await this.refuse(where, `refused: ${e.sender.login} has ${permission} permission${config.commands.allowlist ? " or is not on the allowlist" : ""}`);
        return;
      }
      if (parsed.kind === "reply") {
        await this.forge.comment(e.issue.number, parsed.body);
        await this.refuse(where, "replied: usage");
        return;
      }
      await this.forge.react({ comment: e.comment.id }, "eyes");
      await this.runCommand(parsed, e, where, config);
    });
  }

  /** Results pull requests (opened, synchronize, reopened, labeled): a check run with the dry run of the rebuild. */
  async onPullRequest(e: PullRequestEvent): Promise<void> {
    if (e.pr.state !== "open") return;
    const where: Where = { thread: e.pr.number, round: null, delivery: e.delivery, event: e.event, actor: e.sender.login };
    await this.guard(where, async () => {
      if (!e.pr.head.fork && roundOfSelectionBranch(e.pr.head.ref) !== null) return; // our own selection PR
      const read = await this.readConfig();
      // A config that does not parse names no label: the default one's PRs hear why they get no dry run.
      if (!e.pr.labels.includes(read.ok ? read.config.results_label : defaultRelabelConfig().results_label)) return;
      if (e.pr.base.ref !== (await this.forge.defaultBranch())) return;
      if (!(await this.claim(where))) return;
      if (!read.ok) {
        const summary = `${renderConfigProblems(read.problems)}\nThen re-run this check.\n`;
        await this.forge.createCheckRun({ name: CHECK_NAME, headSha: e.pr.head.sha, status: "completed", conclusion: "failure", output: { title: "The config does not parse: no dry run", summary } });
        await this.record(where, `check: .github/relabel.yml has ${read.problems.length} problem(s)`);
        return;
      }
      await this.checkResults(e.pr, where, read.config);
    });
  }

  /** check_run.rerequested: the results check runs again for the open PRs at the check's commit. */
  async onCheckRerequested(e: { delivery: string | null; prs: readonly number[]; sender: Actor }): Promise<void> {
    for (const number of e.prs) {
      const pr = await this.forge.pullRequest(number);
      // One claim per PR: the delivery id alone would let only the first through.
      await this.onPullRequest({ delivery: e.delivery === null ? null : `${e.delivery}:${number}`, event: "check_run.rerequested", pr, sender: e.sender });
    }
  }

  /** pull_request.closed: a merged selection PR freezes the selection; a merged results PR starts training. */
  async onPullRequestClosed(e: PullRequestEvent): Promise<void> {
    const where: Where = { thread: e.pr.number, round: null, delivery: e.delivery, event: e.event, actor: e.sender.login };
    // Nothing from an unmerged PR, or one merged into another branch, ever runs.
    if (!e.pr.merged) return;
    await this.guard(where, async () => {
      if (e.pr.base.ref !== (await this.forge.defaultBranch())) return;
      // The App's own selection branch (a PR reopened from it after the first was closed freezes as well).
      const selectionRound = e.pr.head.fork ? null : roundOfSelectionBranch(e.pr.head.ref);
      const read = await this.readConfig();
      if (selectionRound === null && !e.pr.labels.includes(read.ok ? read.config.results_label : defaultRelabelConfig().results_label)) return;
      const wait = { ms: this.d.mergeLockWaitMs ?? MERGE_LOCK_WAIT_MS, reportBusy: true };
      if (selectionRound !== null) {
        if (!(await this.claim(where, mergeKey(e.pr)))) return;
        await this.ledger.sync();
        await this.freezeSelection(selectionRound, e.pr, where, wait);
      } else if (read.ok) {
        await this.ledger.sync();
        await this.resultsMerged(e.pr, where, read.config, wait);
      } else {
        // Not claimed: the poller rebuilds this merge once the file parses (rebuildMissedResults).
        await this.upsert(e.pr.number, "config", e.pr.number, `${renderConfigProblems(read.problems).replace("Nothing was started.", "The dataset was not rebuilt.")}\nOnce it parses, the App's poller rebuilds this merge.\n`);
        await this.record(where, `not rebuilt: .github/relabel.yml has ${read.problems.length} problem(s)`);
      }
    });
  }

  /**
   * One pass of the poller: every round with jobs to follow, and the merges the App did not hear of (it was
   * down, or the delivery failed): a selection PR merged is frozen now, a results PR merged is rebuilt now.
   * `loaded`: the config file as the caller just read it (the App's poller, for the poll interval), read once for
   * the whole pass instead of once per round.
   */
  async poll(loaded?: ConfigFile): Promise<void> {
    await this.ledger.sync();
    const manifests = await this.manifests();
    if (manifests.some((m) => m.state === "labeling")) {
      await this.guard({ thread: null, round: null, delivery: null, event: "poll", actor: "relabel-loop" }, () => this.rebuildMissedResults(manifests, loaded));
    }
    for (const manifest of manifests) {
      const where: Where = { thread: manifest.issue, round: manifest.round, delivery: null, event: "poll", actor: "relabel-loop" };
      if (awaitsSelectionMerge(manifest)) {
        await this.guard(where, () => this.freezeIfMerged(manifest, where));
        continue;
      }
      if (!needsPolling(manifest)) continue;
      await this.guard(where, async () => {
        const config = await this.quietConfig(loaded);
        if (config !== null) await this.followJobs(manifest.round, where, config, { reportBusy: false });
      });
    }
  }

  // =============================================================================================================
  // Opening a round and ranking

  /**
   * Opens the round of a round issue. `claimIssue` (webhook deliveries) records the issue as taken first, so that
   * of two processes handling issues.opened and issues.labeled only one allocates a round; a `/relabel rank` on an
   * issue whose first attempt failed before its round existed skips that claim.
   */
  private async openRound(issue: IssueInfo, sender: Actor, where: Where, config: RelabelConfig, claimIssue: boolean): Promise<void> {
    await issueQueue.run(`${this.forge.repo}#${issue.number}`, async () => {
      await this.ledger.sync();
      const existing = await this.roundForIssue(issue.number);
      if (existing !== null) {
        await this.record({ ...where, round: existing.round }, `ignored: issue #${issue.number} already has round ${existing.round}`);
        return;
      }
      const permission = await this.forge.permission(sender.login);
      const auth = authorizeCommand(sender.login, permission, config);
      if (!auth.ok) {
        await this.forge.comment(issue.number, auth.reply.replace("relabel-loop commands need", "opening a round needs"));
        await this.refuse(where, `refused: ${sender.login} has ${permission} permission`);
        return;
      }
      const parsed = parseRoundIssue(issue.body, issue.labels, config);
      if (parsed.kind !== "request") {
        if (parsed.kind === "problems") await this.upsert(issue.number, "issue-problems", issue.number, roundIssueProblemsComment(parsed.problems));
        await this.refuse(where, parsed.kind === "problems" ? `refused: issue form problems (${parsed.problems.length})` : "ignored: not a round issue");
        return;
      }
      await this.forge.react({ issue: issue.number }, "eyes");
      if (claimIssue && where.delivery !== null) {
        // The delivery is already recorded; this line's dedupe key is the issue alone.
        const claimed = await this.ledger.appendEventOnce({ ...this.event(where, `opening round (delivery ${where.delivery})`), delivery: null, comment: `round-for-issue:${issue.number}` });
        if (claimed === null) return;
      }
      // Before anything is ranked: a round whose stages could never run is refused now, not after the labelling.
      await this.executor(config);
      // The previous round's models predict the pool first for their committee disagreement, or for their descriptors
      // (selection.features: previous-round; the first round, without a model, ranks by the descriptor).
      const committeeRound = parsed.request.committee === "previous-round";
      const described = !committeeRound && previousRoundFeatures(config.selection.features) ? await this.previousModels(config) : null;
      if (committeeRound || described) await this.startPoolEvalRound(issue, sender.login, parsed.request, where, config, described);
      else await this.rankRound({ kind: "new", issue, author: sender.login, request: parsed.request }, where, config);
    });
  }

  /**
   * Ranks and writes the selection branch and PR. For a new round the round number is allocated once the ranking
   * worked (so a bad pool path allocates nothing); a re-rank replaces the files on the existing branch.
   */
  private async rankRound(
    target:
      | { kind: "new"; issue: IssueInfo; author: string; request: RoundRequest }
      | { kind: "rerank"; manifest: RoundManifest; select?: number; weights?: { div: number; dis: number }; config?: RelabelConfig },
    where: Where,
    config: RelabelConfig,
  ): Promise<void> {
    const base = await this.forge.defaultBranch();
    const request =
      target.kind === "new"
        ? target.request
        : { pool: target.manifest.pool.map((p) => p.path), select: target.select ?? target.manifest.parameters.select, weights: target.weights ?? target.manifest.parameters.weights, committee: target.manifest.parameters.committee };
    const committeeFiles = typeof request.committee === "object" ? request.committee.files : [];
    const predicted = target.kind === "rerank" ? await this.poolPredictions(target.manifest.round, request.committee === "previous-round", config) : { members: [], features: [] };
    let manifest: RoundManifest | null = target.kind === "rerank" ? target.manifest : null;
    let held: RoundLock | null = null;
    try {
      const outcome = await rankSelection(this.ledger, this.scratch, {
        ref: base,
        pool: request.pool,
        select: request.select,
        weights: request.weights,
        selection: config.selection,
        committeeRepoFiles: committeeFiles,
        committeeLocalFiles: predicted.members,
        featuresLocalFiles: predicted.features,
        templates: config.vasp_templates,
        software: this.d.software,
        largeFileBytes: this.d.largeFileBytes,
        roundFor: async (ranking) => {
          if (manifest !== null) return manifest.round;
          const issue = (target as { issue: IssueInfo }).issue;
          const parameters = { ...config.selection, select: request.select, weights: request.weights, committee: request.committee };
          const time = this.now().toISOString();
          let created: RoundManifest | null = null;
          const { round } = await this.ledger.nextRoundNumber((n) => {
            created = newRoundManifest({ round: n, issue: issue.number, opened_by: (target as { author: string }).author, time, pool: ranking.sources.map((s) => ({ path: s.path, sha256: s.sha256 })), parameters });
            return manifestText(created);
          });
          manifest = created!;
          where.round = round;
          return round;
        },
      });
      const m0 = manifest!;
      where.round = m0.round;
      if (target.kind === "new") {
        const lock = await this.takeLock(m0.round, `@${where.actor}`, "ranking", where);
        if (!lock.ok) throw new Refusal(busyText(m0.round, lock));
        held = lock.lock;
      }
      if (target.kind === "rerank" && (await this.selectionMergedMeanwhile(m0, where))) return;
      const branch = selectionBranch(m0.round);
      const stale = (await this.ledger.head(branch)) === null ? [] : await this.ledger.list(roundPaths(m0.round).selection, branch, { recursive: true }).catch(() => []);
      const fresh = new Set(outcome.files.map((f) => f.path));
      const files: LedgerFile[] = [...outcome.files, ...stale.filter((e) => e.type === "file" && !fresh.has(e.path)).map((e) => ({ path: e.path, content: null }))];
      const sha = await this.ledger.commit({ branch, base, message: `Round ${m0.round}: selection of ${outcome.ranking.selection_size} structures`, files, guard: frozenPathGuard(m0) });
      const { magmom, ldau } = config.vasp_templates;
      const perElementIncar = [...(magmom ? ["MAGMOM"] : []), ...(ldau ? ["DFT+U (LDAUL/LDAUU/LDAUJ)"] : [])];
      const summary = selectionSummary(outcome.ranking, { round: m0.round, boxed: outcome.boxed, vacuum: config.vasp_templates.vacuum, rankingCsv: outcome.rankingCsv, perElementIncar, kpointsAdvice: outcome.kpointsAdvice, potcarSymbols: config.vasp_templates.potcar_symbols });
      const pr = await this.forge.openPullRequest({ head: branch, base, title: `Round ${m0.round}: selection`, body: `${summary}\nRound issue: #${m0.issue}\n` });
      const ranked = advance(m0, "ranked", sha, this.now().toISOString());
      const next = withRankingFigures(
        {
          ...ranked,
          pool: outcome.pool,
          parameters: { ...ranked.parameters, weights: request.weights },
          branches: { ...ranked.branches, selection: branch },
          prs: { ...ranked.prs, selection: pr },
        },
        outcome.ranking,
      );
      await this.writeManifest(next, `Round ${next.round}: selection PR #${pr}`);
      await this.upsert(m0.issue, "selection", m0.round, `${summary}\n**Selection PR: #${pr}** — merge it to freeze the selection.\n`);
      await this.record(where, `${target.kind === "new" ? "round opened" : "re-ranked"}: ${outcome.ranking.selection_size} selected, PR #${pr}`, sha);
    } finally {
      if (held && manifest) await this.ledger.releaseLock((manifest as RoundManifest).round, held);
    }
  }

  /**
   * committee: previous-round. The latest round with trained committee models predicts the pool (an eval stage
   * run through the executor, like any stage); the ranking follows when the predictions arrive (see followJobs).
   * `described`: without that committee, the previous round's models whose first computes the descriptors for
   * selection.features: previous-round.
   */
  private async startPoolEvalRound(
    issue: IssueInfo, author: string, request: RoundRequest, where: Where, config: RelabelConfig, described: PreviousModels | null,
  ): Promise<void> {
    const base = await this.forge.defaultBranch();
    const committeeRound = described === null;
    const previous = described === null ? await this.previousCommittee(config) : { ...described, models: described.models.slice(0, 1) };
    const pool = await withScratch(this.scratch, async (dir) => {
      const exported = await this.ledger.exportTree(base, dir, request.pool);
      for (const p of request.pool) {
        if (!exported.includes(p)) throw new StepError(`${p}: the previous round's models predict pool files (extxyz, ASE trajectories or LAMMPS dumps); this is not a file in the data repository`);
      }
      return Promise.all(request.pool.map(async (p) => ({ path: p, sha256: await sha256File(path.join(dir, p)) })));
    });
    const parameters = { ...config.selection, select: request.select, weights: request.weights, committee: request.committee };
    const time = this.now().toISOString();
    let created: RoundManifest | null = null;
    const { round } = await this.ledger.nextRoundNumber((n) => {
      created = newRoundManifest({ round: n, issue: issue.number, opened_by: author, time, pool, parameters });
      return manifestText(created);
    });
    where.round = round;
    const manifest = created!;
    await this.withLock(round, where, "pool predictions", true, async () => {
      const models = await this.downloadModels(previous, round, config);
      const stageDir = this.stageDir(round, STAGE_POOL_EVAL);
      await withScratch(this.scratch, async (dir) => {
        await this.ledger.exportTree(base, dir, request.pool);
        const datasetDir = await exportCurrentDataset(this.ledger, base, dir);
        await rm(stageDir, { recursive: true, force: true });
        // selection.features: previous-round ranks in member 0's descriptors of the pool and of datasets/current.
        const fromModel = previousRoundFeatures(config.selection.features);
        const descriptors = fromModel ? (fromModel.perElement ? "per-element" : true) : config.stage.eval.descriptors;
        const committeeModels = committeeRound ? models : [];
        const stageConfig = { ...config.stage, eval: { ...config.stage.eval, model: models[0], committee_models: committeeModels, pool: request.pool.map((p) => path.join(dir, p)), type_map: config.selection.type_map, descriptors } };
        await buildStage({ kind: "eval", datasetDir, outDir: stageDir, config: stageConfig, configSource: ".github/relabel.yml: stage", baseDir: dir, version: this.d.software.version });
      });
      await this.commitStage(manifest, STAGE_POOL_EVAL, stageDir);
      await this.submitStage(manifest, STAGE_POOL_EVAL, config, false);
      await this.announceJobs(round);
      const what = committeeRound
        ? `the ${models.length} models of round ${previous.round} are predicting the pool (stage \`${STAGE_POOL_EVAL}\`); the ranking with their disagreement follows when the predictions arrive.`
        : `the model of round ${previous.round} is computing the descriptors of the pool and of \`${CURRENT_DATASET}\` (stage \`${STAGE_POOL_EVAL}\`, \`selection.features: previous-round\`); the ranking in them follows when they arrive.`;
      await this.forge.comment(issue.number, `**Round ${round}:** ${what} \`/relabel collect\` checks at once.`);
      await this.record(where, `round opened: ${committeeRound ? "committee" : "model"} of round ${previous.round} submitted on the pool`);
    });
  }

  /** The trained committee of the latest round that has trained models: its train job and the models, member 0 first. */
  private async previousCommittee(config: RelabelConfig): Promise<PreviousModels> {
    const previous = await this.previousModels(config);
    if (previous === null) throw new StepError("no earlier round has trained models to act as the committee: use committee files or none for this round");
    if (previous.models.length < 2) {
      throw new StepError(`round ${previous.round} trained a single model; a committee needs at least 2 models (set stage.committee to 2 or more for the rounds whose models should rank the next pool)`);
    }
    return previous;
  }

  /** The models of the latest round that trained any (committee members in order, or its single model); null when none did. */
  private async previousModels(config: RelabelConfig): Promise<PreviousModels | null> {
    const rounds = (await this.manifests()).filter((m) => m.finished_steps.includes("jobs")).reverse();
    const name = `${config.stage.name}.model`;
    for (const m of rounds) {
      const text = await this.ledger.read(roundPaths(m.round).jobs);
      if (text === null) continue;
      const job = (JSON.parse(text.toString("utf8")) as JobsFile).jobs.find((j) => j.stage === STAGE_TRAIN && j.collected !== null);
      if (!job) continue;
      const member = new RegExp(`^${escapeRegExp(job.remote_dir)}/member-(\\d+)/${escapeRegExp(name)}$`);
      const members = job.collected!.models.filter((f) => member.test(f.path)).sort((a, b) => Number(member.exec(a.path)![1]) - Number(member.exec(b.path)![1]));
      const models = members.length > 0 ? members : job.collected!.models.filter((f) => f.path === `${job.remote_dir}/${name}`);
      if (models.length > 0) return { round: m.round, job, models };
    }
    return null;
  }

  /** Copies the previous round's models from its execution host into this round's state. */
  private async downloadModels(previous: { round: number; job: JobRecord; models: FileRecord[] }, round: number, config: RelabelConfig): Promise<string[]> {
    const tracker = await this.tracker(previous.round, config);
    try {
      const recorded = (await readLedger(await this.jobsPath(previous.round))).executors[previous.job.executor];
      const executor = await tracker.pool.get(previous.job.executor, config.executors[previous.job.executor] ?? recorded);
      const localDir = path.join(this.d.stateDir, "rounds", roundId(round), "committee-models");
      const relative = previous.models.map((f) => ({ ...f, path: f.path.slice(previous.job.remote_dir.length + 1) }));
      await executor.download(previous.job.remote_dir, relative, localDir);
      return relative.map((f) => path.join(localDir, ...f.path.split("/")));
    } finally {
      await tracker.close();
    }
  }

  /**
   * A round's pool-eval outputs: with `committee`, its members' pool predictions (predictions/pool.member-K.extxyz),
   * and, with selection.features previous-round, the files holding member 0's descriptors (the pool's, and
   * datasets/current's splits). Nothing for a round without a pool-eval stage that needs neither.
   */
  private async poolPredictions(round: number, committee: boolean, config: RelabelConfig): Promise<{ members: LocalFile[]; features: LocalFile[] }> {
    const job = (await this.jobs(round)).jobs.find((j) => j.stage === STAGE_POOL_EVAL);
    const fromModel = previousRoundFeatures(config.selection.features);
    if (!committee && (job === undefined || !fromModel)) return { members: [], features: [] };
    if (!job || lastAttempt(job).outcome !== "succeeded") throw new Refusal(`round ${round}: the previous round's pool predictions are not there yet (stage ${STAGE_POOL_EVAL})`);
    const tracker = await this.tracker(round, config);
    try {
      const { dir } = await collectJob(tracker, this.collectDir(round), job);
      const files = job.collected?.files ?? (await readLedger(await this.jobsPath(round))).jobs.find((j) => j.hash === job.hash)!.collected!.files;
      const members = files.map((f) => f.path).filter((p) => /^predictions\/pool\.member-\d+\.extxyz$/.test(p)).sort((a, b) => Number(/(\d+)\.extxyz$/.exec(a)![1]) - Number(/(\d+)\.extxyz$/.exec(b)![1]));
      if (committee && members.length < 2) throw new StepError(`round ${round}: the committee stage wrote ${members.length} pool prediction file(s); 2 or more are needed`);
      const host = `${job.host === null ? "" : `${job.host}:`}${job.remote_dir}`;
      const local = (p: string): LocalFile => ({ file: path.join(dir, ...p.split("/")), display: `${host}/${p}` });
      const written = new Set(files.map((f) => f.path));
      const described = fromModel !== null;
      if (described && !written.has("predictions/train.extxyz")) {
        throw new StepError(`round ${round}: the pool predictions carry no descriptors (stage ${STAGE_POOL_EVAL} ran before selection.features was previous-round), so the ranking cannot use them; set selection.features to null to rank by the descriptor, or open a new round`);
      }
      const features = described ? DESCRIBED_PREDICTIONS.filter((p) => written.has(p)) : [];
      return { members: committee ? members.map(local) : [], features: features.map(local) };
    } finally {
      await tracker.close();
    }
  }

  /**
   * The poller's rebuild for results PRs merged into the default branch whose merge event never came, or whose
   * step left a round waiting (locked at the time): one listing of merged PRs per tick while a round waits for
   * labels. A merge is claimed like the event would claim it (one key per merge), so that it is taken up once, by
   * the poller or by a late event; merges that add no labels for a waiting round are left alone (no comment).
   */
  private async rebuildMissedResults(manifests: RoundManifest[], loaded?: ConfigFile): Promise<void> {
    const config = await this.quietConfig(loaded);
    if (config === null) return;
    const base = await this.forge.defaultBranch();
    // A merge that adds labels comes after its round's selection froze: nothing older needs listing (a day's margin
    // for a clock of this host that runs ahead of GitHub's).
    const frozen = manifests.filter((m) => m.state === "labeling").map((m) => Date.parse(m.timestamps.frozen ?? m.timestamps.opened));
    if (frozen.length === 0) return;
    const since = new Date(Math.min(...frozen) - 24 * 3600_000).toISOString();
    for (const pr of (await this.forge.mergedPullRequests(config.results_label, since)).reverse()) {
      if (pr.base.ref !== base || pr.mergeCommitSha === null) continue;
      const rounds = await this.roundsWithLabels(pr.mergeCommitSha, manifests);
      if (rounds.length === 0) continue;
      const where: Where = { thread: pr.number, round: null, delivery: `poll:merged:${pr.number}`, event: "poll", actor: "relabel-loop" };
      // As for the merge event: a failure is posted on the PR and fails its round. A round still locked is left
      // for a later tick, without waiting (this tick has other rounds to serve).
      const quietly = { ms: 0, reportBusy: false };
      const handled = await this.ledger.seen(mergeKey(pr));
      await this.guard(where, () => (handled ? this.rebuildRounds(rounds, pr, where, config, quietly, null) : this.resultsMerged(pr, where, config, quietly)));
    }
  }

  /**
   * The poller's freeze of a selection PR merged into the default branch (the merge event itself may never come).
   * A PR closed without merging is noted in the state directory and not asked about again (one API call per
   * round and tick otherwise, for rounds nobody continues).
   */
  private async freezeIfMerged(listed: RoundManifest, where: Where): Promise<void> {
    // The list was read at the start of the tick; the merge event may have frozen the round since.
    await this.ledger.sync();
    const manifest = await this.manifest(listed.round);
    if (!awaitsSelectionMerge(manifest)) return;
    const number = manifest.prs.selection!;
    const closedFile = path.join(this.d.stateDir, "rounds", roundId(manifest.round), "selection-closed.json");
    const closed = await readFile(closedFile, "utf8").then((text) => (JSON.parse(text) as { pr: number }).pr, () => null);
    if (closed === number) return;
    const pr = await this.forge.pullRequest(number);
    if (pr.state === "closed" && !pr.merged) {
      await mkdir(path.dirname(closedFile), { recursive: true });
      await writeFile(closedFile, JSON.stringify({ pr: number }));
      return;
    }
    if (!pr.merged || pr.base.ref !== (await this.forge.defaultBranch())) return;
    // A round still locked is frozen at a later tick, without waiting here.
    await this.freezeSelection(manifest.round, pr, where, { ms: 0, reportBusy: false });
  }

  /**
   * A re-rank (which holds the round's lock) checks before it writes anything: once the selection PR is merged,
   * the merged selection stands, and writing a new one would put the branch and the round out of step with it.
   */
  private async selectionMergedMeanwhile(m0: RoundManifest, where: Where): Promise<boolean> {
    await this.ledger.sync();
    const now = await this.manifest(m0.round);
    const pr = now.prs.selection;
    if (!now.finished_steps.includes("selection") && (pr === undefined || !(await this.forge.pullRequest(pr)).merged)) return false;
    await this.forge.comment(now.issue, `Round ${m0.round}: the selection PR${pr === undefined ? "" : ` #${pr}`} was merged while ranking again; the merged selection stands, and this ranking was dropped.`);
    await this.refuse(where, "re-rank dropped: selection merged meanwhile");
    return true;
  }

  /**
   * Under the round's lock, waiting for it (the merge event up to MERGE_LOCK_WAIT_MS) rather than reporting it
   * busy at once; a re-rank that holds the lock drops its result once it sees the merge (selectionMergedMeanwhile)
   * instead of writing over the frozen round. A freeze that finds the round busy is done by the poller later.
   */
  private async freezeSelection(round: number, pr: PullRequestInfo, where: Where, wait: LockWait): Promise<void> {
    where.round = round;
    await this.withLock(round, where, "freezing the selection", wait.reportBusy, () => this.freezeLocked(round, pr, where), wait.ms, true);
  }

  private async freezeLocked(round: number, pr: PullRequestInfo, where: Where): Promise<void> {
    await this.ledger.sync();
    const manifest = await this.manifest(round);
    if (manifest.finished_steps.includes("selection")) {
      await this.record(where, "ignored: selection already frozen");
      return;
    }
    const commit = pr.mergeCommitSha ?? (await this.ledger.head())!;
    // The round states what was merged: a re-rank whose push came just after the merge recorded its own figures.
    const merged = await this.ranking(manifest, commit).catch(() => null);
    const inStep = merged === null ? manifest : withRankingFigures(manifest, merged);
    const frozen = advance(inStep, "frozen", commit, this.now().toISOString());
    await this.writeManifest(frozen, `Round ${round}: selection frozen (PR #${pr.number} merged)`);
    if (merged !== null && JSON.stringify(inStep) !== JSON.stringify(manifest)) {
      const rankingCsv = await this.rankingCsvPath(round, commit);
      await this.upsert(manifest.issue, "selection", round, `${selectionSummary(merged, { round, rankingCsv })}\n**Selection PR: #${pr.number}** — merged before the last ranking was written; this is the merged selection.\n`);
    }
    const config = await this.quietConfig();
    const label = config?.results_label ?? "labeled-results";
    const p = roundPaths(round);
    await this.forge.comment(
      manifest.issue,
      [
        `**Round ${round}: selection frozen** (PR #${pr.number}, merge commit \`${(pr.mergeCommitSha ?? "").slice(0, 12)}\`).`,
        "",
        `Next: run VASP on each folder of \`${p.poscars}/\` and open a pull request that adds the run folders ` +
          `(vasprun.xml and/or OUTCAR, one folder per structure; names are free) under \`${p.labels}/\`, with the label \`${label}\`. ` +
          "Its check run matches every run to a selected structure and dry-runs the dataset rebuild; merging it rebuilds the dataset and starts training.",
        "",
      ].join("\n"),
    );
    await this.record(where, `selection frozen: PR #${pr.number}`, frozen.commits.frozen ?? null);
  }

  // =============================================================================================================
  // Results PR: dry run, merge

  /** Rounds waiting for labels whose labels/ folder has files at `ref`. */
  private async roundsWithLabels(ref: string, manifests?: RoundManifest[]): Promise<RoundManifest[]> {
    const found: RoundManifest[] = [];
    for (const m of manifests ?? (await this.manifests())) {
      if (effectiveState(m) !== "labeling") continue;
      const files = await this.ledger.list(roundPaths(m.round).labels, ref, { recursive: true }).catch(() => []);
      if (files.length > 0) found.push(m);
    }
    return found;
  }

  private async checkResults(pr: PullRequestInfo, where: Where, config: RelabelConfig): Promise<void> {
    if (pr.head.fork) {
      await this.forge.createCheckRun({
        name: CHECK_NAME,
        headSha: pr.head.sha,
        status: "completed",
        conclusion: "neutral",
        output: {
          title: "Not checked: this pull request comes from a fork",
          summary:
            "relabel-loop reads and runs nothing from forks before they are merged. Push the branch to this repository " +
            "to get the dry run of the rebuild, or review the runs by hand: merging still rebuilds the dataset from the merged files.",
        },
      });
      await this.record(where, "check: fork, nothing run");
      return;
    }
    await this.ledger.sync();
    const rounds = await this.roundsWithLabels(pr.head.sha);
    if (rounds.length === 0) {
      const waiting = (await this.manifests()).filter((m) => effectiveState(m) === "labeling").map((m) => roundPaths(m.round).labels);
      await this.forge.createCheckRun({
        name: CHECK_NAME,
        headSha: pr.head.sha,
        status: "completed",
        conclusion: "failure",
        output: {
          title: "No labels for a round that awaits them",
          summary: waiting.length
            ? `This pull request adds no run folders under ${waiting.map((w) => `\`${w}/\``).join(", ")}.`
            : "No round is waiting for labels (a round's selection PR must be merged first).",
        },
      });
      await this.record(where, "check: no labels found");
      return;
    }
    for (const manifest of rounds) {
      where.round = manifest.round;
      const id = await this.forge.createCheckRun({ name: `${CHECK_NAME} (round ${manifest.round})`, headSha: pr.head.sha, status: "in_progress" });
      let report: Awaited<ReturnType<RoundWorkflow["dryRun"]>>;
      try {
        report = await this.dryRun(manifest, pr.head.sha, config);
      } catch (err) {
        // A check that could not run ends as a failure, never left in progress; the round is untouched (a dry run).
        const message = userMessage(err);
        if (message === null) this.d.log.error(`${this.forge.repo}: ${where.event}: ${(err as Error)?.stack ?? String(err)}`);
        const summary = `The dry run could not finish: ${message ?? "an internal error (details are in the app's log)"}`;
        await this.forge.updateCheckRun(id, { status: "completed", conclusion: "failure", output: { title: "The dry run could not finish", summary } });
        await this.record(where, `check: could not finish: ${message ?? "internal error"}`);
        continue;
      }
      await this.forge.updateCheckRun(id, { status: "completed", conclusion: report.conclusion, output: { title: report.title, summary: report.summary } });
      if (manifest.prs.results !== pr.number) await this.noteResultsPr(manifest.round, pr.number, where);
      await this.record(where, `check: ${report.conclusion}`);
    }
  }

  /**
   * Records the round's results PR, from the manifest as it is now: the dry run took a while, and a merge may have
   * rebuilt the round meanwhile (it records the PR itself; writing the manifest read before would undo its step).
   */
  private async noteResultsPr(round: number, pr: number, where: Where): Promise<void> {
    await this.withLock(round, where, "noting the results PR", false, async () => {
      const m = await this.manifest(round);
      if (m.prs.results === pr || effectiveState(m) !== "labeling") return;
      await this.writeManifest({ ...m, prs: { ...m.prs, results: pr } }, `Round ${round}: results PR #${pr}`);
    });
  }

  private async dryRun(manifest: RoundManifest, headSha: string, config: RelabelConfig) {
    const ranking = await this.ranking(manifest);
    const base = await this.forge.defaultBranch();
    const result = await dryRunRebuild(this.ledger, this.scratch, {
      round: manifest.round,
      ranking,
      inputs: await this.datasetInputs(manifest.round, (r) => (r === manifest.round ? headSha : base), base, config),
    });
    return dryRunReport(result);
  }

  private async datasetInputs(round: number, labelsRef: (round: number) => string, previousRef: string, config: RelabelConfig): Promise<DatasetInputs> {
    const earlier = (await this.manifests()).filter((m) => m.round < round && m.finished_steps.includes("dataset")).map((m) => m.round);
    return { rounds: [...earlier, round], labelsRef, previousRef, dataset: config.dataset };
  }

  /**
   * A merged results PR: each round it adds labels for is rebuilt under its lock. The merge is claimed (once, by
   * the event or the poller) only when the first round's lock is held: a merge that finds its round busy stays
   * unclaimed, and the poller rebuilds it once the lock is free (so too a later round found busy).
   */
  private async resultsMerged(pr: PullRequestInfo, where: Where, config: RelabelConfig, wait: LockWait): Promise<void> {
    const key = mergeKey(pr);
    // A repeated delivery of a merge already handled takes no lock.
    if ((await this.ledger.seen(key)) || (where.delivery !== null && (await this.ledger.seen(where.delivery)))) return;
    const ref = pr.mergeCommitSha ?? (await this.forge.defaultBranch());
    const rounds = await this.roundsWithLabels(ref);
    if (rounds.length === 0) {
      if (!(await this.claim(where, key))) return;
      await this.forge.comment(pr.number, "relabel-loop: this merge adds no run folders for a round waiting for labels; nothing to rebuild.");
      await this.record(where, "ignored: no labels for a waiting round");
      return;
    }
    await this.rebuildRounds(rounds, pr, where, config, wait, key);
  }

  /**
   * Rebuilds each listed round under its lock, claiming the merge under the first one (`claimKey`; null: claimed
   * already). A round found busy is skipped; one rebuilt meanwhile (the list was read before its lock) too.
   */
  private async rebuildRounds(
    rounds: RoundManifest[], pr: PullRequestInfo, where: Where, config: RelabelConfig, wait: LockWait, claimKey: string | null,
  ): Promise<void> {
    let claimed = claimKey === null;
    for (const listed of rounds) {
      where.round = listed.round;
      await this.withLock(listed.round, where, "rebuilding the dataset", wait.reportBusy, async () => {
        if (!claimed && !(claimed = await this.claim(where, claimKey!))) return;
        const manifest = await this.manifest(listed.round);
        if (effectiveState(manifest) === "labeling") await this.rebuildAndSubmit(manifest, pr, where, config);
      }, wait.ms, true);
      if (!claimed) return;
    }
  }

  /** The merge: dataset rebuilt and committed, the train stage rendered, committed and submitted. */
  private async rebuildAndSubmit(manifest: RoundManifest, pr: PullRequestInfo, where: Where, config: RelabelConfig): Promise<void> {
    const base = await this.forge.defaultBranch();
    let m: RoundManifest = { ...manifest, prs: { ...manifest.prs, results: pr.number } };
    const datasetCommit = await withScratch(this.scratch, async (dir) => {
      const built = await buildRoundDataset(this.ledger, dir, await this.datasetInputs(m.round, () => base, base, config));
      if (!built.written) {
        throw new StepError(`the dataset rebuild failed, nothing was written: ${built.errors.join("; ")}`);
      }
      const files = await datasetFiles(this.ledger, m.round, built.datasetDir, built.summary, this.d.largeFileBytes);
      const sha = await this.ledger.commit({ message: `Round ${m.round}: dataset rebuilt from PR #${pr.number}`, files, guard: frozenPathGuard(m) });
      m = advance(m, "dataset", sha, this.now().toISOString());
      await this.writeManifest(m, `Round ${m.round}: dataset recorded`);
      return sha;
    });
    // The stage copies the dataset as committed (so its hash is reproducible from the ledger).
    const warnings = await this.renderTrainStage(m, config);
    const warned = warnings.length ? `\n\n> [!WARNING]\n${warnings.map((w) => `> - ${plainText(w)}`).join("\n")}\n\n` : " ";
    const rebuilt = `**Round ${m.round}: dataset rebuilt** in \`${datasetCommit.slice(0, 12)}\` (\`${roundPaths(m.round).datasetSummary}\`, \`datasets/current/\`); train stage rendered in \`${roundPaths(m.round).stages}/${STAGE_TRAIN}/\`.${warned}`;
    if (this.d.autoSubmit === false) {
      await this.forge.comment(pr.number, `${rebuilt}It was not submitted: \`/relabel submit\` submits it.`);
      await this.record(where, "dataset rebuilt, train stage rendered (not submitted)", datasetCommit);
      return;
    }
    await this.executor(config);
    await this.forge.comment(pr.number, `${rebuilt}Submitting it.`);
    await this.submitStage(m, STAGE_TRAIN, config, false);
    await this.announceJobs(m.round);
    await this.record(where, "dataset rebuilt, train stage submitted", datasetCommit);
  }

  // =============================================================================================================
  // Stages and jobs

  private stageDir(round: number, stage: string): string {
    return path.join(this.d.stateDir, "rounds", roundId(round), "stages", stage);
  }

  /** The round's jobs file in the state directory (its committed copy is rounds/NNNN/jobs.json). */
  jobsFile(round: number): string {
    return path.join(this.d.stateDir, "rounds", roundId(round), "jobs.json");
  }

  /**
   * The stage's scripts and parameters (run.sh and params.json, also those of committee members) and stage.json
   * under rounds/NNNN/stages/<stage>/; never the data, model or asset copies.
   */
  private async commitStage(m: RoundManifest, stage: string, dir: string): Promise<string> {
    const base = `${roundPaths(m.round).stages}/${stage}`;
    const manifest = JSON.parse(await readFile(path.join(dir, "stage.json"), "utf8")) as { files: Record<string, unknown> };
    const names = ["stage.json", ...Object.keys(manifest.files).filter((f) => /(^|\/)(run\.sh|params\.json)$/.test(f))];
    const files: LedgerFile[] = [];
    for (const name of names) files.push({ path: `${base}/${name}`, content: await readFile(path.join(dir, ...name.split("/"))), executable: name.endsWith("run.sh") });
    return this.ledger.commit({ message: `Round ${m.round}: ${stage} stage rendered`, files, guard: frozenPathGuard(m) });
  }

  /**
   * Renders the train stage (again) from the round's recorded dataset (a host that lost its state, a failed render);
   * returns its warnings, settings MACE will not follow as the stage states them, with repository paths.
   */
  private async renderTrainStage(m: RoundManifest, config: RelabelConfig): Promise<string[]> {
    const stageDir = this.stageDir(m.round, STAGE_TRAIN);
    const warnings = await withScratch(this.scratch, async (dir) => {
      const datasetDir = await exportCurrentDataset(this.ledger, m.commits.dataset!, dir);
      await rm(stageDir, { recursive: true, force: true });
      const stage = await buildStage({ kind: "train", datasetDir, outDir: stageDir, config: config.stage, configSource: ".github/relabel.yml: stage", baseDir: dir, version: this.d.software.version });
      return stage.warnings.map((w) => scratchAsRepoPaths(w, dir));
    });
    await this.commitStage(m, STAGE_TRAIN, stageDir);
    return warnings;
  }

  /** The local jobs file, restored from the ledger when this host has none (a restarted or moved bot). */
  private async jobsPath(round: number): Promise<string> {
    const file = this.jobsFile(round);
    if (!existsSync(file)) {
      await mkdir(path.dirname(file), { recursive: true });
      const recorded = await this.ledger.read(roundPaths(round).jobs);
      if (recorded !== null) await writeFile(file, recorded);
    }
    return file;
  }

  private async jobs(round: number): Promise<JobsFile> {
    const file = await this.jobsPath(round);
    return existsSync(file) ? readLedger(file) : emptyLedger();
  }

  private async tracker(round: number, config: RelabelConfig): Promise<JobTracker> {
    return new JobTracker(await this.jobsPath(round), { executors: config.executors, now: this.now, policy: this.policy() });
  }

  /** The executors' limits: they also hold for executors recorded in jobs.json, which the data repo holds too. */
  private policy(): ExecutorPolicy {
    return {
      ...(this.d.allowLocalExecutor ? {} : { localRefused: LOCAL_EXECUTOR_HINT }),
      refusedKeyFiles: this.d.appKeyFile === undefined ? [] : [this.d.appKeyFile],
      ...(this.d.offeredKeys ? { offeredKeys: this.d.offeredKeys } : {}),
    };
  }

  /** Copies the local jobs file into rounds/NNNN/jobs.json (no commit when unchanged). */
  private async commitJobs(round: number, why: string): Promise<string> {
    const file = await this.jobsPath(round);
    if (!existsSync(file)) return (await this.ledger.head())!;
    return this.ledger.commit({ message: `Round ${round}: jobs ${why}`, files: [{ path: roundPaths(round).jobs, content: await readFile(file) }] });
  }

  /**
   * The executor stages run on, refused before anything runs when the policy forbids it: one on this host unless
   * allowLocalExecutor says so, or one whose SSH key is the App's own.
   */
  private async executor(config: RelabelConfig): Promise<{ name: string; config: ExecutorConfig }> {
    const names = Object.keys(config.executors);
    const name = config.executor ?? (names.length === 1 ? names[0] : undefined);
    if (name === undefined && names.length > 1) throw new StepError(`several executors are configured (${names.join(", ")}): set \`executor\` in .github/relabel.yml`);
    if (name !== undefined) {
      if (config.executors[name].backend === "local" && !this.d.allowLocalExecutor) {
        throw new StepError(`executors.${name} in .github/relabel.yml has backend local, and this App does not run stages on its own host: ${LOCAL_EXECUTOR_HINT}. No stage was run.`);
      }
      await checkPolicy(name, config.executors[name], this.policy());
      return { name, config: config.executors[name] };
    }
    if (!this.d.allowLocalExecutor) {
      throw new StepError(`.github/relabel.yml configures no executor, and this App does not run stages on its own host: ${LOCAL_EXECUTOR_HINT}. No stage was run.`);
    }
    return {
      name: "local",
      config: { backend: "local", remote_root: path.join(path.resolve(this.d.stateDir), "runs"), setup: [], resources: {}, overrides: {}, resubmit: false, poll_interval: 30 },
    };
  }

  /**
   * Submits a rendered stage. A refusal that passes (the scheduler's controller down or busy, a QOS submit
   * limit) does not stop the round: the job stays in jobs.json as SUBMITTING, the poller submits it again, and
   * the round's thread hears why it waits.
   */
  private async submitStage(m: RoundManifest, stage: string, config: RelabelConfig, retry: boolean): Promise<void> {
    const dir = this.stageDir(m.round, stage);
    const stageJson = JSON.parse(await readFile(path.join(dir, "stage.json"), "utf8")) as { kind: "train" | "eval"; sha256: string };
    const executor = await this.executor(config);
    const tracker = await this.tracker(m.round, config);
    try {
      await tracker.submit({ dir: path.resolve(dir), name: stage, kind: stageJson.kind, hash: stageJson.sha256, round: roundId(m.round) }, { executor: executor.name, config: executor.config, round: roundId(m.round), retry });
    } catch (err) {
      if (!(err instanceof SubmitRefused && err.transient)) throw err;
      await this.forge.comment(
        m.prs.results ?? m.issue,
        `**Round ${m.round}:** the scheduler did not take the \`${stage}\` stage yet (${err.message}). The App submits it again at its next poll; \`/relabel status\` shows where it stands.`,
      );
    } finally {
      await tracker.close();
      await this.commitJobs(m.round, `${stage} submitted`);
    }
  }

  private async announceJobs(round: number): Promise<void> {
    const m = await this.manifest(round);
    await this.upsert(m.prs.results ?? m.issue, "jobs", round, jobsComment(await this.jobs(round), { round }));
  }

  /**
   * Polls the round's jobs and moves the round on: train finished → eval stage rendered and submitted; eval
   * finished → benchmark; a failed job → the round fails with the job's reason (once).
   */
  private async followJobs(round: number, where: Where, config: RelabelConfig, o: { reportBusy: boolean }): Promise<void> {
    await this.withLock(round, where, "polling jobs", o.reportBusy, async () => {
      const problems = await this.pollAndAdvance(round, where, config, o);
      // Commands report problems in their reply; the poller tells the thread once when they start and end.
      if (where.event === "poll") await this.notePollProblems(round, problems);
    });
  }

  /** followJobs' work under the round's lock; returns the problems the poll met. */
  private async pollAndAdvance(round: number, where: Where, config: RelabelConfig, o: { reportBusy: boolean }): Promise<string[]> {
    const tracker = await this.tracker(round, config);
    let jobs: JobRecord[];
    let problems: string[];
    try {
      ({ jobs, problems } = await tracker.poll());
    } finally {
      await tracker.close();
    }
    await this.commitJobs(round, "polled");
    let m = await this.manifest(round);
    const train = jobs.find((j) => j.stage === STAGE_TRAIN);
    const evaluation = jobs.find((j) => j.stage === STAGE_EVAL);
    const committee = jobs.find((j) => j.stage === STAGE_POOL_EVAL);
    const ended = jobs.filter((j) => !isOpen(j) && lastAttempt(j).outcome !== "succeeded");
    if (ended.length > 0) {
      if (m.state !== "failed") {
        const job = ended[0];
        const reason = lastAttempt(job).failure?.summary ?? lastAttempt(job).outcome ?? "ended";
        m = failRound(m, job.stage, `job ${lastAttempt(job).job_id ?? "?"} (${job.stage}) ${lastAttempt(job).outcome}: ${reason}`, this.now().toISOString());
        await this.writeManifest(m, `Round ${round}: ${job.stage} job ${lastAttempt(job).outcome}`);
        await this.announceJobs(round);
        await this.forge.comment(m.prs.results ?? m.issue, `**Round ${round} stopped:** ${m.failure!.message}\n\nFix the cause, then \`/relabel submit\` submits the failed stage again.`);
      }
      await this.record(where, `jobs: ${ended.map((j) => `${j.stage} ${lastAttempt(j).outcome}`).join(", ")}`);
      return problems;
    }
    if (committee && lastAttempt(committee).outcome === "succeeded" && effectiveState(m) === "ranking" && m.commits.selection === undefined) {
      await this.rankRound({ kind: "rerank", manifest: m }, where, config);
      return problems;
    }
    if (train && lastAttempt(train).outcome === "succeeded" && !evaluation) {
      await this.startEvaluation(m, train, config);
      await this.record(where, "train finished, eval stage submitted");
      return problems;
    }
    if (evaluation && lastAttempt(evaluation).outcome === "succeeded" && train && !m.finished_steps.includes("benchmark")) {
      await this.benchmark(m, train, evaluation, config);
      await this.record(where, "benchmark committed, round complete");
      return problems;
    }
    if (o.reportBusy) await this.record(where, `jobs polled: ${jobs.filter(isOpen).length} open${problems.length ? `; ${problems.join("; ")}` : ""}`);
    return problems;
  }

  private pollProblemsFile(round: number): string {
    return path.join(this.d.stateDir, "rounds", roundId(round), "poll-problems.json");
  }

  /** Problems the poller met and since when (kept beside the jobs file, not in the ledger), or null. */
  private async pollProblems(round: number): Promise<PollProblems | null> {
    return readFile(this.pollProblemsFile(round), "utf8").then((text) => JSON.parse(text) as PollProblems, () => null);
  }

  /** Keeps the poller's problems for `/relabel status` and tells the thread as nextPollNotice decides. */
  private async notePollProblems(round: number, problems: string[]): Promise<void> {
    const file = this.pollProblemsFile(round);
    const before = await this.pollProblems(round);
    if (problems.length === 0 && before === null) return;
    const { record, say } = nextPollNotice(before, problems, this.now().toISOString());
    if (record === null) await rm(file, { force: true });
    else {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, JSON.stringify(record));
    }
    if (say === null) return;
    const m = await this.manifest(round);
    await this.forge.comment(m.prs.results ?? m.issue, say === "problems" ? pollProblemsComment(round, problems) : pollRecoveredComment(round, before!.since));
  }

  private collectDir(round: number): string {
    return path.join(this.d.stateDir, "rounds", roundId(round), "collected");
  }

  /** Downloads the trained model, renders the eval stage on the round's test split and submits it. */
  private async startEvaluation(m: RoundManifest, train: JobRecord, config: RelabelConfig): Promise<void> {
    const tracker = await this.tracker(m.round, config);
    let modelFile: string;
    try {
      const { models } = await collectJob(tracker, this.collectDir(m.round), train);
      const name = `${config.stage.name}.model`;
      const wanted = config.stage.committee > 1 ? `${train.remote_dir}/member-0/${name}` : `${train.remote_dir}/${name}`;
      const model = models.find((f) => f.path === wanted);
      if (!model) throw new StepError(`the train stage finished but left no ${wanted} (models found: ${models.map((f) => f.path).join(", ") || "none"})`);
      const executor = await tracker.pool.get(train.executor, config.executors[train.executor] ?? (await readLedger(await this.jobsPath(m.round))).executors[train.executor]);
      const localDir = path.join(this.d.stateDir, "rounds", roundId(m.round), "models");
      const rel = model.path.slice(train.remote_dir.length + 1);
      await executor.download(train.remote_dir, [{ ...model, path: rel }], localDir);
      modelFile = path.join(localDir, ...rel.split("/"));
    } finally {
      await tracker.close();
    }
    const stageDir = this.stageDir(m.round, STAGE_EVAL);
    await withScratch(this.scratch, async (dir) => {
      const datasetDir = await exportCurrentDataset(this.ledger, m.commits.dataset!, dir);
      await rm(stageDir, { recursive: true, force: true });
      const stageConfig = { ...config.stage, eval: { ...config.stage.eval, model: modelFile, pool: [], committee_models: [] } };
      await buildStage({ kind: "eval", datasetDir, outDir: stageDir, config: stageConfig, configSource: ".github/relabel.yml: stage", baseDir: dir, version: this.d.software.version });
    });
    const stagesSha = await this.commitStage(m, STAGE_EVAL, stageDir);
    let next = advance(m, "stages", stagesSha, this.now().toISOString());
    await this.submitStage(next, STAGE_EVAL, config, false);
    next = advance(next, "jobs", await this.commitJobs(m.round, "eval submitted"), this.now().toISOString());
    await this.writeManifest(next, `Round ${m.round}: stages rendered and jobs submitted`);
    await this.announceJobs(m.round);
  }

  private async benchmark(m: RoundManifest, train: JobRecord, evaluation: JobRecord, config: RelabelConfig): Promise<void> {
    const tracker = await this.tracker(m.round, config);
    let evalDir: string;
    let trainDir: string;
    try {
      evalDir = (await collectJob(tracker, this.collectDir(m.round), evaluation)).dir;
      trainDir = (await collectJob(tracker, this.collectDir(m.round), train)).dir;
    } finally {
      await tracker.close();
    }
    await this.commitJobs(m.round, "collected");
    const p = roundPaths(m.round);
    const previousMetrics = m.round > 1 ? `${roundPaths(m.round - 1).benchmark}/metrics.json` : null;
    const bench = await withScratch(this.scratch, async (dir) => {
      const datasetDir = await exportCurrentDataset(this.ledger, m.commits.dataset!, dir);
      const previous = previousMetrics !== null && (await this.ledger.read(previousMetrics)) !== null ? previousMetrics : null;
      if (previous) await this.ledger.exportTree(await this.forge.defaultBranch(), dir, [previous]);
      const host = (j: JobRecord) => `${j.host === null ? "" : `${j.host}:`}${j.remote_dir}`;
      return benchRound({
        predictions: { file: path.join(evalDir, "predictions", "test.extxyz"), display: `${host(evaluation)}/predictions/test.extxyz` },
        testFile: path.join(datasetDir, "test.extxyz"),
        testDisplay: "datasets/current/test.extxyz",
        previous: previous ? { file: path.join(dir, previous), display: previous } : null,
        training: { files: await trainingOutputs(trainDir), localPrefix: `${trainDir}/`, display: `${host(train)}/` },
        keys: { energy: config.stage.energy_key, forces: config.stage.forces_key, stress: config.stage.stress_key },
      });
    });
    let next = advance(m, "collected", null, this.now().toISOString());
    const sha = await this.ledger.commit({ message: `Round ${m.round}: benchmark`, files: bench.files.map(([name, content]) => ({ path: `${p.benchmark}/${name}`, content })), guard: frozenPathGuard(next) });
    next = advance(next, "benchmark", sha, this.now().toISOString());
    next = advance(next, "complete", null, this.now().toISOString());
    await this.writeManifest(next, `Round ${m.round}: complete`);
    const plots = bench.files.filter(([name]) => name.endsWith(".svg")).map(([name]) => ({ file: name, url: this.forge.imageLink(`${p.benchmark}/${name}`, sha) }));
    await this.upsert(next.prs.results ?? next.issue, "benchmark", m.round, benchmarkComment(bench.reportMd, bench.warnings, plots, { round: m.round, commit: sha }));
    const rankingCsv = await this.rankingCsvPath(m.round, sha);
    await this.upsert(next.issue, "outputs", m.round, outputContract(next, { stages: [STAGE_TRAIN, STAGE_EVAL], url: (file) => this.forge.fileLink(file, sha), rankingCsv }));
    await this.forge.comment(next.issue, `**Round ${m.round} is complete**: benchmark in \`${p.benchmark}/\` (commit \`${sha.slice(0, 12)}\`)${next.prs.results ? `, report on #${next.prs.results}` : ""}. Closing this issue.`);
    await this.forge.closeIssue(next.issue);
  }

  // =============================================================================================================
  // Commands

  private async runCommand(c: Extract<ReturnType<typeof parseCommands>, { kind: "run" }>, e: CommentEvent, where: Where, config: RelabelConfig): Promise<void> {
    const thread = e.issue.number;
    if (c.command === "help") {
      await this.forge.comment(thread, helpText());
      await this.record(where, "help");
      return;
    }
    await this.ledger.sync();
    const manifest = await this.roundForThread(e.issue);
    where.round = manifest?.round ?? null;
    if (manifest === null) {
      if (c.command === "rank" && !e.issue.isPullRequest) {
        // A round issue whose round did not start (config or form problems since fixed): read it again.
        const issue = await this.forge.issue(thread);
        await this.openRound(issue, { login: e.sender.login, isBot: false }, where, config, false);
        return;
      }
      await this.forge.comment(thread, `\`/relabel ${c.command}\`: no round belongs to #${thread}. Commands work on round issues and round pull requests.`);
      await this.refuse(where, "replied: no round here");
      return;
    }
    await this.roundCommand(c, manifest, { number: thread, isPullRequest: e.issue.isPullRequest }, where, config);
  }

  private async roundCommand(c: RunCommand, manifest: RoundManifest, on: { number: number; isPullRequest: boolean }, where: Where, config: RelabelConfig): Promise<void> {
    const round = manifest.round;
    const thread = on.number;
    switch (c.command) {
      case "status": {
        await this.forge.comment(thread, statusComment(manifest, await this.jobs(round), await this.lockStatus(round), await this.pollProblems(round)));
        await this.record(where, "status");
        return;
      }
      case "unlock": {
        const lock = await this.ledger.readLock(round);
        // A lock of this process belongs to a step that is still running: releasing it would let another run beside it.
        if (lock !== null && lock.instance !== undefined && lock.instance === this.d.instance?.id && !c.args.force) {
          await this.forge.comment(thread, `Round ${round}: ${lock.holder} holds the lock since ${lock.since} (${lock.reason}), and that step is still running in the App. Nothing was released; \`/relabel unlock --force\` releases it anyway, for a step that hangs.`);
          await this.refuse(where, "unlock: refused, the step is running");
          return;
        }
        const sha = lock === null ? null : await this.ledger.releaseLock(round, lock);
        await this.forge.comment(thread, sha === null ? `Round ${round} was not locked.` : `Round ${round} unlocked.`);
        await this.record(where, sha === null ? "unlock: not locked" : "unlocked", sha);
        return;
      }
      case "rank": {
        if (!selectionOpen(manifest)) {
          await this.forge.comment(thread, `Round ${round}: the selection is frozen${manifest.commits.frozen ? ` (commit \`${manifest.commits.frozen.slice(0, 12)}\`)` : ""}; open a new round to rank again.`);
          await this.refuse(where, "refused: selection frozen");
          return;
        }
        await this.withLock(round, where, "re-ranking", true, () => this.rankRound({ kind: "rerank", manifest, select: c.args.select, weights: c.args.weights }, where, config));
        return;
      }
      case "rebuild": {
        // Typed on a results PR: that one (the round records only the last PR checked).
        const pr = on.isPullRequest && thread !== manifest.prs.selection ? thread : (manifest.prs.results ?? null);
        if (pr === null || effectiveState(manifest) !== "labeling") {
          await this.forge.comment(thread, `Round ${round}: no open results PR to check${effectiveState(manifest) !== "labeling" ? ` (the round is ${manifest.state})` : ""}.`);
          await this.refuse(where, "rebuild: nothing to check");
          return;
        }
        const info = await this.forge.pullRequest(pr);
        if (info.head.fork) throw new Refusal(`#${pr} comes from a fork: relabel-loop runs nothing from forks before they are merged`);
        await this.ledger.sync();
        const report = await this.dryRun(manifest, info.head.sha, config);
        await this.forge.createCheckRun({ name: `${CHECK_NAME} (round ${round})`, headSha: info.head.sha, status: "completed", conclusion: report.conclusion, output: { title: report.title, summary: report.summary } });
        await this.forge.comment(thread, report.summary);
        await this.record(where, `rebuild --dry-run: ${report.conclusion}`);
        return;
      }
      case "submit": {
        await this.withLock(round, where, "submitting", true, async () => {
          let m = await this.manifest(round);
          const jobs = (await this.jobs(round)).jobs;
          const trainRendered = existsSync(path.join(this.stageDir(round, STAGE_TRAIN), "stage.json"));
          if (m.finished_steps.includes("dataset") && !trainRendered && !jobs.some((j) => j.stage === STAGE_TRAIN)) await this.renderTrainStage(m, config);
          const stages = [STAGE_POOL_EVAL, STAGE_TRAIN, STAGE_EVAL].filter((s) => existsSync(path.join(this.stageDir(round, s), "stage.json")));
          if (stages.length === 0) throw new Refusal(`round ${round} has no rendered stage yet${m.finished_steps.includes("dataset") ? "" : ": merge the results PR first"}`);
          const todo = stages.filter((s) => {
            const job = jobs.find((j) => j.stage === s);
            return !job || (!isOpen(job) && lastAttempt(job).outcome !== "succeeded");
          });
          // Resuming a failed round lets the poller follow its jobs again, also when they need no new submission.
          const resumed = m.state === "failed";
          if (resumed) {
            m = { ...m, state: m.failure!.state, failure: null };
            await this.writeManifest(m, `Round ${round}: resumed by @${where.actor}`);
          }
          if (todo.length === 0) {
            await this.forge.comment(thread, `Round ${round}: every rendered stage already has a job (queued, running or succeeded); nothing to submit${resumed ? `. The round is resumed (${m.state}): its jobs are followed again` : ""}.`);
            await this.record(where, resumed ? "submit: resumed, nothing to submit" : "submit: nothing to do");
            return;
          }
          for (const s of todo) await this.submitStage(m, s, config, true);
          await this.announceJobs(round);
          await this.record(where, `submitted: ${todo.join(", ")}`);
        });
        return;
      }
      case "cancel": {
        await this.withLock(round, where, "cancelling", true, async () => {
          const tracker = await this.tracker(round, config);
          let cancelled: JobRecord[];
          try {
            cancelled = await tracker.cancel((j) => j.round === roundId(round));
          } finally {
            await tracker.close();
          }
          await this.commitJobs(round, "cancelled");
          await this.forge.comment(thread, cancelled.length ? `Round ${round}: cancelling ${cancelled.map((j) => `\`${j.stage}\` (job ${lastAttempt(j).job_id ?? "not yet submitted"})`).join(", ")}.` : `Round ${round}: no open job to cancel.`);
          await this.record(where, `cancelled ${cancelled.length} job(s)`);
        });
        return;
      }
      case "collect": {
        await this.followJobs(round, where, config, { reportBusy: true });
        const after = await this.manifest(round);
        if (after.state !== "complete") await this.forge.comment(thread, statusComment(after, await this.jobs(round), await this.lockStatus(round), await this.pollProblems(round)));
        return;
      }
    }
  }

  // =============================================================================================================
  // Plumbing

  private get scratch(): string {
    return path.join(this.d.stateDir, "scratch");
  }

  /** The sticky comment of `kind` for `id` on a thread: replaced in place, earlier versions kept collapsed below. */
  private async upsert(thread: number, kind: string, id: number, body: string): Promise<void> {
    const mark = marker(kind, id);
    const label = `${this.now().toISOString().slice(0, 16).replace("T", " ")} UTC`;
    // The same text again (a repeated refusal, an unchanged status) is not archived as an earlier version.
    const render = (previous: string | null) => (previous !== null && previous.split(HISTORY_OPEN)[0].includes(body.trimEnd()) ? previous : stickyComment({ kind, id, body, label, previous }));
    await stickyQueue.run(`${this.forge.repo}#${thread}${mark}`, () => this.forge.upsertComment(thread, mark, render));
  }

  private event(where: Where, outcome: string, commit: string | null = null): LedgerEvent {
    return { actor: where.actor, delivery: where.delivery, event: where.event, command: where.command ?? null, outcome, commit, round: where.round };
  }

  /** Claims a delivery (and a second key such as the comment id) in the event log; false for a duplicate. */
  private async claim(where: Where, key?: string): Promise<boolean> {
    if (where.delivery === null) return true;
    const sha = await this.ledger.appendEventOnce({ ...this.event(where, "received"), ...(key ? { comment: key } : {}) });
    if (sha === null) this.d.log.info(`${this.forge.repo}: delivery ${where.delivery} already handled; ignored`);
    return sha !== null;
  }

  private async record(where: Where, outcome: string, commit: string | null = null, refused = false): Promise<void> {
    await this.ledger.appendEvent(this.event(where, outcome, commit));
    this.d.onRecord?.({ thread: where.thread, event: where.event, command: where.command ?? null, outcome, refused });
  }

  /** Records an event that was not carried out (see RecordedOutcome.refused); the event log reads the same. */
  private async refuse(where: Where, outcome: string): Promise<void> {
    await this.record(where, outcome, null, true);
  }

  /** The config from the default branch; problems are posted once (a sticky comment) on the thread. */
  private async config(where: Where, loaded?: ConfigFile): Promise<RelabelConfig | null> {
    const result = await this.readConfig(loaded);
    if (result.ok) return result.config;
    if (where.thread !== null) await this.upsert(where.thread, "config", where.thread, renderConfigProblems(result.problems));
    await this.refuse(where, `refused: .github/relabel.yml has ${result.problems.length} problem(s): ${result.problems.map((p) => p.path || "file").join(", ")}`);
    return null;
  }

  /** The config for events that post nothing about it (PR events, the poller): null when it does not parse. */
  private async quietConfig(loaded?: ConfigFile): Promise<RelabelConfig | null> {
    const result = await this.readConfig(loaded);
    if (!result.ok) this.d.log.warn(`${this.forge.repo}: .github/relabel.yml does not parse; skipped`);
    return result.ok ? result.config : null;
  }

  /** `.github/relabel.yml` from the default branch, validated: the config, or its problems (one for a file that cannot be read). */
  private async readConfig(loaded?: ConfigFile): Promise<{ ok: true; config: RelabelConfig } | { ok: false; problems: ConfigProblem[] }> {
    const file = loaded ?? (await this.forge.loadConfig());
    return file.error ? { ok: false, problems: [{ path: "", message: file.error }] } : parseRelabelConfig(file.data);
  }

  /**
   * Runs `task` holding the round's lock. A held lock is tried again for up to `waitMs` (each try reads the
   * remote, so the pauses grow from 0.25 to 5 s), then the round is reported busy on the thread (or skipped
   * quietly). `retried`: the poller does the step on its own once the lock is free (a merge's), and the busy
   * reply says so.
   */
  private async withLock(
    round: number, where: Where, reason: string, reportBusy: boolean, task: () => Promise<void>, waitMs = 0, retried = false,
  ): Promise<boolean> {
    const holder = where.delivery === null ? where.actor : `@${where.actor}`;
    const deadline = Date.now() + waitMs;
    let lock = await this.takeLock(round, holder, reason, where);
    for (let pause = LOCK_RETRY_MS; !lock.ok && Date.now() < deadline; pause = Math.min(2 * pause, MAX_LOCK_RETRY_MS)) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      lock = await this.takeLock(round, holder, reason, where);
    }
    if (!lock.ok) {
      if (reportBusy && where.thread !== null) {
        await this.forge.comment(where.thread, busyText(round, lock, retried));
        await this.refuse(where, `busy: round ${round} locked by ${lock.holder} (${lock.reason})`);
      }
      return false;
    }
    try {
      await task();
    } finally {
      // Only this step's own lock: after a `/relabel unlock --force`, another step may hold the round.
      await this.ledger.releaseLock(round, lock.lock);
    }
    return true;
  }

  /** The round's lock for /relabel status, marked stale when an App process that has stopped took it. */
  private async lockStatus(round: number): Promise<(RoundLock & { stale: boolean }) | null> {
    const lock = await this.ledger.readLock(round);
    return lock && { ...lock, stale: lock.instance !== undefined && (this.d.instance?.ended.has(lock.instance) ?? false) };
  }

  /**
   * Takes the round's lock. A lock left by an App process that has stopped is released first, and the thread is
   * told which step it was: that step did not finish, and nothing else would ever release its lock.
   */
  private async takeLock(round: number, holder: string, reason: string, where: Where): Promise<LockResult> {
    const instance = this.d.instance;
    const lock = await this.ledger.acquireLock(round, holder, reason, where.delivery, instance?.id);
    if (lock.ok || lock.instance === undefined || !instance?.ended.has(lock.instance)) return lock;
    const released = await this.ledger.releaseLock(round, lock);
    if (released !== null) {
      const text = `Round ${round}: released the lock ${lock.holder} took at ${lock.since} (${lock.reason}); the App process holding it has stopped, so that step did not finish.`;
      this.d.log.warn(`${this.forge.repo}: ${text}`);
      if (where.thread !== null) await this.forge.comment(where.thread, text);
      // Recorded without the delivery id, which would read as the delivery handled already (see claim).
      await this.record({ ...where, delivery: null }, `stale lock released: round ${round}, ${lock.holder} (${lock.reason}) since ${lock.since}`, released);
    }
    return this.ledger.acquireLock(round, holder, reason, where.delivery, instance.id);
  }

  /**
   * A refusal for someone without write access: answered once per person and thread, and logged by the App only.
   * Nothing goes to the ledger, so that comments from anyone cannot make the App push.
   */
  private async refuseNonWriter(thread: number, login: string, permission: string, reply: string): Promise<void> {
    this.d.log.info(`${this.forge.repo}#${thread}: refused ${login} (${permission} permission)`);
    const file = path.join(this.d.stateDir, "refused.json");
    await refusalQueue.run(file, async () => {
      const answered = await readFile(file, "utf8").then((text) => JSON.parse(text) as string[], (): string[] => []);
      const key = `${thread}:${login.toLowerCase()}`;
      if (answered.includes(key)) return;
      await this.forge.comment(thread, reply);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, JSON.stringify([...answered, key]));
    });
  }

  /**
   * Runs a step; a user-facing failure (bad input, git, executor) is posted on the thread in one line, recorded,
   * and marks the round failed (a Refusal, or a command that found a host unreachable, only replies). Unexpected
   * errors are logged with their stack and reported without detail.
   */
  private async guard(where: Where, task: () => Promise<void>): Promise<void> {
    try {
      await task();
    } catch (err) {
      if (err instanceof ThreadGoneError) return this.threadGone(where, err);
      // A host that is unreachable for now does not fail the round: the poller's next tick tries the step again
      // (every step it runs starts over from what is recorded). The thread hears of it once, not at every tick.
      if (where.event === "poll" && err instanceof ConnectionError && err.retryable) {
        this.d.log.warn(`${this.forge.repo}: poll, round ${where.round}: ${err.message}; the next poll tries again`);
        if (where.round !== null) await this.notePollProblems(where.round, [err.message]).catch((inner: Error) => this.d.log.error(`${this.forge.repo}: ${inner.message}`));
        return;
      }
      const known = userMessage(err) !== null;
      const message = known ? (err as Error).message : "an internal error (details are in the app's log)";
      if (!known) this.d.log.error(`${this.forge.repo}: ${where.event}: ${(err as Error)?.stack ?? String(err)}`);
      else this.d.log.warn(`${this.forge.repo}: ${where.event}: ${message}`);
      // A refusal changed nothing, and a command that could not reach a host leaves the round to the poller.
      const leavesRound = err instanceof Refusal || (where.command != null && err instanceof ConnectionError && err.retryable);
      try {
        if (where.round !== null && !leavesRound) {
          const m = await this.manifest(where.round).catch(() => null);
          if (m !== null && m.state !== "complete" && m.state !== "failed") await this.writeManifest(failRound(m, where.command ?? where.event, message, this.now().toISOString()), `Round ${m.round}: failed`);
        }
        if (where.thread !== null) await this.forge.comment(where.thread, `relabel-loop could not finish \`${where.command ? `/relabel ${where.command}` : where.event}\`${where.round !== null ? ` for round ${where.round}` : ""}: ${message}`);
        await this.refuse(where, `error: ${message}`);
      } catch (inner) {
        this.d.log.error(`${this.forge.repo}: reporting the failure failed too: ${(inner as Error).message}`);
      }
    }
  }

  /**
   * A step whose issue or pull request is gone (deleted, or transferred to another repository): not an internal
   * error, and nothing to retry. Its round fails with the reason (the poller leaves a failed round alone, so the
   * thread is not asked about again), the App logs one line, and nothing is posted to the thread that is gone.
   */
  private async threadGone(where: Where, err: ThreadGoneError): Promise<void> {
    try {
      const round = where.round ?? (await this.roundForIssue(err.thread))?.round ?? null;
      const message =
        round === null
          ? `${err.message}; nothing more is done for it`
          : `${err.message}; round ${round} stops here (its files stay under ${roundPaths(round).dir}/ in the data repository): to go on, open a new round issue`;
      this.d.log.warn(`${this.forge.repo}: ${where.event}: ${message}`);
      if (round !== null) {
        const m = await this.manifest(round).catch(() => null);
        if (m !== null && m.state !== "complete" && m.state !== "failed") await this.writeManifest(failRound(m, where.command ?? where.event, message, this.now().toISOString()), `Round ${m.round}: failed`);
      }
      if (where.thread !== null && where.thread !== err.thread) {
        await this.forge.comment(where.thread, `relabel-loop could not finish \`${where.command ? `/relabel ${where.command}` : where.event}\`${round !== null ? ` for round ${round}` : ""}: ${message}`);
      }
      await this.record({ ...where, round }, `error: ${message}`);
    } catch (inner) {
      this.d.log.error(`${this.forge.repo}: reporting that #${err.thread} is gone failed: ${(inner as Error).message}`);
    }
  }

  /** Every round's manifest on the default branch as last fetched, in round order (one that does not parse is logged and left out). */
  async manifests(): Promise<RoundManifest[]> {
    const entries = await this.ledger.list("rounds").catch(() => []);
    const out: RoundManifest[] = [];
    for (const e of entries) {
      if (e.type !== "dir" || !/^\d{4,}$/.test(e.name)) continue;
      const text = await this.ledger.read(`rounds/${e.name}/round.json`);
      if (text === null) continue;
      const parsed = parseRoundManifest(text.toString("utf8"), `rounds/${e.name}/round.json`);
      if (parsed.ok) out.push(parsed.manifest);
      else this.d.log.warn(`${this.forge.repo}: ${parsed.problem}`);
    }
    return out.sort((a, b) => a.round - b.round);
  }

  private async manifest(round: number): Promise<RoundManifest> {
    const file = roundPaths(round).manifest;
    const text = await this.ledger.read(file);
    if (text === null) throw new StepError(`${file} is missing`);
    const parsed = parseRoundManifest(text.toString("utf8"), file);
    if (!parsed.ok) throw new StepError(parsed.problem);
    return parsed.manifest;
  }

  private async writeManifest(m: RoundManifest, message: string): Promise<string> {
    return this.ledger.commit({ message, files: [{ path: roundPaths(m.round).manifest, content: manifestText(m) }] });
  }

  private async ranking(m: RoundManifest, ref?: string): Promise<RankingJson> {
    const file = roundPaths(m.round).rankingJson;
    const text = await this.ledger.read(file, ref);
    if (text === null) throw new StepError(`${file} is missing: the selection of round ${m.round} was never merged`);
    const parsed = parseRankingJson(text.toString("utf8"), file);
    if (!parsed.ok) throw new StepError(parsed.problem);
    return parsed.ranking;
  }

  /** The round's ranking.csv at `ref`: ranking.csv.gz when it was committed gzipped (gzippedIfLarge). */
  private async rankingCsvPath(round: number, ref: string): Promise<string> {
    const { selection, rankingCsv } = roundPaths(round);
    const names = (await this.ledger.list(selection, ref).catch(() => [])).map((e) => e.path);
    return names.includes(`${rankingCsv}.gz`) ? `${rankingCsv}.gz` : rankingCsv;
  }

  private async roundForIssue(issue: number): Promise<RoundManifest | null> {
    return (await this.manifests()).find((m) => m.issue === issue) ?? null;
  }

  /** The round a comment's thread belongs to: its issue, its selection PR, or its results PR. */
  private async roundForThread(issue: IssueInfo): Promise<RoundManifest | null> {
    const all = await this.manifests();
    const direct = all.find((m) => m.issue === issue.number || m.prs.selection === issue.number || m.prs.results === issue.number);
    if (direct || !issue.isPullRequest) return direct ?? null;
    const pr = await this.forge.pullRequest(issue.number);
    if (pr.head.fork) return null;
    const fromBranch = roundOfSelectionBranch(pr.head.ref);
    if (fromBranch !== null) return all.find((m) => m.round === fromBranch) ?? null;
    return (await this.roundsWithLabels(pr.head.sha))[0] ?? null;
  }
}

/** Downloads a finished job's outputs (once; a second call finds them collected) and lists its models. */
async function collectJob(tracker: JobTracker, outDir: string, job: JobRecord): Promise<{ dir: string; models: FileRecord[] }> {
  const { collected, already } = await tracker.collect(outDir, (j) => j.hash === job.hash);
  const done = collected[0] ?? (already[0]?.collected ? { dir: already[0].collected.dir, models: already[0].collected.models } : undefined);
  if (!done) throw new Refusal(`job ${lastAttempt(job).job_id ?? "?"} (${job.stage}) has not ended; nothing to collect`);
  return { dir: done.dir, models: done.models };
}

/** The one-line message of an error meant for users (bad input, git, executor, a refused step); null for a bug. */
function userMessage(err: unknown): string | null {
  const known = err instanceof StepError || err instanceof InputError || err instanceof UsageError || err instanceof LedgerError || err instanceof ExecError || (err as Error)?.name === "RoundTransitionError";
  return known ? (err as Error).message : null;
}

function manifestText(m: RoundManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

function effectiveState(m: RoundManifest): Exclude<RoundState, "failed"> {
  return m.state === "failed" ? (m.failure?.state ?? "labeling") : m.state;
}

/** A round whose selection PR is open for review (the poller checks whether it was merged). */
function awaitsSelectionMerge(m: RoundManifest): boolean {
  return m.state === "selection-review" && m.prs.selection !== undefined && !m.finished_steps.includes("selection");
}

function needsPolling(m: RoundManifest): boolean {
  return m.state === "training" || m.state === "benchmarking" || (m.state === "ranking" && (m.parameters.committee === "previous-round" || previousRoundFeatures(m.parameters.features) !== null));
}

/** A file on this host, and how a comment or artifact names it (its execution host and path). */
interface LocalFile {
  file: string;
  display: string;
}

/** A round's trained models (committee members in order, or its single model) and its train job. */
interface PreviousModels {
  round: number;
  job: JobRecord;
  models: FileRecord[];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function busyText(round: number, lock: { holder: string; reason: string; since: string }, retried = false): string {
  const held = `Round ${round} is busy: ${lock.holder} holds its lock since ${lock.since} (${lock.reason}).`;
  return retried
    ? `${held} The merge is done, and the App does its step at its next poll once the lock is free: \`/relabel unlock\` if that step stopped without releasing it.`
    : `${held} Nothing was run; try again when that step ends, or \`/relabel unlock\` if it stopped without releasing the lock.`;
}

/** How a merge's step waits for its round's lock, and whether it says so on the thread when it gives up. */
interface LockWait {
  ms: number;
  reportBusy: boolean;
}

/** The event-log key of a merged PR: claimed by whichever of the merge event and the poller handles it. */
const mergeKey = (pr: PullRequestInfo): string => `merged:${pr.number}`;
