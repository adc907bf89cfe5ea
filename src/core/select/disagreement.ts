/**
 * Committee disagreement per candidate, from each member's predictions aligned to the candidates.
 *
 * energy (the reference heuristic): population std across members of the predicted energy per atom,
 *   in eV/atom.
 * force (DP-GEN model deviation): max over atoms i of sqrt(mean_k |F_i^k - <F_i>|^2), in eV/A,
 *   <F_i> the committee mean of atom i's force.
 *
 * Trust window LO:HI (in the score's unit): below LO "accurate", at or above HI "suspect", both left
 * out of the selection by default (as DP-GEN does); excludedByTrust gives SelectionInput.excluded for a choice.
 * Normalisation, over the candidates that may be selected and are inside the window (normaliseDisagreement): min-max
 * to [0, 1] for the weighted sum, all zeros when those are constant; divided by the largest for uwfps, whose
 * u^alpha * d^beta must not give the least uncertain candidate a score of 0, all ones when constant. Values outside
 * the window are clamped.
 */

import { InputError, UsageError } from "../errors.js";

/**
 * Scores whose spread is below this fraction of the largest count as constant: stretched to [0, 1], float64
 * rounding noise (members that differ by a constant offset, say) would otherwise decide the ranking.
 */
export const CONSTANT_RELATIVE_SPREAD = 1e-9;

export type DisagreementKind = "energy" | "force";

export interface CommitteePrediction {
  /** The member's prediction file, for error messages. */
  source: string;
  /** Predicted total energy of each candidate in eV, in candidate order. */
  energies?: ArrayLike<number>;
  /** Predicted forces of each candidate (3 * natoms values, eV/A), in candidate order. */
  forces?: readonly (ArrayLike<number> | undefined)[];
}

export interface CandidateAtoms {
  natoms: ArrayLike<number>;
  ids: readonly string[];
  /** 1 for candidates the members need not predict (labelled structures in the pool): their disagreement is NaN. */
  unpredicted?: Uint8Array;
}

export function committeeDisagreement(
  members: readonly CommitteePrediction[],
  kind: DisagreementKind,
  candidates: CandidateAtoms,
): Float64Array {
  if (members.length < 2) {
    const names = members.map((m) => m.source).join(", ");
    throw new UsageError(`a committee needs at least 2 models to disagree, got ${members.length}${names ? ` (${names})` : ""}`);
  }
  const N = candidates.ids.length;
  if (candidates.natoms.length !== N) throw new RangeError(`${candidates.natoms.length} atom counts for ${N} candidates`);
  for (const member of members) {
    const values = kind === "energy" ? member.energies : member.forces;
    if (!values) {
      throw new InputError(member.source, undefined, `has no predicted ${kind === "energy" ? "energies" : "forces"}; a committee member needs one per candidate`);
    }
    if (values.length !== N) {
      throw new InputError(member.source, undefined, `has ${values.length} predictions, expected ${N} (one per candidate, in candidate order)`);
    }
  }
  return kind === "energy" ? energyDisagreement(members, candidates) : forceDisagreement(members, candidates);
}

function where(candidates: CandidateAtoms, i: number): string {
  return `candidate ${i} (${candidates.ids[i]})`;
}

function energyDisagreement(members: readonly CommitteePrediction[], candidates: CandidateAtoms): Float64Array {
  const N = candidates.ids.length;
  const K = members.length;
  const out = new Float64Array(N);
  const perAtom = new Float64Array(K);
  for (let i = 0; i < N; i++) {
    if (candidates.unpredicted?.[i]) {
      out[i] = NaN;
      continue;
    }
    const natoms = candidates.natoms[i];
    if (!(natoms >= 1)) throw new RangeError(`${where(candidates, i)} has ${natoms} atoms`);
    let mean = 0;
    for (let k = 0; k < K; k++) {
      const energy = (members[k].energies as ArrayLike<number>)[i];
      if (!Number.isFinite(energy)) {
        throw new InputError(members[k].source, where(candidates, i), `predicted energy is ${energy}, expected a finite number`);
      }
      perAtom[k] = energy / natoms;
      mean += perAtom[k];
    }
    mean /= K;
    let variance = 0;
    for (let k = 0; k < K; k++) variance += (perAtom[k] - mean) ** 2;
    out[i] = Math.sqrt(variance / K);
  }
  return out;
}

function forceDisagreement(members: readonly CommitteePrediction[], candidates: CandidateAtoms): Float64Array {
  const N = candidates.ids.length;
  const K = members.length;
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    if (candidates.unpredicted?.[i]) {
      out[i] = NaN;
      continue;
    }
    const natoms = candidates.natoms[i];
    const forces: ArrayLike<number>[] = [];
    for (const member of members) {
      const f = (member.forces as readonly (ArrayLike<number> | undefined)[])[i];
      if (!f) throw new InputError(member.source, where(candidates, i), "has no predicted forces");
      if (f.length !== 3 * natoms) {
        throw new InputError(member.source, where(candidates, i), `has ${f.length / 3} force vectors, expected ${natoms} (one per atom)`);
      }
      for (let v = 0; v < f.length; v++) {
        if (!Number.isFinite(f[v])) {
          throw new InputError(member.source, where(candidates, i), `force on atom ${Math.floor(v / 3)} is not a finite number`);
        }
      }
      forces.push(f);
    }
    let worst = 0;
    for (let a = 0; a < natoms; a++) {
      let mx = 0, my = 0, mz = 0;
      for (const f of forces) {
        mx += f[3 * a];
        my += f[3 * a + 1];
        mz += f[3 * a + 2];
      }
      mx /= K;
      my /= K;
      mz /= K;
      let spread = 0;
      for (const f of forces) spread += (f[3 * a] - mx) ** 2 + (f[3 * a + 1] - my) ** 2 + (f[3 * a + 2] - mz) ** 2;
      const deviation = Math.sqrt(spread / K);
      if (deviation > worst) worst = deviation;
    }
    out[i] = worst;
  }
  return out;
}

