/**
 * summary.json and split.json of a dataset build: their shapes, the gate verdicts that decide whether the build
 * may be written, and deterministic JSON text (sorted keys, no timestamps).
 */
import type { SettingsReport } from "./settings.js";
import type { SplitFractions, SplitName, RunAssignment } from "./split.js";
import { SPLITS } from "./split.js";
import { CONFLICT_ENERGY_TOLERANCE, CONFLICT_FORCE_TOLERANCE, type DatasetTally, type DropExamples, type ElementCounts, type EnergyOutlierResult, type RunConflicts, type SplitCounts } from "./tally.js";

export const SUMMARY_FORMAT = "relabel-dataset/1";

export interface DatasetOptionsRecord {
  /** The --runs roots as given. */
  runs: string[];
  previous: string | null;
  energy: "free" | "sigma0";
  frames: "all" | "final";
  require_converged: boolean;
  head: string;
  config_type: string;
  fractions: SplitFractions;
  seed: number;
  /** eV/A, per-atom force norm above which a frame is dropped. */
  max_force: number;
  /** Robust |z| of energy per atom above which a frame is reported. */
  energy_z: number;
  allow_mixed_settings: boolean;
  allow_empty_split: boolean;
  /** With a previous dataset: new runs may enter test (by default they go to train/valid only). */
  grow_test: boolean;
}

export interface ReadingReport {
  runs_found: number;
  /** Runs read without problems (some may have lost every frame to the gates). */
  runs_used: number;
  runs_skipped: Array<{ run: string; reason: string }>;
  /** DFT steps the readers gave (machine-learned force-field steps are never among them). */
  steps_read: number;
  /** Steps passed over by --frames final. */
  steps_not_final: number;
  /** Blocks the readers could not turn into a step (incomplete, malformed), listed in notes. */
  steps_left_out_by_reader: number;
  ml_steps_left_out: number;
  /** Truncation, fallbacks and left-out steps, per run (at most 100). */
  notes: Array<{ run: string; note: string }>;
}

export type GateStatus = "pass" | "dropped" | "flagged" | "warning" | "error" | "not-checked";

export interface Gates {
  scf_unconverged: { action: "drop" | "keep-flagged"; status: GateStatus; frames: number; examples: DropExamples["scf_unconverged"] };
  missing_labels: { action: "drop"; status: GateStatus; frames: number; examples: DropExamples["missing_labels"] };
  force_outliers: { action: "drop"; status: GateStatus; max_force: number; frames: number; examples: DropExamples["force_outliers"] };
  duplicates: { action: "drop"; status: GateStatus; frames: number; examples: DropExamples["duplicates"] };
  /** Dropped duplicates whose energy per atom or largest force differs from the kept frame's beyond the tolerances. */
  label_conflicts: { action: "warn"; status: GateStatus; energy_tolerance: number; force_tolerance: number; frames: number; runs: RunConflicts[] };
  energy_outliers: { action: "warn"; status: GateStatus; energy_z: number } & EnergyOutlierResult;
  new_elements: { action: "warn"; status: GateStatus; elements: string[] };
  mixed_settings: { action: "error" | "warn"; status: GateStatus; mixed: string[]; values: SettingsReport["values"] };
  empty_splits: { action: "error" | "warn"; status: GateStatus; empty: SplitName[] };
}

export interface Fingerprint {
  test_membership: string;
  test_content: string;
}

export interface Changes {
  previous: string;
  runs_added: string[];
  /** Runs of the previous split.json without frames this time (not found or skipped); they keep their split in split.json. */
  runs_missing: string[];
  /** Test runs of the previous split.json without test frames this time: the test set lost them. */
  test_runs_missing: string[];
  split_changed: Array<{ run: string; previous: SplitName; now: SplitName }>;
  test_membership_changed: boolean;
  test_content_changed: boolean;
  previous_fingerprint: Fingerprint;
  elements_added: string[];
  energy_changed: boolean;
}

export interface DatasetSummary {
  format: typeof SUMMARY_FORMAT;
  options: DatasetOptionsRecord;
  /** The split files written, e.g. ["train.extxyz", "valid.extxyz", "test.extxyz"]. */
  files: string[];
  sha256: Record<string, string>;
  splits: Record<SplitName, SplitCounts>;
  elements: string[];
  per_element: Record<string, Record<SplitName, ElementCounts>>;
  labels: {
    energy_key: "REF_energy";
    /** What REF_energy holds; REF_free_energy and REF_energy_sigma0 are always written beside it. */
    energy: "free" | "sigma0";
    frames: number;
    stress_frames: number;
    scf_unconverged_frames: number;
    head: string;
    config_type: string;
  };
  reading: ReadingReport;
  gates: Gates;
  fingerprint: Fingerprint;
  changes: Changes | null;
  warnings: string[];
}

