/**
 * The content hash of a stage. Every file except stage.json (a file cannot hold its own hash) is hashed with
 * SHA-256; the stage hash is the SHA-256 of the lines `<file sha256>  <relative path>\n`, sorted by path,
 * which is `sha256sum` output: `jq -r '.files|to_entries[]|"\(.value.sha256)  \(.key)"' stage.json | sha256sum -c`
 * verifies the files and piping the same lines into `sha256sum` gives the stage hash.
 */
import { createHash } from "node:crypto";
import { stableJson } from "../json.js";
import type { StageKind } from "./plan.js";

export const MANIFEST_FILE = "stage.json";

export interface HashedFile {
  /** Relative to the stage directory, with `/` separators. */
  path: string;
  sha256: string;
  bytes: number;
}

export function stageHash(files: readonly HashedFile[]): string {
  const lines = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${f.sha256}  ${f.path}\n`)
    .join("");
  return createHash("sha256").update(lines).digest("hex");
}

/**
 * stage.json: the stage hash, how it is computed, and every file's hash and size; `round` (from `relabel stage
 * --round`) tells `relabel submit` where the stage belongs. It is not part of the stage hash.
 */
export function renderManifest(kind: StageKind, files: readonly HashedFile[], round: string | null = null): string {
  const entries: Record<string, { bytes: number; sha256: string }> = {};
  for (const f of files) entries[f.path] = { bytes: f.bytes, sha256: f.sha256 };
  return stableJson({
    kind,
    sha256: stageHash(files),
    hash_rule: `sha256 of the lines "<file sha256>  <path>\\n" over every file but ${MANIFEST_FILE}, sorted by path`,
    files: entries,
    ...(round === null ? {} : { round }),
  });
}
