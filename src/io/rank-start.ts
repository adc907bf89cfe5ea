/**
 * What `relabel rank` does before it reads the pool: the checks of its options and output, the pool's files, and
 * the early selection (see startEarlySelection). Its own module, with only the selection's and the features'
 * modules behind it, so that the CLI loads the pool readers (15-20 ms of loading) after the selection started.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { availableParallelism } from "node:os";
import { InputError, UsageError } from "../core/errors.js";
import type { DescriptorKind } from "../core/select/descriptors.js";
import type { DisagreementKind, TrustExclusion, TrustWindow } from "../core/select/disagreement.js";
import { createFeatureMatrix, type PlacedRows } from "../core/select/feature-matrix.js";
import { allocateSelection, type SelectionMemory, type SelectionRule } from "../core/select/fps.js";
import { applyScaler, fitScaler, type ScalingMode } from "../core/select/scaling.js";
import type { SpeciesIncarValues } from "../core/vasp/incar.js";
import type { PotcarBlock } from "../core/vasp/potcar.js";
import { compileKernelAhead, selectionThreads, startSelectionWorker, type WorkerSelection } from "../exec/fps-threads.js";
import { readNpyRows } from "./feature-file.js";
import { folderEntries } from "./folder-entries.js";
import { sha256FileSync } from "./open.js";
import { poolUnits, type PoolUnit } from "./pool.js";
import type { PickIncar } from "./selected.js";
import type { StructureFeatureFiles } from "./structure-features.js";
import { datasetSplitFile } from "./run-files.js";

export interface RankOptions {
  pool: string[];
  select: number;
  out: string;
  labeled?: string[];
  /** The element of each LAMMPS atom type (type 1 first), for dumps without an element column. */
  typeMap?: string[];
  /** mace_eval_configs outputs, one per committee member (MACE_energy / MACE_forces). */
  committee?: string[];
  /** Committee predictions inside the pool: info `<prefix><member>_energy`, arrays `<prefix><member>_forces`. */
  committeeKeys?: string;
  disagreement?: DisagreementKind;
  forceTrust?: TrustWindow;
  /** The trust levels left out of the selection (default: both); needs forceTrust. */
  trustExclude?: TrustExclusion;
  rule?: SelectionRule;
  descriptor?: DescriptorKind;
  /** A feature matrix (.npy or JSON rows), one row per candidate in pool order. */
  features?: string;
  /** With `features` and `labeled`: a matrix of the labelled structures' features, one row each in the order they are read. */
  labeledFeatures?: string;
  /** Or extxyz files of per-structure features (mace_eval_configs --return_descriptors), matched by structure. */
  featuresFrom?: StructureFeatureFiles;
  scaling?: ScalingMode;
  bins?: number;
  rmax?: number;
  /**
   * Also write OUT/poscars/<rank>-<candidate_id>/POSCAR for each pick (a structure without a cell in a box with
   * `vacuum` A between copies, default DEFAULT_VACUUM), with the files of `inputs` (INCAR, KPOINTS, ...) beside each
   * and `incarValues` written into each pick's INCAR; with `potcarSymbols`, a POTCAR.spec beside each.
   */
  poscars?: { vacuum?: number; inputs?: string; incarValues?: SpeciesIncarValues; potcarSymbols?: ReadonlyMap<string, string> };
  /** Threads for reading large extxyz pools and for the selection (default: up to 2); results do not depend on it. */
  threads?: number;
  software: { name: string; version: string };
  /** Progress callback for the CLI's progress bar. */
  onProgress?: (phase: string, done: number, total?: number) => void;
  /**
   * Called on this thread once a selection runs on a worker thread while this one reads the pool (the CLI lowers
   * this thread's scheduling priority then: the selection is the run's long pole).
   */
  onEarlySelection?: () => void;
}

const DATASET_SPLITS = ["train.extxyz", "valid.extxyz", "test.extxyz"];

/**
 * --labeled paths as files and run directories: what --pool takes (the runs of a finished round, say), and a dataset
 * folder (relabel dataset build's output) stands for its split files.
 */
async function labelledUnits(paths: string[], typeMap?: readonly string[]): Promise<PoolUnit[]> {
  const units: PoolUnit[] = [];
  for (const p of paths) {
    const isFolder = (await stat(p).catch(() => null))?.isDirectory();
    const splits = isFolder ? DATASET_SPLITS.flatMap((name) => datasetSplitFile(p, name) ?? []) : [];
    if (splits.length > 0) units.push(...splits.map((file) => ({ path: file, kind: "extxyz" as const })));
    else units.push(...(await poolUnits([p], typeMap)));
  }
  return units;
}

/** A folder of VASP inputs, read before the ranking: its files, its POTCAR split by element, its INCAR as a template. */
export interface VaspInputs {
  dir: string;
  files: Array<{ name: string; content: Buffer }>;
  potcar?: { blocks: PotcarBlock[]; file: string };
  incar?: PickIncar;
}

