import type { VaspStep } from "./types.js";

/** The few numbers of an OUTCAR step needed to cross-check it against the vasprun.xml step of the same index. */
export interface StepSignature {
  natoms: number;
  freeEnergy: number;
  energySigma0: number;
}

export function signatureOf(step: VaspStep): StepSignature {
  return { natoms: step.symbols.length, freeEnergy: step.freeEnergy, energySigma0: step.energySigma0 };
}

/** Both files print energies with 8 decimals; anything beyond rounding is a real disagreement. */
export const CROSS_CHECK_TOLERANCE_EV = 1e-5;

/** Describes how a vasprun.xml step disagrees with the OUTCAR step of the same index, or returns null. */
export function compareStep(step: VaspStep, other: StepSignature | undefined): string | null {
  if (!other) return `step ${step.index}: in vasprun.xml but not in OUTCAR`;
  const problems: string[] = [];
  if (other.natoms !== step.symbols.length) problems.push(`${step.symbols.length} atoms vs ${other.natoms} in OUTCAR`);
  if (Math.abs(other.freeEnergy - step.freeEnergy) > CROSS_CHECK_TOLERANCE_EV)
    problems.push(`free energy ${step.freeEnergy} vs ${other.freeEnergy} eV in OUTCAR`);
  if (Math.abs(other.energySigma0 - step.energySigma0) > CROSS_CHECK_TOLERANCE_EV)
    problems.push(`sigma->0 energy ${step.energySigma0} vs ${other.energySigma0} eV in OUTCAR`);
  return problems.length ? `step ${step.index}: ${problems.join("; ")}` : null;
}
