import { stat } from "node:fs/promises";
import path from "node:path";
import { counted } from "../core/counted.js";
import { InputError } from "../core/errors.js";
import { foreignFormatDetail } from "../core/formats/foreign.js";
import { isAseTrajectory } from "../core/formats/format-heads.js";
import type { Frame } from "../core/structure.js";
import { labelFrame, type EnergyPolicy } from "../core/vasp/labels.js";
import type { SkippedStep, VaspStep, VaspSummary } from "../core/vasp/types.js";
import { nonFiniteGeometry } from "../core/formats/finite-geometry.js";
import { refLabelsFromCalculator } from "../core/ref-labels.js";
import { readExtxyzWithLines } from "./extxyz.js";
import { folderEntries, VisitedFolders } from "./folder-entries.js";
import { readHead } from "./open.js";
import { readOutcar } from "./outcar.js";
import { EXTXYZ_FILE, firstRunFile, isRunDir, STRUCTURE_FILE, XDATCAR_FILE } from "./run-files.js";
import { readRun, type RunReport } from "./rundir.js";
import { vaspVersionFromHead } from "../core/vasp/version.js";
import { readVasprun } from "./vasprun.js";

/** What an input turned out to be; "missing" and "unrecognised" inputs yield no frames, only a problem. */
export type InputKind = "extxyz" | "vasprun" | "outcar" | "rundir" | "missing" | "unrecognised";

export interface ReadOptions {
  energy: EnergyPolicy;
  frames: "all" | "final";
  /** A file that folders given as inputs may hold but that is not to be read (convert's output), and whom to tell. */
  exclude?: { file: string; onExcluded(file: string): void };
}

/** One input unit (a file or a run directory) after reading: what came out and what did not. */
export interface InputReport {
  path: string;
  kind: InputKind;
  /** The file frames came from (a run directory's vasprun.xml or OUTCAR). */
  primary: string | null;
  frames: number;
  skipped: SkippedStep[];
  /** Findings that do not lose data: truncation, fallbacks, unconverged steps. */
  notes: string[];
  /** Problems: an unreadable file, a vasprun/OUTCAR disagreement. */
  problems: string[];
  /**
   * Why an input that raised no problem gave no frame (a run stopped before its first ionic step, an empty file),
   * with the notes that explain it; null when it gave frames or a problem says why.
   */
  noFrame: string | null;
}

export type InputEvent = { type: "frame"; frame: Frame; source: string; index: number } | { type: "report"; report: InputReport };

function newReport(p: string, kind: InputKind, primary: string | null, problems: string[] = []): InputReport {
  return { path: p, kind, primary, frames: 0, skipped: [], notes: [], problems, noFrame: null };
}

/** Guesses the kind of a file by its name, then by its first bytes. */
export async function sniffKind(file: string): Promise<InputKind | null> {
  const base = path.basename(file).replace(/\.(gz|xz|bz2)$/i, "");
  if (/^vasprun.*\.xml$/i.test(base)) return "vasprun";
  if (/^OUTCAR/i.test(base)) return "outcar";
  if (/\.(ext)?xyz$/i.test(base)) return "extxyz";
  const head = await readHead(file);
  if (/^\s*<\?xml/.test(head) && head.includes("<modeling")) return "vasprun";
  if (/^\s*vasp\.\d/.test(head)) return "outcar";
  if (/^\s*\d+\s*\r?\n/.test(head)) return "extxyz";
  return null;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}


/** A run's id: its path relative to the input root ("." becomes the root's own name). */
function sourceName(root: string, dir: string): string {
  const rel = path.relative(root, dir).split(path.sep).join("/");
  return rel === "" ? path.basename(path.resolve(root)) : rel;
}

/**
 * Gives runs in different folders different ids: where ids collide (two inputs `p1/run` and `p2/run`, or one run
 * id under two roots), each takes one more folder of its path, until they differ.
 */
