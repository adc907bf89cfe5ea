import { stat } from "node:fs/promises";
import path from "node:path";
import { InputError } from "../core/errors.js";
import { isAseTrajectory } from "../core/formats/ase-trajectory.js";
import { foreignFormatDetail } from "../core/formats/foreign.js";
import type { Frame } from "../core/structure.js";
import { labelFrame, type EnergyPolicy } from "../core/vasp/labels.js";
import type { SkippedStep, VaspStep, VaspSummary } from "../core/vasp/types.js";
import { readExtxyz } from "./extxyz.js";
import { readHead } from "./open.js";
import { readOutcar } from "./outcar.js";
import { firstRunFile, STRUCTURE_FILE, XDATCAR_FILE } from "./run-files.js";
import { discoverRuns, readRun, type RunReport } from "./rundir.js";
import { vaspVersionFromHead } from "../core/vasp/version.js";
import { readVasprun } from "./vasprun.js";

/** What an input turned out to be; "missing" and "unrecognised" inputs yield no frames, only a problem. */
export type InputKind = "extxyz" | "vasprun" | "outcar" | "rundir" | "missing" | "unrecognised";

export interface ReadOptions {
  energy: EnergyPolicy;
  frames: "all" | "final";
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
}

export type InputEvent = { type: "frame"; frame: Frame; source: string; index: number } | { type: "report"; report: InputReport };

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

async function* readVaspFile(file: string, kind: "vasprun" | "outcar", opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  const report: InputReport = { path: file, kind, primary: file, frames: 0, skipped: [], notes: [], problems: [] };
  let summary: VaspSummary | null = null;
  try {
    const version = vaspVersionFromHead(await readHead(file));
    const steps = kind === "vasprun" ? readVasprun(file) : readOutcar(file);
    const source = sourceName(path.dirname(path.dirname(path.resolve(file))), path.dirname(path.resolve(file)));
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
  }
  yield { type: "report", report };
}

async function* readRunDir(root: string, dir: string, opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  const report: InputReport = { path: dir, kind: "rundir", primary: null, frames: 0, skipped: [], notes: [], problems: [] };
  let run: RunReport | null = null;
  const runGen = readRun(dir);
  const versionFile = firstRunFile(dir);
  const version = versionFile ? vaspVersionFromHead(await readHead(versionFile)) : null;
  const gen = labelSteps(runGen, sourceName(root, dir), opts, version);
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
  if (run.files && run.files.length > 1) report.notes.push(`${run.files.length} calculations of one job, read in order: ${run.files.map((f) => path.basename(f)).join(", ")}`);
  report.skipped = run.skipped;
  report.notes.push(...run.notes, ...summaryNotes(run.summary));
  report.problems.push(...run.disagreements.map((d) => `vasprun.xml/OUTCAR disagree: ${d}`));
  if (run.error) report.problems.push(run.error);
  yield { type: "report", report };
}

async function* readExtxyzFile(file: string): AsyncGenerator<InputEvent, void, void> {
  const report: InputReport = { path: file, kind: "extxyz", primary: file, frames: 0, skipped: [], notes: [], problems: [] };
  try {
    for await (const frame of readExtxyz(file)) {
      yield { type: "frame", frame, source: file, index: report.frames++ };
    }
  } catch (err) {
    report.problems.push(errorText(err));
  }
  yield { type: "report", report };
}

/**
 * Reads every input in order: extxyz files, vasprun.xml, OUTCAR, run directories or trees of them. One bad input
 * never stops the rest; each input ends with a report event.
 */
export async function* readInputs(inputs: string[], opts: ReadOptions): AsyncGenerator<InputEvent, void, void> {
  for (const input of inputs) {
    let info;
    try {
      info = await stat(input);
    } catch {
      yield { type: "report", report: { path: input, kind: "missing", primary: null, frames: 0, skipped: [], notes: [], problems: [`${input}: no such file or directory`] } };
      continue;
    }
    if (info.isDirectory()) {
      const runs = await discoverRuns(input);
      if (runs.length === 0) {
        yield { type: "report", report: { path: input, kind: "rundir", primary: null, frames: 0, skipped: [], notes: [], problems: [`${input}: no VASP run directory (vasprun.xml or OUTCAR) found below it`] } };
      }
      for (const dir of runs) yield* readRunDir(input, dir, opts);
      continue;
    }
    const kind = await sniffKind(input);
    if (kind === "extxyz") yield* readExtxyzFile(input);
    else if (kind === "vasprun" || kind === "outcar") yield* readVaspFile(input, kind, opts);
    else {
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
      yield { type: "report", report: { path: input, kind: "unrecognised", primary: null, frames: 0, skipped: [], notes: [], problems: [err.message] } };
    }
  }
}
