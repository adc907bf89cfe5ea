/**
 * What a scheduler (Slurm, or detached processes for the shell backends) contributes to an executor: the job
 * script, the command that starts it, and the batched status query and cancel scripts. Pure text in, text out.
 */
import type { Resources } from "./config.js";
import type { SchedulerStatus } from "./ledger.js";

export interface JobScriptSpec {
  /** Absolute stage directory on the execution host. */
  dir: string;
  attempt: number;
  /** Shown by squeue; also identifies the stage for humans. */
  jobName: string;
  setup: string[];
  resources: Resources;
}

/** One submitted attempt, as the query and cancel scripts need it. */
export interface JobRef {
  jobId: string;
  attempt: number;
  dir: string;
}

export type QueryResult = { ok: true; statuses: Map<string, SchedulerStatus> } | { ok: false; problem: string };

export interface SchedulerScripts {
  jobScript(spec: JobScriptSpec): string;
  /** Shell command that starts .relabel/job-<attempt>.sh of the spec's dir and prints the job id. */
  launch(spec: JobScriptSpec): string;
  /** The scheduler's output file of a job, relative to the stage directory. */
  outputFile(jobId: string, attempt: number): string;
  /** One script that reports on all jobs at once. */
  queryScript(jobs: JobRef[]): string;
  parseQuery(stdout: string, jobs: JobRef[]): QueryResult;
  cancelScript(jobs: JobRef[]): string;
}
