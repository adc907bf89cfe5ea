/**
 * Writes a stage directory: checks the dataset and every local file the config names before anything is
 * written, then copies (hashing while copying), writes the rendered files, and stage.json last. The stage is
 * assembled in a sibling `<dir>.partial-<pid>` and renamed into place, so a stage directory is complete or
 * absent; an existing non-empty directory is never overwritten (stages are immutable).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, readFile, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";
import { Readable } from "node:stream";
import { InputError } from "../core/errors.js";
import { writeExtxyzFrame } from "../core/formats/extxyz.js";
import { isAseTrajectory, isLammpsDump } from "../core/formats/format-heads.js";
import { NAMED_FOUNDATION_MODELS, NAMED_REPLAY_SETS, foundationHeadWarning, type StageConfig } from "../core/stage/config.js";
import { SPLIT_FILES, parseDatasetSummary, type DatasetSummary } from "../core/stage/dataset.js";
import { e0sTable, isIsolatedAtomFrame, isolatedAtomWarning, parseE0sFile, stageE0s, type StageE0s } from "../core/stage/e0s.js";
import { MANIFEST_FILE, renderManifest, stageHash, type HashedFile } from "../core/stage/hash.js";
import { checkStageConfig, localAssetRefs, planStage, type AssetRef, type PlannedFile, type StageKind, type StageSources } from "../core/stage/plan.js";
import { closestName } from "../core/stage/suggest.js";
import type { Frame } from "../core/structure.js";
import { readAseTrajectory } from "./ase-trajectory.js";
import { readExtxyz } from "./extxyz.js";
import { readLammpsDump } from "./lammps-dump.js";
import { CHUNK_BYTES, fileError, openInput, readHead } from "./open.js";
import { datasetSplitFile } from "./run-files.js";

export interface BuildStageOptions {
  kind: StageKind;
  /** The dataset directory (train.extxyz, valid/test.extxyz, summary.json). */
  datasetDir: string;
  /** The stage directory to create; must not exist or be empty. */
  outDir: string;
  config: StageConfig;
  /** Names the config in error messages (its file, or e.g. "defaults"). */
  configSource: string;
  /** Relative file paths in the config are resolved against this directory. */
  baseDir: string;
  /** relabel-loop's version, recorded in params.json. */
  version: string;
  /** The round written into stage.json for `relabel submit` (the App passes its round when submitting instead). */
  round?: string | null;
}

export interface BuiltStage {
  dir: string;
  sha256: string;
  files: HashedFile[];
  notes: string[];
  /** Settings MACE will not follow as the stage states them, one line each (the stage is still written). */
  warnings: string[];
}

