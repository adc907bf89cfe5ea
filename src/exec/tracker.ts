/**
 * Submits stages, tracks them and collects their outputs, with jobs.json as the record of what was submitted.
 * Every step can be cut off and run again (by a restarted bot or a new CLI call) without submitting anything twice:
 * the ledger gets a SUBMITTING attempt before anything is sent, and the execution host keeps its own record of
 * each attempt's job id (see submitScript).
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { stageSettings, type ExecutorConfig } from "../core/exec/config.js";
import {
  SUBMITTING,
  decideSubmit,
  isOpen,
  lastAttempt,
  mapAttempt,
  newAttempt,
  statusPhase,
  putJob,
  settleAttempt,
  shouldResubmit,
  type Attempt,
  type Collected,
  type FileRecord,
  type JobRecord,
  type Ledger,
} from "../core/exec/ledger.js";
import type { JobRef } from "../core/exec/scheduler.js";
import { stageDirName } from "../core/exec/scripts.js";
import { ExecError } from "./errors.js";
import { ExecutorPool, SubmitRefused, type Executor, type ExecutorPolicy, type UploadReport } from "./executor.js";
import { readLedger, updateLedger } from "./ledger-file.js";
import { listStageFiles, type StageFile, type StageRef } from "./stage.js";

export interface TrackerEvents {
  /** After each file copied to the execution host. Throwing aborts the submission (it resumes on the next call). */
  uploaded?(job: JobRecord, file: StageFile): void | Promise<void>;
  /** An attempt got its job id: newly submitted, or adopted from the host's record of an interrupted submission. */
  submitted?(job: JobRecord, attempt: Attempt, adopted: boolean): void;
}

export interface TrackerOptions {
  /** Executor configurations that replace those recorded in jobs.json (e.g. a rotated key path). */
  executors?: Record<string, ExecutorConfig>;
  events?: TrackerEvents;
  now?: () => Date;
  /** What the executors may do on this host (the App's limits; the CLI's default allows everything). */
  policy?: ExecutorPolicy;
}

export interface SubmitResult {
  job: JobRecord;
  /** "none": nothing to do (already queued, running or succeeded); the reason says which. */
  action: "submitted" | "adopted" | "none";
  reason: string | null;
  upload: UploadReport | null;
}

export interface PollResult {
  jobs: JobRecord[];
  /** Hosts or jobs that could not be checked this time, one line each; their jobs keep their last state. */
  problems: string[];
}

export interface CollectResult {
  job: JobRecord;
  dir: string;
  files: FileRecord[];
  models: FileRecord[];
}

export function jobName(job: Pick<JobRecord, "stage" | "hash">): string {
  return `relabel-${stageDirName(job.stage, job.hash)}`;
}

/** The last attempt of a job that has a job id. */
function ref(job: JobRecord): JobRef {
  const attempt = lastAttempt(job);
  return { jobId: attempt.job_id!, attempt: attempt.number, dir: job.remote_dir };
}

export class JobTracker {
  readonly pool: ExecutorPool;

  constructor(
    readonly ledgerPath: string,
    private readonly options: TrackerOptions = {},
  ) {
    this.pool = new ExecutorPool(options.policy);
  }

  private now(): string {
    return (this.options.now?.() ?? new Date()).toISOString();
  }

  private configFor(ledger: Ledger, name: string): ExecutorConfig {
    const config = this.options.executors?.[name] ?? ledger.executors[name];
    if (!config) throw new ExecError(`${this.ledgerPath}: no configuration for executor "${name}"`);
    return config;
  }

  private executorFor(ledger: Ledger, job: JobRecord): Promise<Executor> {
    return this.pool.get(job.executor, this.configFor(ledger, job.executor));
  }

