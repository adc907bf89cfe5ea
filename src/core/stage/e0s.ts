/**
 * Fixed isolated-atom energies (E0s) for a stage. MACE reads a `.json` E0s file as {atomic number: eV} and
 * breaks when it lists elements absent from the training data (mace#605), so the stage gets its own copy
 * holding exactly the dataset's elements, and a missing element is refused before anything is rendered.
 */
import { InputError } from "../errors.js";
import { e0sKeyToZ } from "./config.js";
import { elementSymbol } from "../elements.js";
import { parseJsonFile } from "./json-error.js";
import type { Frame } from "../structure.js";

/** Reads an E0s table from a JSON file's text: keys are element symbols or atomic numbers, values eV. */
export function parseE0sFile(text: string, file: string): Map<number, number> {
  const value = parseJsonFile(text, file, "expected E0s {element or atomic number: energy in eV}");
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(file, undefined, "expected an E0s object {element or atomic number: energy in eV}");
  }
  return e0sTable(value as Record<string, unknown>, file);
}

/** Checks and converts an E0s object (from a file or from the config) to atomic number -> eV. */
export function e0sTable(entries: Record<string, unknown>, source: string): Map<number, number> {
  const table = new Map<number, number>();
  for (const [key, energy] of Object.entries(entries)) {
    const z = e0sKeyToZ(key);
    if (z === undefined) throw new InputError(source, undefined, `E0s key "${key}" is neither an element symbol nor an atomic number`);
    if (typeof energy !== "number" || !Number.isFinite(energy)) {
      throw new InputError(source, undefined, `E0s of "${key}" must be a number (eV), got ${JSON.stringify(energy)}`);
    }
    if (table.has(z)) throw new InputError(source, undefined, `E0s lists element ${elementSymbol(z)} (Z=${z}) twice`);
    table.set(z, energy);
  }
  return table;
}

export interface StageE0s {
  /** The JSON file MACE reads: {"Z": eV} for exactly the dataset's elements, ascending Z. */
  text: string;
  /** Elements of the given table left out because the dataset does not contain them. */
  dropped: number[];
}

export function stageE0s(table: Map<number, number>, atomicNumbers: readonly number[], source: string): StageE0s {
  const missing = atomicNumbers.filter((z) => !table.has(z));
  if (missing.length > 0) {
    throw new InputError(source, undefined, `E0s has no energy for ${missing.map((z) => `${elementSymbol(z)} (Z=${z})`).join(", ")}, which the dataset contains`);
  }
  const kept: Record<string, number> = {};
  for (const z of atomicNumbers) kept[String(z)] = table.get(z)!;
  const dropped = [...table.keys()].filter((z) => !atomicNumbers.includes(z)).sort((a, b) => a - b);
  return { text: `${JSON.stringify(kept, null, 2)}\n`, dropped };
}

/** MACE's config_type for the one-atom frames its E0s come from (mace data/utils.py). */
export const ISOLATED_ATOM = "IsolatedAtom";

/** A frame MACE takes as an isolated-atom reference: one atom with config_type=IsolatedAtom. */
export function isIsolatedAtomFrame(frame: Pick<Frame, "natoms" | "info">): boolean {
  const type = frame.info.get("config_type");
  return frame.natoms === 1 && type?.kind === "string" && type.value === ISOLATED_ATOM;
}

/** The warning for a train split holding isolated-atom frames: MACE (run_train.py) then ignores --E0s. */
export function isolatedAtomWarning(file: string, frames: number, e0s: string): string {
  return `${file}: ${frames} IsolatedAtom frame${frames === 1 ? "" : "s"} (config_type=IsolatedAtom, one atom): MACE takes the E0s from ${frames === 1 ? "it" : "them"} instead of --E0s=${e0s}`;
}
