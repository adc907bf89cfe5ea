/**
 * `/relabel <command>` comments: the command registry (help is generated from it), the parser that turns one
 * comment into ignore / reply / run, and the permission rule. Only the first line that starts with `/relabel`
 * counts (leading spaces allowed; lines inside code fences and quotes are never commands), its arguments are
 * tokenised shell-style and validated with the command's zod schema.
 */
import { z } from "zod";
import { parseWeightsText, type RelabelConfig } from "./config.js";
import { escapeCell, inlineCode } from "./markdown.js";
import { closestName } from "../stage/suggest.js";

export const COMMAND_PREFIX = "/relabel";

/** How an option is written: `--name VALUE` (or `--name=VALUE`), or a bare `--name` switch. */
type OptionKind = "value" | "switch";

interface CommandDefinition<S extends z.ZodType> {
  name: string;
  usage: string;
  summary: string;
  /** Repository permission needed (write, maintain or admin); config may narrow it to an allowlist. */
  permission: "write";
  /** Options by their spelling without dashes; the schema sees them with "-" turned into "_". */
  options: Record<string, OptionKind>;
  schema: S;
  examples: string[];
}

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected ${what} as a whole number`)
    .transform(Number)
    .pipe(z.int().min(min, `expected ${what} of at least ${min}`).max(max, `expected ${what} of at most ${max}`));

const weightsArgument = z.string().transform((text, ctx) => {
  const weights = parseWeightsText(text);
  if (typeof weights === "string") {
    ctx.addIssue({ code: "custom", message: weights });
    return z.NEVER;
  }
  return weights;
});

const noArguments = z.strictObject({});

function define<S extends z.ZodType>(definition: CommandDefinition<S>): CommandDefinition<S> {
  return definition;
}

/** Every command, in the order help lists them. */
export const COMMANDS = {
  help: define({
    name: "help",
    usage: "/relabel help",
    summary: "List the commands (this table).",
    permission: "write",
    options: {},
    schema: noArguments,
    examples: ["/relabel help"],
  }),
  status: define({
    name: "status",
    usage: "/relabel status",
    summary: "Show the round's state, its pull requests, the lock and the jobs.",
    permission: "write",
    options: {},
    schema: noArguments,
    examples: ["/relabel status"],
  }),
  rank: define({
    name: "rank",
    usage: "/relabel rank [--select N] [--weights div=W,dis=W]",
    summary: "Rank the pool again and update the selection PR (only while the selection is not merged).",
    permission: "write",
    options: { select: "value", weights: "value" },
    schema: z.strictObject({ select: wholeNumber("the selection size", 1, 100_000).optional(), weights: weightsArgument.optional() }),
    examples: ["/relabel rank --select 16", "/relabel rank --weights div=1,dis=2"],
  }),
  rebuild: define({
    name: "rebuild",
    usage: "/relabel rebuild --dry-run",
    summary: "Check the results PR again: parse every run, match it to the selection, report the gates. Nothing is written.",
    permission: "write",
    options: { "dry-run": "switch" },
    schema: z.strictObject({
      dry_run: z.literal(true, {
        error: "only --dry-run is available from a comment: the dataset is rebuilt when the results PR is merged",
      }),
    }),
    examples: ["/relabel rebuild --dry-run"],
  }),
  submit: define({
    name: "submit",
    usage: "/relabel submit",
    summary: "Submit the round's training and evaluation stages that have no job yet (e.g. after fixing the executor).",
    permission: "write",
    options: {},
    schema: noArguments,
    examples: ["/relabel submit"],
  }),
  cancel: define({
    name: "cancel",
    usage: "/relabel cancel",
    summary: "Cancel the round's open jobs.",
    permission: "write",
    options: {},
    schema: noArguments,
    examples: ["/relabel cancel"],
  }),
  collect: define({
    name: "collect",
    usage: "/relabel collect",
    summary: "Poll the jobs now and, when all have finished, fetch their outputs and run the benchmark.",
    permission: "write",
    options: {},
    schema: noArguments,
    examples: ["/relabel collect"],
  }),
  unlock: define({
    name: "unlock",
    usage: "/relabel unlock [--force]",
    summary:
      "Release the round's lock left by a step that stopped (the lock names its holder and since when); a step still running in the App keeps its lock unless --force (for a step that hangs).",
    permission: "write",
    options: { force: "switch" },
    schema: z.strictObject({ force: z.literal(true).optional() }),
    examples: ["/relabel unlock", "/relabel unlock --force"],
  }),
};

export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];
export type CommandArgs<K extends CommandName> = z.output<(typeof COMMANDS)[K]["schema"]>;

/** A command to run, with its validated arguments. */
export type RunCommand = { [K in CommandName]: { command: K; args: CommandArgs<K> } }[CommandName];

export type ParsedComment =
  | { kind: "ignore" }
  /** A reply to post: help for a bare `/relabel`, or why the command line was refused (command = the name when known). */
  | { kind: "reply"; line: string; command: CommandName | null; body: string }
  | ({ kind: "run"; line: string } & RunCommand);

/** The help comment, generated from the registry. */
export function helpText(): string {
  const rows = COMMAND_NAMES.map((name) => `| ${escapeCell(inlineCode(COMMANDS[name].usage))} | ${escapeCell(COMMANDS[name].summary)} |`);
  const examples = COMMAND_NAMES.flatMap((name) => COMMANDS[name].examples).filter((e) => e !== "/relabel help");
  return [
    "**relabel-loop commands**",
    "",
    "| command | what it does |",
    "|---|---|",
    ...rows,
    "",
    "Write the command at the start of a line in a comment on a round issue or round pull request; only the first " +
      "`/relabel` line of a comment runs. People with write, maintain or admin access may run commands (the repository's " +
      "`.github/relabel.yml` can narrow this to `commands.allowlist`).",
    "",
    "Examples:",
    "",
    "```",
    ...examples,
    "```",
    "",
  ].join("\n");
}