  /**
   * Submits a stage unless the ledger already has it queued, running or succeeded. An interrupted earlier
   * submission of the same stage is resumed: unchanged files are not uploaded again and a job the host already
   * accepted is adopted. A failed or cancelled stage is submitted again only with `retry`.
   */
  async submit(stage: StageRef, request: { executor: string; config: ExecutorConfig; round: string; retry?: boolean }): Promise<SubmitResult> {
    const before = await readLedger(this.ledgerPath);
    const known = before.jobs.find((j) => j.hash === stage.hash);
    const decision = decideSubmit(known, request.retry ?? false);
    if (decision.action === "refuse") throw new ExecError(`${stage.name}: ${decision.reason}`);
    if (decision.action === "none") return { job: known!, action: "none", reason: decision.reason, upload: null };

    const executorName = known?.executor ?? request.executor;
    const config = known ? this.configFor(before, executorName) : request.config;
    const executor = await this.pool.get(executorName, config);
    const remoteDir = known?.remote_dir ?? (await executor.stageDir(request.round, stage.name, stage.hash));

    // Record the attempt before anything reaches the host; re-decide on the fresh file in case another process won.
    let raced: string | null = null;
    const ledger = await updateLedger(this.ledgerPath, (current) => {
      const job = current.jobs.find((j) => j.hash === stage.hash);
      const again = decideSubmit(job, request.retry ?? false);
      if (again.action === "none" || again.action === "refuse") {
        raced = again.reason;
        return current;
      }
      const attempts = again.action === "resume" ? job!.attempts : [...(job?.attempts ?? []), newAttempt(again.action === "retry" ? again.attempt : 1, this.now())];
      const record: JobRecord = job
        ? { ...job, attempts, cancel_requested_at: null, collected: null }
        : {
            hash: stage.hash,
            stage: stage.name,
            kind: stage.kind,
            round: request.round,
            executor: executorName,
            backend: config.backend,
            host: executor.host,
            remote_dir: remoteDir,
            local_dir: stage.dir,
            attempts,
            cancel_requested_at: null,
            collected: null,
          };
      return putJob({ ...current, executors: { ...current.executors, [executorName]: config } }, record);
    });
    const job = ledger.jobs.find((j) => j.hash === stage.hash)!;
    if (raced !== null) return { job, action: "none", reason: raced, upload: null };
    return this.launch(job, config, executor, stage.dir);
  }

  /** Uploads (unless the stage is gone locally and already on the host) and submits the job's last attempt. */
  private async launch(job: JobRecord, config: ExecutorConfig, executor: Executor, localDir: string | null): Promise<SubmitResult> {
    const attempt = lastAttempt(job);
    let upload: UploadReport | null = null;
    if (localDir !== null) {
      const files = await listStageFiles(localDir);
      upload = await executor.upload(localDir, files, job.remote_dir, (file) => this.options.events?.uploaded?.(job, file));
    }
    const { setup, resources } = stageSettings(config, job.kind);
    let submitted: { jobId: string; adopted: boolean };
    try {
      submitted = await executor.submit(job.remote_dir, attempt.number, { jobName: jobName(job), setup, resources });
    } catch (err) {
      if (!(err instanceof SubmitRefused)) throw err;
      if (!err.transient) {
        await this.forgetAttempt(job, attempt.number);
        throw err;
      }
      // The attempt stays in SUBMITTING: resumeSubmissions submits it when next polled.
      throw new SubmitRefused(`${err.message}; kept: the next poll submits it again`, true);
    }
    const record = await this.recordJobId(job, attempt.number, submitted.jobId);
    this.options.events?.submitted?.(record, lastAttempt(record), submitted.adopted);
    return { job: record, action: submitted.adopted ? "adopted" : "submitted", reason: null, upload };
  }

  private async recordJobId(job: JobRecord, number: number, jobId: string): Promise<JobRecord> {
    const now = this.now();
    const ledger = await updateLedger(this.ledgerPath, (l) =>
      mapAttempt(l, job.hash, number, (a) => (a.state === SUBMITTING ? { ...a, job_id: jobId, state: "PENDING", updated_at: now } : a)),
    );
    return ledger.jobs.find((j) => j.hash === job.hash)!;
  }

