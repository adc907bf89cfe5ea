/**
 * The label contract for extxyz input: the calculator results a frame carries under ASE's keys (info `energy`,
 * `free_energy`, `stress`, `virial`; the `forces` column) moved to the REF_* keys that VASP steps are written with
 * (vasp/labels.ts), so that one converted file is labelled one way whatever it was made from.
 */
import { stressVoigt } from "./formats/extxyz.js";
import { cellVolume, singularCell, type AtomArray, type Frame, type InfoValue } from "./structure.js";
import type { EnergyPolicy } from "./vasp/labels.js";

export interface RefLabelled {
  frame: Frame;
  /** The frame carries REF_energy (its own or moved from `energy`/`free_energy`). */
  hasEnergy: boolean;
  /** The frame carries a REF_forces column. */
  hasForces: boolean;
  /** Both `energy` and `free_energy` were there, so the energy policy chose REF_energy. */
  policyChose: boolean;
  /** A `virial` was left as it is: without a cell volume it gives no stress. */
  virialKept: boolean;
}

function scalar(v: InfoValue | undefined): number | undefined {
  return v && (v.kind === "float" || v.kind === "int") ? v.value : undefined;
}

const float = (value: number): InfoValue => ({ kind: "float", value });
const voigt = (data: number[]): InfoValue => ({ kind: "array", dtype: "float", shape: [6], data });

/**
 * REF_* labels from ASE's calculator keys. ASE stores a DFT code's sigma->0 energy as `energy` and the
 * force-consistent one (VASP's TOTEN) as `free_energy`: with both, REF_energy follows the policy as for VASP runs and
 * both are kept as REF_free_energy and REF_energy_sigma0; a lone energy becomes REF_energy as it is. `stress` (eV/A^3,
 * ASE's sign, as REF_stress of VASP steps) is written as 6 Voigt values; without one, a `virial` (eV) becomes
 * REF_stress = -virial / volume. A REF_* key the frame already has is kept and its ASE counterpart left alone.
 */
export function refLabelsFromCalculator(frame: Frame, policy: EnergyPolicy): RefLabelled {
  const info = new Map(frame.info);
  const ref = new Map<string, InfoValue>();
  let policyChose = false;
  let virialKept = false;

  if (!info.has("REF_energy")) {
    const energy = scalar(info.get("energy"));
    const free = scalar(info.get("free_energy"));
    if (energy !== undefined && free !== undefined) {
      ref.set("REF_energy", float(policy === "free" ? free : energy));
      if (!info.has("REF_free_energy")) ref.set("REF_free_energy", float(free));
      if (!info.has("REF_energy_sigma0")) ref.set("REF_energy_sigma0", float(energy));
      policyChose = true;
    } else if (energy !== undefined || free !== undefined) {
      ref.set("REF_energy", float((energy ?? free)!));
      if (free !== undefined && !info.has("REF_free_energy")) ref.set("REF_free_energy", float(free));
    }
    if (energy !== undefined) info.delete("energy");
    if (free !== undefined) info.delete("free_energy");
  }

  if (!info.has("REF_stress")) {
    const stress = info.get("stress");
    const fromStress = stress && stressVoigt(stress);
    const virial = info.get("virial");
    const fromVirial = virial && stressVoigt(virial);
    if (fromStress) {
      ref.set("REF_stress", voigt(fromStress));
      info.delete("stress");
    } else if (fromVirial && !singularCell(frame.cell)) {
      const volume = Math.abs(cellVolume(frame.cell));
      ref.set("REF_stress", voigt(fromVirial.map((w) => -w / volume)));
      info.delete("virial");
    } else if (fromVirial) {
      virialKept = true;
    }
  }

  let arrays = frame.arrays;
  const forces = arrays.get("forces");
  if (!arrays.has("REF_forces") && forces && forces.dtype === "R" && forces.ncols === 3) {
    // Renamed in place: the column keeps its place in Properties.
    arrays = new Map<string, AtomArray>([...arrays].map(([key, column]) => [key === "forces" ? "REF_forces" : key, column]));
  }

  // REF_* keys first, as VASP steps have them; the frame's other keys follow in their order.
  const labelled: Frame = { ...frame, info: new Map([...ref, ...info]), arrays };
  return { frame: labelled, hasEnergy: labelled.info.has("REF_energy"), hasForces: arrays.has("REF_forces"), policyChose, virialKept };
}
