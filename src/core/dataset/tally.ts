/**
 * The frame-by-frame bookkeeping of a dataset build: which frames the gates drop, and the small per-frame
 * metadata (ids, energies per atom, counts) the summary needs. Frames themselves are never kept.
 *
 * Gates that drop a frame, checked in this order (a frame is counted under the first that drops it):
 *   scf_unconverged (only with requireConverged), missing_labels, force_outliers, duplicates.
 * A run's contributions are pending until commitRun; discardRun (a run skipped as broken) forgets them, so a
 * skipped run neither claims structures for the duplicate check nor counts anywhere.
 *
 * A dropped duplicate whose labels disagree with the kept frame's (energy per atom or largest force beyond the
 * tolerances below) is also recorded as a label conflict: the same structure computed twice with different results
 * usually means different DFT settings, and only one of the two labels is kept.
 */
import type { Frame } from "../structure.js";
import { maxForceNorm, missingLabels, reducedFormula, robustOutliers } from "./gates.js";
import { SPLITS, type SplitName } from "./split.js";

export const EXAMPLES = 5;

/** eV/atom: two DFT energies of one structure farther apart than this are not SCF noise. */
export const CONFLICT_ENERGY_TOLERANCE = 0.001;
/** eV/A, on the largest per-atom force norm (only scalars are kept per frame, never whole force arrays). */
export const CONFLICT_FORCE_TOLERANCE = 0.05;
/**
 * eV/atom, the least MAD of energy per atom within a composition. Runs of one composition with other POTCARs or
 * cutoffs differ by tens of meV/atom while one MD run spreads by a few: without a floor that offset scores z ~ 300.
 * With it, |z| > 5 needs about 75 meV/atom from the median.
 */
export const ENERGY_MIN_MAD = 0.01;

export type DropGate = "scf_unconverged" | "missing_labels" | "force_outliers" | "duplicates";

export interface FrameRef {
  run: string;
  ionic_step: number;
}

export interface GateOptions {
  maxForce: number;
  energyZ: number;
  requireConverged: boolean;
}

export interface SplitCounts {
  frames: number;
  runs: number;
  atoms: number;
}

export interface ElementCounts {
  frames: number;
  atoms: number;
}

export interface DropExamples {
  scf_unconverged: Array<FrameRef & { scf_steps: number; nelm: number | null }>;
  missing_labels: Array<FrameRef & { missing: string[] }>;
  force_outliers: Array<FrameRef & { max_force: number }>;
  /**
   * `first_seen` is the frame kept instead: the first one seen, or with `superseded` the next step of the same
   * job, which repeats this structure in a later calculation (custodian's relax2 restarting from relax1's end).
   */
  duplicates: Array<FrameRef & { candidate_id: string; first_seen: FrameRef; superseded?: true }>;
}

/** The labels of one frame as the conflict check compares them. */
export interface FrameLabels {
  /** REF_energy, eV. */
  energy: number;
  energy_per_atom: number;
  /** Largest per-atom force norm, eV/A. */
  max_force: number;
}

/** A dropped duplicate whose labels disagree with those of the frame kept for its structure. */
export interface LabelConflict extends FrameRef, FrameLabels {
  kept: FrameRef & FrameLabels;
}

/** The label conflicts between one run's dropped frames and the frames kept from one (possibly the same) run. */
export interface RunConflicts {
  run: string;
  kept_run: string;
  frames: number;
  /** The first conflicting frame of the pair. */
  example: LabelConflict;
}

export interface EnergyOutlier extends FrameRef {
  formula: string;
  energy_per_atom: number;
  median: number;
  z: number;
}

export interface EnergyOutlierResult {
  frames: number;
  /** eV/atom: the floor of the MAD the z-scores divide by. */
  min_mad: number;
  /** Compositions with at least 3 frames, which the z-score can judge. */
  compositions_tested: number;
  compositions_untested: number;
  /** The largest |z| first. */
  examples: EnergyOutlier[];
  /** Each composition with outliers: how many, and its largest |z|; largest |z| first. */
  by_composition: Array<{ formula: string; frames: number; worst: EnergyOutlier }>;
}

export interface RunTotals {
  frames: number;
  atoms: number;
  dropped: number;
}