  /** A submission the scheduler refused for good leaves no trace: the stage can be submitted again after a fix. */
  private async forgetAttempt(job: JobRecord, number: number): Promise<void> {
    await updateLedger(this.ledgerPath, (l) => {
      const current = l.jobs.find((j) => j.hash === job.hash);
      if (!current) return l;
      const attempts = current.attempts.filter((a) => a.number !== number);
      return attempts.length ? putJob(l, { ...current, attempts }) : { ...l, jobs: l.jobs.filter((j) => j.hash !== job.hash) };
    });
  }

  /**
   * Brings every open job up to date: finishes interrupted submissions, asks each host once about all its jobs,
   * reads the stage markers of jobs that ended, records the verdicts and resubmits failures when allowed.
   */
  async poll(): Promise<PollResult> {
    const problems: string[] = [];
    await this.resumeSubmissions(problems);

    const ledger = await readLedger(this.ledgerPath);
    const open = ledger.jobs.filter((j) => isOpen(j) && lastAttempt(j).job_id !== null);
    const settled: { hash: string; attempt: Attempt }[] = [];
    for (const [name, jobs] of groupBy(open, (j) => j.executor)) {
      try {
        const executor = await this.pool.get(name, this.configFor(ledger, name));
        const answer = await executor.query(jobs.map((j) => ref(j)));
        if (!answer.ok) {
          problems.push(`${name}: ${answer.problem}`);
          continue;
        }
        const ended = jobs.filter((j) => statusPhase(answer.statuses.get(lastAttempt(j).job_id!)!) === "ended");
        const markers = await executor.inspect(ended.map((j) => ref(j)));
        const now = this.now();
        for (const job of jobs) {
          const attempt = lastAttempt(job);
          const i = ended.indexOf(job);
          settled.push({ hash: job.hash, attempt: settleAttempt(attempt, answer.statuses.get(attempt.job_id!)!, i < 0 ? undefined : markers[i], now) });
        }
      } catch (err) {
        if (!(err instanceof ExecError)) throw err;
        problems.push(`${name}: ${err.message}`);
      }
    }

    let after = await updateLedger(this.ledgerPath, (l) =>
      settled.reduce((acc, s) => mapAttempt(acc, s.hash, s.attempt.number, (a) => (a.outcome === null ? s.attempt : a)), l),
    );
    for (const s of settled.filter((x) => x.attempt.outcome === "failed")) {
      const job = after.jobs.find((j) => j.hash === s.hash)!;
      if (!shouldResubmit(job, this.configFor(after, job.executor).resubmit)) continue;
      try {
        after = await this.resubmit(job);
      } catch (err) {
        if (!(err instanceof ExecError)) throw err;
        problems.push(`${job.stage}: resubmission failed: ${err.message}`);
      }
    }
    return { jobs: (await readLedger(this.ledgerPath)).jobs, problems };
  }

  private async resubmit(job: JobRecord): Promise<Ledger> {
    const number = lastAttempt(job).number + 1;
    const ledger = await updateLedger(this.ledgerPath, (l) => {
      const current = l.jobs.find((j) => j.hash === job.hash)!;
      if (lastAttempt(current).number >= number) return l;
      return putJob(l, { ...current, attempts: [...current.attempts, newAttempt(number, this.now())] });
    });
    const record = ledger.jobs.find((j) => j.hash === job.hash)!;
    const config = this.configFor(ledger, record.executor);
    // The stage is already complete on the host: the first attempt ran there.
    await this.launch(record, config, await this.pool.get(record.executor, config), null);
    return readLedger(this.ledgerPath);
  }

  /** Attempts left in SUBMITTING by an interrupted process: submitted (or adopted) now, or cancelled if asked. */
  private async resumeSubmissions(problems: string[], only?: (job: JobRecord) => boolean): Promise<void> {
    const ledger = await readLedger(this.ledgerPath);
    for (const job of ledger.jobs.filter((j) => lastAttempt(j).state === SUBMITTING && (only?.(j) ?? true))) {
      try {
        const config = this.configFor(ledger, job.executor);
        const executor = await this.pool.get(job.executor, config);
        const localExists = await stat(job.local_dir).then((s) => s.isDirectory(), () => false);
        if (job.cancel_requested_at === null && localExists) {
          await this.launch(job, config, executor, job.local_dir);
          continue;
        }
        const found = await executor.findSubmitted(job.remote_dir, lastAttempt(job).number);
        if (found) await this.recordJobId(job, lastAttempt(job).number, found);
        else if (job.cancel_requested_at !== null) await this.markCancelledUnsubmitted(job);
        else problems.push(`${job.stage}: attempt ${lastAttempt(job).number} was never submitted and ${job.local_dir} is gone`);
      } catch (err) {
        if (!(err instanceof ExecError)) throw err;
        problems.push(`${job.stage}: resuming the submission failed: ${err.message}`);
      }
    }
  }

