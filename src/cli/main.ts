import { InputError, UsageError } from "../core/errors.js";
import { ExecError } from "../exec/errors.js";
import { LedgerError } from "../ledger/errors.js";
import { SOFTWARE } from "../version.js";
import { wrappedUsage } from "./args.js";

interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

// Each command's module is imported only when it runs (or for the overview): startup stays short.
const lazy =
  <M>(load: () => Promise<M>, pick: (module: M) => Command) =>
  async (): Promise<Command> =>
    pick(await load());

const COMMANDS: Record<string, () => Promise<Command>> = {
  convert: lazy(() => import("./commands/convert.js"), (m) => ({ summary: m.convertSpec.summary, run: m.runConvert })),
  inspect: lazy(() => import("./commands/inspect.js"), (m) => ({ summary: m.inspectSpec.summary, run: m.runInspect })),
  rank: lazy(() => import("./commands/rank.js"), (m) => ({ summary: m.rankSpec.summary, run: m.runRank })),
  dataset: lazy(() => import("./commands/dataset.js"), (m) => ({ summary: m.datasetSpec.summary, run: m.runDataset })),
  stage: lazy(() => import("./commands/stage.js"), (m) => ({ summary: m.stageSpec.summary, run: m.runStage })),
  bench: lazy(() => import("./commands/bench.js"), (m) => ({ summary: m.benchSpec.summary, run: m.runBench })),
  submit: lazy(() => import("./commands/submit.js"), (m) => ({ summary: m.submitSpec.summary, run: m.runSubmit })),
  jobs: lazy(() => import("./commands/jobs.js"), (m) => ({ summary: m.jobsSpec.summary, run: m.runJobs })),
  collect: lazy(() => import("./commands/collect.js"), (m) => ({ summary: m.collectSpec.summary, run: m.runCollect })),
  cancel: lazy(() => import("./commands/cancel.js"), (m) => ({ summary: m.cancelSpec.summary, run: m.runCancel })),
  round: lazy(() => import("./commands/round.js"), (m) => ({ summary: m.roundSpec.summary, run: m.runRound })),
  demo: lazy(() => import("./commands/demo.js"), (m) => ({ summary: m.demoSpec.summary, run: m.runDemo })),
};

async function overview(): Promise<string> {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = await Promise.all(Object.entries(COMMANDS).map(async ([name, load]) => `  ${name.padEnd(width)}  ${(await load()).summary}`));
  return `usage: relabel <command> [options]\n\nActive-learning rounds for MACE potentials: VASP runs in, ranked selections, datasets and benchmarks out.\n\ncommands:\n${lines.join("\n")}\n\nRun 'relabel <command> --help' (or 'relabel help <command>') for a command's options.\n`;
}

/** Runs one CLI invocation and returns its exit code: 0 success, 1 input problems, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...afterFirst] = argv;
  // `relabel help COMMAND` is `relabel COMMAND --help`.
  const helpFor = first === "help" && afterFirst.length > 0;
  const [name, ...rest] = helpFor ? [afterFirst[0], "--help"] : argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(await overview());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    process.stdout.write(`${SOFTWARE.version}\n`);
    return 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`relabel: unknown command "${name}"\n\n${await overview()}`);
    return 2;
  }
  // rank's selection thread boots while the command's modules load.
  if (name === "rank") (await import("./commands/rank-early.js")).bootRankSelection(rest);
  try {
    return await (await load()).run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      // A command's usage line is long: folded, as --help folds it.
      const message = err.message.replace(/^usage: (.*)$/m, (_, usage: string) => `usage: ${wrappedUsage(usage)}`);
      process.stderr.write(`relabel ${name}: ${message}\n`);
      return 2;
    }
    // LedgerError: git could not reach or update the data repository (relabel round); its message is one line.
    if (err instanceof InputError || err instanceof ExecError || err instanceof LedgerError) {
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

/**
 * For bin/relabel.js: when the reader of stdout or stderr goes away (`relabel inspect ... | head`), Node reports
 * EPIPE as an unhandled 'error' event with a stack trace. The reader has what it wanted, so end quietly with 0, as
 * a pipeline whose consumer stopped early is no failure of ours; any other write error becomes one line and 1.
 */
export function endQuietlyWhenOutputCloses(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr], exit: (code: number) => void = process.exit): void {
  for (const stream of streams) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") return exit(0);
      if (stream !== process.stderr) process.stderr.write(`error: writing the output failed: ${err.message}\n`);
      exit(1);
    });
  }
}