/** The VASP inputs to go beside each pick's POSCAR, checked: `incarValues` need an INCAR that leaves their tags out. */
export async function readVaspInputs(dir: string, incarValues?: SpeciesIncarValues): Promise<VaspInputs> {
  const entries = await folderEntries(dir).catch((err: NodeJS.ErrnoException) => {
    throw new InputError(dir, undefined, err.code === "ENOTDIR" ? "is a file, expected a folder of VASP inputs (INCAR, KPOINTS, ...)" : "no such folder");
  });
  const names = entries.filter((e) => e.kind === "file").map((e) => e.name);
  const poscar = names.find((name) => /^(POSCAR|CONTCAR)$/i.test(name));
  if (poscar) throw new InputError(path.join(dir, poscar), undefined, "each pick gets its own POSCAR; leave it out of the VASP inputs folder");
  if (names.length === 0) throw new InputError(dir, undefined, "holds no files, expected VASP inputs (INCAR, KPOINTS, ...)");
  const files = await Promise.all(names.map(async (name) => ({ name, content: await readFile(path.join(dir, name)) })));
  const text = (name: string) => files.find((f) => f.name === name)?.content.toString("latin1");
  const inputs: VaspInputs = { dir, files };
  // A POTCAR is split into each pick's, an INCAR completed for each: a broken one stops before the ranking.
  const potcar = text("POTCAR");
  if (potcar !== undefined) {
    const { splitPotcar } = await import("../core/vasp/potcar.js");
    inputs.potcar = { blocks: splitPotcar(potcar, path.join(dir, "POTCAR")), file: path.join(dir, "POTCAR") };
  }
  const incar = text("INCAR");
  const values = incarValues ?? { names: { magmom: "--magmom", ldau: "--ldau" } };
  if (incar !== undefined) {
    const { checkIncarTemplate } = await import("../core/vasp/incar.js");
    checkIncarTemplate(incar, path.join(dir, "INCAR"), values);
    inputs.incar = { text: incar, file: path.join(dir, "INCAR"), values };
  } else if (incarValues?.magmom || incarValues?.ldau) {
    throw new InputError(dir, undefined, `holds no INCAR, expected one for ${incarValues.magmom ? incarValues.names.magmom : incarValues.names.ldau} to complete for each pick`);
  }
  return inputs;
}