export interface SplitFile {
  runs: Record<string, SplitName>;
  fingerprint: Fingerprint;
  seed: number;
  fractions: SplitFractions;
}

export const splitFileName = (split: SplitName): string => `${split}.extxyz`;

export interface AssignedRun extends RunAssignment {
  id: string;
  /** Frames the run contributes after the gates. */
  frames: number;
}

function fmt(x: number, digits = 3): string {
  return Number(x.toFixed(digits)).toString();
}

/**
 * Why a held-out split has no frame, with the draws that put runs elsewhere, so a user with three runs sees that
 * the hash, not a bug, left the split empty.
 */
export function emptySplitReason(split: SplitName, runs: readonly AssignedRun[], fractions: SplitFractions, seed: number, testClosed: boolean): string {
  const lo = split === "train" ? 0 : split === "valid" ? fractions.train : fractions.train + fractions.valid;
  const hi = split === "train" ? fractions.train : split === "valid" ? fractions.train + fractions.valid : 1;
  const assigned = runs.filter((r) => r.split === split);
  const used = runs.filter((r) => r.frames > 0);
  let why: string;
  if (assigned.length > 0) {
    why = `its ${assigned.length} run(s) (${assigned.slice(0, 5).map((r) => r.id).join(", ")}) have no frame left after the gates`;
  } else if (split === "test" && testClosed) {
    why = `the previous dataset has no test run and new runs enter test only with --grow-test`;
  } else {
    const shown = used.slice(0, 8).map((r) => `${r.id} ${fmt(r.draw)}${r.origin === "previous" ? ` (${r.split}, kept from previous)` : ` -> ${r.split}`}`);
    why =
      `none of the ${used.length} run(s) drew a value in [${fmt(lo)}, ${fmt(hi)}) ` +
      `(fractions ${fmt(fractions.train)}/${fmt(fractions.valid)}/${fmt(fractions.test)}, seed ${seed}; splits are per run, so few runs often leave a split empty); ` +
      `draws: ${shown.join(", ")}${used.length > shown.length ? ", ..." : ""}`;
  }
  const fix = split === "train" ? "add runs or check the gates" : "add runs, try another --seed, or pass --allow-empty-split to build without it";
  return `${split} split is empty: ${why}; ${fix}`;
}

export interface GateVerdicts {
  gates: Gates;
  errors: string[];
  warnings: string[];
}

/** `520 in 4 run(s), e.g. a, b; 400 in 1 run(s), e.g. c`, most common value first, at most four values. */
function describeSettingValues(report: SettingsReport, key: string): string {
  const entries = Object.entries(report.values[key]).sort(([va, a], [vb, b]) => b.runs - a.runs || (va < vb ? -1 : 1));
  const shown = entries.slice(0, 4).map(([value, r]) => `${value} in ${r.runs} run(s), e.g. ${r.examples.join(", ")}`);
  return shown.join("; ") + (entries.length > 4 ? `; and ${entries.length - 4} more value(s)` : "");
}

export interface VerdictInput {
  tally: DatasetTally;
  options: DatasetOptionsRecord;
  settings: SettingsReport;
  runs: readonly AssignedRun[];
  /** Elements of the previous dataset; null without --previous. */
  previousElements: string[] | null;
}

/** `B step 0 repeats the structure of A step 0 with other labels: ...`, naming both frames and both labels. */
function conflictWarning(c: RunConflicts): string {
  const e = c.example;
  const k = e.kept;
  const more = c.frames > 1 ? ` (${c.frames} frames of ${c.run} repeat structures of ${c.kept_run} with other labels)` : "";
  return (
    `${e.run} step ${e.ionic_step} repeats the structure of ${k.run} step ${k.ionic_step} with other labels: ` +
    `REF_energy ${fmt(e.energy, 4)} vs ${fmt(k.energy, 4)} eV (${fmt(e.energy_per_atom, 4)} vs ${fmt(k.energy_per_atom, 4)} eV/atom), ` +
    `max |F| ${fmt(e.max_force, 3)} vs ${fmt(k.max_force, 3)} eV/A; dropped, ${k.run} step ${k.ionic_step} kept (different DFT settings?)${more}`
  );
}

