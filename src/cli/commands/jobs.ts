import { UsageError } from "../../core/errors.js";
import { isOpen, lastAttempt, type JobRecord } from "../../core/exec/ledger.js";
import { readLedger } from "../../exec/ledger-file.js";
import { JobTracker } from "../../exec/tracker.js";
import { helpText, parseCommand, positiveNumber, type CommandSpec } from "../args.js";
import { DEFAULT_JOBS_FILE, formatJobs, loadExecutionConfig, readJobsFile } from "../executors.js";

export const jobsSpec = {
  name: "jobs",
  summary: "Poll the submitted stages and show where each one stands.",
  usage: "relabel jobs [--jobs FILE] [--watch] [--interval SECONDS] [--json] [--config relabel.yml|relabel.json]",
  help: `Asks each execution host once about all of its open jobs (squeue, then sacct for jobs squeue has forgotten),
records the answers in the jobs file and prints one line per stage. A job counts as succeeded only when its
stage wrote FINISHED and exit_code 0 in status.json; for failures the reason and the tail of stderr are shown.
A PREEMPTED job stays open while Slurm still lists it (it may be requeued). Failed jobs are resubmitted once
when the executor has "resubmit": true.

options:
      --jobs FILE          the jobs ledger (default: ${DEFAULT_JOBS_FILE})
      --watch              keep polling until no job is open, printing each change
      --interval SECONDS   seconds between polls with --watch (default: the executors' poll_interval)
      --json               print {"jobs": [...], "problems": [...]} instead of the table
      --config FILE        executor configuration overriding the one recorded in the jobs file
  -h, --help               show this help

exit codes: 0 done (with --watch: every job succeeded), 1 no such jobs file, a host could not be asked, or with
--watch some job failed or was cancelled, 2 usage error`,
  options: {
    jobs: { type: "string" },
    watch: { type: "boolean" },
    interval: { type: "string" },
    json: { type: "boolean" },
    config: { type: "string" },
  },
  positive: { interval: "number" },
} satisfies CommandSpec;

export async function runJobs(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(jobsSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(jobsSpec));
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${jobsSpec.usage}`);
  const interval = positiveNumber("interval", values.interval);
  const jobsFile = values.jobs ?? DEFAULT_JOBS_FILE;
  const config = values.config === undefined ? undefined : await loadExecutionConfig(values.config);
  await readJobsFile(jobsFile);

  const tracker = new JobTracker(jobsFile, { executors: config?.executors });
  try {
    let result = await tracker.poll();
    if (values.watch) {
      const seconds = interval ?? Math.min(...Object.values((await readLedger(jobsFile)).executors).map((e) => e.poll_interval), 30);
      let seen = new Map(result.jobs.map((j) => [j.hash, stateOf(j)]));
      while (result.jobs.some(isOpen)) {
        for (const p of result.problems) process.stderr.write(`warning: ${p}\n`);
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        result = await tracker.poll();
        seen = printChanges(seen, result.jobs);
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify({ jobs: result.jobs, problems: result.problems }, null, 2)}\n`);
    else {
      process.stdout.write(formatJobs(result.jobs));
      for (const p of result.problems) process.stderr.write(`warning: ${p}\n`);
    }
    if (result.problems.length) return 1;
    return values.watch && result.jobs.some((j) => lastAttempt(j).outcome !== "succeeded") ? 1 : 0;
  } finally {
    await tracker.close();
  }

}

function stateOf(job: JobRecord): string {
  const a = lastAttempt(job);
  return `${a.number}:${a.state}:${a.outcome ?? ""}`;
}

function printChanges(seen: Map<string, string>, jobs: JobRecord[]): Map<string, string> {
  for (const job of jobs) {
    if (seen.get(job.hash) === stateOf(job)) continue;
    const a = lastAttempt(job);
    const time = new Date().toISOString().slice(11, 19);
    process.stdout.write(`${time} ${job.stage}: job ${a.job_id ?? "-"} (attempt ${a.number}) ${a.state}${a.outcome ? ` -> ${a.outcome}` : ""}\n`);
  }
  return new Map(jobs.map((j) => [j.hash, stateOf(j)]));
}
