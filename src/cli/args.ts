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
  /** Flags whose values are positive numbers, so "--select -1" is refused for its value, not read as a flag. */
  positive?: Record<string, NumberKind>;
}

type NumberKind = "integer" | "number";

/** Parses argv for one command; unknown flags and missing values become UsageErrors (exit code 2). */
export function parseCommand<T extends ParseArgsOptionsConfig>(spec: CommandSpec<T>, argv: string[]) {
  for (const [flag, kind] of Object.entries(spec.positive ?? {})) {
    const at = argv.indexOf(`--${flag}`);
    const value = at >= 0 ? argv[at + 1] : undefined;
    if (value !== undefined && /^-(\d|\.\d)/.test(value)) positiveNumber(flag, value, kind);
  }
  try {
    return parseArgs({ args: argv, options: { ...spec.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${parseErrorLine((err as Error).message, argv)}\nusage: ${spec.usage}`);
  }
}

/** Node's parse error in one line; a value that starts with "-" (a negative number) gets the way to write it. */
function parseErrorLine(message: string, argv: string[]): string {
  const ambiguous = /^Option '(-[^']+)' argument is ambiguous/.exec(message);
  if (ambiguous) {
    const flag = ambiguous[1];
    const value = argv[argv.indexOf(flag) + 1] ?? "";
    return `${flag} ${value}: a value that starts with "-" is written ${flag.startsWith("--") ? `${flag}=${value}` : `${flag}${value}`}`;
  }
  return message.split("\n")[0];
}

/** A flag's value as a positive number (a whole one for "integer"); undefined when the flag was not given. */
export function positiveNumber(flag: string, text: string | undefined, kind: NumberKind = "number"): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0 || (kind === "integer" && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be a positive ${kind} (got "${text}")`);
  }
  return n;
}

export function helpText(spec: CommandSpec): string {
  return `usage: ${spec.usage}\n\n${spec.summary}\n\n${spec.help.trimEnd()}\n`;
}

export function oneOf<V extends string>(flag: string, value: string | undefined, allowed: readonly V[], fallback: V): V {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as V;
  throw new UsageError(`--${flag} must be one of ${allowed.join(", ")} (got "${value}")`);
}
