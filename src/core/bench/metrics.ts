/**
 * Benchmark metrics of predictions against references (docs/mace.md section 5), in meV units:
 * - energy per atom: e_s = (E_pred - E_ref) / N_s per frame; RMSE = sqrt(mean e_s^2), MAE = mean |e_s| (meV/atom);
 * - forces: every Cartesian component of every atom pooled; relative RMSE = RMSE / RMS(F_ref) x 100 (meV/A, %);
 * - stress: the 9 components of each 3x3 tensor pooled, frames with both a reference and a predicted stress (meV/A^3).
 * Broken down per config_type and per element (forces over the element's atoms, energy over frames containing it).
 */
import { ISOLATED_ATOM } from "../stage/e0s.js";
import type { BenchFrame } from "./labels.js";

export interface EnergyStats {
  frames: number;
  rmse: number;
  mae: number;
}

export interface ForceStats {
  atoms: number;
  components: number;
  rmse: number;
  mae: number;
  /** RMSE / RMS of the reference components x 100; null when every reference component is 0. */
  relRmsePercent: number | null;
}

export interface StressStats {
  frames: number;
  components: number;
  rmse: number;
  mae: number;
}

export interface MetricGroup {
  frames: number;
  atoms: number;
  energy: EnergyStats;
  /** null when no frame of the group has forces on both sides. */
  forces: ForceStats | null;
  /** null when no frame of the group has stress on both sides. */
  stress: StressStats | null;
}

export interface ElementGroup {
  /** Frames containing the element. */
  frames: number;
  /** Atoms of the element. */
  atoms: number;
  energy: EnergyStats;
  forces: ForceStats | null;
}

export interface PairedFrame {
  pred: BenchFrame;
  ref: BenchFrame;
}

export interface FrameError extends PairedFrame {
  /** (E_pred - E_ref) / N, meV/atom, signed. */
  energyErrorPerAtom: number;
  /** RMSE over this frame's force components and the largest |component error|, meV/A. */
  forceRmse: number | null;
  forceMaxAbs: number | null;
  /** RMSE over the 9 stress components, meV/A^3. */
  stressRmse: number | null;
}

/** One parity plot's points: reference and prediction per point and the point's config_type (index into groupNames). */
export interface ParitySet {
  ref: Float64Array;
  pred: Float64Array;
  group: Uint16Array;
}

export interface BenchMetrics {
  overall: MetricGroup;
  /** Sorted by config_type. */
  perConfigType: Array<[string, MetricGroup]>;
  /** Sorted by element symbol. */
  perElement: Array<[string, ElementGroup]>;
  frames: FrameError[];
  parity: {
    /** eV/atom. */
    energy: ParitySet;
    /** eV/A, every component. */
    forces: ParitySet;
    /** eV/A^3, the 6 independent components (xx yy zz yz xz xy) of each tensor; null without stress pairs. */
    stress: ParitySet | null;
    groupNames: string[];
  };
  /** Frames whose reference has a stress but whose prediction has none (e.g. mace_eval_configs without --compute_stress). */
  stressWithoutPrediction: number;
  /** Sums of squared stress differences with the prediction as given and with its sign flipped (a sign check). */
  stressSignCheck: { asGiven: number; flipped: number } | null;
  /** Paired IsolatedAtom frames: in their own config_type row only (see isIsolatedAtom). */
  isolatedAtoms: number;
}

/** Running sums of errors; values in eV-based units, reported x1000 (meV). */
class ErrorSums {
  n = 0;
  sq = 0;
  abs = 0;
  refSq = 0;
  frames = 0;

  add(diff: number, ref = 0): void {
    this.n++;
    this.sq += diff * diff;
    this.abs += Math.abs(diff);
    this.refSq += ref * ref;
  }

  rmse(): number {
    return Math.sqrt(this.sq / this.n) * 1000;
  }

  mae(): number {
    return (this.abs / this.n) * 1000;
  }
}

class GroupSums {
  frames = 0;
  atoms = 0;
  readonly energy = new ErrorSums();
  readonly forces = new ErrorSums();
  readonly stress = new ErrorSums();
}

const VOIGT_INDICES = [0, 4, 8, 5, 2, 1];

/** A one-atom IsolatedAtom frame: MACE takes E0s from these and reports them apart, never in its overall errors. */
const isIsolatedAtom = ({ ref }: PairedFrame): boolean => ref.natoms === 1 && ref.configType === ISOLATED_ATOM;

