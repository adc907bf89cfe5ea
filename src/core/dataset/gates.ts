/** Per-frame quality checks of the dataset builder. Pure: frames and numbers in, verdicts out. */
import { infoNumber, type Frame } from "../structure.js";

/** Largest per-atom force norm in eV/A (0 for a frame without atoms). */
export function maxForceNorm(forces: Float64Array): number {
  let max = 0;
  for (let i = 0; i + 2 < forces.length; i += 3) {
    const n = Math.hypot(forces[i], forces[i + 1], forces[i + 2]);
    if (n > max || n !== n) max = n;
  }
  return max;
}

/**
 * The labels a frame lacks or carries as non-finite numbers: REF_energy, REF_forces (one finite row per atom)
 * and, when present, REF_stress. Stress is optional (VASP computes none with ISIF = 0), so its absence is no gap.
 */
export function missingLabels(frame: Frame): string[] {
  const missing: string[] = [];
  const energy = infoNumber(frame, "REF_energy");
  if (energy === undefined || !Number.isFinite(energy)) missing.push("REF_energy");
  const forces = frame.arrays.get("REF_forces");
  if (!forces || forces.dtype !== "R" || forces.ncols !== 3 || forces.data.length !== 3 * frame.natoms || !forces.data.every(Number.isFinite)) {
    missing.push("REF_forces");
  }
  const stress = frame.info.get("REF_stress");
  if (stress && !(stress.kind === "array" && (stress.data as number[]).every((v) => typeof v === "number" && Number.isFinite(v)))) {
    missing.push("REF_stress");
  }
  return missing;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The reduced formula in Hill order (C, H first when C is present, else alphabetical): H4O2 -> H2O. */
export function reducedFormula(symbols: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const s of symbols) counts.set(s, (counts.get(s) ?? 0) + 1);
  let divisor = 0;
  for (const c of counts.values()) divisor = gcd(divisor, c);
  const names = [...counts.keys()].sort();
  const ordered = counts.has("C") ? ["C", ...(counts.has("H") ? ["H"] : []), ...names.filter((n) => n !== "C" && n !== "H")] : names;
  return ordered.map((n) => n + (counts.get(n)! / divisor === 1 ? "" : String(counts.get(n)! / divisor))).join("");
}

export function median(sorted: Float64Array): number {
  const n = sorted.length;
  const mid = n >> 1;
  return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** 0.6745 = the 75th percentile of the standard normal: it makes MAD-based z-scores comparable to ordinary ones. */
const MAD_TO_SIGMA = 0.6745;

export interface RobustScores {
  median: number;
  /** Median absolute deviation from the median (at least the floor given). */
  mad: number;
  /** Indices (into the values given) whose |z| exceeds the threshold, with their z. */
  outliers: Array<{ index: number; z: number }>;
}

/**
 * Robust z-scores z = 0.6745 (x - median) / MAD and the values beyond `threshold`. The MAD is taken as at least
 * `minMad`, so values that barely spread (one long MD run) do not turn small offsets into huge z. Null when the
 * values cannot be judged: fewer than 3 of them, or a MAD of 0 (half or more of the values equal, and no floor).
 */
export function robustOutliers(values: Float64Array, threshold: number, minMad = 0): RobustScores | null {
  if (values.length < 3) return null;
  const sorted = Float64Array.from(values).sort();
  const med = median(sorted);
  const deviations = Float64Array.from(values, (v) => Math.abs(v - med)).sort();
  const mad = Math.max(median(deviations), minMad);
  if (!(mad > 0)) return null;
  const outliers: Array<{ index: number; z: number }> = [];
  for (let i = 0; i < values.length; i++) {
    const z = (MAD_TO_SIGMA * (values[i] - med)) / mad;
    if (Math.abs(z) > threshold) outliers.push({ index: i, z });
  }
  return { median: med, mad, outliers };
}
