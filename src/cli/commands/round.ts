import path from "node:path";
import { parseWeightsText } from "../../core/app/config.js";
import type { RoundIssueFields } from "../../core/app/issue-form.js";
import { findCommandLine } from "../../core/app/commands.js";
import { HISTORY_OPEN } from "../../core/app/markdown.js";
import { roundPaths, type RoundManifest } from "../../core/app/manifest.js";
import { UsageError } from "../../core/errors.js";
import { isOpen, jobStateText, type JobRecord } from "../../core/exec/ledger.js";
import { holdsRound, initWorkspace, labelingRound, latestChecks, mergePullRequest, openRoundIssue, pollWorkspace, postComment, recheck, resultsRuns, roundJobs, submitResults } from "../../workflow/local-commands.js";
import { openWorkspace, type Workspace } from "../../workflow/local-workspace.js";
import { helpText, parseCommand, positiveNumber, type CommandSpec } from "../args.js";

export const roundSpec = {
  name: "round",
  summary: "Run active-learning rounds on a local git data repository, as the GitHub App runs them on GitHub.",
  usage: "relabel round init|open|results|check|merge|comment|poll|status [-w DIR] ...",
  help: `The App's round workflow without GitHub: a workspace folder names the data repository (the ledger, any git
repository this machine can push to) and keeps the issues, pull requests, comments and check runs as Markdown
(DIR/forge/threads/N.md, DIR/forge/checks/N.md). Each command is one event the App would hear, and prints what
the App would have answered. 'relabel demo -o DIR' leaves such a workspace too.

  init  [--repo PATH|URL] [--config relabel.yml] [--pool FILE|DIR]...
        make DIR a workspace; without --repo (or with an empty one), a data repository whose first commit holds
        the config (default: a starter config whose stages run on this machine) and the pools, as pools/NAME
  open  [--title T] [--pool PATH]... [--select N] [--committee none|previous-round] [--committee-file PATH]...
        [--weights div=W,dis=W]
        open a round issue (as the issue form; what is not given comes from .github/relabel.yml): the pool is
        ranked and a selection pull request opened; pool and committee paths are paths in the data repository
        (one it does not have opens no issue: push it first).
        A previous-round committee predicts the pool first: the poll that finds it done opens the pull request
  results --round N [--to PR] RUN_DIR...
        commit VASP run folders (or folders of them) under rounds/NNNN/labels/ on a results branch, open the
        results pull request (or add to the open one, --to) and run its check. Only VASP's outputs and inputs
        go (vasprun.xml, OUTCAR, OSZICAR, INCAR, KPOINTS, POSCAR, CONTCAR, XDATCAR, POTCAR.spec, also custodian's
        suffixed and compressed ones); POTCAR, WAVECAR, CHGCAR and the like stay out, and the command says so.
        With --to, a run folder of a name already there is replaced. A branch that a stopped 'results' pushed
        without its pull request is started over; any other existing branch is left as it is
  check PR            run a results pull request's check again (its latest run is the one that counts)
  merge PR [--force]  merge a pull request: a selection freezes, results rebuild the dataset and submit the train
                      stage. A results pull request whose check did not pass is refused unless --force
  comment N TEXT      comment on issue or pull request N, e.g. '/relabel status', '/relabel rank --select 50'; exits 1
                      when the App does not carry the command out (unknown, malformed, refused, failed), or when a
                      check it runs does not pass ('/relabel rebuild --dry-run')
  poll [--wait] [--interval SECONDS]
                      the App's poller: follow submitted jobs, collect and benchmark finished ones; --wait polls
                      until no job is open (every 30 s by default). Exits 1 when a round stops (a job failed)
  status              the rounds, their states and open jobs, and the threads

options:
  -w, --workspace DIR   the workspace (default: the current directory)
  -h, --help            show this help

Files reach the data repository as any commit does (git clone DIR/data-repo.git, commit, push): pools,
committee files, config changes. Threads live in the workspace: a second workspace on the same repository
leaves the rounds opened elsewhere alone (status marks them; poll refuses while one is in progress), and each
thread's number is claimed in the repository's event log, so no two workspaces give out the same one. Stages run
where the data repository's config says, also on this machine (backend: local): use a workspace only with a data
repository whose writers you trust, as with 'relabel submit'.
exit codes: 0 done, 1 the App refused or failed a step (its comment says why), or bad input, 2 usage error`,
  options: {
    workspace: { type: "string", short: "w" },
    repo: { type: "string" },
    config: { type: "string" },
    pool: { type: "string", multiple: true },
    title: { type: "string" },
    select: { type: "string" },
    committee: { type: "string" },
    "committee-file": { type: "string", multiple: true },
    weights: { type: "string" },
    round: { type: "string" },
    to: { type: "string" },
    force: { type: "boolean" },
    wait: { type: "boolean" },
    interval: { type: "string" },
  },
  positive: { interval: "number", round: "integer", to: "integer", select: "integer" },
} satisfies CommandSpec;