export function computeMetrics(paired: readonly PairedFrame[]): BenchMetrics {
  const overall = new GroupSums();
  const byType = new Map<string, GroupSums>();
  const byElement = new Map<string, GroupSums>();
  // Isolated atoms have their own config_type row only: not in the overall and per-element errors, nor the plots.
  const bulk = paired.filter((p) => !isIsolatedAtom(p));
  const groupNames = [...new Set(bulk.map((p) => p.ref.configType))].sort();
  const groupIndex = new Map(groupNames.map((g, i) => [g, i]));

  let forceCount = 0;
  let stressCount = 0;
  for (const { pred, ref } of bulk) {
    if (pred.labels.forces && ref.labels.forces) forceCount += 3 * ref.natoms;
    if (pred.labels.stress && ref.labels.stress) stressCount += 6;
  }
  const energyParity = newParity(bulk.length);
  let energyAt = 0;
  const forceParity = newParity(forceCount);
  const stressParity = stressCount > 0 ? newParity(stressCount) : null;
  let forceAt = 0;
  let stressAt = 0;
  let stressWithoutPrediction = 0;
  let signSame = 0;
  let signFlipped = 0;

  const frames: FrameError[] = [];
  for (const pair of paired) {
    const { pred, ref } = pair;
    const n = ref.natoms;
    const type = ref.configType;
    const isolated = isIsolatedAtom(pair);
    let typeSums = byType.get(type);
    if (!typeSums) byType.set(type, (typeSums = new GroupSums()));
    const elementSums = isolated
      ? []
      : [...new Set(ref.symbols)].map((el) => {
          let s = byElement.get(el);
          if (!s) byElement.set(el, (s = new GroupSums()));
          return s;
        });
    // The sums this frame's errors go to.
    const sums = isolated ? [typeSums] : [overall, typeSums];

    const e = (pred.labels.energy! - ref.labels.energy!) / n;
    for (const s of [...sums, ...elementSums]) {
      s.frames++;
      s.energy.add(e);
    }
    for (const s of sums) s.atoms += n;
    if (!isolated) {
      const g = groupIndex.get(type)!;
      energyParity.ref[energyAt] = ref.labels.energy! / n;
      energyParity.pred[energyAt] = pred.labels.energy! / n;
      energyParity.group[energyAt++] = g;
    }

    let forceRmse: number | null = null;
    let forceMaxAbs: number | null = null;
    const fp = pred.labels.forces;
    const fr = ref.labels.forces;
    if (fp && fr) {
      const frame = new ErrorSums();
      let maxAbs = 0;
      for (let a = 0; a < n; a++) {
        const el = isolated ? undefined : byElement.get(ref.symbols[a])!;
        if (el) el.atoms++;
        for (let c = 3 * a; c < 3 * a + 3; c++) {
          const d = fp[c] - fr[c];
          for (const s of sums) s.forces.add(d, fr[c]);
          frame.add(d);
          if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
          if (!el) continue;
          el.forces.add(d, fr[c]);
          forceParity.ref[forceAt] = fr[c];
          forceParity.pred[forceAt] = fp[c];
          forceParity.group[forceAt++] = groupIndex.get(type)!;
        }
      }
      forceRmse = frame.rmse();
      forceMaxAbs = maxAbs * 1000;
    } else if (!isolated) {
      for (const el of ref.symbols) byElement.get(el)!.atoms++;
    }

    let stressRmse: number | null = null;
    const sp = pred.labels.stress;
    const sr = ref.labels.stress;
    if (sr && !sp) stressWithoutPrediction++;
    if (sp && sr) {
      const frame = new ErrorSums();
      for (let c = 0; c < 9; c++) {
        const d = sp[c] - sr[c];
        for (const s of sums) s.stress.add(d);
        frame.add(d);
        signSame += d * d;
        signFlipped += (sp[c] + sr[c]) ** 2;
      }
      for (const s of sums) s.stress.frames++;
      stressRmse = frame.rmse();
      for (const c of isolated ? [] : VOIGT_INDICES) {
        stressParity!.ref[stressAt] = sr[c];
        stressParity!.pred[stressAt] = sp[c];
        stressParity!.group[stressAt++] = groupIndex.get(type)!;
      }
    }
    frames.push({ pred, ref, energyErrorPerAtom: e * 1000, forceRmse, forceMaxAbs, stressRmse });
  }

  return {
    overall: metricGroup(overall),
    perConfigType: [...byType.entries()].sort(([a], [b]) => compareText(a, b)).map(([t, s]) => [t, metricGroup(s)]),
    perElement: [...byElement.entries()].sort(([a], [b]) => compareText(a, b)).map(([el, s]) => [el, elementGroup(s)]),
    frames,
    parity: { energy: energyParity, forces: forceParity, stress: stressParity, groupNames },
    stressWithoutPrediction,
    stressSignCheck: stressParity ? { asGiven: signSame, flipped: signFlipped } : null,
    isolatedAtoms: paired.length - bulk.length,
  };
}

/** Code-unit order: locale-independent, so outputs do not depend on the machine. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function newParity(n: number): ParitySet {
  return { ref: new Float64Array(n), pred: new Float64Array(n), group: new Uint16Array(n) };
}

function energyStats(s: GroupSums): EnergyStats {
  return { frames: s.energy.n, rmse: s.energy.rmse(), mae: s.energy.mae() };
}

function forceStats(f: ErrorSums): ForceStats | null {
  if (f.n === 0) return null;
  return {
    atoms: f.n / 3,
    components: f.n,
    rmse: f.rmse(),
    mae: f.mae(),
    relRmsePercent: f.refSq > 0 ? Math.sqrt(f.sq / f.refSq) * 100 : null,
  };
}

function metricGroup(s: GroupSums): MetricGroup {
  const stress: StressStats | null =
    s.stress.n === 0 ? null : { frames: s.stress.frames, components: s.stress.n, rmse: s.stress.rmse(), mae: s.stress.mae() };
  return { frames: s.frames, atoms: s.atoms, energy: energyStats(s), forces: forceStats(s.forces), stress };
}

function elementGroup(s: GroupSums): ElementGroup {
  return { frames: s.frames, atoms: s.atoms, energy: energyStats(s), forces: forceStats(s.forces) };
}