/** Runs every gate over the finished tally and decides which findings block the build. */
export function judgeGates(input: VerdictInput): GateVerdicts {
  const { tally, options, settings } = input;
  const errors: string[] = [];
  const warnings: string[] = [];
  const dropStatus = (n: number): GateStatus => (n > 0 ? "dropped" : "pass");

  const unconverged = options.require_converged ? tally.dropped.scf_unconverged : tally.unconvergedKept;
  if (!options.require_converged && unconverged > 0) {
    warnings.push(`${unconverged} frame(s) with an unconverged SCF loop kept and flagged scf_converged=F (pass --require-converged to drop them)`);
  }

  const energy = tally.energyOutliers();
  // One line per composition, so a diverged step is named even when another composition scores higher.
  for (const c of energy.by_composition) {
    const e = c.worst;
    warnings.push(
      `${c.frames} ${e.formula} frame(s) have an energy per atom with robust |z| > ${options.energy_z} (kept); ` +
        `worst: ${e.run} step ${e.ionic_step} ${fmt(e.energy_per_atom, 4)} eV/atom vs median ${fmt(e.median, 4)}, z = ${fmt(e.z, 1)}`,
    );
  }

  const conflicts = tally.labelConflicts();
  const conflictFrames = conflicts.reduce((n, c) => n + c.frames, 0);
  for (const c of conflicts) warnings.push(conflictWarning(c));

  const elements = tally.elementList();
  const newElements = input.previousElements ? elements.filter((el) => !input.previousElements!.includes(el)) : [];
  if (newElements.length) warnings.push(`elements new relative to the previous dataset: ${newElements.join(", ")} (E0s and --atomic_numbers must cover them)`);

  for (const key of settings.mixed) {
    const text = `mixed DFT settings across runs: ${key} = ${describeSettingValues(settings, key)}`;
    if (options.allow_mixed_settings) warnings.push(`${text} (allowed by --allow-mixed-settings)`);
    else errors.push(`${text}; pass --allow-mixed-settings to build anyway`);
  }

  const empty = SPLITS.filter((s) => tally.splits[s].frames === 0);
  for (const split of empty) {
    const reason = emptySplitReason(split, input.runs, options.fractions, options.seed, options.previous !== null && !options.grow_test);
    if (split === "train" || !options.allow_empty_split) errors.push(reason);
    else warnings.push(`${split} split is empty; no ${splitFileName(split)} written (allowed by --allow-empty-split)`);
  }

  const gates: Gates = {
    scf_unconverged: {
      action: options.require_converged ? "drop" : "keep-flagged",
      status: unconverged === 0 ? "pass" : options.require_converged ? "dropped" : "flagged",
      frames: unconverged,
      examples: options.require_converged ? tally.examples.scf_unconverged : tally.unconvergedExamples,
    },
    missing_labels: { action: "drop", status: dropStatus(tally.dropped.missing_labels), frames: tally.dropped.missing_labels, examples: tally.examples.missing_labels },
    force_outliers: { action: "drop", status: dropStatus(tally.dropped.force_outliers), max_force: options.max_force, frames: tally.dropped.force_outliers, examples: tally.examples.force_outliers },
    duplicates: { action: "drop", status: dropStatus(tally.dropped.duplicates), frames: tally.dropped.duplicates, examples: tally.examples.duplicates },
    label_conflicts: {
      action: "warn",
      status: conflictFrames > 0 ? "warning" : "pass",
      energy_tolerance: CONFLICT_ENERGY_TOLERANCE,
      force_tolerance: CONFLICT_FORCE_TOLERANCE,
      frames: conflictFrames,
      runs: conflicts,
    },
    energy_outliers: { action: "warn", status: energy.frames > 0 ? "warning" : "pass", energy_z: options.energy_z, ...energy },
    new_elements: { action: "warn", status: input.previousElements === null ? "not-checked" : newElements.length ? "warning" : "pass", elements: newElements },
    mixed_settings: {
      action: options.allow_mixed_settings ? "warn" : "error",
      status: settings.mixed.length === 0 ? "pass" : options.allow_mixed_settings ? "warning" : "error",
      mixed: settings.mixed,
      values: settings.values,
    },
    empty_splits: {
      action: options.allow_empty_split ? "warn" : "error",
      status: empty.length === 0 ? "pass" : empty.includes("train") || !options.allow_empty_split ? "error" : "warning",
      empty,
    },
  };
  return { gates, errors, warnings };
}