/** A kept frame as the duplicate check remembers it: where it is (packed, see `ids`) and its labels. */
interface KeptFrame extends FrameLabels {
  packed: number;
}

interface RunState {
  id: string;
  index: number;
  split: SplitName;
  frames: number;
  atoms: number;
  stressFrames: number;
  unconvergedKept: number;
  unconvergedExamples: DropExamples["scf_unconverged"];
  dropped: Record<DropGate, number>;
  examples: DropExamples;
  elements: Map<string, ElementCounts>;
  ids: Map<string, KeptFrame>;
  energies: Array<{ formula: string; value: number; step: number }>;
  /** Label conflicts by the run of the kept frame. */
  conflicts: Map<string, { frames: number; example: LabelConflict }>;
}

function pushExample<T>(list: T[], item: T): void {
  if (list.length < EXAMPLES) list.push(item);
}

function emptyExamples(): DropExamples {
  return { scf_unconverged: [], missing_labels: [], force_outliers: [], duplicates: [] };
}

function zeroDrops(): Record<DropGate, number> {
  return { scf_unconverged: 0, missing_labels: 0, force_outliers: 0, duplicates: 0 };
}

export class DatasetTally {
  readonly splits: Record<SplitName, SplitCounts> = { train: { frames: 0, runs: 0, atoms: 0 }, valid: { frames: 0, runs: 0, atoms: 0 }, test: { frames: 0, runs: 0, atoms: 0 } };
  readonly elements = new Map<string, Record<SplitName, ElementCounts>>();
  readonly dropped = zeroDrops();
  readonly examples = emptyExamples();
  /** Kept frames flagged scf_converged=F (only without requireConverged). */
  unconvergedKept = 0;
  readonly unconvergedExamples: DropExamples["scf_unconverged"] = [];
  stressFrames = 0;

  private readonly runIds: string[] = [];
  /** candidate id -> its first kept frame, located by (run index, ionic step) packed as index * 2^21 + step. */
  private readonly ids = new Map<string, KeptFrame>();
  private readonly conflictList: RunConflicts[] = [];
  private readonly energyGroups = new Map<string, { values: number[]; refs: number[] }>();
  private run: RunState | null = null;
  private lastComposition: { symbols: string[]; counts: Map<string, number>; formula: string } | null = null;

  constructor(private readonly opts: GateOptions) {}

  beginRun(id: string, split: SplitName): void {
    if (this.run) throw new Error(`run ${this.run.id} was neither committed nor discarded`);
    this.run = {
      id,
      index: this.runIds.length,
      split,
      frames: 0,
      atoms: 0,
      stressFrames: 0,
      unconvergedKept: 0,
      unconvergedExamples: [],
      dropped: zeroDrops(),
      examples: emptyExamples(),
      elements: new Map(),
      ids: new Map(),
      energies: [],
      conflicts: new Map(),
    };
  }

  private ref(packed: number): FrameRef {
    const index = Math.floor(packed / 2 ** 21);
    const step = packed - index * 2 ** 21;
    return { run: index === this.run?.index ? this.run.id : this.runIds[index], ionic_step: step };
  }

  /** The first label gate (all but duplicates) that drops the frame, or null, with the frame's largest force (NaN when not reached). */
  private labelGate(frame: Frame, scf: { converged: boolean }): { gate: Exclude<DropGate, "duplicates"> | null; missing: string[]; maxForce: number } {
    if (!scf.converged && this.opts.requireConverged) return { gate: "scf_unconverged", missing: [], maxForce: NaN };
    const missing = missingLabels(frame);
    if (missing.length) return { gate: "missing_labels", missing, maxForce: NaN };
    const maxForce = maxForceNorm(frame.arrays.get("REF_forces")!.data as Float64Array);
    return { gate: maxForce > this.opts.maxForce ? "force_outliers" : null, missing, maxForce };
  }

  /** True when no gate but the duplicate check would drop the frame. */
  passesLabelGates(frame: Frame, scf: { converged: boolean }): boolean {
    return this.labelGate(frame, scf).gate === null;
  }