type Values = ReturnType<typeof parseCommand<typeof roundSpec.options>>["values"];

const ACTIONS = ["init", "open", "results", "check", "merge", "comment", "poll", "status"] as const;
type Action = (typeof ACTIONS)[number];

/** Which options each action takes (-w and -h go with all). */
const ACTION_OPTIONS: Record<Action, readonly string[]> = {
  init: ["repo", "config", "pool"],
  open: ["title", "pool", "select", "committee", "committee-file", "weights"],
  results: ["round", "to"],
  check: [],
  merge: ["force"],
  comment: [],
  poll: ["wait", "interval"],
  status: [],
};

const say = (text = "") => process.stdout.write(`${text}\n`);

export async function runRound(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(roundSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(roundSpec));
    return 0;
  }
  const [action, ...rest] = positionals;
  if (action === undefined) throw new UsageError(`name what to do: ${ACTIONS.join(", ")}\nusage: ${roundSpec.usage}`);
  if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}": expected one of ${ACTIONS.join(", ")}`);
  const act = action as Action;
  for (const key of Object.keys(values)) {
    if (key !== "workspace" && key !== "help" && !ACTION_OPTIONS[act].includes(key)) throw new UsageError(`--${key} does not go with 'relabel round ${act}'`);
  }
  const dir = path.resolve(values.workspace ?? ".");
  if (act === "init") return init(dir, values, rest);
  const ws = await openWorkspace(dir);
  try {
    const before = snapshot(ws);
    const { code, next, problem } = await perform(act, ws, values, rest);
    showChanges(ws, before);
    for (const m of ws.messages) process.stderr.write(`relabel round: ${m.split("\n")[0]}\n`);
    if (problem !== undefined && ws.messages.length === 0) process.stderr.write(`relabel round: ${problem}\n`);
    if (next !== undefined && ws.messages.length === 0) say(`\nnext: ${next}`);
    return ws.messages.length > 0 ? Math.max(code, 1) : code;
  } finally {
    await ws.close();
  }
}

async function init(dir: string, values: Values, rest: string[]): Promise<number> {
  noPositionals("init", rest);
  const { committed } = await initWorkspace(dir, { repo: values.repo, config: values.config, pools: values.pool });
  say(`workspace ${dir}: data repository ${values.repo ?? path.join(dir, "data-repo.git")}`);
  // A pool folder is one line, not one per file.
  const shown = new Map<string, number>();
  for (const f of committed) {
    const folder = /^(pools\/[^/]+\/)./.exec(f)?.[1] ?? f;
    shown.set(folder, (shown.get(folder) ?? 0) + 1);
  }
  for (const [f, n] of shown) say(`  committed ${f}${f.endsWith("/") ? ` (${n} file${n === 1 ? "" : "s"})` : ""}`);
  say(`next: relabel round open -w ${shellWord(dir)} [--pool pools/NAME] [--select N]`);
  return 0;
}