/** The usage block of one command, for replies to a malformed call. */
export function usageText(name: CommandName): string {
  const command = COMMANDS[name];
  return [`Usage: \`${command.usage}\``, "", command.summary, "", "Example:", "", "```", ...command.examples, "```", ""].join("\n");
}

/** The first `/relabel` line of a comment (outside code fences and quotes), or null. */
export function findCommandLine(body: string): string | null {
  let fence: { char: string; length: number } | null = null;
  for (const raw of body.split(/\r?\n/)) {
    const fenceMatch = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(raw);
    if (fence) {
      if (fenceMatch && fenceMatch[1][0] === fence.char && fenceMatch[1].length >= fence.length && fenceMatch[2].trim() === "") fence = null;
      continue;
    }
    if (fenceMatch && !(fenceMatch[1][0] === "`" && fenceMatch[2].includes("`"))) {
      fence = { char: fenceMatch[1][0], length: fenceMatch[1].length };
      continue;
    }
    const line = raw.replace(/^[ \t]+/, "");
    if (line.slice(0, COMMAND_PREFIX.length).toLowerCase() === COMMAND_PREFIX && /^(\s|$)/.test(line.slice(COMMAND_PREFIX.length))) {
      return line.trimEnd();
    }
  }
  return null;
}

/** Turns a comment into what to do: nothing, a reply, or a validated command. */
export function parseCommands(commentBody: string): ParsedComment {
  const line = findCommandLine(commentBody);
  if (line === null) return { kind: "ignore" };
  const tokens = tokenize(line.slice(COMMAND_PREFIX.length));
  if (typeof tokens === "string") return { kind: "reply", line, command: null, body: `Could not read ${inlineCode(line)}: ${tokens}.\n\n${helpText()}` };
  const [word, ...rest] = tokens;
  if (word === undefined) return { kind: "reply", line, command: null, body: helpText() };
  const name = word.toLowerCase();
  if (!isCommandName(name)) {
    const guess = closestName(name, COMMAND_NAMES);
    const hint = guess === undefined ? "" : ` Did you mean \`/relabel ${guess}\`?`;
    return { kind: "reply", line, command: null, body: `Unknown command ${inlineCode(`/relabel ${word}`)}.${hint}\n\n${helpText()}` };
  }
  const parsed = parseArguments(name, rest);
  if (typeof parsed === "string") {
    return { kind: "reply", line, command: name, body: `\`/relabel ${name}\`: ${parsed}\n\n${usageText(name)}` };
  }
  return { kind: "run", line, ...parsed };
}

