/**
 * `relabel dataset build`: streams VASP run directories through the label contract and the quality gates into
 * train/valid/test extxyz files, with split.json and summary.json beside them.
 *
 * Frames are never held in memory: each run's kept frames go to a per-run file inside a temporary directory,
 * and the split files are those per-run files joined in sorted run-id order. Runs are read with the runs of
 * the previous dataset first, so a structure duplicated by a new run is dropped from the new run and the old
 * (possibly held-out) frames stay as they were. The temporary directory becomes OUT by one rename, and only
 * when no gate reported an error; OUT is never left half-written and never overwritten.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { once } from "node:events";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { compareSettings, normaliseSettings, type RunSettings } from "../core/dataset/settings.js";
import { parseIncar } from "../core/vasp/incar.js";
import { assignSplits, SPLITS, testMembershipFingerprint, type SplitFractions, type SplitName } from "../core/dataset/split.js";
import { parsePreviousSplit, parsePreviousSummary } from "../core/dataset/previous.js";
import { stableJson } from "../core/json.js";
import {
  changeWarnings,
  describeChanges,
  judgeGates,
  splitFileName,
  SUMMARY_FORMAT,
  type AssignedRun,
  type DatasetOptionsRecord,
  type DatasetSummary,
  type Fingerprint,
  type PreviousState,
  type ReadingReport,
  type SplitFile,
} from "../core/dataset/summary.js";
import { DatasetTally } from "../core/dataset/tally.js";
import { InputError, UsageError } from "../core/errors.js";
import { candidateId } from "../core/select/candidate-id.js";
import { labelFrame, type EnergyPolicy } from "../core/vasp/labels.js";
import type { VaspStep } from "../core/vasp/types.js";
import type { Frame } from "../core/structure.js";
import { vaspVersionFromHead } from "../core/vasp/version.js";
import { ExtxyzFileWriter } from "./extxyz.js";
import { readHead, readSmallText } from "./open.js";
import { besideCalculation, firstRunFile, runCalculations } from "./run-files.js";
import { discoverRuns, readRun, type RunReport } from "./rundir.js";

export interface DatasetBuildOptions {
  /** Folders holding run directories (at any depth); a run's id is its path relative to the root it was found under. */
  runRoots: string[];
  /** A dataset directory written by an earlier build, or null. */
  previous: string | null;
  /** The dataset directory to create; it must not exist. */
  out: string;
  energy: EnergyPolicy;
  frames: "all" | "final";
  requireConverged: boolean;
  head: string;
  configType: string;
  fractions: SplitFractions;
  seed: number;
  maxForce: number;
  energyZ: number;
  allowMixedSettings: boolean;
  allowEmptySplit: boolean;
  /** With a previous dataset: let new runs enter test by their draw (by default the test set is frozen). */
  growTest: boolean;
  onProgress?: (runsDone: number, runsTotal: number, framesKept: number) => void;
}

export interface DatasetBuildResult {
  /** False when a gate reported an error: nothing was written. */
  written: boolean;
  errors: string[];
  summary: DatasetSummary;
  /**
   * What readers found that a user expects (a killed run's cut last step, machine-learned steps left out, a
   * fallback to OUTCAR, an INCAR at odds with the run), per run, all of them; summary.json keeps the first 100.
   */
  notes: Array<{ run: string; note: string }>;
  /**
   * Input problems, each also in summary.warnings: runs skipped as unreadable (a run killed before its first
   * complete step is skipped too, but is no problem: convert reads it as empty) and steps the readers left out.
   */
  problems: { runs: number; steps: number };
}

interface RunEntry {
  id: string;
  dir: string;
}