async function assertFreshOutput(out: string): Promise<void> {
  try {
    const entries = await readdir(out);
    if (entries.length > 0) throw new UsageError(`${out} exists and is not empty: a ranking is never written over an earlier one; choose a new -o`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const isFile = code === "ENOTDIR" && (await stat(out).then((s) => s.isFile(), () => false));
    if (isFile) throw new UsageError(`${out} is a file: -o names the folder the ranking goes into; choose a new one`);
    // A parent that is not a folder fails when the ranking's folder is made, with -o named.
    if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
  }
}

/**
 * While a selection runs beside the pool scan, the scan gets worker threads only from this size: below,
 * they slow the selection more than they speed the scan (measured at 1e5, 3e5 and 1e6 8-atom frames).
 */
export const EARLY_PARALLEL_SCAN_MIN_BYTES = 128 << 20;
/** Below this many feature values the selection takes less than starting its worker thread costs. */
const EARLY_SELECTION_MIN_VALUES = 1_000_000;

/**
 * Up to this many feature values, an early selection keeps every candidate in its own thread's region: the passes
 * run there alone, and its other thread only helps catch candidates up. Laid out over both regions, one thread
 * sweeping them alone paid each pass's bookkeeping twice (a 1e5 x 100 mixture took 60-140 ms longer in `relabel
 * rank`), but above it the other thread joins the passes once they are heavy, which pays at 1e6 x 100 (the picks
 * after the pool read took 2.0 s instead of 2.8 s on one thread).
 */
const EARLY_ONE_REGION_MAX_VALUES = 30_000_000;

/** A selection started before the pool was read (see startEarlySelection), on scaled features. */
export interface EarlySelection {
  /** Rows of the features, which are in the selection's memory. */
  rows: number;
  running: WorkerSelection;
  /** Picks made so far (their rows, in greedy order); onPick hears further ones once set (after the pool is read). */
  progress: { picked: number; rows: number[]; onPick?: (picked: number) => void };
  /** The features file's sha256. */
  featuresSha256: string;
}

/**
 * With a .npy of features and nothing else the selection needs from the pool (no labelled set, no
 * committee), the selection starts on a worker thread while this thread reads the pool, taking every
 * candidate as distinct; the candidate ids confirm it afterwards (confirmWithIds) or it runs again.
 * Undefined when that does not apply or anything fails on the way: the usual path then reads the
 * features again and reports what is wrong, in its usual order.
 */
async function startEarlySelection(o: RankOptions): Promise<EarlySelection | undefined> {
  if (!o.features || o.labeled?.length || o.committee?.length || o.committeeKeys || o.forceTrust) return undefined;
  if ((o.threads ?? availableParallelism()) < 2) return undefined;
  // The worker boots while the features are read (when they are likely to be enough for it).
  const bytes = (await stat(o.features).catch(() => undefined))?.size ?? 0;
  const worker = bytes >= 4 * EARLY_SELECTION_MIN_VALUES ? startSelectionWorker() : undefined;
  if (worker === undefined) return undefined;
  const decline = (): undefined => {
    void worker.stop();
    return undefined;
  };
  try {
    // Read straight into the selection's (shared) memory, which the worker then uses as it is.
    const into: { placed?: SelectionMemory } = {};
    const place = placeInSelection(o, into, { shared: true, oneRegionUpTo: EARLY_ONE_REGION_MAX_VALUES });
    // Its kernel compiles on V8's threads meanwhile (it took the worker 15-30 ms at N = 1e5).
    let compiled: Promise<void> | undefined;
    const read = await readNpyRows(o.features, (rows, cols) => {
      if (rows * cols < EARLY_SELECTION_MIN_VALUES) return createFeatureMatrix(rows, cols);
      const rowsPlaced = place(rows, cols);
      compiled = compileKernelAhead(into.placed!);
      compiled.catch(() => undefined); // awaited below, unless the read fails first
      return rowsPlaced;
    });
    await compiled;
    const { placed } = into;
    // A value that is not finite stops the selection (fps.ts checks every value); the features are then read
    // again (featuresAgain) and the value reported.
    if (read === undefined || placed === undefined) return decline();
    const { candidates } = placed;
    applyScaler(fitScaler(candidates, o.scaling ?? "standard"), candidates);
    const progress: EarlySelection["progress"] = { picked: 0, rows: [] };
    const rows = candidates.rows;
    // Alone while this thread reads the pool: on two cores, a second selection thread would take the pool's.
    const onPick = (picked: number, pickRows: readonly number[]): void => {
      progress.picked = picked;
      progress.rows.push(...pickRows);
      progress.onPick?.(picked);
    };
    const rule = o.rule ?? { kind: "weighted", wDiv: 1, wDis: 0 };
    const running = worker.run({ features: placed, k: o.select, rule }, { threads: o.threads, onPick, alone: true });
    // Hashed now, while this thread has a core to itself: after the pool read it shares one with the selection's
    // second thread, at a lower priority (onEarlySelection), and the hash then kept the artifacts waiting 20-450 ms.
    const featuresSha256 = sha256FileSync(o.features);
    o.onEarlySelection?.();
    return { rows, running, progress, featuresSha256 };
  } catch {
    return decline();
  }
}

/**
 * Where a feature file's rows go once its shape is known: the memory of a selection of o.select candidates
 * (kept in `into.placed`) from `labelled` labelled structures, shared when asked so that it can go to a worker thread,
 * with its candidates on the first thread alone up to `oneRegionUpTo` feature values, else on every thread.
 */
export function placeInSelection(
  o: RankOptions, into: { placed?: SelectionMemory }, { shared = false, labelled = 0, oneRegionUpTo = 0 } = {},
): (rows: number, cols: number) => PlacedRows {
  return (rows, cols) => {
    const threads = selectionThreads(rows, cols, o.threads);
    const candidateThreads = rows * cols <= oneRegionUpTo ? 1 : threads;
    into.placed = allocateSelection(rows, cols, labelled, o.select, threads, shared || threads > 1, candidateThreads);
    return into.placed.candidates;
  };
}

/** What startRank found and started. */
export interface RankStart {
  units: PoolUnit[];
  /** Files in the pool's folders that are not structures it reads (a CIF, a README, a link to nothing). */
  unread: string[];
  early: EarlySelection | undefined;
  /** The labelled set's files and run directories (a dataset folder stands for its split files). */
  labeled: PoolUnit[];
  /** With poscars and an inputs folder: its files, read and checked. */
  vaspInputs?: VaspInputs;
}

/** The checks that need no pool read, the pool's files, then the early selection (none when it does not apply). */
export async function startRank(o: RankOptions): Promise<RankStart> {
  if (!Number.isInteger(o.select) || o.select < 1) throw new UsageError(`--select must be a positive integer (got ${o.select})`);
  if (o.committee?.length && o.committeeKeys) throw new UsageError("give either --committee files or --committee-keys, not both");
  if (o.trustExclude && !o.forceTrust) throw new UsageError("--trust-exclude needs a trust window (--force-trust LO:HI)");
  await assertFreshOutput(o.out);
  const vaspInputs = o.poscars?.inputs === undefined ? undefined : await readVaspInputs(o.poscars.inputs, o.poscars.incarValues);
  if (vaspInputs && o.poscars?.potcarSymbols) {
    if (vaspInputs.potcar) throw new UsageError(`${vaspInputs.potcar.file} is split into each pick's POTCAR: POTCAR.spec (--potcar-spec) is for runs without one`);
    if (vaspInputs.files.some((f) => f.name === "POTCAR.spec")) throw new UsageError(`${path.join(vaspInputs.dir, "POTCAR.spec")} would be written over by --potcar-spec: give one of them`);
  }
  const unread: string[] = [];
  const units = await poolUnits(o.pool, o.typeMap, unread);
  const labeled = await labelledUnits(o.labeled ?? [], o.typeMap);
  return { units, unread, early: await startEarlySelection(o), labeled, vaspInputs };
}
