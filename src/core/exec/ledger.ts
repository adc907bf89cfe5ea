/**
 * jobs.json: what was submitted where, and what became of it. It is the source of truth after a restart: a stage
 * (keyed by its content hash) is submitted at most once per attempt, and every attempt is tracked until it ends.
 * Pure model and state transitions; reading and writing the file live in src/exec/ledger-file.ts.
 */
import { z } from "zod";
import { BACKENDS, STAGE_KINDS, executorConfigSchema } from "./config.js";

export const OUTCOMES = ["succeeded", "failed", "cancelled"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Our own states next to the scheduler's: written before the scheduler answered, and for jobs it no longer knows. */
export const SUBMITTING = "SUBMITTING";
export const NOT_FOUND = "NOT_FOUND";
export const LOST = "LOST";

const failureSchema = z.strictObject({
  /** One line: the state, the reason and what the stage's own markers say. */
  summary: z.string(),
  /** Last bytes of logs/stderr.log. */
  stderr_tail: z.string(),
  /** Last bytes of the scheduler's output file (logs/slurm-<id>.out, logs/shell-<n>.out). */
  output_tail: z.string(),
});

export const attemptSchema = z.strictObject({
  number: z.number().int().min(1),
  /** Slurm job id, or the process id for the shell backends; null until the scheduler accepted the job. */
  job_id: z.string().nullable(),
  submitted_at: z.string(),
  /** PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ..., SUBMITTING or LOST. */
  state: z.string(),
  reason: z.string().nullable(),
  /** run.sh's exit code from status.json when present, else the scheduler's. */
  exit_code: z.number().int().nullable(),
  updated_at: z.string(),
  outcome: z.enum(OUTCOMES).nullable(),
  failure: failureSchema.nullable(),
});
export type Attempt = z.infer<typeof attemptSchema>;

const fileRecordSchema = z.strictObject({ path: z.string(), sha256: z.string(), bytes: z.number().int().nonnegative() });
export type FileRecord = z.infer<typeof fileRecordSchema>;

export const collectedSchema = z.strictObject({
  at: z.string(),
  /** Local directory the files were downloaded into. */
  dir: z.string(),
  /** Downloaded files, relative to dir (and to the remote stage directory). */
  files: z.array(fileRecordSchema),
  /** Models left on the remote side: absolute remote path and sha256. */
  models: z.array(fileRecordSchema),
});
export type Collected = z.infer<typeof collectedSchema>;

export const jobRecordSchema = z.strictObject({
  /** The stage's content hash: one record per stage. */
  hash: z.string().regex(/^[0-9a-f]{12,}$/),
  stage: z.string(),
  kind: z.enum(STAGE_KINDS),
  round: z.string(),
  executor: z.string(),
  backend: z.enum(BACKENDS),
  /** user@host:port for the SSH backends. */
  host: z.string().nullable(),
  remote_dir: z.string(),
  local_dir: z.string(),
  attempts: z.array(attemptSchema).min(1),
  cancel_requested_at: z.string().nullable(),
  collected: collectedSchema.nullable(),
});
export type JobRecord = z.infer<typeof jobRecordSchema>;

export const ledgerSchema = z.strictObject({
  version: z.literal(1),
  /** The executor configurations the jobs were submitted with, so jobs/collect/cancel need no config file. */
  executors: z.record(z.string(), executorConfigSchema),
  jobs: z.array(jobRecordSchema),
});
export type Ledger = z.infer<typeof ledgerSchema>;

export function emptyLedger(): Ledger {
  return { version: 1, executors: {}, jobs: [] };
}

export type Phase = "submitting" | "queued" | "running" | "ended";

const QUEUED = new Set(["PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"]);
// PREEMPTED is not among them: with PreemptMode=REQUEUE squeue shows it until the job is PENDING again under the
// same id. Once the job has left the queue, accounting's PREEMPTED is final (statusPhase).
const ENDED = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "BOOT_FAIL",
  "DEADLINE",
  "SPECIAL_EXIT",
  "REVOKED",
  NOT_FOUND,
  LOST,
]);

/** Where a scheduler state stands. Unknown states count as running, so a job is never dropped as finished by mistake. */
export function phaseOf(state: string): Phase {
  if (state === SUBMITTING) return "submitting";
  if (QUEUED.has(state)) return "queued";
  if (ENDED.has(state)) return "ended";
  return "running";
}

export function lastAttempt(job: JobRecord): Attempt {
  return job.attempts[job.attempts.length - 1];
}

/** A job is open until its last attempt has an outcome. */
/** `train RUNNING`, `eval FAILED (failed)`: a job's stage and where its last attempt stands, for progress lines. */
export function jobStateText(job: JobRecord): string {
  const a = lastAttempt(job);
  return `${job.stage} ${a.state}${a.outcome ? ` (${a.outcome})` : ""}`;
}

export function isOpen(job: JobRecord): boolean {
  return lastAttempt(job).outcome === null;
}

/** What the scheduler says about one job. */
export interface SchedulerStatus {
  /** Slurm's state name (shell backends use the same names), or NOT_FOUND. */
  state: string;
  reason: string | null;
  exitCode: number | null;
  /** The job has left the scheduler's queue and this is its accounting record (sacct): nothing will change any more. */
  fromAccounting?: boolean;
}

/** Where a job stands by the scheduler's answer: a job that has left the queue has ended, whatever its last state. */
export function statusPhase(status: SchedulerStatus): Phase {
  return status.fromAccounting ? "ended" : phaseOf(status.state);
}