function distinctSources(units: { source: string; dir: string }[]): void {
  for (;;) {
    const byName = new Map<string, { source: string; dir: string }[]>();
    for (const u of units) byName.set(u.source, [...(byName.get(u.source) ?? []), u]);
    let changed = false;
    for (const group of byName.values()) {
      if (new Set(group.map((u) => u.dir)).size < 2) continue;
      for (const u of group) {
        const parts = u.dir.split(path.sep).filter((part) => part !== "");
        const longer = parts.slice(-(u.source.split("/").length + 1)).join("/");
        if (longer !== u.source) {
          u.source = longer;
          changed = true;
        }
      }
    }
    if (!changed) return;
  }
}

async function* labelSteps(
  steps: AsyncGenerator<VaspStep, VaspSummary | RunReport, void>,
  source: string,
  opts: ReadOptions,
  version: string | null,
): AsyncGenerator<InputEvent, VaspSummary | RunReport, void> {
  // With --frames final only the last step is kept, so hold one step back.
  let held: VaspStep | null = null;
  let count = 0;
  const emit = (step: VaspStep): InputEvent => ({ type: "frame", frame: labelFrame(step, { source, vaspVersion: version, energy: opts.energy }), source, index: count++ });
  for (;;) {
    const next = await steps.next();
    if (next.done) {
      if (held) yield emit(held);
      return next.value;
    }
    if (opts.frames === "final") held = next.value;
    else yield emit(next.value);
  }
}

function summaryNotes(summary: VaspSummary | null): string[] {
  if (!summary) return [];
  const notes: string[] = [];
  if (summary.truncated) notes.push(`run stopped early: cut at ${summary.truncated}; kept ${summary.stepsRead} complete steps`);
  if (summary.mlStepsSkipped) notes.push(`${summary.mlStepsSkipped} machine-learned force-field steps left out (not DFT)`);
  return notes;
}

/** Why a VASP input without a problem gave no frame, in one line that also carries its other notes. */
function noStepReason(summary: VaspSummary | null, skipped: SkippedStep[], otherNotes: string[]): string {
  const why = skipped.length
    ? `no frame: every DFT step was left out (${skipped.length} skipped, below)`
    : summary?.mlStepsSkipped
      ? `no DFT step: its ${summary.mlStepsSkipped} steps are machine-learned force-field steps (not DFT)`
      : summary?.truncated
        ? "no complete DFT step: the run stopped before its first ionic step finished"
        : "no DFT step";
  const cut = summary?.truncated ? ` (cut at ${summary.truncated})` : "";
  return `${why}${cut}${otherNotes.length ? `; ${otherNotes.join("; ")}` : ""}`;
}

async function* readVaspFile(file: string, kind: "vasprun" | "outcar", source: string, opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  const report = newReport(file, kind, file);
  let summary: VaspSummary | null = null;
  try {
    const version = vaspVersionFromHead(await readHead(file));
    const steps = kind === "vasprun" ? readVasprun(file) : readOutcar(file);
    const gen = labelSteps(steps, source, opts, version);
    for (;;) {
      const next = await gen.next();
      if (next.done) {
        summary = next.value as VaspSummary;
        break;
      }
      report.frames++;
      yield next.value;
    }
  } catch (err) {
    report.problems.push(errorText(err));
  }
  if (summary) {
    report.skipped = summary.skipped;
    report.notes.push(...summaryNotes(summary));
    if (report.frames === 0 && report.problems.length === 0) report.noFrame = noStepReason(summary, summary.skipped, []);
  }
  yield { type: "report", report };
}

