import { parseArgs, type ParseArgsConfig } from "node:util";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;
import { UsageError } from "../core/errors.js";

export interface CommandSpec<T extends ParseArgsOptionsConfig = ParseArgsOptionsConfig> {
  name: string;
  summary: string;
  usage: string;
  /** Option descriptions, shown by --help, in the order given. */
  help: string;
  options: T;
}

/** Parses argv for one command; unknown flags and missing values become UsageErrors (exit code 2). */
export function parseCommand<T extends ParseArgsOptionsConfig>(spec: CommandSpec<T>, argv: string[]) {
  try {
    return parseArgs({ args: argv, options: { ...spec.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split("\n")[0]}\nusage: ${spec.usage}`);
  }
}

export function helpText(spec: CommandSpec): string {
  return `usage: ${spec.usage}\n\n${spec.summary}\n\n${spec.help.trimEnd()}\n`;
}

export function oneOf<V extends string>(flag: string, value: string | undefined, allowed: readonly V[], fallback: V): V {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as V;
  throw new UsageError(`--${flag} must be one of ${allowed.join(", ")} (got "${value}")`);
}
