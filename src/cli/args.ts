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
  const options = { ...spec.options, help: { type: "boolean" as const, short: "h" } };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${parseErrorLine((err as Error).message, argv, Object.keys(options))}\nusage: ${spec.usage}`);
  }
  const problem = repeatedOrMistyped(argv, options);
  if (problem) throw new UsageError(`${problem}\nusage: ${spec.usage}`);
  return parsed;
}

/**
 * What parseArgs lets through: a single-valued option given twice (it keeps the last), and `-o=DIR` (the value
 * would be "=DIR").
 */
function repeatedOrMistyped(argv: string[], options: ParseArgsOptionsConfig): string | undefined {
  const seen = new Set<string>();
  for (const token of argv) {
    if (token === "--") break;
    const long = /^--([^=]+)/.exec(token)?.[1];
    const short = /^-([^-])(=?)/.exec(token);
    const name = long ?? (short ? Object.keys(options).find((key) => options[key].short === short[1]) : undefined);
    if (short?.[2] === "=" && name) return `-${short[1]}=...: write -${short[1]} VALUE or --${name}=VALUE`;
    if (!name || !options[name] || options[name].multiple || options[name].type === "boolean") continue;
    if (seen.has(name)) return `--${name} is given twice: give it once`;
    seen.add(name);
  }
  return undefined;
}

/** Node's parse error in one line: an unknown option with the likeliest meant, a value that starts with "-". */
function parseErrorLine(message: string, argv: string[], known: string[]): string {
  const ambiguous = /^Option '(-[^']+)' argument is ambiguous/.exec(message);
  if (ambiguous) {
    const flag = ambiguous[1];
    const value = argv[argv.indexOf(flag) + 1] ?? "";
    if (known.includes(value.replace(/^--/, "").replace(/=.*/, ""))) return `${flag} needs a value before ${value}`;
    return `${flag} ${value}: a value that starts with "-" is written ${flag.startsWith("--") ? `${flag}=${value}` : `${flag}${value}`}`;
  }
  const unknown = /^Unknown option '(-[^']+)'/.exec(message);
  if (unknown) {
    const meant = likeliest(unknown[1].replace(/^-+/, ""), known);
    return `unknown option ${unknown[1]}${meant ? ` (did you mean --${meant}?)` : ""}`;
  }
  return message.split("\n")[0];
}

/** The known option within two edits of `typed` (the nearest), or undefined. */
function likeliest(typed: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of known) {
    const d = editDistance(typed, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/** A usage line folded at spaces to lines of at most 110 characters, the later ones indented. */
export function wrappedUsage(usage: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of usage.split(" ")) {
    if (line && line.length + 1 + word.length > 110) {
      lines.push(line);
      line = `    ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join("\n");
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
  return `usage: ${wrappedUsage(spec.usage)}\n\n${spec.summary}\n\n${spec.help.trimEnd()}\n`;
}

export function oneOf<V extends string>(flag: string, value: string | undefined, allowed: readonly V[], fallback: V): V {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as V;
  throw new UsageError(`--${flag} must be one of ${allowed.join(", ")} (got "${value}")`);
}
