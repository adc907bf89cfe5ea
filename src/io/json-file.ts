/** JSON files that relabel-loop keeps for itself (jobs, threads, workspaces), read back against their schema. */
import { readFile } from "node:fs/promises";
import type { z } from "zod";
import { InputError } from "../core/errors.js";

/** The file's content checked against `schema`; null when it does not exist. A bad file is one InputError naming the first bad key. */
export async function readJsonFile<S extends z.ZodType>(file: string, schema: S, what: string): Promise<z.output<S> | null> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InputError(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(file, issue.path.map(String).join(".") || undefined, `not ${what}: ${issue.message}`);
  }
  return parsed.data;
}
