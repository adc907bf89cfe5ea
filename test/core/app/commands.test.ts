import { describe, expect, it } from "vitest";
import { authorizeCommand, COMMAND_NAMES, COMMANDS, findCommandLine, helpText, parseCommands, tokenize } from "../../../src/core/app/commands.js";
import { defaultRelabelConfig } from "../../../src/core/app/config.js";

function reply(body: string) {
  const parsed = parseCommands(body);
  if (parsed.kind !== "reply") throw new Error(`expected a reply, got ${parsed.kind}`);
  return parsed;
}

describe("finding the command line", () => {
  it("takes the first line that starts with /relabel, leading spaces allowed", () => {
    expect(findCommandLine("thanks!\n   /relabel status\n/relabel cancel")).toBe("/relabel status");
    expect(findCommandLine("\t/relabel rank --select 3  \r\nmore")).toBe("/relabel rank --select 3");
  });

  it("ignores /relabel in the middle of a line, in quotes, in code fences and glued to other words", () => {
    expect(findCommandLine("please run /relabel status")).toBeNull();
    expect(findCommandLine("> /relabel cancel\nok")).toBeNull();
    expect(findCommandLine("```\n/relabel cancel\n```\n")).toBeNull();
    expect(findCommandLine("~~~~ text\n/relabel cancel\n~~~\n~~~~\n/relabel status")).toBe("/relabel status");
    expect(findCommandLine("/relabeled it")).toBeNull();
  });

  it("is case-insensitive for the prefix and the command", () => {
    const parsed = parseCommands("/Relabel STATUS");
    expect(parsed).toMatchObject({ kind: "run", command: "status" });
  });
});

describe("parsing commands", () => {
  it("ignores comments without a command", () => {
    expect(parseCommands("LGTM")).toEqual({ kind: "ignore" });
    expect(parseCommands("")).toEqual({ kind: "ignore" });
  });

  it("runs a command with validated, typed arguments", () => {
    expect(parseCommands("/relabel rank --select 8 --weights div=1,dis=2")).toEqual({
      kind: "run",
      line: "/relabel rank --select 8 --weights div=1,dis=2",
      command: "rank",
      args: { select: 8, weights: { div: 1, dis: 2 } },
    });
    expect(parseCommands("/relabel rank --select=16")).toMatchObject({ command: "rank", args: { select: 16 } });
    expect(parseCommands("/relabel rebuild --dry-run")).toMatchObject({ kind: "run", command: "rebuild", args: { dry_run: true } });
    expect(parseCommands("/relabel status")).toMatchObject({ kind: "run", command: "status", args: {} });
  });

  it("keeps quoted arguments together", () => {
    expect(parseCommands(`/relabel rank --weights "div=1, dis=2"`)).toMatchObject({ command: "rank", args: { weights: { div: 1, dis: 2 } } });
    expect(parseCommands(`/relabel rank --weights 'div=3,dis=0'`)).toMatchObject({ command: "rank", args: { weights: { div: 3, dis: 0 } } });
  });

  it("replies with help to a bare /relabel", () => {
    expect(reply("/relabel").body).toBe(helpText());
  });

  it("replies to an unknown command with the list of commands and a guess", () => {
    const r = reply("/relabel stauts");
    expect(r.command).toBeNull();
    expect(r.body).toContain("Unknown command `/relabel stauts`. Did you mean `/relabel status`?");
    for (const name of COMMAND_NAMES) expect(r.body).toContain(COMMANDS[name].usage);
  });

  it("replies to bad arguments with the problem and the command's usage", () => {
    const bad: [string, string][] = [
      ["/relabel rank --select eight", "--select: expected the selection size as a whole number"],
      ["/relabel rank --select 0", "--select: expected the selection size of at least 1"],
      ["/relabel rank --weights div=0,dis=0", "--weights: the weights div and dis cannot both be 0"],
      ["/relabel rank --slect 3", 'unknown option "--slect" (did you mean --select?)'],
      ["/relabel rank --select", "--select needs a value"],
      ["/relabel rank --select 3 --select 4", "--select is given twice"],
      ["/relabel rank 8", 'unexpected argument "8"'],
      ["/relabel rebuild", "only --dry-run is available from a comment"],
      ["/relabel rebuild --dry-run=yes", "--dry-run takes no value"],
      ["/relabel cancel --all", 'unknown option "--all" (this command takes no options)'],
    ];
    for (const [line, problem] of bad) {
      const r = reply(line);
      expect(r.body, line).toContain(problem);
      expect(r.body, line).toContain(`Usage: \`${COMMANDS[r.command!].usage}\``);
    }
  });

  it("replies when a quote is not closed", () => {
    expect(reply(`/relabel rank --weights "div=1`).body).toContain("unclosed double quote");
  });
});

describe("tokenize", () => {
  it("splits like a shell", () => {
    expect(tokenize(` a  "b c" 'd "e"' f\\ g "h\\"i" ""`)).toEqual(["a", "b c", 'd "e"', "f g", 'h"i', ""]);
    expect(tokenize("“div=1, dis=2”")).toEqual(["div=1, dis=2"]);
    expect(tokenize("'open")).toBe("unclosed single quote");
  });
});

describe("help", () => {
  it("is generated from the registry: every command's usage and examples", () => {
    const text = helpText();
    for (const name of COMMAND_NAMES) {
      expect(text).toContain(COMMANDS[name].summary);
      for (const example of COMMANDS[name].examples.filter((e) => e !== "/relabel help")) expect(text).toContain(example);
    }
    expect(text.match(/^\| `\/relabel /gm)).toHaveLength(COMMAND_NAMES.length);
  });

  it("every example parses to its own command", () => {
    for (const name of COMMAND_NAMES) {
      for (const example of COMMANDS[name].examples) expect(parseCommands(example), example).toMatchObject({ kind: "run", command: name });
    }
  });
});

describe("permission", () => {
  const config = defaultRelabelConfig();
  it("lets write, maintain and admin run commands", () => {
    for (const level of ["write", "maintain", "admin"]) expect(authorizeCommand("alice", level, config)).toEqual({ ok: true });
  });

  it("politely refuses read-only users", () => {
    const result = authorizeCommand("mallory", "read", config);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reply).toMatch(/^Sorry @mallory, .*need write, maintain or admin access.*\(yours: read\)/);
  });

  it("narrows writers to the allowlist, ignoring case", () => {
    const narrowed = { commands: { allowlist: ["Alice"] } };
    expect(authorizeCommand("alice", "write", narrowed)).toEqual({ ok: true });
    const refused = authorizeCommand("bob", "admin", narrowed);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.reply).toContain("commands.allowlist");
  });
});