async function* readRunDir(dir: string, source: string, opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  const report = newReport(dir, "rundir", null);
  let run: RunReport | null = null;
  const runGen = readRun(dir);
  const versionFile = firstRunFile(dir);
  const version = versionFile ? vaspVersionFromHead(await readHead(versionFile)) : null;
  const gen = labelSteps(runGen, source, opts, version);
  for (;;) {
    const next = await gen.next();
    if (next.done) {
      run = next.value as RunReport;
      break;
    }
    report.frames++;
    yield next.value;
  }
  report.primary = run.primary;
  const runNotes = [...run.notes];
  if (run.files && run.files.length > 1) runNotes.unshift(`${run.files.length} calculations of one job, read in order: ${run.files.map((f) => path.basename(f)).join(", ")}`);
  report.skipped = run.skipped;
  report.notes.push(...runNotes, ...summaryNotes(run.summary));
  report.problems.push(...run.disagreements.map((d) => `vasprun.xml/OUTCAR disagree: ${d}`));
  if (run.error) report.problems.push(run.error);
  if (report.frames === 0 && report.problems.length === 0) report.noFrame = noStepReason(run.summary, run.skipped, runNotes);
  yield { type: "report", report };
}

/**
 * Every frame of an extxyz file, its calculator labels (energy, forces, stress) under the REF_* keys of VASP steps.
 * A frame whose positions or cell are not finite numbers is left out and reported with its line.
 */
async function* readExtxyzFile(file: string, opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  const report = newReport(file, "extxyz", file);
  let index = 0;
  let noEnergy = 0;
  let noForces = 0;
  let oneEnergy = 0;
  let virialKept = 0;
  try {
    for await (const { frame, line } of readExtxyzWithLines(file)) {
      const at = index++;
      const bad = nonFiniteGeometry(frame, line);
      if (bad) {
        report.skipped.push({ block: null, line: bad.line, reason: `frame ${at}: ${bad.detail}; frame left out` });
        continue;
      }
      const labelled = refLabelsFromCalculator(frame, opts.energy);
      if (!labelled.hasEnergy) noEnergy++;
      else if (!labelled.policyChose) oneEnergy++;
      if (!labelled.hasForces) noForces++;
      if (labelled.virialKept) virialKept++;
      report.frames++;
      yield { type: "frame", frame: labelled.frame, source: file, index: at };
    }
  } catch (err) {
    report.problems.push(errorText(err));
  }
  const n = report.frames;
  if (opts.frames === "final" && n > 0) report.notes.push(`--frames final applies to VASP runs: all ${counted(n, "frame")} of this file kept`);
  if (opts.energy === "sigma0" && oneEnergy > 0) {
    report.notes.push(`--energy sigma0 applies to frames with both energy and free_energy: ${oneEnergy} of ${n} carry one energy, written as REF_energy as it is`);
  }
  if (noEnergy > 0 || noForces > 0) {
    const missing = [noEnergy > 0 ? `no energy in ${noEnergy}` : "", noForces > 0 ? `no forces in ${noForces}` : ""].filter(Boolean).join(", ");
    report.notes.push(`${missing} of ${counted(n, "frame")} (looked for REF_energy, energy, free_energy; REF_forces, forces): written without those labels`);
  }
  if (virialKept > 0) report.notes.push(`virial of ${counted(virialKept, "frame")} kept as it is: without a cell volume it gives no REF_stress`);
  if (n === 0 && report.problems.length === 0) {
    report.noFrame = report.skipped.length ? `no frame: every frame was left out (${report.skipped.length} skipped, below)` : "no frame: the file holds none";
  }
  yield { type: "report", report };
}

/** The run directories and extxyz files at or below a folder, in sorted path order; below a run directory only runs. */
async function folderInputs(root: string, opts: ReadOptions): Promise<({ kind: "rundir"; dir: string } | { kind: "extxyz"; file: string })[]> {
  const found: ({ kind: "rundir"; dir: string } | { kind: "extxyz"; file: string })[] = [];
  const visited = new VisitedFolders();
  const excluded = opts.exclude ? path.resolve(opts.exclude.file) : null;
  async function walk(dir: string, insideRun: boolean): Promise<void> {
    if (!(await visited.first(dir))) return;
    const run = isRunDir(dir);
    if (run) found.push({ kind: "rundir", dir });
    for (const e of await folderEntries(dir)) {
      if (e.kind === "dir") await walk(e.path, insideRun || run);
      else if (!insideRun && !run && EXTXYZ_FILE.test(e.name)) {
        if (path.resolve(e.path) === excluded) opts.exclude!.onExcluded(e.path);
        else found.push({ kind: "extxyz", file: e.path });
      }
    }
  }
  await walk(root, false);
  return found;
}