/** The exit code, and what to do next when it went well. */
interface Outcome {
  code: number;
  next?: string;
  /** Why the step did not go through, said after the App's answer unless the workflow's own messages say it. */
  problem?: string;
}

async function perform(act: Exclude<Action, "init">, ws: Workspace, values: Values, rest: string[]): Promise<Outcome> {
  switch (act) {
    case "open": {
      noPositionals("open", rest);
      const { issue, round } = await openRoundIssue(ws, values.title ?? "Active-learning round", issueFields(values));
      say(`issue #${issue} opened (${ws.forge.threadFile(issue)})`);
      if (round !== null && round.state === "ranking" && round.prs.selection === undefined) {
        // committee or features from the previous round's models: they predict the pool first, in a stage of their own.
        say(`round ${round.round}: waiting for the previous round's models to predict the pool (stage pool-eval); the selection pull request follows`);
        return { code: 0, next: `relabel round poll -w ${shellWord(ws.dir)} --wait` };
      }
      if (round === null || round.prs.selection === undefined) return { code: 1 };
      say(`round ${round.round}: selection pull request #${round.prs.selection} on branch ${round.branches.selection}`);
      return { code: 0, next: selectionNext(ws, round.prs.selection) };
    }
    case "results": {
      if (values.round === undefined) throw new UsageError("results needs --round N (the round the runs label)");
      if (rest.length === 0) throw new UsageError("results needs at least one VASP run folder");
      const round = positiveNumber("round", values.round, "integer")!;
      const to = positiveNumber("to", values.to, "integer");
      await labelingRound(ws, round);
      const { runs, problems } = await resultsRuns(rest);
      for (const p of problems) process.stderr.write(`error: ${p}\n`);
      if (problems.length > 0) {
        process.stderr.write("relabel round: nothing was committed\n");
        return { code: 1 };
      }
      const { pr, branch, runs: committed, reused } = await submitResults(ws, round, runs, { to });
      if (reused) say(`${branch}: started over (a 'relabel round results' stopped before opening its pull request had left it)`);
      for (const { run, committed: names, removed } of committed) {
        say(`${run.dir} -> ${roundPaths(round).labels}/${run.name}/: ${names.join(", ")}`);
        for (const l of run.left) say(`  left out ${l.name}: ${l.why}`);
        if (removed.length > 0) say(`  replaces the folder of that name on the branch: removed ${removed.join(", ")}`);
      }
      say(`results pull request #${pr} (branch ${branch})`);
      return checksPassed(ws, pr);
    }
    case "check": {
      const pr = onePositional("check", "PR", rest);
      await recheck(ws, pr);
      return checksPassed(ws, pr);
    }
    case "merge": {
      const pr = await mergePullRequest(ws, onePositional("merge", "PR", rest), { force: values.force });
      say(`#${pr.number} merged in ${pr.mergeCommitSha?.slice(0, 12)}`);
      await ws.ledger.sync();
      const m = (await ws.workflow.manifests()).find((r) => r.prs.selection === pr.number || r.prs.results === pr.number);
      if (m?.state === "labeling" && m.prs.selection === pr.number) {
        const poscars = `${roundPaths(m.round).selection}/poscars/`;
        return { code: 0, next: `run VASP in each folder of ${poscars} (git clone ${shellWord(ws.remote)}), then: relabel round results -w ${shellWord(ws.dir)} --round ${m.round} RUN_DIR...` };
      }
      if (m?.state === "training") return { code: 0, next: `relabel round poll -w ${shellWord(ws.dir)} --wait` };
      return { code: 0 };
    }
    case "comment": {
      if (rest.length !== 2) throw new UsageError(`comment needs the issue or pull request number and the text, e.g. relabel round comment 1 "/relabel status"`);
      const thread = wholeNumber("comment", rest[0]);
      const { outcomes, checks } = await postComment(ws, thread, rest[1]);
      const line = findCommandLine(rest[1]);
      if (line === null) say(`#${thread}: the comment has no line starting with /relabel, so the App does nothing with it`);
      // The App answers a command it did not carry out with a comment (printed as any answer is): exit 1 as well.
      const refused = outcomes.find((o) => o.refused);
      if (refused !== undefined) return { code: 1, problem: `#${thread}: ${line} was not carried out (${refused.outcome}); the App's answer is above` };
      // A check it ran that did not pass (/relabel rebuild --dry-run) fails the step, as 'check' does.
      const failed = checks.find((conclusion) => conclusion !== "success");
      if (failed !== undefined) return { code: 1, problem: `#${thread}: ${line}: the check did not pass (${failed}); its report is above` };
      return { code: 0 };
    }
    case "poll":
      noPositionals("poll", rest);
      return poll(ws, values);
    case "status":
      noPositionals("status", rest);
      return { code: await status(ws) };
  }
}

