import { main } from "../../src/cli/main.js";
import { runCommand, type CliResult } from "./run-command.js";

export type { CliResult };

/** Runs the relabel CLI in-process on the TypeScript sources, capturing what it prints. */
export function runCli(...argv: string[]): Promise<CliResult> {
  return runCommand(main, ...argv);
}
