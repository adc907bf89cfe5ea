/**
 * Reading prediction and reference labels out of extxyz frames for the benchmark: energy (info, eV), forces
 * (per-atom column, eV/A) and stress (info; 6 Voigt values, 9 values or a 3x3 array, eV/A^3).
 */
import { createHash } from "node:crypto";
import { InputError } from "../errors.js";
import { candidateId } from "../select/candidate-id.js";
import { geometryOf, type Geometry } from "../select/near-match.js";
import type { Frame, InfoValue } from "../structure.js";

export interface LabelKeys {
  energy: string;
  forces: string;
  stress: string;
}

/** `PREFIXenergy`, `PREFIXforces`, `PREFIXstress`, each replaceable by an explicit key. */
export function labelKeys(prefix: string, overrides: Partial<LabelKeys> = {}): LabelKeys {
  return {
    energy: overrides.energy ?? `${prefix}energy`,
    forces: overrides.forces ?? `${prefix}forces`,
    stress: overrides.stress ?? `${prefix}stress`,
  };
}

export interface FrameLabels {
  /** eV. */
  energy: number | undefined;
  /** eV/A, 3 per atom. */
  forces: Float64Array | undefined;
  /** eV/A^3, the full 3x3 tensor, row-major. */
  stress: Float64Array | undefined;
}

/** What the benchmark keeps of one frame: identity, geometry, grouping and labels. */
export interface BenchFrame {
  /** 0-based position in its file. */
  index: number;
  /** 1-based line of the frame's atom-count line. */
  line: number;
  id: string;
  natoms: number;
  symbols: string[];
  /** Positions, cell and pbc, for pairing by geometry what the id does not pair (see pairFrames). */
  geometry: Geometry;
  /** info `config_type`, `Default` when missing. */
  configType: string;
  /** info `head`, undefined when missing. */
  head: string | undefined;
  labels: FrameLabels;
  /** Other energies of the same frame, to tell which one a reference energy is (see energyPolicyOf). */
  freeEnergy: number | undefined;
  sigma0Energy: number | undefined;
}

export interface ReadLabelsOptions {
  file: string;
  keys: LabelKeys;
  /** Missing energy/forces are errors (predictions); otherwise missing forces just leave the frame out of force metrics. */
  requireForces: boolean;
  /** Appended to "no KEY" errors: which option changes the key. */
  hint: string;
  /** Keys of the free and sigma->0 energies written next to REF_energy by `relabel convert`. */
  freeEnergyKey?: string;
  sigma0EnergyKey?: string;
}

/** `id` may be passed when the caller already has the frame's candidate id (reading two label sets of one frame). */
export function benchFrame(frame: Frame, index: number, line: number, options: ReadLabelsOptions, id = candidateId(frame)): BenchFrame {
  const { file, keys } = options;
  const fail = (detail: string): never => {
    throw new InputError(file, line, `frame ${index}: ${detail}`);
  };
  if (frame.natoms === 0) fail("no atoms (energy per atom is undefined)");
  const energyValue = frame.info.get(keys.energy);
  if (energyValue === undefined) fail(`no ${keys.energy} in the comment line (${options.hint})`);
  const energy = finiteScalar(energyValue!, keys.energy, fail);

  let forces: Float64Array | undefined;
  const forceColumn = frame.arrays.get(keys.forces);
  if (forceColumn === undefined) {
    if (options.requireForces) fail(`no ${keys.forces} column in Properties (${options.hint})`);
  } else {
    if (forceColumn.dtype !== "R" && forceColumn.dtype !== "I") fail(`${keys.forces}: expected a real column with 3 components, found type ${forceColumn.dtype}`);
    if (forceColumn.ncols !== 3) fail(`${keys.forces}: expected 3 components per atom, found ${forceColumn.ncols}`);
    forces = forceColumn.data as Float64Array;
    for (let i = 0; i < forces.length; i++) {
      if (!Number.isFinite(forces[i])) fail(`${keys.forces}: atom ${Math.floor(i / 3)} has a non-finite component (${forces[i]})`);
    }
  }

  let stress: Float64Array | undefined;
  const stressValue = frame.info.get(keys.stress);
  if (stressValue !== undefined) {
    stress = stressTensor(stressValue);
    if (!stress) fail(`${keys.stress}: expected 6 (Voigt), 9 or 3x3 numbers`);
    if (stress!.some((x) => !Number.isFinite(x))) fail(`${keys.stress}: non-finite value`);
  }

  const configType = frame.info.get("config_type");
  const head = frame.info.get("head");
  return {
    index,
    line,
    id,
    natoms: frame.natoms,
    symbols: frame.symbols,
    geometry: geometryOf(frame),
    configType: configType === undefined ? "Default" : infoText(configType),
    head: head === undefined ? undefined : infoText(head),
    labels: { energy, forces, stress },
    freeEnergy: optionalNumber(frame.info.get(options.freeEnergyKey ?? "")),
    sigma0Energy: optionalNumber(frame.info.get(options.sigma0EnergyKey ?? "")),
  };
}