function issueFields(values: Values): RoundIssueFields {
  const files = values["committee-file"] ?? [];
  if (values.committee !== undefined && !["none", "previous-round"].includes(values.committee)) throw new UsageError(`--committee must be none or previous-round (got "${values.committee}"); prediction files go with --committee-file`);
  if (values.committee !== undefined && files.length > 0) throw new UsageError("--committee and --committee-file do not go together");
  if (values.weights !== undefined && typeof parseWeightsText(values.weights) === "string") throw new UsageError(`--weights: ${parseWeightsText(values.weights) as string}`);
  return {
    pool: values.pool,
    select: positiveNumber("select", values.select, "integer"),
    committee: files.length > 0 ? { files } : (values.committee as "none" | "previous-round" | undefined),
    weights: values.weights,
  };
}

/** Whether the checks of the pull request's latest commit all passed (each check's latest run). */
async function checksPassed(ws: Workspace, number: number): Promise<Outcome> {
  const pr = await ws.forge.pullRequest(number);
  const checks = latestChecks(ws, pr.head.sha);
  if (checks.length === 0) say(`#${number}: no check ran (see ${ws.forge.threadFile(number)})`);
  if (checks.length === 0 || checks.some((c) => c.conclusion !== "success")) return { code: 1 };
  return { code: 0, next: `relabel round merge -w ${shellWord(ws.dir)} ${number}` };
}

async function poll(ws: Workspace, values: Values): Promise<Outcome> {
  const interval = positiveNumber("interval", values.interval) ?? 30;
  let seen: string | null = null;
  const ranked: RoundManifest[] = [];
  for (;;) {
    const tick = await pollWorkspace(ws);
    ranked.push(...tick.ranked);
    const rounds = await roundJobs(ws);
    const line = jobLines(rounds).join("; ");
    if (line !== seen) say(`${new Date().toISOString().slice(11, 19)} ${line || "no jobs"}`);
    seen = line;
    // A round that stopped (a job failed or was cancelled) is a failed step: exit 1, as its comment says why.
    for (const m of tick.stopped) process.stderr.write(`relabel round: round ${m.round} stopped: ${m.failure?.message ?? "see its thread"} (${ws.forge.threadFile(m.issue)})\n`);
    if (tick.stopped.length > 0) return { code: 1 };
    if (!values.wait || !rounds.some((r) => r.jobs.some(isOpen))) {
      const last = ranked.at(-1);
      return { code: 0, next: last === undefined ? undefined : selectionNext(ws, last.prs.selection!) };
    }
    await new Promise((resolve) => setTimeout(resolve, interval * 1000));
  }
}

/** One line per round with jobs. */
function jobLines(rounds: readonly { round: number; jobs: JobRecord[] }[]): string[] {
  return rounds.map((r) => `round ${r.round}: ${r.jobs.map(jobStateText).join(", ")}`);
}

