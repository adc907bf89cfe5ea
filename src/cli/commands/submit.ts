import { UsageError } from "../../core/errors.js";
import { SAFE_NAME, STAGE_KINDS } from "../../core/exec/config.js";
import { lastAttempt } from "../../core/exec/ledger.js";
import { readStageRef } from "../../exec/stage.js";
import { JobTracker } from "../../exec/tracker.js";
import { helpText, oneOf, parseCommand, type CommandSpec } from "../args.js";
import { DEFAULT_JOBS_FILE, chooseExecutor, jobLabel, loadExecutionConfig } from "../executors.js";

/** The round of a stage submitted without one (no --round, none in stage.json); the App numbers its rounds. */
export const CLI_ROUND = "cli";

export const submitSpec = {
  name: "submit",
  summary: "Upload a rendered MACE stage and submit it (Slurm over SSH, a workstation over SSH, or this host).",
  usage: "relabel submit STAGE_DIR [--config relabel.yml|relabel.json] [--executor NAME] [--jobs FILE] [--round N] [--kind train|eval] [--retry]",
  help: `STAGE_DIR holds run.sh and stage.json ({"kind": "train"|"eval", "hash": ...}); without a hash in stage.json the
directory's files are hashed. The stage goes to <remote_root>/<round>/<stage>-<hash12> on the execution host: files
already there with the same sha256 are not uploaded again, and an interrupted upload resumes with the files it had
not finished.

options:
      --config FILE     executor configuration: a data repo's relabel.yml, or JSON with "executors" and optionally
                        "executor"; without it the stage runs on this host under <jobs file dir>/runs
      --executor NAME   which configured executor to use (default: the config's "executor", or its only entry)
      --jobs FILE       the jobs ledger to record the submission in (default: ${DEFAULT_JOBS_FILE})
      --round N         round the stage belongs to (default: "round" in stage.json, which 'relabel stage
                        --round N' writes, else "${CLI_ROUND}")
      --kind KIND       train or eval, when stage.json does not say
      --retry           submit again although the last attempt failed or was cancelled
  -h, --help            show this help

Submitting a stage that is already queued, running or finished does nothing: the ledger (jobs.json) records every
submission, and the execution host keeps its own record of each job id, so a crash mid-submission never leads
to a second job. When the scheduler refuses the job for a reason that passes (its controller down or busy, a QOS
submit limit), the submission is kept in the ledger and made by the next 'relabel jobs'; a refusal for good (an
unknown partition) records nothing.

exit codes: 0 submitted or nothing to do, 1 error (unreachable host, refused host key, rejected job), 2 usage error`,
  options: {
    config: { type: "string" },
    executor: { type: "string" },
    jobs: { type: "string" },
    round: { type: "string" },
    kind: { type: "string" },
    retry: { type: "boolean" },
  },
} satisfies CommandSpec;

export async function runSubmit(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(submitSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(submitSpec));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one STAGE_DIR\nusage: ${submitSpec.usage}`);
  const kind = values.kind === undefined ? undefined : oneOf("kind", values.kind, STAGE_KINDS, "train");
  const jobsFile = values.jobs ?? DEFAULT_JOBS_FILE;
  const config = values.config === undefined ? null : await loadExecutionConfig(values.config);
  const executor = chooseExecutor(config, values.executor, jobsFile);
  const stage = await readStageRef(positionals[0], kind);
  const round = values.round ?? stage.round ?? CLI_ROUND;
  if (!SAFE_NAME.test(round)) throw new UsageError(`--round must be letters, digits, . _ - (got "${round}")`);

  const tracker = new JobTracker(jobsFile);
  try {
    const result = await tracker.submit(stage, { executor: executor.name, config: executor.config, round, retry: values.retry ?? false });
    const where = `${result.job.host ? `${result.job.host}:` : ""}${result.job.remote_dir}`;
    if (result.upload) {
      process.stdout.write(`uploaded ${result.upload.uploaded.length} files (${result.upload.skipped.length} unchanged) to ${where}\n`);
    }
    const attempt = lastAttempt(result.job);
    if (result.action === "none") process.stdout.write(`${result.job.stage}: ${result.reason}; nothing to do\n`);
    else if (result.action === "adopted") process.stdout.write(`recovered ${jobLabel(result.job)}: it was submitted before the last run stopped\n`);
    else process.stdout.write(`submitted ${jobLabel(result.job)}${attempt.number > 1 ? `, attempt ${attempt.number}` : ""}\n`);
    return 0;
  } finally {
    await tracker.close();
  }
}