  /**
   * Judges one labelled frame of the current run: null when it is kept, else the gate that drops it.
   * `ionicStep` is the frame's 0-based DFT step in its run and `candidateId` its structure id.
   */
  frame(frame: Frame, ionicStep: number, candidateId: string, scf: { converged: boolean; steps: number; nelm: number | null }): DropGate | null {
    const run = this.run;
    if (!run) throw new Error("frame() outside a run");
    const at = { run: run.id, ionic_step: ionicStep };
    const checked = this.labelGate(frame, scf);
    if (checked.gate === "scf_unconverged") return this.drop(run, "scf_unconverged", () => pushExample(run.examples.scf_unconverged, { ...at, scf_steps: scf.steps, nelm: scf.nelm }));
    if (checked.gate === "missing_labels") return this.drop(run, "missing_labels", () => pushExample(run.examples.missing_labels, { ...at, missing: checked.missing }));
    if (checked.gate === "force_outliers") return this.drop(run, "force_outliers", () => pushExample(run.examples.force_outliers, { ...at, max_force: checked.maxForce }));
    const energy = (frame.info.get("REF_energy") as { value: number }).value;
    const labels: FrameLabels = { energy, energy_per_atom: frame.natoms > 0 ? energy / frame.natoms : energy, max_force: checked.maxForce };
    const first = this.ids.get(candidateId) ?? run.ids.get(candidateId);
    if (first !== undefined) {
      const firstRef = this.ref(first.packed);
      if (labelsDisagree(labels, first)) {
        const conflict = run.conflicts.get(firstRef.run);
        if (conflict) conflict.frames++;
        else run.conflicts.set(firstRef.run, { frames: 1, example: { ...at, ...labels, kept: { ...firstRef, energy: first.energy, energy_per_atom: first.energy_per_atom, max_force: first.max_force } } });
      }
      return this.drop(run, "duplicates", () => pushExample(run.examples.duplicates, { ...at, candidate_id: candidateId, first_seen: firstRef }));
    }

    run.ids.set(candidateId, { packed: run.index * 2 ** 21 + ionicStep, ...labels });
    run.frames++;
    run.atoms += frame.natoms;
    if (frame.info.has("REF_stress")) run.stressFrames++;
    if (!scf.converged) {
      run.unconvergedKept++;
      pushExample(run.unconvergedExamples, { ...at, scf_steps: scf.steps, nelm: scf.nelm });
    }
    const composition = this.compositionOf(frame.symbols);
    for (const [element, n] of composition.counts) {
      const e = run.elements.get(element) ?? { frames: 0, atoms: 0 };
      e.frames++;
      e.atoms += n;
      run.elements.set(element, e);
    }
    if (frame.natoms > 0) run.energies.push({ formula: composition.formula, value: labels.energy_per_atom, step: ionicStep });
    return null;
  }

  /**
   * Drops step `ionicStep` of the current run, never judged by frame(), because step `keptStep` of the same run
   * repeats its structure and is kept instead. Counted as a duplicate; no label conflict (a later calculation of
   * one job is expected to relabel its structure, e.g. with the basis of the relaxed cell).
   */
  supersede(ionicStep: number, candidateId: string, keptStep: number): void {
    const run = this.run;
    if (!run) throw new Error("supersede() outside a run");
    this.drop(run, "duplicates", () =>
      pushExample(run.examples.duplicates, { run: run.id, ionic_step: ionicStep, candidate_id: candidateId, first_seen: { run: run.id, ionic_step: keptStep }, superseded: true }),
    );
  }

  /** Element counts and reduced formula, reused while consecutive frames have the same species list (a run's steps do). */
  private compositionOf(symbols: string[]): { counts: Map<string, number>; formula: string } {
    const last = this.lastComposition;
    if (last && last.symbols.length === symbols.length && last.symbols.every((s, i) => s === symbols[i])) return last;
    const counts = new Map<string, number>();
    for (const s of symbols) counts.set(s, (counts.get(s) ?? 0) + 1);
    this.lastComposition = { symbols, counts, formula: reducedFormula(symbols) };
    return this.lastComposition;
  }

  private drop(run: RunState, gate: DropGate, example: () => void): DropGate {
    run.dropped[gate]++;
    example();
    return gate;
  }