type Unit =
  | { kind: "rundir"; path: string; source: string; dir: string }
  | { kind: "vasprun" | "outcar"; path: string; source: string; dir: string }
  | { kind: "extxyz"; path: string }
  | { kind: "other"; path: string }
  | { kind: "failed"; report: InputReport };

/** What one input stands for: itself, or for a folder, the run directories and extxyz files in it. */
async function unitsOf(input: string, opts: ReadOptions): Promise<Unit[]> {
  let info;
  try {
    info = await stat(input);
  } catch {
    return [{ kind: "failed", report: newReport(input, "missing", null, [`${input}: no such file or directory`]) }];
  }
  if (info.isDirectory()) {
    const found = await folderInputs(input, opts);
    if (found.length === 0) {
      return [{ kind: "failed", report: newReport(input, "rundir", null, [`${input}: no VASP run directory (vasprun.xml or OUTCAR) or extxyz file found below it`]) }];
    }
    return found.map((u) => (u.kind === "extxyz" ? { kind: "extxyz", path: u.file } : { kind: "rundir", path: u.dir, source: sourceName(input, u.dir), dir: path.resolve(u.dir) }));
  }
  const kind = await sniffKind(input);
  if (kind === "extxyz") return [{ kind, path: input }];
  if (kind === "vasprun" || kind === "outcar") {
    const dir = path.dirname(path.resolve(input));
    return [{ kind, path: input, source: path.basename(dir), dir }];
  }
  return [{ kind: "other", path: input }];
}

/** The report for a file that is none of the inputs: what it is, when that can be told, and what to do with it. */
async function unrecognised(input: string): Promise<InputReport> {
  // Structures without labels (POSCAR, XDATCAR) are candidates for relabel rank, not labelled frames.
  const name = path.basename(input);
  const unlabelled = STRUCTURE_FILE.test(name) || XDATCAR_FILE.test(name);
  const expected = "extxyz, vasprun.xml, OUTCAR or a run directory";
  const head = await readHead(input, 512);
  const foreign = foreignFormatDetail(input, head, expected);
  const detail = unlabelled
    ? `holds structures without DFT labels: rank them as a candidate pool (relabel rank --pool); expected ${expected}`
    : foreign
      ? `${foreign}${isAseTrajectory(head) ? " (relabel rank --pool reads it as candidates)" : ""}`
      : `not a recognised input: expected ${expected}`;
  const err = new InputError(input, foreign ? undefined : 1, detail);
  return newReport(input, "unrecognised", null, [err.message]);
}

/**
 * Reads every input in order: extxyz files, vasprun.xml, OUTCAR, run directories, or folders holding run directories
 * and extxyz files. One bad input never stops the rest; each input ends with a report event. Runs are named by
 * their path relative to the input they were found in, made longer where two would share a name.
 */
export async function* readInputs(inputs: string[], opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  const units: Unit[] = [];
  for (const input of inputs) units.push(...(await unitsOf(input, opts)));
  distinctSources(units.filter((u): u is Extract<Unit, { source: string }> => "source" in u));
  for (const unit of units) {
    if (unit.kind === "failed") yield { type: "report", report: unit.report };
    else if (unit.kind === "rundir") yield* readRunDir(unit.path, unit.source, opts);
    else if (unit.kind === "vasprun" || unit.kind === "outcar") yield* readVaspFile(unit.path, unit.kind, unit.source, opts);
    else if (unit.kind === "extxyz") yield* readExtxyzFile(unit.path, opts);
    else yield { type: "report", report: await unrecognised(unit.path) };
  }
}
