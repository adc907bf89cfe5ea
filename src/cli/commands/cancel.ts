import { lastAttempt } from "../../core/exec/ledger.js";
import { JobTracker } from "../../exec/tracker.js";
import { helpText, parseCommand, type CommandSpec } from "../args.js";
import { DEFAULT_JOBS_FILE, checkStageNames, loadExecutionConfig, readJobsFile } from "../executors.js";
import { matchesStage, stageSelector } from "./collect.js";

export const cancelSpec = {
  name: "cancel",
  summary: "Cancel open jobs: scancel on Slurm, killing the process group for the shell backends.",
  usage: "relabel cancel [--jobs FILE] [--config relabel.yml|relabel.json] [STAGE...]",
  help: `Cancels every open job in the jobs file, or only those whose stage name or hash prefix (6+ digits) is given.
The jobs show up as CANCELLED at the next 'relabel jobs'; cancelled jobs are never resubmitted automatically.

options:
      --jobs FILE      the jobs ledger (default: ${DEFAULT_JOBS_FILE})
      --config FILE    executor configuration overriding the one recorded in the jobs file
  -h, --help           show this help

exit codes: 0 success (also when nothing was open), 1 error (a missing jobs file, a STAGE it does not record), 2 usage
error`,
  options: {
    jobs: { type: "string" },
    config: { type: "string" },
  },
} satisfies CommandSpec;

export async function runCancel(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(cancelSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(cancelSpec));
    return 0;
  }
  const jobsFile = values.jobs ?? DEFAULT_JOBS_FILE;
  const config = values.config === undefined ? undefined : await loadExecutionConfig(values.config);
  checkStageNames(await readJobsFile(jobsFile), positionals, jobsFile, matchesStage);

  const tracker = new JobTracker(jobsFile, { executors: config?.executors });
  try {
    const cancelled = await tracker.cancel(stageSelector(positionals));
    if (cancelled.length === 0) process.stdout.write("no open jobs to cancel\n");
    for (const job of cancelled) process.stdout.write(`cancel requested: ${job.stage} (job ${lastAttempt(job).job_id ?? "never submitted"})\n`);
    return 0;
  } finally {
    await tracker.close();
  }
}