  /** Adds the current run's frames to the dataset. */
  commitRun(): RunTotals {
    const run = this.run;
    if (!run) throw new Error("commitRun() outside a run");
    this.run = null;
    this.runIds.push(run.id);
    for (const [id, kept] of run.ids) this.ids.set(id, kept);
    for (const [keptRun, c] of run.conflicts) this.conflictList.push({ run: run.id, kept_run: keptRun, ...c });
    const split = this.splits[run.split];
    split.frames += run.frames;
    split.atoms += run.atoms;
    if (run.frames > 0) split.runs++;
    this.stressFrames += run.stressFrames;
    this.unconvergedKept += run.unconvergedKept;
    for (const ex of run.unconvergedExamples) pushExample(this.unconvergedExamples, ex);
    for (const gate of Object.keys(run.dropped) as DropGate[]) {
      this.dropped[gate] += run.dropped[gate];
      for (const ex of run.examples[gate]) pushExample(this.examples[gate] as unknown[], ex);
    }
    for (const [element, c] of run.elements) {
      let entry = this.elements.get(element);
      if (!entry) {
        entry = { train: { frames: 0, atoms: 0 }, valid: { frames: 0, atoms: 0 }, test: { frames: 0, atoms: 0 } };
        this.elements.set(element, entry);
      }
      entry[run.split].frames += c.frames;
      entry[run.split].atoms += c.atoms;
    }
    for (const e of run.energies) {
      let group = this.energyGroups.get(e.formula);
      if (!group) {
        group = { values: [], refs: [] };
        this.energyGroups.set(e.formula, group);
      }
      group.values.push(e.value);
      group.refs.push(run.index * 2 ** 21 + e.step);
    }
    const dropped = Object.values(run.dropped).reduce((a, b) => a + b, 0);
    return { frames: run.frames, atoms: run.atoms, dropped };
  }

  /** Forgets the current run (it is skipped as a whole). */
  discardRun(): void {
    this.run = null;
  }

  get frames(): number {
    return SPLITS.reduce((n, s) => n + this.splits[s].frames, 0);
  }

  /** Energy-per-atom outliers by robust z-score within each reduced formula; they are reported, not dropped. */
  energyOutliers(): EnergyOutlierResult {
    let tested = 0;
    let untested = 0;
    const found: EnergyOutlier[] = [];
    const byComposition: EnergyOutlierResult["by_composition"] = [];
    for (const [formula, group] of this.energyGroups) {
      const scores = robustOutliers(Float64Array.from(group.values), this.opts.energyZ, ENERGY_MIN_MAD);
      if (!scores) {
        untested++;
        continue;
      }
      tested++;
      const mine = scores.outliers.map((o) => ({ ...this.ref(group.refs[o.index]), formula, energy_per_atom: group.values[o.index], median: scores.median, z: o.z }));
      mine.sort(byAbsZ);
      if (mine.length) byComposition.push({ formula, frames: mine.length, worst: mine[0] });
      found.push(...mine);
    }
    found.sort(byAbsZ);
    byComposition.sort((a, b) => byAbsZ(a.worst, b.worst));
    return { frames: found.length, min_mad: ENERGY_MIN_MAD, compositions_tested: tested, compositions_untested: untested, examples: found.slice(0, EXAMPLES), by_composition: byComposition };
  }

  /** Label conflicts of dropped duplicates, one entry per (run, kept run) pair, sorted by run then kept run. */
  labelConflicts(): RunConflicts[] {
    return [...this.conflictList].sort((a, b) => (a.run < b.run ? -1 : a.run > b.run ? 1 : a.kept_run < b.kept_run ? -1 : a.kept_run > b.kept_run ? 1 : 0));
  }

  /** Element symbols present in any split, sorted. */
  elementList(): string[] {
    return [...this.elements.keys()].sort();
  }
}

function byAbsZ(a: EnergyOutlier, b: EnergyOutlier): number {
  return Math.abs(b.z) - Math.abs(a.z) || (a.run < b.run ? -1 : a.run > b.run ? 1 : a.ionic_step - b.ionic_step);
}

function labelsDisagree(a: FrameLabels, b: FrameLabels): boolean {
  return Math.abs(a.energy_per_atom - b.energy_per_atom) > CONFLICT_ENERGY_TOLERANCE || Math.abs(a.max_force - b.max_force) > CONFLICT_FORCE_TOLERANCE;
}
