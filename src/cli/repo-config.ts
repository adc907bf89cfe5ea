import { readFile } from "node:fs/promises";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { parseRelabelConfig, type RelabelConfig } from "../core/app/config.js";
import { InputError } from "../core/errors.js";
import { fileError } from "../io/open.js";

/** Config files named *.yml / *.yaml are a data repo's `.github/relabel.yml`; others are the older JSON forms. */
export function isRepoConfig(file: string): boolean {
  return /\.ya?ml$/i.test(file);
}

/** Reads and validates a `.github/relabel.yml`-style file, so the CLI takes the same config as the App. */
export async function loadRepoConfig(file: string): Promise<RelabelConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw fileError(file, err, "a relabel.yml config file");
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) throw new InputError(file, err.linePos?.[0].line, `not valid YAML: ${err.message.split("\n")[0]}`);
    throw err;
  }
  const result = parseRelabelConfig(data ?? {}, file);
  if (!result.ok) throw new InputError(file, undefined, result.problems.map((p) => `${p.path || "the file"}: ${p.message}`).join("; "));
  return result.config;
}
