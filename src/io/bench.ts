/**
 * File side of `relabel bench`: reading predictions, references, the dataset summary, the previous round and MACE
 * training outputs, and writing the benchmark directory. The work happens in core/bench.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { InputError } from "../core/errors.js";
import type { TrainingRunInput } from "../core/bench/bench.js";
import { datasetSummaryInfo, parsePreviousMetrics, type DatasetSummaryInfo, type PreviousBench } from "../core/bench/compare.js";
import { benchFrame, type BenchFrame, type LabelKeys } from "../core/bench/labels.js";
import { RUN_SCRIPT_LOGS } from "../core/stage/render.js";
import { parseMaceLog, parseMaceResults } from "../core/bench/mace-training.js";
import { readExtxyzWithLines } from "./extxyz.js";
import { folderEntries } from "./folder-entries.js";
import { fileError } from "./open.js";

export interface FrameReadOptions {
  predKeys: LabelKeys;
  refKeys: LabelKeys;
  /** Prefix of the reference keys, for REF_free_energy / REF_energy_sigma0 written by `relabel convert`. */
  refPrefix: string;
}

const PRED_HINT = "mace_eval_configs writes MACE_energy and MACE_forces; see --pred-prefix";
const REF_HINT = "see --ref-prefix, --ref-energy-key and --ref-forces-key";

function refOptions(file: string, o: FrameReadOptions) {
  return {
    file,
    keys: o.refKeys,
    requireForces: false,
    hint: REF_HINT,
    freeEnergyKey: `${o.refPrefix}free_energy`,
    sigma0EnergyKey: `${o.refPrefix}energy_sigma0`,
  };
}

/**
 * The prediction frames, and the reference frames: from `refFile` when given, else the reference keys of the same
 * frames. Throws a one-line InputError for a file without frames or a frame without the required labels.
 */
export async function readBenchFrames(predFile: string, refFile: string | null, o: FrameReadOptions): Promise<{ pred: BenchFrame[]; ref: BenchFrame[] }> {
  const pred: BenchFrame[] = [];
  const ref: BenchFrame[] = [];
  const predOptions = { file: predFile, keys: o.predKeys, requireForces: true, hint: PRED_HINT };
  let index = 0;
  for await (const { frame, line } of readExtxyzWithLines(predFile)) {
    const p = benchFrame(frame, index, line, predOptions);
    pred.push(p);
    if (refFile === null) ref.push(benchFrame(frame, index, line, refOptions(predFile, o), p.id));
    index++;
  }
  if (pred.length === 0) throw new InputError(predFile, undefined, "no frames (expected an extxyz file with MACE predictions)");
  if (refFile !== null) {
    index = 0;
    for await (const { frame, line } of readExtxyzWithLines(refFile)) ref.push(benchFrame(frame, index++, line, refOptions(refFile, o)));
    if (ref.length === 0) throw new InputError(refFile, undefined, "no frames (expected the test.extxyz of a dataset)");
  }
  return { pred, ref };
}

/**
 * The dataset identity from summary.json next to the reference file (a dataset directory), with the fingerprint
 * taken from split.json when summary.json lacks it; null when neither file is there.
 */
export async function readDatasetSummary(refFile: string): Promise<(DatasetSummaryInfo & { file: string }) | null> {
  const dir = path.dirname(refFile);
  const summaryFile = path.join(dir, "summary.json");
  const splitFile = path.join(dir, "split.json");
  let info: (DatasetSummaryInfo & { file: string }) | null = null;
  if (existsSync(summaryFile)) info = { file: summaryFile, ...datasetSummaryInfo(await readText(summaryFile, "a dataset summary.json"), summaryFile) };
  if ((info === null || info.test_membership === null || info.test_content === null) && existsSync(splitFile)) {
    const split = datasetSummaryInfo(await readText(splitFile, "a dataset split.json"), splitFile);
    info = info
      ? { ...info, test_membership: info.test_membership ?? split.test_membership, test_content: info.test_content ?? split.test_content }
      : { file: splitFile, ...split };
  }
  return info;
}