export interface PreviousState {
  path: string;
  runs: ReadonlyMap<string, SplitName>;
  fingerprint: Fingerprint;
  elements: string[] | null;
  energy: "free" | "sigma0" | null;
}

/**
 * What changed since the previous dataset; `splitRuns` is this build's split.json runs and `testRuns` the runs
 * with frames in its test split.
 */
export function describeChanges(
  previous: PreviousState,
  splitRuns: Readonly<Record<string, SplitName>>,
  usedRuns: ReadonlySet<string>,
  testRuns: ReadonlySet<string>,
  fingerprint: Fingerprint,
  elements: string[],
  energy: "free" | "sigma0",
): Changes {
  const runsAdded = [...usedRuns].filter((id) => !previous.runs.has(id)).sort();
  const runsMissing = [...previous.runs.keys()].filter((id) => !usedRuns.has(id)).sort();
  const testRunsMissing = [...previous.runs].filter(([id, split]) => split === "test" && !testRuns.has(id)).map(([id]) => id).sort();
  const splitChanged = [...previous.runs]
    .filter(([id, split]) => splitRuns[id] !== undefined && splitRuns[id] !== split)
    .map(([id, split]) => ({ run: id, previous: split, now: splitRuns[id] }))
    .sort((a, b) => (a.run < b.run ? -1 : 1));
  return {
    previous: previous.path,
    runs_added: runsAdded,
    runs_missing: runsMissing,
    test_runs_missing: testRunsMissing,
    split_changed: splitChanged,
    test_membership_changed: fingerprint.test_membership !== previous.fingerprint.test_membership,
    test_content_changed: fingerprint.test_content !== previous.fingerprint.test_content,
    previous_fingerprint: previous.fingerprint,
    elements_added: previous.elements ? elements.filter((el) => !previous.elements!.includes(el)) : [],
    energy_changed: previous.energy !== null && previous.energy !== energy,
  };
}

/** Warnings a user must read after a rebuild: a changed test set makes metrics incomparable with earlier rounds. */
export function changeWarnings(changes: Changes, options: DatasetOptionsRecord, previous: { seed: number | null; fractions: SplitFractions | null }): string[] {
  const warnings: string[] = [];
  if (changes.split_changed.length) warnings.push(`${changes.split_changed.length} run(s) changed split since the previous dataset: ${changes.split_changed.map((c) => c.run).join(", ")}`);
  if (changes.test_membership_changed || changes.test_content_changed) {
    const what = [changes.test_membership_changed ? "test runs" : null, changes.test_content_changed ? "test frames" : null].filter(Boolean).join(" and ");
    warnings.push(`the held-out test set differs from the previous dataset (${what} changed): metrics are not comparable with earlier rounds`);
  }
  if (changes.test_runs_missing.length) {
    const ids = changes.test_runs_missing;
    warnings.push(`${ids.length} test run(s) of the previous dataset have no test frames now (not among the inputs, skipped, or every frame dropped): ${ids.slice(0, 5).join(", ")}${ids.length > 5 ? ", ..." : ""}`);
  }
  if (changes.runs_missing.length) warnings.push(`${changes.runs_missing.length} run(s) of the previous dataset gave no frames this time: ${changes.runs_missing.slice(0, 5).join(", ")}${changes.runs_missing.length > 5 ? ", ..." : ""}`);
  if (changes.energy_changed) warnings.push(`REF_energy now holds the ${options.energy === "free" ? "free" : "sigma->0"} energy; the previous dataset used the other one`);
  if (previous.seed !== null && previous.seed !== options.seed) warnings.push(`seed ${options.seed} differs from the previous dataset's ${previous.seed}; only new runs use it`);
  const f = previous.fractions;
  if (f && SPLITS.some((s) => Math.abs(f[s] - options.fractions[s]) > 1e-12)) {
    warnings.push(`fractions ${fmt(options.fractions.train)}/${fmt(options.fractions.valid)}/${fmt(options.fractions.test)} differ from the previous dataset's ${fmt(f.train)}/${fmt(f.valid)}/${fmt(f.test)}; only new runs use them`);
  }
  return warnings;
}