/** The stage's own verdict, read from its directory after the job ended. */
export interface StageMarkers {
  finished: boolean;
  /** status.json, when present and valid. */
  status: { exit_code: number } | null;
  /** Why status.json could not be used, when it exists but is malformed. */
  statusProblem: string | null;
  stderrTail: string;
  outputTail: string;
}

/** Reads status.json's exit code; anything else in the file is informational. */
export function parseStatusJson(text: string): { status: { exit_code: number } | null; problem: string | null } {
  if (text === "") return { status: null, problem: null };
  try {
    const value = JSON.parse(text) as { exit_code?: unknown };
    if (typeof value?.exit_code === "number" && Number.isInteger(value.exit_code)) return { status: { exit_code: value.exit_code }, problem: null };
    return { status: null, problem: "status.json has no integer exit_code" };
  } catch {
    return { status: null, problem: "status.json is not valid JSON" };
  }
}

/**
 * Folds the scheduler's answer (and, once the job ended, the stage's markers) into an attempt. Success needs the
 * FINISHED tag and exit_code 0 in status.json: Slurm reports COMPLETED for jobs that never ran (cgroup failures).
 * Without markers an ended attempt stays open until they are read.
 */
export function settleAttempt(attempt: Attempt, status: SchedulerStatus, markers: StageMarkers | undefined, now: string): Attempt {
  const next: Attempt = { ...attempt, state: status.state, reason: status.reason, exit_code: status.exitCode ?? attempt.exit_code, updated_at: now };
  if (statusPhase(status) !== "ended" || markers === undefined) return next;
  const runExit = markers.status?.exit_code ?? null;
  if (runExit !== null) next.exit_code = runExit;
  if (status.state === "CANCELLED") return { ...next, outcome: "cancelled", failure: null };

  // Accounting may keep the state of an earlier run (PREEMPTED, then requeued) or lag behind (RUNNING): then, as for a
  // forgotten job, the stage's own markers decide.
  const schedulerOk = status.state === "COMPLETED" || status.state === NOT_FOUND || (status.fromAccounting === true && phaseOf(status.state) !== "ended");
  if (schedulerOk && markers.finished && runExit === 0) return { ...next, outcome: "succeeded", failure: null };

  if (status.state === NOT_FOUND && !markers.finished && markers.status === null) next.state = LOST;
  const failure = { summary: failureSummary(next, status, markers), stderr_tail: markers.stderrTail, output_tail: markers.outputTail };
  return { ...next, outcome: "failed", failure };
}

function failureSummary(attempt: Attempt, status: SchedulerStatus, markers: StageMarkers): string {
  const job = `job ${attempt.job_id}`;
  const marks: string[] = [];
  if (markers.status) marks.push(`run.sh exit code ${markers.status.exit_code}`);
  else marks.push(markers.statusProblem ?? "no status.json");
  if (!markers.finished) marks.push("no FINISHED tag");
  const stateText =
    attempt.state === LOST
      ? `${job} is unknown to the scheduler`
      : status.state === NOT_FOUND
        ? `${job} is no longer known to the scheduler`
        : `${job} ${status.state}${status.reason && status.reason !== "None" ? ` (${status.reason})` : ""}`;
  return `${stateText}: ${marks.join(", ")}`;
}

export type SubmitDecision =
  | { action: "new" }
  | { action: "resume"; attempt: number }
  | { action: "retry"; attempt: number }
  | { action: "none"; reason: string }
  | { action: "refuse"; reason: string };

/**
 * Whether submitting a stage again should do anything: never while an attempt is queued, running or succeeded; an
 * attempt whose submission was interrupted is resumed; a failed or cancelled stage goes again only when asked.
 */
export function decideSubmit(job: JobRecord | undefined, retry: boolean): SubmitDecision {
  if (!job) return { action: "new" };
  const last = lastAttempt(job);
  const id = last.job_id === null ? "" : ` as job ${last.job_id}`;
  if (last.state === SUBMITTING) return { action: "resume", attempt: last.number };
  if (last.outcome === null) return { action: "none", reason: `already submitted${id} (${last.state})` };
  if (last.outcome === "succeeded") return { action: "none", reason: `already succeeded${id}` };
  if (retry) return { action: "retry", attempt: last.number + 1 };
  return { action: "refuse", reason: `attempt ${last.number}${id} ${last.outcome === "cancelled" ? "was cancelled" : "failed"}; pass --retry to submit it again` };
}

/** Automatic resubmission: at most once, only when allowed, never after a cancellation. */
export function shouldResubmit(job: JobRecord, allowed: boolean): boolean {
  return allowed && lastAttempt(job).outcome === "failed" && job.attempts.length < 2 && job.cancel_requested_at === null;
}

export function newAttempt(number: number, now: string): Attempt {
  return { number, job_id: null, submitted_at: now, state: SUBMITTING, reason: null, exit_code: null, updated_at: now, outcome: null, failure: null };
}

/** Returns the ledger with one job's record replaced (or added). */
export function putJob(ledger: Ledger, job: JobRecord): Ledger {
  const jobs = ledger.jobs.some((j) => j.hash === job.hash) ? ledger.jobs.map((j) => (j.hash === job.hash ? job : j)) : [...ledger.jobs, job];
  return { ...ledger, jobs };
}

/** Returns the ledger with one attempt rewritten; the ledger is unchanged when that attempt no longer exists. */
export function mapAttempt(ledger: Ledger, hash: string, number: number, change: (a: Attempt) => Attempt): Ledger {
  return {
    ...ledger,
    jobs: ledger.jobs.map((j) => (j.hash === hash ? { ...j, attempts: j.attempts.map((a) => (a.number === number ? change(a) : a)) } : j)),
  };
}
