/**
 * A rendered stage directory on the bot host: run.sh plus inputs, described by stage.json ({kind, sha256, ...},
 * see src/core/stage/hash.ts). Without stage.json (or without sha256 in it) the stage hash is computed here by
 * the same rule.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { InputError } from "../core/errors.js";
import { SAFE_NAME, STAGE_KINDS, type StageKind } from "../core/exec/config.js";
import { MANIFEST_FILE, stageHash } from "../core/stage/hash.js";
import { sha256File } from "../io/open.js";

export interface StageRef {
  /** Absolute local directory. */
  dir: string;
  /** Stage name (stage.json "name", else the directory name): part of the remote directory name. */
  name: string;
  kind: StageKind;
  /** Content hash, lowercase hex. */
  hash: string;
  /** stage.json "round", when given. */
  round: string | null;
}

export interface StageFile {
  /** Relative path with / separators. */
  path: string;
  sha256: string;
  bytes: number;
  mode: number;
}

/** Every regular file below dir (symlinks followed), with its sha256, sorted by path. .relabel/ is ours and skipped. */
export async function listStageFiles(dir: string): Promise<StageFile[]> {
  const files: StageFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      if (relPath === ".relabel") continue;
      const info = await stat(path.join(dir, relPath));
      if (info.isDirectory()) await walk(relPath);
      else if (info.isFile()) files.push({ path: relPath, sha256: await sha256File(path.join(dir, relPath)), bytes: info.size, mode: info.mode & 0o777 });
    }
  };
  await walk("");
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Reads a stage directory's identity. `kind` from the command line is used when stage.json is missing or has no
 * kind; a kind given both ways must agree.
 */
export async function readStageRef(dir: string, kindOverride?: StageKind): Promise<StageRef> {
  const abs = path.resolve(dir);
  const info = await stat(abs).catch(() => null);
  if (!info?.isDirectory()) throw new InputError(dir, undefined, "not a stage directory");
  const file = path.join(abs, MANIFEST_FILE);
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw err;
  });
  // Without stage.json a hand-made stage still has its run.sh; a folder with neither (a dataset) is no stage.
  if (text === null && !(await stat(path.join(abs, "run.sh")).then((s) => s.isFile(), () => false))) {
    throw new InputError(dir, undefined, `not a stage directory: no ${MANIFEST_FILE} or run.sh (render one with 'relabel stage train|eval --dataset DIR -o STAGE')`);
  }
  let meta: Record<string, unknown> = {};
  if (text !== null) {
    try {
      meta = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new InputError(file, undefined, `not valid JSON (${(err as Error).message})`);
    }
    if (meta === null || typeof meta !== "object" || Array.isArray(meta)) throw new InputError(file, undefined, "expected a JSON object");
  }
  const kind = meta.kind ?? kindOverride;
  if (kind === undefined) throw new InputError(text === null ? dir : file, undefined, `no stage kind: expected "kind" in stage.json or --kind ${STAGE_KINDS.join("|")}`);
  if (!(STAGE_KINDS as readonly unknown[]).includes(kind)) throw new InputError(file, "kind", `expected one of ${STAGE_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  if (kindOverride !== undefined && kind !== kindOverride) throw new InputError(file, "kind", `stage.json says "${String(kind)}" but --kind says "${kindOverride}"`);

  const hash = meta.sha256 ?? stageHash((await listStageFiles(abs)).filter((f) => f.path !== MANIFEST_FILE));
  if (typeof hash !== "string" || !/^[0-9a-f]{12,}$/i.test(hash)) throw new InputError(file, "sha256", "expected the stage's hex content hash");

  const name = meta.name ?? path.basename(abs);
  if (typeof name !== "string" || !SAFE_NAME.test(name)) {
    throw new InputError(text === null ? dir : file, "name", `stage name ${JSON.stringify(name)} must be letters, digits, . _ - (it names the remote directory)`);
  }
  const round = meta.round;
  if (round !== undefined && (typeof round === "number" ? !Number.isInteger(round) : typeof round !== "string" || !SAFE_NAME.test(round))) {
    throw new InputError(file, "round", "expected an integer or a name of letters, digits, . _ -");
  }
  return { dir: abs, name, kind: kind as StageKind, hash: hash.toLowerCase(), round: round === undefined ? null : String(round) };
}
