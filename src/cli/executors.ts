/**
 * What the submit/jobs/collect/cancel commands share: loading the executor configuration, choosing an executor,
 * printing the jobs table and turning execution errors into one-line messages.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { InputError, UsageError } from "../core/errors.js";
import { parseExecutionConfig, type ExecutionConfig, type ExecutorConfig } from "../core/exec/config.js";
import { lastAttempt, type JobRecord, type Ledger } from "../core/exec/ledger.js";
import { ExecError } from "../exec/errors.js";
import { readLedger } from "../exec/ledger-file.js";
import { isRepoConfig, loadRepoConfig } from "./repo-config.js";

export const DEFAULT_JOBS_FILE = "jobs.json";

/** Reads relabel.json (the same object the GitHub App reads from .github/relabel.yml). */
export async function loadExecutionConfig(file: string): Promise<ExecutionConfig> {
  if (isRepoConfig(file)) {
    const { executor, executors } = await loadRepoConfig(file);
    return { executor, executors };
  }
  const text = await readFile(file, "utf8");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const position = /position (\d+)/.exec(message);
    const line = position ? text.slice(0, Number(position[1])).split("\n").length : undefined;
    throw new InputError(file, line, `not valid JSON: ${message.replace(/ in JSON at position \d+.*$/, "")}`);
  }
  const result = parseExecutionConfig(data);
  if (!result.ok) throw new InputError(file, result.problem.where, result.problem.message);
  return result.config;
}

/**
 * The executor to submit to: --executor, else the config's `executor`, else its only entry. Without a config file,
 * the embedded local executor runs stages under <jobs file dir>/runs.
 */
export function chooseExecutor(config: ExecutionConfig | null, requested: string | undefined, jobsFile: string): { name: string; config: ExecutorConfig } {
  if (config === null) {
    if (requested !== undefined && requested !== "local") throw new UsageError(`--executor ${requested} needs --config FILE defining it`);
    return { name: "local", config: localDefault(jobsFile) };
  }
  const names = Object.keys(config.executors);
  const name = requested ?? config.executor ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined) {
    throw new UsageError(names.length ? `several executors are configured (${names.join(", ")}): choose one with --executor` : "the config defines no executors");
  }
  const chosen = config.executors[name];
  if (!chosen) throw new UsageError(`no executor "${name}" in the config (configured: ${names.join(", ") || "none"})`);
  return { name, config: chosen };
}

function localDefault(jobsFile: string): ExecutorConfig {
  return {
    backend: "local",
    remote_root: path.join(path.dirname(path.resolve(jobsFile)), "runs"),
    setup: [],
    resources: {},
    overrides: {},
    resubmit: false,
    poll_interval: 5,
  };
}

/**
 * The ledger jobs, collect and cancel work on. Only submit creates one: a missing file is a wrong --jobs path or
 * directory, not an empty list (and must not be created by the poll's update).
 */
export async function readJobsFile(file: string): Promise<Ledger> {
  const exists = await stat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === "ENOENT" || err.code === "ENOTDIR" ? false : Promise.reject(err)),
  );
  if (!exists) throw new InputError(file, undefined, `no such jobs file ('relabel submit' writes it${file === DEFAULT_JOBS_FILE ? " in the current directory" : ""}; --jobs FILE names another)`);
  return readLedger(file);
}

/** Names given on the command line that match no job of the ledger (by stage name or hash prefix) are errors. */
export function checkStageNames(ledger: Ledger, names: string[], file: string, matches: (name: string, job: JobRecord) => boolean): void {
  const unknown = names.filter((n) => !ledger.jobs.some((j) => matches(n, j)));
  if (unknown.length === 0) return;
  const known = ledger.jobs.map((j) => j.stage);
  const recorded = known.length ? `its stages: ${[...new Set(known)].join(", ")}` : "it records no jobs";
  throw new InputError(file, undefined, `no job for stage ${unknown.map((n) => `"${n}"`).join(", ")} (by name or hash prefix of 6+ digits); ${recorded}`);
}

export function jobLabel(job: JobRecord): string {
  const attempt = lastAttempt(job);
  return `${job.stage} (${job.kind}, round ${job.round}${attempt.job_id ? `, job ${attempt.job_id}` : ""} on ${job.executor})`;
}

function resultText(job: JobRecord): string {
  const attempt = lastAttempt(job);
  if (attempt.outcome) return attempt.outcome;
  return job.cancel_requested_at ? "cancelling" : "open";
}

/** The jobs table, then for each failed job its summary and the tail of its stderr. */
export function formatJobs(jobs: JobRecord[]): string {
  if (jobs.length === 0) return "no jobs\n";
  const rows = [
    ["STAGE", "KIND", "ROUND", "EXECUTOR", "JOB", "TRY", "STATE", "RESULT"],
    ...jobs.map((j) => {
      const a = lastAttempt(j);
      return [j.stage, j.kind, j.round, j.executor, a.job_id ?? "-", String(a.number), a.state, resultText(j)];
    }),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("  "));
  for (const job of jobs) {
    const failure = lastAttempt(job).failure;
    if (!failure) continue;
    lines.push("", `${job.stage}: ${failure.summary}`);
    const tail = tailLines(failure.stderr_tail || failure.output_tail, 8);
    if (tail) lines.push(...tail.split("\n").map((l) => `  | ${l}`));
  }
  return `${lines.join("\n")}\n`;
}

function tailLines(text: string, count: number): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}
