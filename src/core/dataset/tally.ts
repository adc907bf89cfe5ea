/**
 * The frame-by-frame bookkeeping of a dataset build: which frames the gates drop, and the small per-frame
 * metadata (ids, energies per atom, counts) the summary needs. Frames themselves are never kept.
 *
 * Gates that drop a frame, checked in this order (a frame is counted under the first that drops it):
 *   scf_unconverged (only with requireConverged), missing_labels, force_outliers, duplicates.
 * A run's contributions are pending until commitRun; discardRun (a run skipped as broken) forgets them, so a
 * skipped run neither claims structures for the duplicate check nor counts anywhere.
 */
import type { Frame } from "../structure.js";
import { maxForceNorm, missingLabels, reducedFormula, robustOutliers } from "./gates.js";
import { SPLITS, type SplitName } from "./split.js";

export const EXAMPLES = 5;

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
  duplicates: Array<FrameRef & { candidate_id: string; first_seen: FrameRef }>;
}

export interface EnergyOutlier extends FrameRef {
  formula: string;
  energy_per_atom: number;
  median: number;
  z: number;
}

export interface EnergyOutlierResult {
  frames: number;
  /** Compositions with at least 3 frames and a spread, which the z-score can judge. */
  compositions_tested: number;
  compositions_untested: number;
  /** The largest |z| first. */
  examples: EnergyOutlier[];
}

export interface RunTotals {
  frames: number;
  atoms: number;
  dropped: number;
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
  ids: Map<string, number>;
  energies: Array<{ formula: string; value: number; step: number }>;
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
  /** candidate id -> (run index, ionic step) of its first kept frame, packed as index * 2^21 + step. */
  private readonly ids = new Map<string, number>();
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
    };
  }

  private ref(packed: number): FrameRef {
    const index = Math.floor(packed / 2 ** 21);
    const step = packed - index * 2 ** 21;
    return { run: index === this.run?.index ? this.run.id : this.runIds[index], ionic_step: step };
  }

  /**
   * Judges one labelled frame of the current run: null when it is kept, else the gate that drops it.
   * `ionicStep` is the frame's 0-based DFT step in its run and `candidateId` its structure id.
   */
  frame(frame: Frame, ionicStep: number, candidateId: string, scf: { converged: boolean; steps: number; nelm: number | null }): DropGate | null {
    const run = this.run;
    if (!run) throw new Error("frame() outside a run");
    const at = { run: run.id, ionic_step: ionicStep };
    if (!scf.converged && this.opts.requireConverged) return this.drop(run, "scf_unconverged", () => pushExample(run.examples.scf_unconverged, { ...at, scf_steps: scf.steps, nelm: scf.nelm }));
    const missing = missingLabels(frame);
    if (missing.length) return this.drop(run, "missing_labels", () => pushExample(run.examples.missing_labels, { ...at, missing }));
    const maxForce = maxForceNorm((frame.arrays.get("REF_forces")!.data as Float64Array));
    if (maxForce > this.opts.maxForce) return this.drop(run, "force_outliers", () => pushExample(run.examples.force_outliers, { ...at, max_force: maxForce }));
    const first = this.ids.get(candidateId) ?? run.ids.get(candidateId);
    if (first !== undefined) return this.drop(run, "duplicates", () => pushExample(run.examples.duplicates, { ...at, candidate_id: candidateId, first_seen: this.ref(first) }));

    run.ids.set(candidateId, run.index * 2 ** 21 + ionicStep);
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
    const energy = frame.info.get("REF_energy") as { value: number };
    if (frame.natoms > 0) run.energies.push({ formula: composition.formula, value: energy.value / frame.natoms, step: ionicStep });
    return null;
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
    for (const [id, packed] of run.ids) this.ids.set(id, packed);
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
    for (const [formula, group] of this.energyGroups) {
      const scores = robustOutliers(Float64Array.from(group.values), this.opts.energyZ);
      if (!scores) {
        untested++;
        continue;
      }
      tested++;
      for (const o of scores.outliers) {
        found.push({ ...this.ref(group.refs[o.index]), formula, energy_per_atom: group.values[o.index], median: scores.median, z: o.z });
      }
    }
    found.sort((a, b) => Math.abs(b.z) - Math.abs(a.z) || (a.run < b.run ? -1 : a.run > b.run ? 1 : a.ionic_step - b.ionic_step));
    return { frames: found.length, compositions_tested: tested, compositions_untested: untested, examples: found.slice(0, EXAMPLES) };
  }

  /** Element symbols present in any split, sorted. */
  elementList(): string[] {
    return [...this.elements.keys()].sort();
  }
}
