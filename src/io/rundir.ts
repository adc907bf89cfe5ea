import path from "node:path";
import { InputError } from "../core/errors.js";
import { compareStep, signatureOf, type StepSignature } from "../core/vasp/crosscheck.js";
import { ichargFromHead, parseIncar } from "../core/vasp/incar.js";
import { parsePoscar } from "../core/vasp/poscar.js";
import type { SkippedStep, VaspStep, VaspSummary } from "../core/vasp/types.js";
import { folderEntries, VisitedFolders } from "./folder-entries.js";
import { readOutcar } from "./outcar.js";
import { besideCalculation, isRunDir, runCalculations, type RunCalculation } from "./run-files.js";
import { readHead, readSmallText } from "./open.js";
import { readVasprun } from "./vasprun.js";

const STRUCTURE_NAMES = ["POSCAR", "CONTCAR"];
const NO_CALCULATION: RunCalculation = { suffix: "", vasprun: null, outcar: null };

/** Every run directory at or below root (a folder holding vasprun.xml or OUTCAR), in sorted path order. */
export async function discoverRuns(root: string): Promise<string[]> {
  const found: string[] = [];
  const visited = new VisitedFolders();
  async function walk(dir: string): Promise<void> {
    if (!(await visited.first(dir))) return;
    if (isRunDir(dir)) found.push(dir);
    for (const e of await folderEntries(dir)) if (e.kind === "dir") await walk(e.path);
  }
  await walk(root);
  return found;
}

export interface RunReport {
  dir: string;
  /** The file the steps came from (the first calculation's, for a folder of several). */
  primary: string | null;
  /** For a folder of several calculations (custodian's vasprun.xml.relax1.gz, ...): the file of each whose steps were read, in order. */
  files?: string[];
  summary: VaspSummary | null;
  /** Why the preferred file was not used, cross-check disagreements and other findings a user should read. */
  notes: string[];
  /** Per-step disagreements between vasprun.xml and OUTCAR. */
  disagreements: string[];
  skipped: SkippedStep[];
  /** Set when no file of the run could be read. */
  error: string | null;
}

/** Bytes of an output's start searched for ICHARG: OUTCAR echoes it after the POTCAR headers (190 KB in the corpus). */
const ICHARG_HEAD_BYTES = 1 << 20;

/**
 * "ICHARG = 11 in INCAR.bands" when the calculation kept its charge density fixed (ICHARG >= 10: a band structure
 * or DOS run on a converged density), else null. Its INCAR says so, else the start of its vasprun.xml or OUTCAR.
 */
async function nonSelfConsistent(dir: string, calculation: RunCalculation): Promise<string | null> {
  const incar = besideCalculation(dir, "INCAR", calculation.suffix);
  const fromIncar = incar === null ? undefined : parseIncar(await readSmallText(incar, "an INCAR").catch(() => "")).ICHARG;
  if (typeof fromIncar === "number") return fromIncar >= 10 ? `ICHARG = ${fromIncar} in ${path.basename(incar!)}` : null;
  const output = calculation.vasprun ?? calculation.outcar;
  if (output === null) return null;
  const icharg = ichargFromHead(await readHead(output, ICHARG_HEAD_BYTES).catch(() => ""));
  return icharg !== null && icharg >= 10 ? `ICHARG = ${icharg} in ${path.basename(output)}` : null;
}

/** Species from POSCAR/CONTCAR beside an OUTCAR (of its calculation), for OUTCARs whose header does not name them fully. */
async function speciesBeside(dir: string, suffix: string): Promise<string[] | undefined> {
  for (const name of STRUCTURE_NAMES) {
    const p = besideCalculation(dir, name, suffix);
    if (p === null) continue;
    try {
      const poscar = parsePoscar(await readSmallText(p, "a POSCAR"), { file: p });
      if (poscar.speciesSource === "species-line") return poscar.frame.symbols;
    } catch {
      // A VASP 4 POSCAR without a species line names no species; try the next file.
    }
  }
  return undefined;
}