export async function buildStage(o: BuildStageOptions): Promise<BuiltStage> {
  checkStageConfig(o.kind, o.config, o.configSource);
  const { summary, dataset } = await readDataset(o.datasetDir);
  const assets = new Map<string, string>();
  const refs = localAssetRefs(o.kind, o.config);
  for (const ref of refs) assets.set(ref.key, await resolveAsset(ref, o.baseDir, o.configSource));
  const sources: StageSources = { dataset, assets, e0s: await readE0s(o, summary, assets) };
  const plan = planStage({ kind: o.kind, config: o.config, summary, sources, version: o.version });
  const warnings = o.kind === "train" ? await trainWarnings(o, dataset["train.extxyz"]!) : [];

  const out = path.resolve(o.outDir);
  await refuseNonEmpty(out);
  const tmp = `${out}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    const hashed: HashedFile[] = [];
    for (const file of plan.files) {
      const dest = path.join(tmp, file.path);
      await mkdir(path.dirname(dest), { recursive: true });
      hashed.push({ path: file.path, ...(await writePlanned(file, dest, o.config.eval.type_map)) });
      if (file.path === "run.sh" || file.path.endsWith("/run.sh")) await chmod(dest, 0o755);
    }
    checkCopiedDataset(hashed, summary, dataset["summary.json"]);
    const pool = hashed.find((f) => f.path === "pool/pool.extxyz");
    if (pool && pool.bytes === 0) throw new InputError(o.configSource, "eval.pool", "the candidate pool files hold no data");
    await writeText(path.join(tmp, MANIFEST_FILE), renderManifest(plan.kind, hashed, o.round ?? null));
    await rmdir(out).catch(() => undefined);
    await rename(tmp, out);
    return { dir: out, sha256: stageHash(hashed), files: hashed, notes: plan.notes, warnings };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function readDataset(dir: string): Promise<{ summary: DatasetSummary; dataset: StageSources["dataset"] }> {
  const summaryPath = path.join(dir, "summary.json");
  let text: string;
  try {
    text = await readFile(summaryPath, "utf8");
  } catch (err) {
    throw fileError(summaryPath, err, "a dataset summary.json");
  }
  const summary = parseDatasetSummary(text, summaryPath);
  const dataset: StageSources["dataset"] = { "summary.json": summaryPath };
  for (const f of SPLIT_FILES) {
    const file = datasetSplitFile(dir, f) ?? path.join(dir, f);
    const present = await isFile(file);
    if (summary.files.includes(f)) {
      if (!present) throw new InputError(file, undefined, "listed in summary.json files but missing");
      dataset[f] = file;
    } else if (present) {
      throw new InputError(file, undefined, "not listed in summary.json files: a stale split from an earlier build?");
    }
  }
  return { summary, dataset };
}

/** A config file path resolved and checked; a miss names the key, and a near-miss of a MACE name is pointed out. */
async function resolveAsset(ref: AssetRef, baseDir: string, source: string): Promise<string> {
  const file = path.resolve(baseDir, ref.value);
  let info;
  try {
    info = await stat(file);
  } catch {
    const names = ref.role === "foundation_model" ? NAMED_FOUNDATION_MODELS : ref.role === "pt_train_file" ? NAMED_REPLAY_SETS : [];
    const guess = names.length > 0 ? closestName(ref.value, names) : undefined;
    const what = names.length > 0 ? `is neither a named MACE ${ref.role === "foundation_model" ? "model" : "replay set"} nor an existing file` : "is not an existing file";
    throw new InputError(source, ref.key, `"${ref.value}" ${what} (${file})${guess ? `; did you mean "${guess}"?` : ""}`);
  }
  if (!info.isFile()) throw new InputError(source, ref.key, `${file} is not a regular file`);
  if (info.size === 0) throw new InputError(source, ref.key, `${file} is empty`);
  return file;
}

async function readE0s(o: BuildStageOptions, summary: DatasetSummary, assets: ReadonlyMap<string, string>): Promise<StageE0s | undefined> {
  if (o.kind !== "train") return undefined;
  const e0s = o.config.E0s;
  if (typeof e0s !== "string") return stageE0s(e0sTable(e0s, `${o.configSource}: E0s`), summary.atomicNumbers, `${o.configSource}: E0s`);
  if (!e0s.endsWith(".json")) return undefined;
  const file = assets.get("E0s")!;
  return stageE0s(parseE0sFile(await readFile(file, "utf8"), file), summary.atomicNumbers, file);
}

async function trainWarnings(o: BuildStageOptions, trainFile: string): Promise<string[]> {
  const warnings: string[] = [];
  const head = foundationHeadWarning(o.config, o.configSource);
  if (head !== undefined) warnings.push(head);
  let isolated = 0;
  for await (const frame of readExtxyz(trainFile)) if (isIsolatedAtomFrame(frame)) isolated++;
  if (isolated > 0) warnings.push(isolatedAtomWarning(trainFile, isolated, typeof o.config.E0s === "string" && !o.config.E0s.endsWith(".json") ? o.config.E0s : "assets/E0s.json"));
  return warnings;
}

async function refuseNonEmpty(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new InputError(dir, undefined, `cannot use as the stage directory: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw new InputError(dir, undefined, "already exists and is not empty: stages are never overwritten, choose a new -o");
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** When summary.json records the split files' SHA-256, the copies must match it (a dataset edited after its build). */
function checkCopiedDataset(hashed: readonly HashedFile[], summary: DatasetSummary, summaryPath: string): void {
  for (const f of summary.files) {
    const copy = hashed.find((h) => h.path === `data/${f}`);
    const expected = summary.sha256[f];
    if (copy && expected !== undefined && copy.sha256 !== expected) {
      throw new InputError(summaryPath, `sha256.${f}`, `${f} has sha256 ${copy.sha256}, not the ${expected} recorded at build time: the dataset changed after it was built`);
    }
  }
}

async function writePlanned(file: PlannedFile, dest: string, typeMap: readonly string[] | null): Promise<Omit<HashedFile, "path">> {
  if ("text" in file) return writeText(dest, file.text);
  if (file.join === "extxyz") return joinExtxyz(file.from, dest, typeMap);
  if (file.from.length !== 1) throw new Error(`${file.path}: a copy has exactly one source`);
  return copyFile(file.from[0], dest);
}

async function writeText(dest: string, text: string): Promise<Omit<HashedFile, "path">> {
  const bytes = Buffer.from(text, "utf8");
  const out = createWriteStream(dest, { flags: "wx" });
  out.end(bytes);
  await once(out, "finish");
  return { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
}

/** Copies one file byte for byte, hashing it on the way. */
async function copyFile(source: string, dest: string): Promise<Omit<HashedFile, "path">> {
  return pump([createReadStream(source, { highWaterMark: CHUNK_BYTES })], [source], dest, false);
}

/**
 * Concatenates extxyz files (gunzipping gzip ones) into one, each ending with a newline. An ASE trajectory or a
 * LAMMPS dump (candidate pools from MD) is written as extxyz, every digit kept, so that its frames keep their
 * candidate_ids.
 */
async function joinExtxyz(sources: readonly string[], dest: string, typeMap: readonly string[] | null): Promise<Omit<HashedFile, "path">> {
  const streams = [];
  for (const s of sources) {
    const head = await readHead(s, 24).catch(() => "");
    if (isAseTrajectory(head)) streams.push(Readable.from(framesAsExtxyz(readAseTrajectory(s))));
    else if (isLammpsDump(head)) streams.push(Readable.from(framesAsExtxyz(readLammpsDump(s, typeMap))));
    else streams.push((await openInput(s, "an extxyz file")).stream);
  }
  return pump(streams, sources, dest, true);
}

async function* framesAsExtxyz(batches: AsyncGenerator<Frame[], unknown, void>): AsyncGenerator<Buffer, void, void> {
  for await (const frames of batches) yield Buffer.from(frames.map(writeExtxyzFrame).join(""));
}

async function pump(streams: Readable[], sources: readonly string[], dest: string, newlineBetween: boolean): Promise<Omit<HashedFile, "path">> {
  const hash = createHash("sha256");
  const out = createWriteStream(dest, { flags: "wx", highWaterMark: CHUNK_BYTES });
  let bytes = 0;
  const put = async (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
    if (!out.write(chunk)) await once(out, "drain");
  };
  try {
    for (let i = 0; i < streams.length; i++) {
      let last = 0x0a;
      try {
        for await (const chunk of streams[i] as AsyncIterable<Buffer>) {
          if (chunk.length === 0) continue;
          await put(chunk);
          last = chunk[chunk.length - 1];
        }
      } catch (err) {
        throw fileError(sources[i], err, "a file");
      }
      if (newlineBetween && last !== 0x0a) await put(Buffer.from("\n"));
    }
    out.end();
    await once(out, "finish");
  } catch (err) {
    out.destroy();
    for (const s of streams) s.destroy();
    throw err;
  }
  return { sha256: hash.digest("hex"), bytes };
}
