import { InputError, UsageError } from "../core/errors.js";
import { ExecError } from "../exec/errors.js";
import { SOFTWARE } from "../version.js";
import { benchSpec, runBench } from "./commands/bench.js";
import { convertSpec, runConvert } from "./commands/convert.js";
import { datasetSpec, runDataset } from "./commands/dataset.js";
import { cancelSpec, runCancel } from "./commands/cancel.js";
import { collectSpec, runCollect } from "./commands/collect.js";
import { demoSpec, runDemo } from "./commands/demo.js";
import { inspectSpec, runInspect } from "./commands/inspect.js";
import { jobsSpec, runJobs } from "./commands/jobs.js";
import { rankSpec, runRank } from "./commands/rank.js";
import { runStage, stageSpec } from "./commands/stage.js";
import { runSubmit, submitSpec } from "./commands/submit.js";

interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  convert: { summary: convertSpec.summary, run: runConvert },
  inspect: { summary: inspectSpec.summary, run: runInspect },
  rank: { summary: rankSpec.summary, run: runRank },
  dataset: { summary: datasetSpec.summary, run: runDataset },
  stage: { summary: stageSpec.summary, run: runStage },
  bench: { summary: benchSpec.summary, run: runBench },
  submit: { summary: submitSpec.summary, run: runSubmit },
  jobs: { summary: jobsSpec.summary, run: runJobs },
  collect: { summary: collectSpec.summary, run: runCollect },
  cancel: { summary: cancelSpec.summary, run: runCancel },
  demo: { summary: demoSpec.summary, run: runDemo },
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: relabel <command> [options]\n\nActive-learning rounds for MACE potentials: VASP runs in, ranked selections, datasets and benchmarks out.\n\ncommands:\n${lines.join("\n")}\n\nRun 'relabel <command> --help' for a command's options.\n`;
}

/** Runs one CLI invocation and returns its exit code: 0 success, 1 input problems, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    process.stdout.write(`${SOFTWARE.version}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`relabel: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`relabel ${name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof InputError || err instanceof ExecError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    if (isFsError(err)) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function isFsError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string" && typeof (err as NodeJS.ErrnoException).syscall === "string";
}
