import { stressVoigt } from "./formats/extxyz.js";
import { hillFormula, type Frame, type InfoValue } from "./structure.js";

/** What `relabel inspect` shows for one frame. Labels are looked up under MACE's REF_* keys first, then ASE's plain keys. */
export interface FrameSummary {
  natoms: number;
  formula: string;
  energy: number | null;
  freeEnergy: number | null;
  energySigma0: number | null;
  maxForce: number | null;
  /** Voigt xx yy zz yz xz xy, as stored (eV/A^3 for REF_stress and ASE's stress). */
  stress: number[] | null;
  pbc: [boolean, boolean, boolean];
  scfConverged: boolean | null;
}

function scalar(v: InfoValue | undefined): number | null {
  return v && (v.kind === "float" || v.kind === "int") ? v.value : null;
}

function firstScalar(frame: Frame, keys: string[]): number | null {
  for (const k of keys) {
    const v = scalar(frame.info.get(k));
    if (v !== null) return v;
  }
  return null;
}

export function maxForceNorm(forces: Float64Array): number {
  let max = 0;
  for (let i = 0; i < forces.length; i += 3) {
    const n = Math.hypot(forces[i], forces[i + 1], forces[i + 2]);
    if (n > max) max = n;
  }
  return max;
}

export function summarizeFrame(frame: Frame): FrameSummary {
  const forces = frame.arrays.get("REF_forces") ?? frame.arrays.get("forces");
  const converged = frame.info.get("scf_converged");
  return {
    natoms: frame.natoms,
    formula: hillFormula(frame.symbols),
    energy: firstScalar(frame, ["REF_energy", "energy"]),
    freeEnergy: firstScalar(frame, ["REF_free_energy", "free_energy"]),
    energySigma0: firstScalar(frame, ["REF_energy_sigma0"]),
    maxForce: forces && forces.dtype === "R" && forces.ncols === 3 ? maxForceNorm(forces.data) : null,
    stress: voigtOf(frame.info.get("REF_stress") ?? frame.info.get("stress")),
    pbc: frame.pbc,
    scfConverged: converged?.kind === "bool" ? converged.value : null,
  };
}

function voigtOf(v: InfoValue | undefined): number[] | null {
  return (v && stressVoigt(v)) ?? null;
}