function message(err: unknown): string {
  if (err instanceof InputError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

async function outcarSignatures(file: string, species: string[] | undefined): Promise<{ sigs: StepSignature[]; summary: VaspSummary }> {
  const sigs: StepSignature[] = [];
  const gen = readOutcar(file, { species });
  for (;;) {
    const next = await gen.next();
    if (next.done) return { sigs, summary: next.value };
    sigs.push(signatureOf(next.value));
  }
}

/**
 * Streams the DFT steps of one run directory. vasprun.xml is preferred; OUTCAR is the fallback and, when both
 * exist, a cross-check whose per-step disagreements are reported. A folder custodian left from a job of several
 * steps (vasprun.xml.relax1.gz, vasprun.xml.relax2.gz) is one run: its calculations' steps in order, numbered on.
 * Never throws for bad input: the report says what went wrong.
 */
export async function* readRun(dir: string): AsyncGenerator<VaspStep, RunReport, void> {
  const calculations = runCalculations(dir);
  if (calculations.length <= 1) return yield* readCalculation(dir, calculations[0] ?? NO_CALCULATION);
  const report: RunReport = { dir, primary: null, files: [], summary: null, notes: [], disagreements: [], skipped: [], error: null };
  const summaries: VaspSummary[] = [];
  let offset = 0;
  for (const calculation of calculations) {
    const gen = readCalculation(dir, calculation);
    let next = await gen.next();
    let end = offset;
    for (; !next.done; next = await gen.next()) {
      const step = { ...next.value, index: offset + next.value.index };
      end = Math.max(end, step.index + 1);
      yield step;
    }
    const part = next.value;
    const name = path.basename(part.primary ?? calculation.vasprun ?? calculation.outcar ?? calculation.suffix);
    report.notes.push(...part.notes.map((note) => `${name}: ${note}`));
    report.disagreements.push(...part.disagreements.map((d) => `${name}: ${d}`));
    if (part.error !== null && end > offset) {
      // Steps came before the error: as for a single calculation, the run is not to be trusted.
      report.error = `${name}: ${part.error}`;
      return report;
    }
    if (part.error !== null || end === offset) {
      const why = part.error ?? `no complete DFT step${part.summary?.truncated ? `, cut at ${part.summary.truncated}` : ""}`;
      report.notes.push(`${name}: left out (${why})`);
      continue;
    }
    report.primary ??= part.primary;
    report.files!.push(part.primary!);
    report.skipped.push(...part.skipped.map((s) => ({ ...s, reason: `${name}: ${s.reason}` })));
    summaries.push({ ...part.summary!, truncated: part.summary!.truncated && `${name} ${part.summary!.truncated}` });
    offset = end;
  }
  if (summaries.length === 0) {
    report.error = `no calculation has a complete DFT step (${report.notes.join("; ")})`;
    return report;
  }
  // The settings are the last calculation's (the job's final step); counts add up.
  const last = summaries[summaries.length - 1];
  report.summary = {
    ...last,
    stepsRead: summaries.reduce((n, s) => n + s.stepsRead, 0),
    skipped: report.skipped,
    mlStepsSkipped: summaries.reduce((n, s) => n + s.mlStepsSkipped, 0),
    truncated: summaries.map((s) => s.truncated).filter((t) => t !== null).join("; ") || null,
  };
  return report;
}

/** The steps of one calculation of a run directory: readRun for a folder of one calculation. */
async function* readCalculation(dir: string, calculation: RunCalculation): AsyncGenerator<VaspStep, RunReport, void> {
  const report: RunReport = { dir, primary: null, summary: null, notes: [], disagreements: [], skipped: [], error: null };
  const { vasprun, outcar } = calculation;
  const frozenDensity = await nonSelfConsistent(dir, calculation);
  if (frozenDensity) {
    report.error = `a non-self-consistent calculation (${frozenDensity}: the charge density is kept fixed, as for a band structure), so its energies and forces are no DFT labels`;
    return report;
  }
  let species = await speciesBeside(dir, calculation.suffix);

  let outcarCheck: { sigs: StepSignature[]; summary: VaspSummary } | null = null;
  let outcarError: string | null = null;
  if (outcar) {
    try {
      outcarCheck = await outcarSignatures(outcar, species);
    } catch (err) {
      outcarError = message(err);
    }
  }

  if (vasprun) {
    let yielded = 0;
    try {
      const gen = readVasprun(vasprun);
      for (;;) {
        const next = await gen.next();
        if (next.done) {
          report.summary = next.value;
          break;
        }
        const step = next.value;
        if (outcarCheck) {
          const problem = compareStep(step, outcarCheck.sigs[step.index]);
          if (problem) report.disagreements.push(problem);
        }
        yielded++;
        yield step;
      }
    } catch (err) {
      if (yielded > 0) {
        report.primary = vasprun;
        report.error = `vasprun.xml stopped after ${yielded} steps: ${message(err)}`;
        return report;
      }
      report.notes.push(`vasprun.xml unusable (${message(err)})`);
    }
    if (report.summary) {
      const usable = yielded > 0 || !outcarCheck || outcarCheck.sigs.length === 0;
      if (usable) {
        report.primary = vasprun;
        if (outcarCheck && outcarCheck.sigs.length > yielded && !report.summary.truncated)
          report.disagreements.push(`OUTCAR has ${outcarCheck.sigs.length} DFT steps, vasprun.xml ${yielded}`);
        if (outcarError) report.notes.push(`OUTCAR not cross-checked: ${outcarError}`);
        report.skipped = report.summary.skipped;
        return report;
      }
      report.notes.push(`vasprun.xml has no complete DFT step${report.summary.truncated ? ` (cut at ${report.summary.truncated})` : ""}; using OUTCAR`);
      species ??= report.summary.symbols.length ? report.summary.symbols : undefined;
      report.summary = null;
    }
  }

  if (!outcar || (outcarError && !species)) {
    report.error = outcarError ?? report.notes.pop() ?? `${dir}: no vasprun.xml or OUTCAR`;
    return report;
  }
  try {
    const gen = readOutcar(outcar, { species });
    for (;;) {
      const next = await gen.next();
      if (next.done) {
        report.summary = next.value;
        break;
      }
      yield next.value;
    }
    report.primary = outcar;
    report.skipped = report.summary.skipped;
  } catch (err) {
    report.error = message(err);
  }
  return report;
}