async function status(ws: Workspace): Promise<number> {
  await ws.ledger.sync();
  const rounds = await ws.workflow.manifests();
  say(`data repository: ${ws.remote} (${ws.record.repo})`);
  if (rounds.length === 0) say("no rounds yet: relabel round open starts one");
  for (const m of rounds) {
    const prs = Object.entries(m.prs).map(([k, n]) => `${k} #${n}`).join(", ");
    const elsewhere = holdsRound(ws, m) ? "" : " (threads not in this workspace: opened from another workspace, or on GitHub)";
    say(`round ${m.round}: ${m.state}${m.state === "failed" && m.failure ? ` (${m.failure.message})` : ""}; issue #${m.issue}${prs ? `, ${prs}` : ""}${elsewhere}`);
  }
  for (const line of jobLines(await roundJobs(ws, rounds))) say(`jobs: ${line}`);
  const threads = ws.forge.threadList();
  if (threads.length > 0) say("threads:");
  for (const t of threads) say(`  #${t.number} ${t.pull ? (t.pull.merged ? "pull request, merged" : `pull request, ${t.state}`) : `issue, ${t.state}`}: ${t.title}  (${ws.forge.threadFile(t.number)})`);
  return 0;
}

/** The App's comments and checks, keyed by id, with their text: what a command changed is what differs after it. */
function snapshot(ws: Workspace): Map<string, string> {
  const seen = new Map<string, string>();
  for (const t of ws.forge.threadList()) for (const c of t.comments) seen.set(`comment:${c.id}`, c.body);
  for (const c of ws.forge.checkRuns()) seen.set(`check:${c.id}`, `${c.status} ${c.conclusion} ${c.title}`);
  return seen;
}

/** How many lines of a comment are printed; the thread's file has the rest. */
const SHOWN_LINES = 60;

function showChanges(ws: Workspace, before: Map<string, string>): void {
  for (const t of ws.forge.threadList()) {
    for (const c of t.comments) {
      if (c.author === ws.me.login || before.get(`comment:${c.id}`) === c.body) continue;
      const lines = shownText(c.body);
      say(`\n--- #${t.number}, ${before.has(`comment:${c.id}`) ? "comment updated" : "comment"} by ${c.author}:`);
      for (const line of lines.slice(0, SHOWN_LINES)) say(`  ${line}`);
      if (lines.length > SHOWN_LINES) say(`  … ${lines.length - SHOWN_LINES} more lines in ${ws.forge.threadFile(t.number)}`);
    }
  }
  for (const c of ws.forge.checkRuns()) {
    if (before.get(`check:${c.id}`) === `${c.status} ${c.conclusion} ${c.title}`) continue;
    say(`\n--- check "${c.name}" on ${c.headSha.slice(0, 12)}: ${c.conclusion ?? c.status}: ${c.title} (${c.file})`);
  }
}

/** A comment as a person reads it on GitHub: without the hidden markers, and without the earlier versions a sticky comment keeps folded. */
function shownText(body: string): string[] {
  const current = body.split(HISTORY_OPEN)[0];
  return current
    .trimEnd()
    .split("\n")
    .filter((line) => !/^<!--.*-->$/.test(line.trim()));
}

function selectionNext(ws: Workspace, pr: number): string {
  return `review the selection (${ws.forge.threadFile(pr)}), then: relabel round merge -w ${shellWord(ws.dir)} ${pr}`;
}

/** A path as one shell word, so that a printed next step can be pasted as it is (a workspace path with spaces). */
function shellWord(text: string): string {
  return /^[\w./:=@%+,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function wholeNumber(flag: string, text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new UsageError(`${flag}: expected a whole number of at least 1 (got "${text}")`);
  return Number(text);
}

function onePositional(action: string, what: string, rest: string[]): number {
  if (rest.length !== 1) throw new UsageError(`${action} needs one ${what} number (got ${rest.length === 0 ? "none" : rest.join(" ")})`);
  return wholeNumber(action, rest[0]);
}

function noPositionals(action: string, rest: string[]): void {
  if (rest.length > 0) throw new UsageError(`${action} takes no ${rest.length === 1 ? "argument" : "arguments"} (got ${rest.join(" ")})`);
}