function finiteScalar(v: InfoValue, key: string, fail: (detail: string) => never): number {
  if (v.kind !== "float" && v.kind !== "int") return fail(`${key}: expected a number, found ${v.kind === "array" ? "an array" : `a ${v.kind}`}`);
  if (!Number.isFinite(v.value)) return fail(`${key}: expected a finite number, found ${v.value}`);
  return v.value;
}

function optionalNumber(v: InfoValue | undefined): number | undefined {
  return v && (v.kind === "float" || v.kind === "int") ? v.value : undefined;
}

function infoText(v: InfoValue): string {
  if (v.kind === "string") return v.value;
  if (v.kind === "int" || v.kind === "float" || v.kind === "bool") return String(v.value);
  return JSON.stringify(v.kind === "array" ? v.data : v.value);
}

/**
 * A stress value as a row-major 3x3 tensor. Six values are Voigt (xx yy zz yz xz xy) and expand symmetrically;
 * nine flat values follow ASE's column-major reading (element (i,j) at i + 3j), as core/formats/extxyz.ts does.
 * Both orders agree for the symmetric tensors that DFT and MACE produce.
 */
export function stressTensor(v: InfoValue): Float64Array | undefined {
  if (v.kind !== "array" || v.dtype === "bool") return undefined;
  const d = v.data as number[];
  if (v.shape.length === 1 && d.length === 6) {
    const [xx, yy, zz, yz, xz, xy] = d;
    return Float64Array.of(xx, xy, xz, xy, yy, yz, xz, yz, zz);
  }
  if (v.shape.length === 1 && d.length === 9) {
    const t = new Float64Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) t[3 * i + j] = d[i + 3 * j];
    return t;
  }
  if (v.shape.length === 2 && v.shape[0] === 3 && v.shape[1] === 3) return Float64Array.from(d);
  return undefined;
}

/**
 * Which energy the reference energies are, judged from the free and sigma->0 energies `relabel convert` writes beside
 * REF_energy: "free" or "sigma0" when every frame that has both matches one of them (and they differ somewhere),
 * "mixed" when frames disagree, null when the frames do not tell.
 */
export function energyPolicyOf(frames: readonly BenchFrame[]): "free" | "sigma0" | "mixed" | null {
  let free = 0;
  let sigma0 = 0;
  let other = 0;
  for (const f of frames) {
    if (f.freeEnergy === undefined || f.sigma0Energy === undefined || f.freeEnergy === f.sigma0Energy) continue;
    if (f.labels.energy === f.freeEnergy) free++;
    else if (f.labels.energy === f.sigma0Energy) sigma0++;
    else other++;
  }
  if (free + sigma0 + other === 0) return null;
  if (other === 0 && sigma0 === 0) return "free";
  if (other === 0 && free === 0) return "sigma0";
  return "mixed";
}

/** sha256 (first 16 hex digits) of the multiset of candidate ids: changes when a structure enters or leaves the set. */
export function structuresHash(frames: readonly BenchFrame[]): string {
  const ids = frames.map((f) => f.id).sort();
  return createHash("sha256").update(ids.join("\n")).digest("hex").slice(0, 16);
}

/**
 * sha256 (first 16 hex digits) over ids and labels (energy, forces, stress in units of 1e-6): changes when any label
 * changes. Each frame is digested on its own and the sorted digests are hashed, so frame order does not matter.
 */
export function labelsHash(frames: readonly BenchFrame[]): string {
  const digests = frames.map((f) => {
    const { energy, forces, stress } = f.labels;
    const values = new Float64Array(3 + (forces?.length ?? 0) + (stress?.length ?? 0));
    let k = 0;
    values[k++] = micro(energy!);
    values[k++] = forces ? forces.length : -1;
    for (const x of forces ?? []) values[k++] = micro(x);
    values[k++] = stress ? stress.length : -1;
    for (const x of stress ?? []) values[k++] = micro(x);
    return createHash("sha256").update(f.id).update(new Uint8Array(values.buffer)).digest("hex");
  });
  digests.sort();
  return createHash("sha256").update(digests.join("\n")).digest("hex").slice(0, 16);
}

/** x in units of 1e-6, rounded, with -0 as 0 (their bytes differ). */
function micro(x: number): number {
  const r = Math.round(x * 1e6);
  return r === 0 ? 0 : r;
}
