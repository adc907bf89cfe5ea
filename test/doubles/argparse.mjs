// Command-line parsing shared by the MACE test doubles: argparse's rules for the flags relabel-loop renders.
// An unknown flag or a bad choice exits 2 with an argparse-style message, as the real tools do.
import { existsSync, readFileSync } from "node:fs";

/**
 * spec: { flag: { type: "string" | "int" | "float" | "bool" | "store_true", choices?: string[], required?: boolean } }
 * Returns { values, argv }; values holds every given flag (store_true ones as true).
 */
export function parseFlags(prog, spec, argv) {
  const values = {};
  const fail = (msg) => {
    process.stderr.write(`usage: ${prog} [-h] ...\n${prog}: error: ${msg}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) fail(`unrecognized arguments: ${arg}`);
    const eq = arg.indexOf("=");
    const key = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const def = spec[key];
    if (!def) fail(`unrecognized arguments: ${arg}`);
    if (def.type === "store_true") {
      if (eq >= 0) fail(`argument --${key}: ignored explicit argument '${arg.slice(eq + 1)}'`);
      values[key] = true;
      continue;
    }
    let raw;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (i + 1 < argv.length) raw = argv[++i];
    else fail(`argument --${key}: expected one argument`);
    values[key] = convert(key, def, raw, fail);
  }
  for (const [key, def] of Object.entries(spec)) {
    if (def.required && values[key] === undefined) fail(`the following arguments are required: --${key}`);
  }
  return values;
}

function convert(key, def, raw, fail) {
  if (def.choices && !def.choices.includes(raw)) {
    fail(`argument --${key}: invalid choice: '${raw}' (choose from ${def.choices.map((c) => `'${c}'`).join(", ")})`);
  }
  switch (def.type) {
    case "int":
      if (!/^[+-]?\d+$/.test(raw)) fail(`argument --${key}: invalid int value: '${raw}'`);
      return Number(raw);
    case "float":
      if (!Number.isFinite(Number(raw)) || raw.trim() === "") fail(`argument --${key}: invalid float value: '${raw}'`);
      return Number(raw);
    case "bool": {
      const v = raw.toLowerCase();
      if (["yes", "true", "t", "y", "1"].includes(v)) return true;
      if (["no", "false", "f", "n", "0"].includes(v)) return false;
      fail(`argument --${key}: Boolean value expected.`);
      return undefined;
    }
    default:
      return raw;
  }
}

/** Exits like an uncaught Python exception (exit code 1, traceback-ish message on stderr). */
export function pythonError(kind, message) {
  process.stderr.write(`Traceback (most recent call last):\n  (test double)\n${kind}: ${message}\n`);
  process.exit(1);
}

export function requireFile(file, what) {
  if (!existsSync(file)) pythonError("FileNotFoundError", `[Errno 2] No such file or directory: '${file}' (${what})`);
}

/** Frame count and per-frame line ranges of an extxyz text. */
export function extxyzFrames(text, file) {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const frames = [];
  for (let i = 0; i < lines.length; ) {
    const n = Number(lines[i].trim());
    if (!Number.isInteger(n) || n < 0 || i + 2 + n > lines.length) pythonError("ValueError", `${file}: bad extxyz frame at line ${i + 1}`);
    frames.push({ natoms: n, comment: lines[i + 1], atoms: lines.slice(i + 2, i + 2 + n) });
    i += n + 2;
  }
  return frames;
}

export function readText(file) {
  return readFileSync(file, "utf8");
}
