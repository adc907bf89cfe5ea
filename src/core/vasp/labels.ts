import type { Frame, InfoValue } from "../structure.js";
import type { VaspStep } from "./types.js";

/** Which energy becomes REF_energy: the force-consistent free energy (TOTEN) or the sigma->0 extrapolation. */
export type EnergyPolicy = "free" | "sigma0";

export interface LabelContext {
  /** Run path relative to the input root. */
  source: string;
  vaspVersion: string | null;
  energy: EnergyPolicy;
}

/**
 * The label contract: a DFT step as an extxyz frame with MACE's REF_* keys.
 * REF_energy follows the policy; both energies are always kept so the choice can be audited and changed later.
 */
export function labelFrame(step: VaspStep, ctx: LabelContext): Frame {
  const info = new Map<string, InfoValue>();
  const float = (value: number): InfoValue => ({ kind: "float", value });
  info.set("REF_energy", float(ctx.energy === "free" ? step.freeEnergy : step.energySigma0));
  info.set("REF_free_energy", float(step.freeEnergy));
  info.set("REF_energy_sigma0", float(step.energySigma0));
  if (step.stress) info.set("REF_stress", { kind: "array", dtype: "float", shape: [6], data: Array.from(step.stress) });
  info.set("source", { kind: "string", value: ctx.source });
  info.set("ionic_step", { kind: "int", value: step.index });
  info.set("scf_steps", { kind: "int", value: step.scfSteps });
  if (step.nelm !== null) info.set("nelm", { kind: "int", value: step.nelm });
  info.set("scf_converged", { kind: "bool", value: step.scfConverged });
  if (ctx.vaspVersion) info.set("vasp_version", { kind: "string", value: ctx.vaspVersion });
  return {
    natoms: step.symbols.length,
    symbols: step.symbols,
    positions: step.positions,
    cell: step.cell,
    pbc: [true, true, true],
    info,
    arrays: new Map([["REF_forces", { dtype: "R", ncols: 3, data: step.forces }]]),
  };
}
