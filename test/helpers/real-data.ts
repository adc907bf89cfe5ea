import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The real VASP / extxyz / MACE files kept beside the repo in ../shared/data/real (override with RELABEL_REAL_DATA). */
export const REAL_DATA = process.env.RELABEL_REAL_DATA ?? path.resolve(repoRoot, "../shared/data/real");

if (!existsSync(path.join(REAL_DATA, "reference", "ASE_READ.json"))) {
  throw new Error(`real test data not found at ${REAL_DATA}; set RELABEL_REAL_DATA to the shared/data/real folder`);
}

export function realPath(rel: string): string {
  return path.join(REAL_DATA, rel);
}

export interface AseFrameRef {
  n_atoms: number;
  formula: string;
  pbc: [boolean, boolean, boolean];
  cell: number[][];
  first_atom: { symbol: string; position: number[] };
  last_atom: { symbol: string; position: number[] };
  calc_result_keys?: string[];
  energy: number | null;
  free_energy: number | null;
  max_force_norm: number | null;
  max_abs_force_component?: number | null;
  force_first_atom: number[] | null;
  force_last_atom: number[] | null;
  stress_voigt_eV_per_A3: number[] | null;
  info?: Record<string, unknown>;
  arrays?: Record<string, { dtype: string; shape: number[]; [k: string]: unknown }>;
  constraints?: string[];
  species_in_order_of_first_appearance?: string[];
}

export interface AseFileRef {
  size_bytes: number;
  sha256: string;
  ase_format: string;
  ase_ok: boolean;
  ase_error?: string;
  n_frames?: number;
  frames?: AseFrameRef[];
  raw_outcar_text_scan?: Record<string, unknown>;
  raw_vasprun_energy_blocks?: Record<string, unknown>;
}

let cache: Record<string, AseFileRef> | undefined;

/** reference/ASE_READ.json: what ASE 3.22.1 reads from each real file, keyed by path relative to REAL_DATA. */
export function aseReference(): Record<string, AseFileRef> {
  cache ??= (JSON.parse(readFileSync(realPath("reference/ASE_READ.json"), "utf8")) as { files: Record<string, AseFileRef> }).files;
  return cache;
}
