import path from "node:path";
import { UsageError } from "../../core/errors.js";
import { lastAttempt } from "../../core/exec/ledger.js";
import { JobTracker } from "../../exec/tracker.js";
import { helpText, parseCommand, type CommandSpec } from "../args.js";
import { DEFAULT_JOBS_FILE, checkStageNames, loadExecutionConfig, readJobsFile } from "../executors.js";

export const collectSpec = {
  name: "collect",
  summary: "Download the outputs of finished stages: predictions, MACE results, logs; models are recorded, not copied.",
  usage: "relabel collect -o DIR [--jobs FILE] [--config relabel.yml|relabel.json] [STAGE...]",
  help: `Polls first, then for every ended stage (or the STAGE names / hash prefixes given) not collected into DIR
yet, downloads predictions/*.extxyz, results/*_train.txt, logs/*, status.json, stage.json and metrics*.json
into DIR/<stage>-<hash12>/, checking each file's sha256 against the one computed on the execution host. Models
the stage wrote (*.model) stay on the host: their remote path and sha256 go into the jobs file. Checkpoints and
the stage's inputs (models/, assets/: the model an eval stage evaluates) are left alone.

options:
  -o, --output DIR     where to put the downloads, one directory per stage
      --jobs FILE      the jobs ledger (default: ${DEFAULT_JOBS_FILE})
      --config FILE    executor configuration overriding the one recorded in the jobs file
  -h, --help           show this help

exit codes: 0 success (stages still running are listed and left for later), 1 error, 2 usage error`,
  options: {
    output: { type: "string", short: "o" },
    jobs: { type: "string" },
    config: { type: "string" },
  },
} satisfies CommandSpec;

export async function runCollect(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(collectSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(collectSpec));
    return 0;
  }
  if (!values.output) throw new UsageError(`-o DIR is required\nusage: ${collectSpec.usage}`);
  const jobsFile = values.jobs ?? DEFAULT_JOBS_FILE;
  const config = values.config === undefined ? undefined : await loadExecutionConfig(values.config);
  checkStageNames(await readJobsFile(jobsFile), positionals, jobsFile, matchesStage);
  const select = stageSelector(positionals);

  const tracker = new JobTracker(jobsFile, { executors: config?.executors });
  try {
    const polled = await tracker.poll();
    for (const p of polled.problems) process.stderr.write(`warning: ${p}\n`);
    const { collected, already, open } = await tracker.collect(values.output!, select);
    for (const c of collected) {
      const rel = path.relative(process.cwd(), c.dir) || ".";
      process.stdout.write(`${c.job.stage}: ${lastAttempt(c.job).outcome}, ${c.files.length} files into ${rel}\n`);
      for (const m of c.models) process.stdout.write(`  model ${m.path} sha256 ${m.sha256} (${m.bytes} bytes, left on ${c.job.host ?? "this host"})\n`);
    }
    for (const job of already) process.stdout.write(`${job.stage}: already collected into ${path.relative(process.cwd(), job.collected!.dir) || "."}\n`);
    for (const job of open) process.stdout.write(`${job.stage}: still ${lastAttempt(job).state}, not collected\n`);
    if (collected.length + already.length + open.length === 0) process.stdout.write("nothing to collect\n");
    return 0;
  } finally {
    await tracker.close();
  }

}

/** Whether a name from the command line picks a job: its stage name, or a prefix (6+ digits) of its hash. */
export function matchesStage(name: string, job: { stage: string; hash: string }): boolean {
  return job.stage === name || (name.length >= 6 && job.hash.startsWith(name.toLowerCase()));
}

/** Jobs chosen by stage name or hash prefix; all jobs when none are named. */
export function stageSelector(names: string[]): (job: { stage: string; hash: string }) => boolean {
  if (names.length === 0) return () => true;
  return (job) => names.some((n) => matchesStage(n, job));
}