export interface TrustWindow {
  lo: number;
  hi: number;
}

export const TRUST_CANDIDATE = 0;
export const TRUST_ACCURATE = 1;
export const TRUST_SUSPECT = 2;

/** Parses "LO:HI" (0 <= LO < HI; HI may be "inf"). */
export function parseTrustWindow(text: string): TrustWindow {
  const match = /^\s*([^:\s]+)\s*:\s*([^:\s]+)\s*$/.exec(text);
  const lo = match ? Number(match[1]) : NaN;
  const hi = match ? (/^inf$/i.test(match[2]) ? Infinity : Number(match[2])) : NaN;
  if (!(Number.isFinite(lo) && lo >= 0 && hi > lo)) {
    throw new UsageError(`trust window "${text}" is not LO:HI with 0 <= LO < HI (e.g. 0.05:0.3)`);
  }
  return { lo, hi };
}

/** TRUST_ACCURATE below lo, TRUST_SUSPECT at or above hi, TRUST_CANDIDATE in between. */
export function trustLevels(raw: Float64Array, window: TrustWindow): Uint8Array {
  const levels = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    levels[i] = raw[i] < window.lo ? TRUST_ACCURATE : raw[i] >= window.hi ? TRUST_SUSPECT : TRUST_CANDIDATE;
  }
  return levels;
}

/** Trust levels by name, as ranking.csv flags them. */
export const TRUST_LEVEL_NAMES = ["accurate", "suspect"] as const;
export type TrustLevelName = (typeof TRUST_LEVEL_NAMES)[number];
/** The trust levels left out of the selection, in TRUST_LEVEL_NAMES order. */
export type TrustExclusion = readonly TrustLevelName[];
export const DEFAULT_TRUST_EXCLUSION: TrustExclusion = TRUST_LEVEL_NAMES;

/** Parses "accurate,suspect", "accurate", "suspect" or "none" (names in any order, each once). */
export function parseTrustExclusion(text: string): TrustExclusion {
  const names = text.trim() === "none" ? [] : text.split(",").map((n) => n.trim());
  const known = (n: string): n is TrustLevelName => (TRUST_LEVEL_NAMES as readonly string[]).includes(n);
  if (!names.every(known) || new Set(names).size !== names.length) {
    throw new UsageError(`trust levels to exclude "${text}" are not accurate, suspect, both (accurate,suspect) or none`);
  }
  return TRUST_LEVEL_NAMES.filter((n) => names.includes(n));
}

/** Nonzero for the candidates whose level is excluded (SelectionInput.excluded). */
export function excludedByTrust(levels: Uint8Array, exclude: TrustExclusion): Uint8Array {
  const accurate = exclude.includes("accurate");
  const suspect = exclude.includes("suspect");
  return levels.map((level) => Number((level === TRUST_ACCURATE && accurate) || (level === TRUST_SUSPECT && suspect)));
}

/** The range of raw[i] over the candidates with counted[i] = 1 (all when absent); constant when within CONSTANT_RELATIVE_SPREAD. */
export function disagreementRange(raw: Float64Array, counted?: Uint8Array): { min: number; max: number; constant: boolean } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < raw.length; i++) {
    if (counted && !counted[i]) continue;
    if (raw[i] < min) min = raw[i];
    if (raw[i] > max) max = raw[i];
  }
  return { min, max, constant: !(max - min > CONSTANT_RELATIVE_SPREAD * max) };
}

/**
 * The disagreement on [0, 1], from the range of the candidates with counted[i] = 1 (all when absent): "min-max" maps
 * that range onto [0, 1] (zeros when constant), "max" divides by its top (ones when constant, zero included). Values
 * outside the range are clamped.
 */
export function normaliseDisagreement(raw: Float64Array, counted?: Uint8Array, scale: "min-max" | "max" = "min-max"): Float64Array {
  const { min, max, constant } = disagreementRange(raw, counted);
  const out = new Float64Array(raw.length);
  if (constant) return scale === "max" ? out.map((_, i) => (Number.isNaN(raw[i]) ? 0 : 1)) : out;
  const from = scale === "max" ? 0 : min;
  // NaN (a structure not predicted) gives 0: such a structure is labelled, never picked.
  for (let i = 0; i < raw.length; i++) out[i] = Math.min(1, Math.max(0, (raw[i] - from) / (max - from))) || 0;
  return out;
}