/** A previous bench directory (or its metrics.json). */
export async function readPreviousBench(dirOrFile: string): Promise<PreviousBench> {
  let file = dirOrFile;
  try {
    if ((await stat(dirOrFile)).isDirectory()) file = path.join(dirOrFile, "metrics.json");
  } catch (err) {
    throw fileError(dirOrFile, err, "a previous bench directory");
  }
  return parsePreviousMetrics(await readText(file, "the metrics.json of a bench run"), file);
}

async function readText(file: string, expected: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw fileError(file, err, expected);
  }
}

const RESULTS_RE = /_train\.txt$/;
const LOG_RE = /\.log$/;
const MAX_DEPTH = 4;

/**
 * Training files under a directory: results/*_train.txt and *.log (a *_debug.log only when its plain log is missing),
 * not run.sh's own logs of a stage (MACE's log repeats in its stdout.log).
 */
async function findTrainingFiles(dir: string, depth = 0): Promise<string[]> {
  const entries = await folderEntries(dir);
  const names = new Set(entries.map((e) => e.name));
  const found: string[] = [];
  for (const e of entries) {
    if (e.kind === "dir" && depth < MAX_DEPTH) found.push(...(await findTrainingFiles(e.path, depth + 1)));
    else if (e.kind === "file" && RESULTS_RE.test(e.name)) found.push(e.path);
    else if (e.kind === "file" && LOG_RE.test(e.name) && !RUN_SCRIPT_LOGS.includes(e.name)) {
      const plain = e.name.replace(/_debug\.log$/, ".log");
      if (plain === e.name || !names.has(plain)) found.push(e.path);
    }
  }
  return found;
}

function runTag(file: string): string {
  return path.basename(file).replace(/_train\.txt$/, "").replace(/_debug\.log$/, "").replace(/\.(log|txt)$/, "");
}

/**
 * Training runs from files and directories: each file is a results file when its first non-blank character is `{`,
 * else a log; files are grouped into runs by tag (`<tag>_train.txt`, `<tag>.log`).
 */
export async function readTrainingRuns(inputs: readonly string[]): Promise<TrainingRunInput[]> {
  const files: string[] = [];
  for (const input of inputs) {
    let isDir: boolean;
    try {
      isDir = (await stat(input)).isDirectory();
    } catch (err) {
      throw fileError(input, err, "a MACE log, results file or directory");
    }
    if (!isDir) {
      files.push(input);
      continue;
    }
    const found = await findTrainingFiles(input);
    if (found.length === 0) throw new InputError(input, undefined, "no MACE training outputs here (expected logs/<tag>.log or results/<tag>_train.txt)");
    files.push(...found);
  }
  const runs = new Map<string, TrainingRunInput>();
  for (const file of [...new Set(files)]) {
    const text = await readText(file, "a MACE log or results file");
    const tag = runTag(file);
    let run = runs.get(tag);
    if (!run) runs.set(tag, (run = { tag, results: null, log: null }));
    if (text.trimStart().startsWith("{")) {
      if (run.results) throw new InputError(file, undefined, `a second results file for run ${tag} (first: ${run.results.file})`);
      run.results = parseMaceResults(text, file);
    } else {
      if (run.log) throw new InputError(file, undefined, `a second log for run ${tag} (first: ${run.log.file})`);
      run.log = parseMaceLog(text, file);
    }
  }
  return [...runs.values()].sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

/**
 * Writes the outputs into `dir`, which must be new or empty: a round's benchmark is never rewritten. The files go
 * to a temporary sibling directory first, which is then renamed, so `dir` is complete or absent.
 */
export async function writeBenchDir(dir: string, files: ReadonlyArray<[string, string]>): Promise<void> {
  if (existsSync(dir)) {
    if ((await readdir(dir)).length > 0) throw new InputError(dir, undefined, "exists and is not empty: a benchmark is never written over an earlier one; choose a new -o directory");
    await rm(dir, { recursive: true });
  }
  const tmp = `${dir.replace(/\/+$/, "")}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    for (const [name, content] of files) await writeFile(path.join(tmp, name), content);
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