const MAX_NOTES = 100;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every run under every root, sorted by id; two runs with one id (from two roots) are an InputError naming both. */
export async function discoverDatasetRuns(roots: readonly string[]): Promise<RunEntry[]> {
  const byId = new Map<string, string>();
  for (const root of roots) {
    let info;
    try {
      info = await stat(root);
    } catch {
      throw new InputError(root, undefined, "no such directory (--runs takes folders holding VASP run directories)");
    }
    if (!info.isDirectory()) throw new InputError(root, undefined, "not a directory (--runs takes folders holding VASP run directories)");
    const dirs = await discoverRuns(root);
    if (dirs.length === 0) throw new InputError(root, undefined, "no VASP run directory (vasprun.xml or OUTCAR) found below it");
    for (const dir of dirs) {
      const rel = path.relative(root, dir).split(path.sep).join("/");
      const id = rel === "" ? path.basename(path.resolve(root)) : rel;
      const other = byId.get(id);
      if (other !== undefined) throw new InputError(dir, undefined, `run id "${id}" is also the id of ${other}; runs under different --runs roots need different relative paths`);
      byId.set(id, dir);
    }
  }
  return [...byId].map(([id, dir]) => ({ id, dir })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

interface Previous {
  state: PreviousState;
  seed: number | null;
  fractions: SplitFractions | null;
}

async function readPrevious(dir: string): Promise<Previous> {
  const splitPath = path.join(dir, "split.json");
  let splitText: string;
  try {
    splitText = await readFile(splitPath, "utf8");
  } catch {
    throw new InputError(splitPath, undefined, "not found; --previous takes a dataset directory written by relabel dataset build");
  }
  const split = parsePreviousSplit(splitText, splitPath);
  const summaryPath = path.join(dir, "summary.json");
  const summary = existsSync(summaryPath) ? parsePreviousSummary(await readFile(summaryPath, "utf8"), summaryPath) : null;
  return {
    state: { path: dir, runs: split.runs, fingerprint: split.fingerprint, elements: summary?.elements ?? null, energy: summary?.energy ?? null },
    seed: split.seed,
    fractions: split.fractions,
  };
}

/** Copies files into one, in order, and returns the sha256 of the bytes written. */
async function joinFiles(parts: readonly string[], target: string): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(target);
  await once(out, "open");
  try {
    for (const part of parts) {
      for await (const chunk of createReadStream(part)) {
        hash.update(chunk as Buffer);
        if (!out.write(chunk)) await once(out, "drain");
      }
    }
  } finally {
    out.end();
    await once(out, "finish");
  }
  return hash.digest("hex");
}

interface RunOutcome {
  /** Why the run is skipped as a whole; null when it is used. */
  skipped: string | null;
  /** The run is skipped for bad input, not because it was killed before its first complete step. */
  unreadable: boolean;
  settings: RunSettings | null;
  kept: number;
  /** Findings a user expects (see DatasetBuildResult.notes). */
  notes: string[];
  /** Steps the readers left out (corrupt numbers, malformed blocks), one line each naming the file and the step. */
  stepsLeftOut: string[];
}

/**
 * Reads one run, judges its frames and writes the kept ones to `chunk`. Returns why the run is skipped as a whole
 * (null when it is used), its DFT settings, how many frames it kept and what the readers reported.
 */
async function readOneRun(run: RunEntry, split: SplitName, chunk: string, tally: DatasetTally, opts: DatasetBuildOptions, reading: ReadingReport): Promise<RunOutcome> {
  let version: string | null = null;
  let writer: ExtxyzFileWriter | null = null;
  let stepsRead = 0;
  let symbols: string[] = [];
  tally.beginRun(run.id, split);
  // A job of several calculations (custodian's relax1, relax2) restarts each from the last one's final structure:
  // when the next step repeats the previous one's structure, the later calculation's labels (computed with the
  // settings and, for a cell relaxation, the plane-wave basis of that structure) replace the earlier ones.
  const laterWins = opts.frames === "all" && runCalculations(run.dir).length > 1;
  let pending: { frame: Frame; id: string; step: VaspStep } | null = null;

  const label = (step: VaspStep): { frame: Frame; id: string; step: VaspStep } => {
    const frame = labelFrame(step, { source: run.id, vaspVersion: version, energy: opts.energy });
    const id = candidateId(frame);
    frame.info.set("config_type", { kind: "string", value: opts.configType });
    frame.info.set("head", { kind: "string", value: opts.head });
    frame.info.set("candidate_id", { kind: "string", value: id });
    return { frame, id, step };
  };
  const keep = async ({ frame, id, step }: { frame: Frame; id: string; step: VaspStep }): Promise<void> => {
    const dropped = tally.frame(frame, step.index, id, { converged: step.scfConverged, steps: step.scfSteps, nelm: step.nelm });
    if (dropped) return;
    writer ??= await ExtxyzFileWriter.open(chunk);
    await writer.write(frame);
  };
  const judge = async (step: VaspStep): Promise<void> => {
    const next = label(step);
    if (pending) {
      const earlier = pending;
      pending = null;
      const replaced =
        earlier.id === next.id && tally.passesLabelGates(next.frame, { converged: step.scfConverged }) && tally.passesLabelGates(earlier.frame, { converged: earlier.step.scfConverged });
      if (replaced) tally.supersede(earlier.step.index, earlier.id, step.index);
      else await keep(earlier);
    }
    if (laterWins) pending = next;
    else await keep(next);
  };

  let report: RunReport;
  try {
    const versionFile = firstRunFile(run.dir);
    if (versionFile) version = vaspVersionFromHead(await readHead(versionFile));
    const gen = readRun(run.dir);
    let final: VaspStep | null = null;
    for (;;) {
      const next = await gen.next();
      if (next.done) {
        report = next.value;
        break;
      }
      stepsRead++;
      if (symbols.length === 0) symbols = next.value.symbols;
      if (opts.frames === "final") final = next.value;
      else await judge(next.value);
    }
    if (final) await judge(final);
    if (pending) await keep(pending);
  } catch (err) {
    report = { dir: run.dir, primary: null, summary: null, notes: [], disagreements: [], skipped: [], error: message(err) };
  } finally {
    await (writer as ExtxyzFileWriter | null)?.close();
  }

  const skipped =
    report.error ??
    (report.disagreements.length
      ? `vasprun.xml/OUTCAR disagree: ${report.disagreements[0]}${report.disagreements.length > 1 ? ` (and ${report.disagreements.length - 1} more)` : ""}`
      : stepsRead === 0
        ? `no complete DFT step${report.summary?.truncated ? ` (cut at ${report.summary.truncated})` : ""}${report.notes.length ? ` (${report.notes.join("; ")})` : ""}`
        : null);
  if (skipped) {
    tally.discardRun();
    await rm(chunk, { force: true });
    const killed = report.error === null && report.disagreements.length === 0 && !!report.summary?.truncated && report.summary.skipped.length === 0;
    return { skipped, unreadable: !killed, settings: null, kept: 0, notes: [], stepsLeftOut: [] };
  }

  const totals = tally.commitRun();
  reading.steps_read += stepsRead;
  if (opts.frames === "final") reading.steps_not_final += stepsRead - 1;
  const summary = report.summary!;
  reading.steps_left_out_by_reader += summary.skipped.length;
  reading.ml_steps_left_out += summary.mlStepsSkipped;
  const truncated = summary.truncated ? [`run stopped early: cut at ${summary.truncated}; kept ${summary.stepsRead} complete steps`] : [];
  const leftOut = summary.skipped.map((s) => `${s.block === null ? "" : `block ${s.block}: `}${s.reason}`);
  const ml = summary.mlStepsSkipped ? [`${summary.mlStepsSkipped} machine-learned force-field steps left out (not DFT)`] : [];
  for (const note of [...report.notes, ...truncated, ...leftOut, ...ml]) if (reading.notes.length < MAX_NOTES) reading.notes.push({ run: run.id, note });
  // A folder of several calculations names the calculation's file in each reason; one calculation names none.
  const where = report.files && report.files.length > 1 ? run.dir : summary.file;

  // The INCAR of the job's last calculation: its settings are the ones the summary holds.
  const incarPath = besideCalculation(run.dir, "INCAR", runCalculations(run.dir).at(-1)?.suffix ?? "");
  const incar = incarPath ? parseIncar(await readSmallText(incarPath, "an INCAR")) : null;
  const { settings, conflicts } = normaliseSettings(summary.parameters, incar, summary.symbols.length ? summary.symbols : symbols, summary.potentials);
  for (const note of conflicts) if (reading.notes.length < MAX_NOTES) reading.notes.push({ run: run.id, note });
  return {
    skipped: null,
    unreadable: false,
    settings,
    kept: totals.frames,
    notes: [...report.notes, ...truncated, ...ml, ...conflicts],
    stepsLeftOut: leftOut.map((l) => `${where}: ${l}`),
  };
}

/**
 * Builds the dataset; throws UsageError for an existing OUT and InputError for unusable arguments (missing roots,
 * clashing run ids, bad --previous).
 */
export async function buildDataset(opts: DatasetBuildOptions): Promise<DatasetBuildResult> {
  const out = path.resolve(opts.out);
  if (existsSync(out)) throw new UsageError(`${opts.out} already exists: a dataset directory is written once; choose a new -o`);
  const runs = await discoverDatasetRuns(opts.runRoots);
  const previous = opts.previous ? await readPrevious(opts.previous) : null;
  const assignments = assignSplits(
    runs.map((r) => r.id),
    previous?.state.runs ?? null,
    opts.seed,
    opts.fractions,
    !previous || opts.growTest,
  );

  const options: DatasetOptionsRecord = {
    runs: opts.runRoots,
    previous: opts.previous,
    energy: opts.energy,
    frames: opts.frames,
    require_converged: opts.requireConverged,
    head: opts.head,
    config_type: opts.configType,
    fractions: opts.fractions,
    seed: opts.seed,
    max_force: opts.maxForce,
    energy_z: opts.energyZ,
    allow_mixed_settings: opts.allowMixedSettings,
    allow_empty_split: opts.allowEmptySplit,
    grow_test: opts.growTest,
  };
  const reading: ReadingReport = {
    runs_found: runs.length,
    runs_used: 0,
    runs_skipped: [],
    steps_read: 0,
    steps_not_final: 0,
    steps_left_out_by_reader: 0,
    ml_steps_left_out: 0,
    notes: [],
  };

  const tmp = `${out}.partial-${process.pid}`;
  const chunks = path.join(tmp, ".runs");
  await mkdir(chunks, { recursive: true });
  try {
    const tally = new DatasetTally({ maxForce: opts.maxForce, energyZ: opts.energyZ, requireConverged: opts.requireConverged });
    // Previous runs first: they keep their frames when a new run repeats a structure.
    const order = runs.map((run, index) => ({ run, index })).sort((a, b) => Number(!previous?.state.runs.has(a.run.id)) - Number(!previous?.state.runs.has(b.run.id)) || a.index - b.index);
    const used = new Map<string, { chunk: string; kept: number }>();
    const settingsByRun: Array<{ id: string; settings: RunSettings }> = [];
    const notes: DatasetBuildResult["notes"] = [];
    let unreadableRuns = 0;
    const stepWarnings: string[] = [];
    let done = 0;
    for (const { run, index } of order) {
      const chunk = path.join(chunks, `${index}.extxyz`);
      const result = await readOneRun(run, assignments.get(run.id)!.split, chunk, tally, opts, reading);
      for (const note of result.notes) notes.push({ run: run.id, note });
      for (const line of result.stepsLeftOut) stepWarnings.push(`run ${run.id}: step left out: ${line}`);
      if (result.unreadable) unreadableRuns++;
      if (result.skipped) reading.runs_skipped.push({ run: run.id, reason: result.skipped });
      else {
        used.set(run.id, { chunk, kept: result.kept });
        if (result.kept > 0) settingsByRun.push({ id: run.id, settings: result.settings! });
      }
      opts.onProgress?.(++done, runs.length, tally.frames);
    }
    reading.runs_used = used.size;
    reading.runs_skipped.sort((a, b) => (a.run < b.run ? -1 : 1));
    settingsByRun.sort((a, b) => (a.id < b.id ? -1 : 1));

    // split.json lists every run read now plus previous runs without frames this time, which keep their split.
    const splitRuns: Record<string, SplitName> = {};
    for (const id of used.keys()) splitRuns[id] = assignments.get(id)!.split;
    for (const [id, split] of previous?.state.runs ?? []) splitRuns[id] ??= split;

    const assigned: AssignedRun[] = runs.filter((r) => used.has(r.id)).map((r) => ({ id: r.id, ...assignments.get(r.id)!, frames: used.get(r.id)!.kept }));
    const verdict = judgeGates({ tally, options, settings: compareSettings(settingsByRun), runs: assigned, previousElements: previous?.state.elements ?? null });
    const warnings = [...reading.runs_skipped.map((s) => `run ${s.run} skipped: ${s.reason}`), ...stepWarnings, ...verdict.warnings];
    const problems = { runs: unreadableRuns, steps: reading.steps_left_out_by_reader };

    // Membership is of the runs whose frames are in test.extxyz: a previous test run missing now changes it.
    const testRuns = new Set(assigned.filter((r) => r.split === "test" && r.frames > 0).map((r) => r.id));
    const fingerprint: Fingerprint = { test_membership: testMembershipFingerprint(Object.fromEntries([...testRuns].map((id) => [id, "test" as const]))), test_content: "" };
    const summary: DatasetSummary = {
      format: SUMMARY_FORMAT,
      options,
      files: [],
      sha256: {},
      splits: tally.splits,
      elements: tally.elementList(),
      per_element: Object.fromEntries([...tally.elements].sort(([a], [b]) => (a < b ? -1 : 1))),
      labels: {
        energy_key: "REF_energy",
        energy: opts.energy,
        frames: tally.frames,
        stress_frames: tally.stressFrames,
        scf_unconverged_frames: tally.unconvergedKept,
        head: opts.head,
        config_type: opts.configType,
      },
      reading,
      gates: verdict.gates,
      fingerprint,
      changes: null,
      warnings,
    };
    if (verdict.errors.length) {
      await rm(tmp, { recursive: true, force: true });
      return { written: false, errors: verdict.errors, summary, notes, problems };
    }

    for (const split of SPLITS) {
      if (tally.splits[split].frames === 0) continue;
      const parts = runs.filter((r) => used.get(r.id)?.kept && assignments.get(r.id)!.split === split).map((r) => used.get(r.id)!.chunk);
      summary.sha256[splitFileName(split)] = await joinFiles(parts, path.join(tmp, splitFileName(split)));
      summary.files.push(splitFileName(split));
    }
    await rm(chunks, { recursive: true, force: true });
    fingerprint.test_content = summary.sha256[splitFileName("test")] ?? createHash("sha256").digest("hex");

    if (previous) {
      summary.changes = describeChanges(previous.state, splitRuns, new Set(used.keys()), testRuns, fingerprint, summary.elements, opts.energy);
      summary.warnings.push(...changeWarnings(summary.changes, options, previous));
    }
    const splitFile: SplitFile = { runs: splitRuns, fingerprint, seed: opts.seed, fractions: opts.fractions };
    await writeFile(path.join(tmp, "split.json"), stableJson(splitFile));
    await writeFile(path.join(tmp, "summary.json"), stableJson(summary));
    await rename(tmp, out);
    return { written: true, errors: [], summary, notes, problems };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
