/** Reading what a previous dataset build left: its split.json (frozen assignments) and summary.json. */
import { z } from "zod";
import { InputError } from "../errors.js";
import type { SplitName } from "./split.js";

const splitName = z.enum(["train", "valid", "test"]);

const splitFileSchema = z.object({
  runs: z.record(z.string(), splitName),
  fingerprint: z.object({ test_membership: z.string(), test_content: z.string() }),
  seed: z.number().optional(),
  fractions: z.object({ train: z.number(), valid: z.number(), test: z.number() }).optional(),
});

const summaryFileSchema = z.object({
  elements: z.array(z.string()),
  options: z.object({ energy: z.enum(["free", "sigma0"]), head: z.string() }),
});

export interface PreviousSplit {
  runs: Map<string, SplitName>;
  fingerprint: { test_membership: string; test_content: string };
  seed: number | null;
  fractions: { train: number; valid: number; test: number } | null;
}

export interface PreviousSummary {
  elements: string[];
  energy: "free" | "sigma0";
  head: string;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(file, undefined, `not valid JSON (${(err as Error).message.split("\n")[0]})`);
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, file: string, expected: string): T {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issue = res.error.issues[0];
  const where = issue.path.length ? issue.path.map(String).join(".") : "top level";
  throw new InputError(file, where, `${issue.message}; expected ${expected}`);
}

/** Parses PREVIOUS/split.json; a wrong shape is an InputError naming the key. */
export function parsePreviousSplit(text: string, file: string): PreviousSplit {
  const data = check(splitFileSchema, parseJson(text, file), file, 'a relabel split.json ({"runs": {"<run id>": "train"|"valid"|"test"}, "fingerprint": {...}})');
  return {
    runs: new Map(Object.entries(data.runs)),
    fingerprint: data.fingerprint,
    seed: data.seed ?? null,
    fractions: data.fractions ?? null,
  };
}

/** Parses the parts of PREVIOUS/summary.json a rebuild compares against. */
export function parsePreviousSummary(text: string, file: string): PreviousSummary {
  const data = check(summaryFileSchema, parseJson(text, file), file, "a relabel dataset summary.json");
  return { elements: data.elements, energy: data.options.energy, head: data.options.head };
}