  private async markCancelledUnsubmitted(job: JobRecord): Promise<void> {
    const now = this.now();
    await updateLedger(this.ledgerPath, (l) =>
      mapAttempt(l, job.hash, lastAttempt(job).number, (a) => (a.state === SUBMITTING ? { ...a, state: "CANCELLED", reason: "cancelled before submission", outcome: "cancelled", updated_at: now } : a)),
    );
  }

  /**
   * Cancels open jobs (all, or those `select` picks): scancel, or killing the process group for the shell backends.
   * The cancellation shows up as CANCELLED at the next poll; cancelled jobs are never resubmitted automatically.
   */
  async cancel(select: (job: JobRecord) => boolean = () => true): Promise<JobRecord[]> {
    const now = this.now();
    const ledger = await updateLedger(this.ledgerPath, (l) => ({
      ...l,
      jobs: l.jobs.map((j) => (isOpen(j) && select(j) ? { ...j, cancel_requested_at: j.cancel_requested_at ?? now } : j)),
    }));
    const targets = ledger.jobs.filter((j) => isOpen(j) && select(j));
    const problems: string[] = [];
    await this.resumeSubmissions(problems, (j) => targets.some((t) => t.hash === j.hash));
    const fresh = await readLedger(this.ledgerPath);
    const submitted = fresh.jobs.filter((j) => targets.some((t) => t.hash === j.hash) && isOpen(j) && lastAttempt(j).job_id !== null);
    for (const [name, jobs] of groupBy(submitted, (j) => j.executor)) {
      const executor = await this.pool.get(name, this.configFor(fresh, name));
      await executor.cancel(jobs.map((j) => ref(j)));
    }
    if (problems.length) throw new ExecError(problems[0]);
    return (await readLedger(this.ledgerPath)).jobs.filter((j) => targets.some((t) => t.hash === j.hash));
  }

  /**
   * Downloads what the benchmark needs from every ended job (predictions, MACE results, logs, status.json,
   * metrics) into `<outDir>/<stage>-<hash12>/`, and records the models' remote paths and sha256. Jobs already
   * collected into that directory are left alone.
   */
  async collect(
    outDir: string,
    select: (job: JobRecord) => boolean = () => true,
  ): Promise<{ collected: CollectResult[]; already: JobRecord[]; open: JobRecord[] }> {
    const ledger = await readLedger(this.ledgerPath);
    const chosen = ledger.jobs.filter(select);
    const dirOf = (job: JobRecord) => path.resolve(outDir, stageDirName(job.stage, job.hash));
    const ended = chosen.filter((j) => !isOpen(j) && lastAttempt(j).job_id !== null);
    const already = ended.filter((j) => j.collected?.dir === dirOf(j));
    const collected: CollectResult[] = [];
    for (const job of ended.filter((j) => !already.includes(j))) {
      const executor = await this.executorFor(ledger, job);
      const { downloads, models } = await executor.outputs(job.remote_dir);
      const dir = dirOf(job);
      await executor.download(job.remote_dir, downloads, dir);
      const record: Collected = { at: this.now(), dir, files: downloads, models };
      const after = await updateLedger(this.ledgerPath, (l) => {
        const current = l.jobs.find((j) => j.hash === job.hash);
        return current ? putJob(l, { ...current, collected: record }) : l;
      });
      collected.push({ job: after.jobs.find((j) => j.hash === job.hash)!, dir, files: downloads, models });
    }
    return { collected, already, open: chosen.filter(isOpen) };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}