function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

function parseArguments(name: CommandName, tokens: string[]): RunCommand | string {
  const command = COMMANDS[name];
  const known = Object.keys(command.options);
  const raw: Record<string, string | true> = {};
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const option = /^--([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(token);
    if (!option) {
      return token.startsWith("-")
        ? `unknown option "${token}"${known.length ? ` (options: ${known.map((k) => `--${k}`).join(", ")})` : " (this command takes no options)"}`
        : `unexpected argument "${token}"`;
    }
    const [, optionName, inlineValue] = option;
    const kind = command.options[optionName];
    if (kind === undefined) {
      const guess = closestName(optionName, known);
      const hint = guess !== undefined ? ` (did you mean --${guess}?)` : known.length ? ` (options: ${known.map((k) => `--${k}`).join(", ")})` : " (this command takes no options)";
      return `unknown option "--${optionName}"${hint}`;
    }
    const key = optionName.replace(/-/g, "_");
    if (key in raw) return `--${optionName} is given twice`;
    if (kind === "switch") {
      if (inlineValue !== undefined) return `--${optionName} takes no value`;
      raw[key] = true;
    } else if (inlineValue !== undefined) {
      raw[key] = inlineValue;
    } else {
      const value = tokens[i + 1];
      if (value === undefined || value.startsWith("--")) return `--${optionName} needs a value`;
      raw[key] = value;
      i++;
    }
  }
  const result = command.schema.safeParse(raw);
  if (!result.success) {
    return result.error.issues
      .map((issue) => {
        const key = issue.path.map(String).join(".");
        return `${key === "" ? "" : `--${key.replace(/_/g, "-")}: `}${issue.message.replace(/^Invalid input: /, "")}`;
      })
      .join("; ");
  }
  return { command: name, args: result.data } as RunCommand;
}

/**
 * Shell-style words: whitespace separates, '…' is literal, "…" allows \" and \\, a backslash outside quotes
 * escapes the next character. Typographic double quotes count as ". Returns the reason when a quote is unclosed.
 */
export function tokenize(text: string): string[] | string {
  const words: string[] = [];
  let word: string | null = null;
  let quote: "'" | '"' | null = null;
  const chars = [...text.replace(/[\u201c\u201d]/g, '"')];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && (chars[i + 1] === '"' || chars[i + 1] === "\\")) word += chars[++i];
      else word += c;
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < chars.length) {
      word = (word ?? "") + chars[++i];
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote !== null) return `unclosed ${quote === "'" ? "single" : "double"} quote`;
  if (word !== null) words.push(word);
  return words;
}

/** Permission levels of GitHub's collaborator permission API that may run commands. */
const WRITERS = new Set(["admin", "maintain", "write"]);

/**
 * The polite refusal for `login` without write access (permission from getCollaboratorPermissionLevel), or null for
 * a writer. Checked before anything is read or written for the comment, so that anyone who can comment cannot make
 * the App push to the ledger.
 */
export function refuseNonWriter(login: string, permission: string): string | null {
  if (WRITERS.has(permission)) return null;
  return `Sorry @${login}, relabel-loop commands need write, maintain or admin access to this repository (yours: ${permission}). Nothing was run; a maintainer can run it for you.`;
}

/**
 * Whether `login` (with repository permission `permission`, from getCollaboratorPermissionLevel) may run a command;
 * the refusal is the polite reply to post.
 */
export function authorizeCommand(login: string, permission: string, config: Pick<RelabelConfig, "commands">): { ok: true } | { ok: false; reply: string } {
  const nonWriter = refuseNonWriter(login, permission);
  if (nonWriter !== null) return { ok: false, reply: nonWriter };
  const allowlist = config.commands.allowlist;
  if (allowlist !== null && !allowlist.some((allowed) => allowed.toLowerCase() === login.toLowerCase())) {
    return {
      ok: false,
      reply: `Sorry @${login}, this repository lets only the logins in \`commands.allowlist\` of \`.github/relabel.yml\` run relabel-loop commands. Nothing was run.`,
    };
  }
  return { ok: true };
}
