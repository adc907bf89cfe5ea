/**
 * `relabel rank` as a function: reads the pool (three streaming passes: ids and species, descriptors, the
 * picked frames only; large extxyz files get their descriptors in the first), the labelled set and the
 * committee, runs the selection and writes the ranking artifacts into a new directory. Shared by the CLI
 * and the GitHub App.
 */
import { writeSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { InputError, StructureError, UsageError } from "../core/errors.js";
import type { FrameStarts } from "../core/formats/extxyz-segments.js";
import { CandidateNamer, candidateId, firstOccurrences, type CandidateSummaries } from "../core/select/candidate-id.js";
import {
  computeDescriptors,
  DEFAULT_BINS,
  DEFAULT_R_MAX,
  descriptorColumns,
  placeDescriptorRows,
  type CandidateOrigin,
  type DescribedFrame,
  type DescriptorOptions,
  type LocalDescriptorOptions,
  type SpeciesRows,
} from "../core/select/descriptors.js";
import {
  committeeDisagreement,
  DEFAULT_TRUST_EXCLUSION,
  disagreementRange,
  excludedByTrust,
  normaliseDisagreement,
  TRUST_CANDIDATE,
  trustLevels as levelsOf,
  type CommitteePrediction,
} from "../core/select/disagreement.js";
import {
  checkFeatureRowCount, copyRows, createFeatureMatrix, rowsOf, validateFeatureMatrix, type FeatureMatrix, type MatrixRows, type PlacedRows,
} from "../core/select/feature-matrix.js";
import { DFT_OUTPUT_TOLERANCE, geometryOf, NEAR_MATCH_TOLERANCE, NearStructureIndex, type Geometry } from "../core/select/near-match.js";
import { allocateSelection, confirmWithIds, type SelectionMemory, type SelectionResult, type SelectionRule } from "../core/select/fps.js";
import { leftOutCounts, poscarFolderName, rankingCsvLeads, rankingCsvParts, rankingRule, renderRankingJson, type CandidateMeta, type RankingInputs } from "../core/select/ranking.js";
import { applyScaler, fitScaler, type ScalingMode } from "../core/select/scaling.js";
import type { Frame } from "../core/structure.js";
import { parseIncar } from "../core/vasp/incar.js";
import { kpointsAdvice, type PickCell } from "../core/vasp/kpoints.js";
import { DEFAULT_VACUUM } from "../core/vasp/poscar.js";
import { encutAdvice, type PickSpeciesLine } from "../core/vasp/potcar.js";
import { releaseArray, selectCandidatesThreaded, selectionThreads } from "../exec/fps-threads.js";
import { nativeExtxyzFrames } from "../exec/native-kernels.js";
import { ExtxyzReadTrace, readExtxyz, readExtxyzFrameRanges, readExtxyzFramesAt, summarizeExtxyz, type ExtxyzFrameRange } from "./extxyz.js";
import { ExtxyzScanner, PARALLEL_SCAN_MIN_BYTES } from "./extxyz-scan.js";
import { readFeatureFile, readNpyFeatures } from "./feature-file.js";
import { firstRowOf, FramesToRows, GEOMETRY_MATCH_PHASE, sameValues } from "./matched-frames.js";
import { sha256File } from "./open.js";
import { checkRanked, pickPoscars, SelectedFramesInAdvance, writeSelectedFrames, type FrameLocator, type SelectedPick } from "./selected.js";
import { readPoolUnit, type PoolUnit } from "./pool.js";
import { readStructureFeatures } from "./structure-features.js";
import { EARLY_PARALLEL_SCAN_MIN_BYTES, placeInSelection, startRank, type EarlySelection, type RankOptions, type RankStart, type VaspInputs } from "./rank-start.js";

export type { RankOptions, RankStart } from "./rank-start.js";

export interface RankOutcome {
  dir: string;
  result: SelectionResult;
  candidates: CandidateMeta[];
  rule: string;
  files: string[];
  /** "source: note" for each pool source that gave fewer structures than it holds steps (ranking.json keeps them). */
  notes: string[];
  /**
   * With poscars: the ranks of the picks without a cell, whose POSCARs put them in a box with `vacuum` A of vacuum,
   * and what the VASP inputs do not suit among the picks (a KPOINTS mesh, ENCUT with the POTCAR), in words.
   */
  poscars?: { boxed: number[]; vacuum: number; advice: string[] };
  /** Pool sources that could not be read and were left out (ranking.json's skipped_sources). */
  skipped: SkippedSource[];
  /** Why candidates were not selectable (ranking.csv's flags, counted). */
  leftOut: ReturnType<typeof leftOutCounts>;
  /** A committee whose disagreement is the same for every selectable candidate (identical members, say). */
  constantDisagreement: boolean;
}

const BATCH = 4096;

interface Candidates {
  meta: CandidateMeta[];
  /** writeProjections of each candidate, two numbers each (for finding labelled structures by geometry; only with a labelled set). */
  projections: number[];
  species: Set<string>;
  /** Member label -> per-candidate energies / forces, from --committee-keys. */
  keyed: Map<string, { energies: number[]; forces: (Float64Array | undefined)[] }>;
}

/** Worker threads for large extxyz files, started when first needed and shared by the passes over the pool. */
class ScanWorkers {
  private scanner: ExtxyzScanner | undefined;
  private opened = false;

  constructor(private readonly threads: number | undefined) {}

  /** The scanner for a file of this size, or undefined when it is read on this thread. */
  async scannerFor(unit: PoolUnit, minBytes = PARALLEL_SCAN_MIN_BYTES): Promise<ExtxyzScanner | undefined> {
    if (unit.kind !== "extxyz" || (await stat(unit.path)).size < minBytes) return undefined;
    if (!this.opened) {
      this.opened = true;
      this.scanner = ExtxyzScanner.open(this.threads);
    }
    return this.scanner;
  }

  /** Stops the workers (their memory goes before the selection's comes); a later pass would start new ones. */
  async close(): Promise<void> {
    const scanner = this.scanner;
    this.scanner = undefined;
    this.opened = false;
    await scanner?.close();
  }
}

/** A pool source that could not be read: left out of the ranking, and said so. */
export interface SkippedSource {
  path: string;
  /** The reader's one-line error (file, line, what was expected). */
  problem: string;
}

interface ScannedPool {
  c: Candidates;
  /** The sources read, and their units (the same index in both). */
  sources: ScannedSource[];
  units: PoolUnit[];
  skipped: SkippedSource[];
  /** The first source's read error, raised as it is when no source could be read. */
  firstError?: InputError;
}

/**
 * Pass 1: candidate ids, metadata, species and (with --committee-keys) the committee's predictions. A source whose
 * file cannot be read is left out whole (its candidates so far taken back) and reported: one bad file does not sink
 * a pool. With --features it cannot be: the feature rows follow every source's candidates.
 */
async function scanPool(units: PoolUnit[], o: RankOptions, workers: ScanWorkers, parallelMinBytes: number, projections: boolean): Promise<ScannedPool> {
  const c: Candidates = { meta: [], projections: [], species: new Set(), keyed: new Map() };
  const scanned: ScannedPool = { c, sources: [], units: [], skipped: [] };
  const prefix = o.committeeKeys;
  const energyKey = prefix ? new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(.+)_energy$`) : null;
  for (const unit of units) {
    const undo = candidatesMark(c);
    try {
      // Large extxyz files are parsed on worker threads, unless the committee's predictions must be read too.
      const scanner = energyKey ? undefined : await workers.scannerFor(unit, parallelMinBytes);
      scanned.sources.push(scanner ? await scanInParallel(scanner, unit, c, o, projections) : await scanOnThisThread(unit, c, o, energyKey, projections));
      scanned.units.push(unit);
    } catch (err) {
      // Only the source's own read problems: a structure that cannot be described stops the ranking, named.
      if (!(err instanceof InputError) || err instanceof StructureError || err.file !== unit.path || o.features) throw err;
      undo();
      scanned.firstError ??= err;
      scanned.skipped.push({ path: unit.path.split(path.sep).join("/"), problem: err.message });
    }
  }
  return scanned;
}

/** Takes back what a source added to the candidates when it turns out unreadable. */
function candidatesMark(c: Candidates): () => void {
  const rows = c.meta.length;
  const species = new Set(c.species);
  const members = new Set(c.keyed.keys());
  return () => {
    c.meta.length = rows;
    c.projections.length = 2 * rows;
    c.species = species;
    for (const [member, slot] of c.keyed) {
      if (!members.has(member)) c.keyed.delete(member);
      slot.energies.length = Math.min(slot.energies.length, rows);
      slot.forces.length = Math.min(slot.forces.length, rows);
    }
  };
}

/**
 * A pool source as read in pass 1; `trace` tells where its frames are, when that was found on the way, and
 * `described` holds its descriptor rows when pass 1 computed them too (see describeWhileScanning).
 */
type ScannedSource = { path: string; sha256: string; frames: number; notes?: string[]; trace?: ExtxyzReadTrace; described?: SpeciesRows[] };

/** Descriptor options for pass 1 to compute the descriptors on its way: when they are needed and no --features replace them. */
function describeWhileScanning(o: RankOptions): LocalDescriptorOptions | undefined {
  return o.features || o.featuresFrom ? undefined : { kind: o.descriptor ?? "baseline", rMax: o.rmax ?? DEFAULT_R_MAX, bins: o.bins ?? DEFAULT_BINS };
}

async function scanInParallel(scanner: ExtxyzScanner, unit: PoolUnit, c: Candidates, o: RankOptions, projections: boolean): Promise<ScannedSource> {
  const source = unit.path.split(path.sep).join("/");
  let frames = 0;
  const trace = new ExtxyzReadTrace();
  const add = (batch: CandidateSummaries): void => {
    frames = addSummaries(c, source, batch, frames);
    o.onProgress?.("reading pool", c.meta.length);
  };
  const options = describeWhileScanning(o);
  let described: SpeciesRows[] | undefined;
  if (options) {
    described = [];
    for await (const batch of scanner.scanAndDescribe(unit.path, options, unit.path, trace, projections)) {
      add(batch.summary);
      described.push(...batch.described);
    }
  } else {
    for await (const batch of scanner.scan(unit.path, trace, projections)) add(batch);
  }
  return { path: source, sha256: trace.sha256 ?? (await sha256File(unit.path)), frames, trace, described };
}

async function scanOnThisThread(unit: PoolUnit, c: Candidates, o: RankOptions, energyKey: RegExp | null, projections: boolean): Promise<ScannedSource> {
  // Plain extxyz of structures needs no frames built (the committee's predictions are read from frames).
  if (unit.kind === "extxyz" && energyKey === null) {
    const trace = new ExtxyzReadTrace();
    const first = c.meta.length;
    // The scanner uses the native reader only where projections are not asked for.
    const reading = { projections, native: nativeExtxyzFrames() };
    const summary = await summarizeExtxyz(unit.path, trace, (frames) => o.onProgress?.("reading pool", first + frames), reading);
    if (summary) {
      const source = unit.path.split(path.sep).join("/");
      const frames = addSummaries(c, source, summary, 0);
      return { path: source, sha256: trace.sha256 ?? (await sha256File(unit.path)), frames, trace };
    }
  }
  const trace = unit.kind === "extxyz" ? new ExtxyzReadTrace() : undefined;
  const gen = readPoolUnit(unit, trace);
  const namer = new CandidateNamer(projections);
  let frames = 0;
  for (;;) {
    const next = await gen.next();
    if (next.done) {
      for (const s of namer.species) c.species.add(s);
      const { file, notes } = next.value;
      return { path: unit.path.split(path.sep).join("/"), sha256: trace?.sha256 ?? (await sha256File(file)), frames, notes, trace };
    }
    for (const { frame, source, index } of next.value) {
      const i = c.meta.length;
      namer.name(frame);
      c.meta.push({ id: namer.id, source, frame: index, natoms: frame.natoms, formula: namer.formula });
      if (projections) c.projections.push(namer.projections[0], namer.projections[1]);
      if (energyKey) collectKeyedPrediction(c, frame, energyKey, o.committeeKeys!, i, `${source} frame ${index}`);
      frames++;
    }
    o.onProgress?.("reading pool", c.meta.length);
  }
}

/** Adds summaries of frames `frame`, `frame` + 1, ... of `source` to the candidates; returns the next frame index. */
function addSummaries(c: Candidates, source: string, summary: CandidateSummaries, frame: number): number {
  const { ids, natoms, formulas, projections } = summary;
  for (let k = 0; k < ids.length; k++) c.meta.push({ id: ids[k], source, frame: frame++, natoms: natoms[k], formula: formulas[k] });
  for (const p of projections) c.projections.push(p);
  for (const s of summary.species) c.species.add(s);
  return frame;
}

function collectKeyedPrediction(c: Candidates, frame: Frame, energyKey: RegExp, prefix: string, i: number, where: string): void {
  const seen = new Set<string>();
  for (const [key, value] of frame.info) {
    const m = energyKey.exec(key);
    if (!m) continue;
    if (value.kind !== "float" && value.kind !== "int") throw new InputError(where, undefined, `${key} must be a number`);
    const member = m[1];
    seen.add(member);
    if (!c.keyed.has(member)) {
      if (i > 0) throw new InputError(where, undefined, `committee member "${member}" (${key}) is missing from earlier candidates`);
      c.keyed.set(member, { energies: [], forces: [] });
    }
    const slot = c.keyed.get(member)!;
    slot.energies[i] = value.value;
    const forces = frame.arrays.get(`${prefix}${member}_forces`);
    slot.forces[i] = forces && forces.dtype === "R" ? forces.data : undefined;
  }
  for (const member of c.keyed.keys()) {
    if (!seen.has(member)) throw new InputError(where, undefined, `has no ${prefix}${member}_energy, but other candidates do`);
  }
}

function descriptorOptions(o: RankOptions, species: string[]): DescriptorOptions {
  return { kind: o.descriptor ?? "baseline", species, rMax: o.rmax ?? DEFAULT_R_MAX, bins: o.bins ?? DEFAULT_BINS };
}

/**
 * Pass 2 (and the labelled set): descriptors into `into`, in batches of frames on this thread, for large
 * extxyz files as rows computed on the scan workers, or placed from the rows pass 1 computed.
 */
async function describe(
  units: PoolUnit[], into: FeatureMatrix | PlacedRows, options: DescriptorOptions, o: RankOptions, workers: ScanWorkers, sources?: ScannedSource[],
): Promise<void> {
  const target = rowsOf(into);
  const { rows } = target;
  let batch: DescribedFrame[] = [];
  // A frame that cannot be described is named by its file and its frame there.
  let origins: CandidateOrigin[] = [];
  let row = 0;
  const place = (part: FeatureMatrix): void => {
    copyRows(part.data, 0, part.rows, target, row);
    row += part.rows;
    o.onProgress?.("computing descriptors", row, rows);
  };
  const flush = (): void => {
    if (batch.length) place(computeDescriptors(batch, options, origins));
    batch = [];
    origins = [];
  };
  for (const [u, unit] of units.entries()) {
    const described = sources?.[u].described;
    if (described) {
      flush();
      // Each block's memory goes once it is placed (released buffers are freed at the next turn of the
      // event loop), so the rows fill in while the blocks shrink instead of both living at once.
      for (const block of described.splice(0)) {
        placeDescriptorRows(block, target, row, options);
        row += block.rows;
        releaseArray(block.data);
        await new Promise((resolve) => setImmediate(resolve));
      }
      o.onProgress?.("computing descriptors", row, rows);
      continue;
    }
    const scanner = await workers.scannerFor(unit);
    if (scanner) {
      flush();
      for await (const part of scanner.describe(unit.path, options, unit.path)) place(part);
      continue;
    }
    for await (const frames of readPoolUnit(unit)) {
      for (const { frame, source, index } of frames) {
        batch.push(frame);
        origins.push({ file: source, where: `frame ${index}` });
        if (batch.length === BATCH) flush();
      }
    }
  }
  flush();
}

/**
 * Each member's predictions, matched to the candidates by candidate_id, else by geometry (FramesToRows: files that
 * print fewer digits than the pool, as ASE and so mace_eval_configs do), how many frames went by geometry, and how
 * many structures of each file are not candidates (not used). A candidate without a prediction is an error, except
 * those `unpredicted` marks (labelled structures in the pool, which are not candidates).
 */
async function readCommitteeFiles(
  files: string[], meta: CandidateMeta[], poolFrames: (rows: number[]) => AsyncIterable<{ row: number; frame: Frame }>,
  unpredicted: Uint8Array, onProgress?: (phase: string, done: number, total?: number) => void,
): Promise<{ members: CommitteePrediction[]; byGeometry: number; unused: { file: string; count: number }[] }> {
  const rowOf = firstRowOf(meta.map((m) => m.id));
  const unused: { file: string; count: number }[] = [];
  const matcher = new FramesToRows(rowOf, meta.length, poolFrames, { onIndexing: (done, of) => onProgress?.(GEOMETRY_MATCH_PHASE, done, of) });
  const members: CommitteePrediction[] = [];
  let read = 0;
  for (const file of files) {
    const energies = new Float64Array(meta.length).fill(NaN);
    const forces: (Float64Array | undefined)[] = new Array(meta.length);
    const frameOf = new Int32Array(meta.length).fill(-1);
    const extract = (frame: Frame, n: number): { n: number; energy: number; forces: Float64Array | undefined } => {
      if (++read % 1024 === 0) onProgress?.("reading committee predictions", read);
      const e = frame.info.get("MACE_energy");
      if (!e || (e.kind !== "float" && e.kind !== "int")) throw new InputError(file, `frame ${n}`, "has no MACE_energy (expected mace_eval_configs output)");
      if (!Number.isFinite(e.value)) throw new InputError(file, `frame ${n}`, `MACE_energy is ${e.value}, expected a finite number`);
      const f = frame.arrays.get("MACE_forces");
      return { n, energy: e.value, forces: f && f.dtype === "R" ? f.data : undefined };
    };
    const waiting = (row: number): boolean => rowOf.get(meta[row].id) === row && frameOf[row] < 0 && !unpredicted[row];
    const unmatched = await matcher.read(file, extract, waiting, (row, value) => {
      // A structure twice in the file (the pool holds it twice) must have one prediction: another would go unseen.
      if (frameOf[row] >= 0) {
        const sameEnergy = sameValues([value.energy], [energies[row]]);
        if (sameEnergy && sameValues(value.forces, forces[row])) return;
        const m = meta[row];
        const differs = sameEnergy ? "other MACE_forces" : `MACE_energy ${value.energy} against ${energies[row]}`;
        throw new InputError(file, `frame ${value.n}`, `predicts candidate ${m.id} (${m.source} frame ${m.frame}) again, differently from frame ${frameOf[row]} (${differs}): a member file must give each structure one prediction`);
      }
      frameOf[row] = value.n;
      energies[row] = value.energy;
      forces[row] = value.forces;
    });
    // Predictions made once on a larger set serve a ranking of part of it: the rest is counted, not used.
    if (unmatched.length) unused.push({ file, count: unmatched.length });
    // Duplicated candidates share one prediction.
    meta.forEach((m, i) => {
      const first = rowOf.get(m.id)!;
      if (first !== i) {
        energies[i] = energies[first];
        forces[i] = forces[first];
      }
    });
    const missing = meta.findIndex((_, i) => Number.isNaN(energies[i]) && !unpredicted[i]);
    if (missing >= 0) {
      const m = meta[missing];
      throw new InputError(file, undefined, `has no prediction for candidate ${m.id} (${m.source} frame ${m.frame}): every member must predict every pool candidate`);
    }
    members.push({ source: file, energies, forces });
  }
  return { members, byGeometry: matcher.matchedByGeometry, unused };
}

/**
 * Labelled structures (`elsewhere`: their index j and geometry) found in the pool by geometry take the id of the
 * nearest pool structure they are, so that it counts as labelled. Only pool frames that may match one
 * (NearStructureIndex.mayHold) are read again. Returns the pool row each one found, by j.
 */
async function takeLabelledIdsByGeometry(
  c: Candidates, units: PoolUnit[], sources: ScannedSource[], elsewhere: { j: number; geometry: Geometry }[], labeledIds: string[],
): Promise<Map<number, number>> {
  const labelled = new NearStructureIndex(DFT_OUTPUT_TOLERANCE, true);
  for (const { j, geometry } of elsewhere) labelled.add(j, geometry);
  const first = new Set<string>();
  const pair = new Float64Array(2);
  const rows = c.meta.flatMap((m, row) => {
    if (first.has(m.id)) return [];
    first.add(m.id);
    pair[0] = c.projections[2 * row];
    pair[1] = c.projections[2 * row + 1];
    return labelled.mayHold(m.natoms, pair) ? [row] : [];
  });
  const pool = new NearStructureIndex(DFT_OUTPUT_TOLERANCE, true);
  for await (const { row, frame } of poolFramesAt(units, sources, rows)) pool.add(row, frame);
  const found = new Map<number, number>();
  for (const { j, geometry } of elsewhere) {
    const row = pool.claim(geometry);
    if (row === undefined) continue;
    labeledIds[j] = c.meta[row].id;
    found.set(j, row);
  }
  return found;
}

const LABELLED_ROWS: MatrixRows = { one: "labelled structure", order: "the order --labeled reads them" };

/**
 * --labeled-features: a row per labelled structure, as wide as the candidates' (`pool`, of `poolIds`, read from
 * `poolFile`). A labelled structure that is also a candidate takes that candidate's row, so that it covers exactly
 * that candidate.
 */
async function readLabelledFeatureFile(
  file: string, poolFile: string, pool: FeatureMatrix | PlacedRows, poolIds: readonly string[], labeledIds: readonly string[],
): Promise<FeatureMatrix> {
  const labelled = await readFeatureFile(file, labeledIds, undefined, LABELLED_ROWS);
  const D = rowsOf(pool).cols;
  if (labelled.cols !== D) {
    throw new InputError(file, undefined, `has ${labelled.cols} features per row, but ${poolFile} has ${D}: both must come from the same descriptor`);
  }
  return poolRowsOf(pool, poolIds, labeledIds, labelled);
}

/** `into` (a new matrix by default) with the pool's row for each labelled structure that is in the pool. */
function poolRowsOf(
  pool: FeatureMatrix | PlacedRows, poolIds: readonly string[], labeledIds: readonly string[],
  into = createFeatureMatrix(labeledIds.length, rowsOf(pool).cols),
): FeatureMatrix {
  const candidates = rowsOf(pool);
  const D = candidates.cols;
  const rowOf = firstRowOf(poolIds);
  labeledIds.forEach((id, j) => {
    const row = rowOf.get(id);
    if (row !== undefined) into.data.set(candidates.data.subarray(candidates.start(row), candidates.start(row) + D), j * D);
  });
  return into;
}

/** The early selection's features once more (checked as readFeatureFile checks them, then scaled), for the selection it must run again. */
async function featuresAgain(file: string, scaling: ScalingMode | undefined, ids: readonly string[]): Promise<FeatureMatrix> {
  const features = await readNpyFeatures(file);
  if (features === undefined) throw new InputError(file, undefined, "is no longer the .npy it was a moment ago: the file changed while ranking");
  validateFeatureMatrix(features, ids, file);
  applyScaler(fitScaler(features, scaling ?? "standard"), features);
  return features;
}

/** Ranks as `o` says; `started` is startRank(o) when the caller ran it already (the CLI, before loading this module). */
export async function rankToDir(o: RankOptions, started?: RankStart): Promise<RankOutcome> {
  const start = started ?? (await startRank(o));
  const { units, early } = start;
  const workers = new ScanWorkers(o.threads);
  try {
    // Only a labelled set is looked for by geometry (takeLabelledIdsByGeometry).
    const projections = start.labeled.length > 0;
    const scanned = await scanPool(units, o, workers, early ? EARLY_PARALLEL_SCAN_MIN_BYTES : PARALLEL_SCAN_MIN_BYTES, projections);
    // When the picks' frames are at known places, this thread builds selected.extxyz from them while the selection
    // runs, and its other threads join lazy picking only for the final catch-up (catching up in the background they
    // took this core: 40-60 ms later in all at N = 1e5 on uniform features, selected.extxyz then written at the end).
    early?.running.join(!framesLocated(scanned.units, scanned.sources));
    return await rankScanned(o, scanned, start, workers);
  } finally {
    await Promise.all([early?.running.stop(), workers.close()]);
  }
}

async function rankScanned(o: RankOptions, scanned: ScannedPool, start: RankStart, workers: ScanWorkers): Promise<RankOutcome> {
  // What the ranking was computed from, as for the pool's sources; hashed while the rest is read and the selection
  // runs (an early selection's features file was hashed when it started: see startEarlySelection).
  const matrixSha256 = Promise.all([
    start.early?.featuresSha256 ?? (o.features && sha256File(o.features)),
    o.labeledFeatures && sha256File(o.labeledFeatures),
  ]);
  matrixSha256.catch(() => undefined); // awaited below, unless something fails first
  const { c, sources, units, skipped } = scanned;
  const { early, labeled: labeledUnits, vaspInputs } = start;
  const N = c.meta.length;
  const first = scanned.firstError;
  if (N === 0 && first) {
    if (skipped.length === 1) throw first;
    const others = skipped.slice(1, 4).map((s) => s.path).join(", ") + (skipped.length > 4 ? ", ..." : "");
    throw new InputError(first.file, first.where, `${first.detail} (no pool source could be read: ${skipped.length - 1} more, ${others})`);
  }
  // Bad input, as a folder without structures is (poolUnits).
  if (N === 0) {
    // Runs cut short before their first complete step say so in their notes: that is why.
    const why = sources.flatMap((source) => (source.notes ?? []).map((note) => (sources.length > 1 ? `${source.path}: ${note}` : note)));
    const notes = why.length ? ` (${why.slice(0, 3).join("; ")}${why.length > 3 ? "; ..." : ""})` : "";
    throw new InputError(o.pool.join(", "), undefined, `no structures: the candidate pool is empty${notes}`);
  }
  if (o.select > N) throw new UsageError(`--select ${o.select} is larger than the pool (${N} candidates)`);

  // The labelled set: its structures are covered already and never selected.
  const labeledMeta: { path: string; sha256: string; frames: number }[] = [];
  const labeledIds: string[] = [];
  // Only with a labelled set (a set of 1e5 ids took 25-50 ms).
  const poolIds = new Set(labeledUnits.length > 0 ? c.meta.map((m) => m.id) : []);
  // Labelled structures whose id is not in the pool, by geometry: re-read from DFT output, a pool structure can
  // have another id (vasprun.xml and OUTCAR print fewer digits), yet must not be picked again.
  const elsewhere: { j: number; geometry: Geometry }[] = [];
  // With features read from files by structure, each labelled structure's is looked up there.
  const labelledStructures = o.featuresFrom ? { origins: [] as { file: string; frame: number }[], geometries: [] as Geometry[] } : undefined;
  for (const unit of labeledUnits) {
    let frames = 0;
    const reading = readPoolUnit(unit);
    let next = await reading.next();
    for (; !next.done; next = await reading.next()) {
      for (const { frame, source, index } of next.value) {
        const id = candidateId(frame);
        if (!poolIds.has(id)) elsewhere.push({ j: labeledIds.length, geometry: geometryOf(frame) });
        labelledStructures?.origins.push({ file: source, frame: index });
        labelledStructures?.geometries.push(geometryOf(frame));
        labeledIds.push(id);
        for (const s of frame.symbols) c.species.add(s);
        frames++;
      }
    }
    labeledMeta.push({ path: unit.path.split(path.sep).join("/"), sha256: await sha256File(next.value.file), frames });
  }
  const labelledRows = elsewhere.length > 0 ? await takeLabelledIdsByGeometry(c, units, sources, elsewhere, labeledIds) : new Map<number, number>();
  const species = [...c.species].sort();

  const ids = c.meta.map((m) => m.id);
  // With an early selection, the features are read again only if it must run again.
  let features: FeatureMatrix | undefined;
  // Descriptors and a .npy are written straight into the selection's memory.
  let placed: SelectionMemory | undefined;
  let labeledFeatures: FeatureMatrix | undefined;
  let unusedFeatureFrames = 0;
  let featureFramesByGeometry = 0;
  let featureFiles: { path: string; sha256: string }[] = [];
  if (early && o.features) {
    // Every value was found finite before the selection started.
    checkFeatureRowCount(early.rows, ids, o.features);
  } else {
    let candidates: FeatureMatrix | PlacedRows;
    if (o.featuresFrom) {
      // Straight into the selection's memory, as a .npy.
      const into: { placed?: SelectionMemory } = {};
      const read = await readStructureFeatures(
        o.featuresFrom,
        { meta: c.meta, structuresOf: (rows) => poolFramesAt(units, sources, rows) },
        { ids: labeledIds, ...labelledStructures! },
        species,
        placeInSelection(o, into, { labelled: labeledIds.length }),
        o.onProgress,
      );
      candidates = read.candidates;
      placed = into.placed;
      labeledFeatures = read.labelled;
      unusedFeatureFrames = read.unused;
      featureFramesByGeometry = read.byGeometry;
      // Recorded as the pool's sources are: what the ranking was computed from.
      featureFiles = await Promise.all(o.featuresFrom.files.map(async (f) => ({ path: f.split(path.sep).join("/"), sha256: await sha256File(f) })));
    } else if (o.features) {
      // Labelled structures that are all pool structures take their rows from the pool's matrix.
      if (labeledIds.length && !o.labeledFeatures && !labeledIds.every((id) => poolIds.has(id))) {
        throw new UsageError(`--labeled needs features for the labelled structures too, which ${o.features} (one row per candidate) cannot give: add their matrix with --labeled-features FILE, or pass extxyz files of features by structure instead (mace_eval_configs --return_descriptors on the pool and the labelled set)`);
      }
      // A .npy goes straight into the selection's memory.
      const into: { placed?: SelectionMemory } = {};
      candidates = await readFeatureFile(o.features, ids, placeInSelection(o, into, { labelled: labeledIds.length }));
      if ("start" in candidates) placed = into.placed;
      else features = candidates;
      if (o.labeledFeatures) labeledFeatures = await readLabelledFeatureFile(o.labeledFeatures, o.features, candidates, ids, labeledIds);
      else if (labeledIds.length) labeledFeatures = poolRowsOf(candidates, ids, labeledIds);
    } else {
      const options = descriptorOptions(o, species);
      const D = descriptorColumns(options).length;
      placed = allocateSelection(N, D, labeledIds.length, o.select, selectionThreads(N, D, o.threads));
      candidates = placed.candidates;
      await describe(units, candidates, options, o, workers, sources);
      if (labeledIds.length) {
        labeledFeatures = createFeatureMatrix(labeledIds.length, D);
        await describe(labeledUnits, labeledFeatures, options, o, workers);
        // A labelled structure found in the pool by geometry covers as that pool structure: VASP's copy describes
        // otherwise where it differs (a molecule's box gives it a volume per atom).
        const pool = rowsOf(candidates);
        for (const [j, row] of labelledRows) labeledFeatures.data.set(pool.data.subarray(pool.start(row), pool.start(row) + D), j * D);
      }
    }
    const scaler = fitScaler(candidates, o.scaling ?? "standard");
    applyScaler(scaler, candidates);
    if (labeledFeatures) applyScaler(scaler, labeledFeatures);
  }
  await workers.close();

  const committee = o.committee ?? [];
  let members: CommitteePrediction[] = [];
  let memberNames: string[] = [];
  let committeeFramesByGeometry = 0;
  let unusedCommitteeFrames: { file: string; count: number }[] = [];
  const labelled = new Set(labeledIds);
  // Labelled structures in the pool are not candidates: a committee need not predict them.
  const unpredicted = committee.length || o.committeeKeys ? Uint8Array.from(ids, (id) => Number(labelled.has(id))) : new Uint8Array(N);
  if (committee.length) {
    ({ members, byGeometry: committeeFramesByGeometry, unused: unusedCommitteeFrames } = await readCommitteeFiles(committee, c.meta, (rows) => poolFramesAt(units, sources, rows), unpredicted, o.onProgress));
    memberNames = committee.map((f) => f.split(path.sep).join("/"));
  } else if (o.committeeKeys) {
    memberNames = [...c.keyed.keys()].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    members = memberNames.map((m) => ({ source: `${o.committeeKeys}${m}`, energies: c.keyed.get(m)!.energies, forces: c.keyed.get(m)!.forces }));
    if (members.length === 0) throw new UsageError(`--committee-keys ${o.committeeKeys}: no info key ${o.committeeKeys}<member>_energy in the pool`);
  }
  const kind = members.length ? (o.disagreement ?? "energy") : null;
  let raw: Float64Array | null = null;
  let levels: Uint8Array | null = null;
  let normalised: Float64Array | null = null;
  let constantDisagreement = false;
  if (kind) {
    // A labelled structure the members did predict keeps its disagreement (ranking.csv shows it).
    const predicted = (i: number): boolean => members.every((m) => !Number.isNaN(m.energies?.[i] ?? NaN) && (kind === "energy" || m.forces?.[i] !== undefined));
    for (let i = 0; i < N; i++) if (unpredicted[i] && predicted(i)) unpredicted[i] = 0;
    raw = committeeDisagreement(members, kind, { natoms: c.meta.map((m) => m.natoms), ids, unpredicted });
    if (o.forceTrust) levels = levelsOf(raw, o.forceTrust);
    // The range is that of the structures the selection may take: in the window, not labelled.
    const counted = Uint8Array.from(ids, (id, i) => Number((!levels || levels[i] === TRUST_CANDIDATE) && !labelled.has(id)));
    normalised = normaliseDisagreement(raw, counted, o.rule?.kind === "uwfps" ? "max" : "min-max");
    // Said only where the rule weighs the disagreement at all.
    const weighed = o.rule?.kind === "uwfps" ? o.rule.alpha > 0 : (o.rule?.wDis ?? 1) > 0;
    constantDisagreement = weighed && disagreementRange(raw, counted).constant;
  } else if (o.forceTrust) throw new UsageError("--force-trust needs a committee (--committee or --committee-keys)");
  const trustExclude = o.forceTrust ? (o.trustExclude ?? DEFAULT_TRUST_EXCLUSION) : null;
  const rule: SelectionRule = o.rule ?? { kind: "weighted", wDiv: 1, wDis: kind ? 1 : 0 };
  if (rule.kind === "weighted" && rule.wDiv === 0 && !kind) throw new UsageError("weights div=0 leave only disagreement, which needs a committee of at least 2 models");

  const onPick = (picked: number): void => o.onProgress?.("selecting", picked, o.select);
  onPick(early?.progress.picked ?? 0);
  // While the early selection runs alone, this thread reads and encodes its picks' frames for selected.extxyz (the
  // second core is idle then). Once its other threads have joined, this work would take their core: what is left
  // is read at the end.
  const inAdvance = early && new SelectedFramesInAdvance(frameLocator(units, sources), c.meta);
  if (early) {
    let added = 0;
    early.progress.onPick = (picked) => {
      onPick(picked);
      if (early.running.joined()) return;
      inAdvance!.add(early.progress.rows.slice(added));
      added = early.progress.rows.length;
    };
  }
  // Found while an early selection may still run.
  const firstIndex = firstOccurrences(ids);
  // ranking.csv's first fields, while an early selection runs on another thread (otherwise made when written).
  const csvLeads = early ? rankingCsvLeads(c.meta) : undefined;
  const earlyResult = early && (await early.running.result.catch(() => undefined));
  const confirmed = earlyResult && confirmWithIds(earlyResult, firstIndex);
  let result: SelectionResult;
  if (confirmed) result = confirmed;
  else {
    const selectionFeatures = placed ?? features ?? (await featuresAgain(o.features!, o.scaling, ids));
    result = await selectCandidatesThreaded({
      features: selectionFeatures,
      ids,
      firstIndex,
      k: o.select,
      disagreement: normalised ?? undefined,
      excluded: levels && trustExclude ? excludedByTrust(levels, trustExclude) : undefined,
      labelled: labeledFeatures ? { features: labeledFeatures, ids: labeledIds } : undefined,
      rule,
    }, {
      threads: o.threads,
      onPick,
      // The selection lays a matrix out in its own memory; this copy goes at once (400 MB at N = 1e6 from a .npy).
      onPrepared: () => {
        if (!("memory" in selectionFeatures)) releaseArray(selectionFeatures.data);
      },
    });
  }

  const [featuresSha256, labeledFeaturesSha256] = await matrixSha256;
  const inputs: RankingInputs = {
    parameters: {
      select: o.select,
      descriptor: o.features || o.featuresFrom ? "features" : (o.descriptor ?? "baseline"),
      features_file: o.features ?? null,
      ...(o.features ? { features_file_sha256: featuresSha256 } : {}),
      ...(o.labeledFeatures ? { labeled_features_file: o.labeledFeatures, labeled_features_file_sha256: labeledFeaturesSha256 } : {}),
      ...(o.featuresFrom
        ? { features_files: featureFiles, features_key: o.featuresFrom.key, ...(o.featuresFrom.perElement ? { features_per_element: species } : {}) }
        : {}),
      scaling: o.scaling ?? "standard",
      // Of the descriptor only: none with features.
      bins: o.features || o.featuresFrom ? null : (o.bins ?? DEFAULT_BINS),
      rmax: o.features || o.featuresFrom ? null : (o.rmax ?? DEFAULT_R_MAX),
      rule,
      disagreement: kind,
      committee_source: committee.length ? "files" : o.committeeKeys ? "keys" : null,
      ...(!committee.length && o.committeeKeys ? { committee_keys: o.committeeKeys } : {}),
      force_trust: o.forceTrust ?? null,
      trust_exclude: trustExclude,
      ...(o.typeMap ? { type_map: o.typeMap } : {}),
    },
    sources: sources.map(({ path: file, sha256, frames, notes }) => ({ path: file, sha256, frames, ...(notes?.length ? { notes } : {}) })),
    skippedSources: skipped,
    unreadFiles: start.unread.map((file) => file.split(path.sep).join("/")),
    labeled: labeledMeta,
    committee: memberNames,
    ...(committee.length ? { committeeSha256: await Promise.all(committee.map((file) => sha256File(file))) } : {}),
    candidates: c.meta,
    firstIndex,
    result,
    rawDisagreement: raw,
    disagreement: normalised,
    trustLevels: levels,
    constantDisagreement,
    labeledIds: labelled,
    software: o.software,
  };

  // Write everything into a temporary sibling and rename: a ranking directory is complete or absent.
  let poscars: { boxed: number[]; advice: string[] } = { boxed: [], advice: [] };
  const vacuum = o.poscars?.vacuum ?? DEFAULT_VACUUM;
  const tmp = `${o.out.replace(/\/+$/, "")}.partial-${process.pid}`;
  // The folder beside -o is this command's own: a failure names -o, which the user gave.
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
  } catch (err) {
    throw new UsageError(`-o ${o.out}: cannot write a folder there (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    await writeFile(path.join(tmp, "ranking.json"), renderRankingJson(inputs));
    await writeParts(path.join(tmp, "ranking.csv"), rankingCsvParts(inputs, csvLeads));
    const selectedFile = path.join(tmp, "selected.extxyz");
    if (!(await inAdvance?.finish(selectedPicks(result, c.meta), selectedFile))) await writeSelected(units, sources, result, c.meta, selectedFile);
    if (o.poscars) poscars = await writePickPoscars(tmp, o.out, result, c.meta, { vacuum, inputs: vaspInputs, potcarSymbols: o.poscars.potcarSymbols });
    await mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
    // rename replaces an empty folder and fails on one that filled meanwhile (another run into the same -o): never
    // written over, as at the start.
    await rename(tmp, o.out).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOTEMPTY" || err.code === "EEXIST" || err.code === "ENOTDIR") {
        throw new UsageError(`${o.out} was filled while ranking (another run into the same -o?): a ranking is never written over an earlier one; choose a new -o`);
      }
      throw err;
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const notes = sources.flatMap((source) => (source.notes ?? []).map((note) => `${source.path}: ${note}`));
  if (start.unread.length > 0) {
    const listed = start.unread.slice(0, 5).join(", ") + (start.unread.length > 5 ? ", ..." : "");
    notes.push(`--pool: ${start.unread.length} file(s) in its folders are not structures rank reads, and were not read: ${listed} (other formats: python3 -m ase convert FILE OUT.extxyz)`);
  }
  if (unusedFeatureFrames > 0) notes.push(`--features: ${unusedFeatureFrames} structure(s) in the files are neither pool candidates nor labelled structures, and were not used`);
  for (const { file, count } of unusedCommitteeFrames) notes.push(`--committee: ${count} structure(s) in ${file} are not pool candidates, and were not used`);
  for (const [option, count] of [["--features", featureFramesByGeometry], ["--committee", committeeFramesByGeometry]] as const) {
    if (count > 0) notes.push(`${option}: ${count} structure(s) in the files were found by geometry within ${NEAR_MATCH_TOLERANCE.toExponential()} A, their ids differing (as when the files print fewer digits than the pool)`);
  }
  const files = ["ranking.json", "ranking.csv", "selected.extxyz", ...(o.poscars ? ["poscars/"] : [])];
  return { dir: o.out, result, candidates: c.meta, rule: rankingRule(inputs.parameters, labeledIds.length, inputs.labeledIds.size, constantDisagreement), files, notes, skipped, poscars: o.poscars && { ...poscars, vacuum }, leftOut: leftOutCounts(inputs), constantDisagreement };
}

/**
 * poscars/<rank>-<candidate_id>/ in `dir` (to become `out`): each pick's POSCAR, from selected.extxyz, and the VASP
 * inputs (a POTCAR of its species, an INCAR with its per-element values); returns the ranks put in a vacuum box
 * and what the inputs do not suit among the picks.
 */
async function writePickPoscars(
  dir: string, out: string, result: SelectionResult, meta: CandidateMeta[],
  { vacuum, inputs, potcarSymbols }: { vacuum: number; inputs?: VaspInputs; potcarSymbols?: ReadonlyMap<string, string> },
): Promise<{ boxed: number[]; advice: string[] }> {
  const written: Array<PickCell & PickSpeciesLine> = [];
  const picks = result.picks.map(({ rank, index }) => ({ rank, candidate_id: meta[index].id, formula: meta[index].formula }));
  const shownAs = path.join(out, "selected.extxyz");
  for await (const poscar of pickPoscars(path.join(dir, "selected.extxyz"), picks, { vacuum, shownAs, potcar: inputs?.potcar, potcarSymbols, incar: inputs?.incar })) {
    written.push({ rank: poscar.rank, cell: poscar.cell, pbc: poscar.pbc, boxed: poscar.boxed, species: poscar.species });
    const folder = path.join(dir, "poscars", poscarFolderName(poscar.rank, poscar.candidate_id));
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, "POSCAR"), poscar.text);
    if (poscar.potcarSpec !== undefined) await writeFile(path.join(folder, "POTCAR.spec"), poscar.potcarSpec);
    for (const { name, content } of inputs?.files ?? []) {
      const made = name === "POTCAR" ? poscar.potcar : name === "INCAR" ? poscar.incar : undefined;
      await writeFile(path.join(folder, name), made === undefined ? content : Buffer.from(made, "latin1"));
    }
  }
  return { boxed: written.filter((p) => p.boxed).map((p) => p.rank), advice: inputs ? vaspInputsAdvice(inputs, written) : [] };
}

/** What the KPOINTS mesh and the INCAR's ENCUT with the split POTCAR do not suit among the picks, in words. */
function vaspInputsAdvice(inputs: VaspInputs, picks: Array<PickCell & PickSpeciesLine>): string[] {
  const kpoints = inputs.files.find((f) => f.name === "KPOINTS");
  const advice = kpoints ? kpointsAdvice(kpoints.content.toString("latin1"), picks, path.join(inputs.dir, "KPOINTS")) : [];
  if (inputs.potcar) {
    const encut = inputs.incar ? parseIncar(inputs.incar.text).ENCUT : undefined;
    advice.push(...encutAdvice(typeof encut === "number" ? encut : null, inputs.potcar.blocks, picks, { incar: inputs.incar?.file ?? null, potcar: inputs.potcar.file }));
  }
  return advice;
}

async function writeParts(file: string, parts: Iterable<Uint8Array>): Promise<void> {
  const handle = await open(file, "w");
  try {
    // Written at once: an awaited write of each part waited 1-3 ms for the thread pool here (25 parts at N = 1e5).
    for (const part of parts) writeSync(handle.fd, part);
  } finally {
    await handle.close();
  }
}

/**
 * Pass 3: the picks, in greedy order, with their candidate_id, source, frame and selection_rank. Only
 * sources holding picks are read again, and extxyz files only parse the picked frames.
 */
async function writeSelected(
  units: PoolUnit[], sources: ScannedSource[], result: SelectionResult, meta: CandidateMeta[], file: string,
): Promise<void> {
  const picked = new Map<number, Frame>();
  for await (const { row, frame, source, index } of poolFramesAt(units, sources, result.picks.map((pick) => pick.index))) {
    checkRanked(source, index, frame, meta[row].id);
    picked.set(row, frame);
  }
  await writeSelectedFrames(file, selectedPicks(result, meta), picked);
}

/**
 * The frames of these candidate rows, read again from the pool (with their source and index there): only sources
 * holding some, and only those frames parsed.
 */
async function* poolFramesAt(
  units: PoolUnit[], sources: ScannedSource[], rows: Iterable<number>,
): AsyncGenerator<{ row: number; frame: Frame; source: string; index: number }> {
  const firstRow = firstRows(sources);
  const wanted = units.map(() => new Set<number>());
  for (const row of rows) {
    const { unit, index } = locateRow(firstRow, row);
    wanted[unit].add(index);
  }
  for (let u = 0; u < units.length; u++) {
    if (wanted[u].size === 0) continue;
    const frames = units[u].kind === "extxyz" ? extxyzFramesAt(units[u].path, wanted[u], sources[u].trace?.starts) : wantedFrames(units[u], wanted[u]);
    for await (const { index, frame } of frames) yield { row: firstRow[u] + index, frame, source: units[u].path, index };
  }
}

/** Candidate rows of source u: firstRow[u] .. firstRow[u + 1] - 1. */
function firstRows(sources: ScannedSource[]): number[] {
  const firstRow = [0];
  for (const source of sources) firstRow.push(firstRow[firstRow.length - 1] + source.frames);
  return firstRow;
}

/** A candidate row's source (unit) and frame index there. */
function locateRow(firstRow: number[], row: number): { row: number; unit: number; index: number } {
  let lo = 0;
  let hi = firstRow.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (firstRow[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  return { row, unit: lo, index: row - firstRow[lo] };
}

const selectedPicks = (result: SelectionResult, meta: CandidateMeta[]): SelectedPick[] =>
  result.picks.map((pick) => ({ rank: pick.rank, row: pick.index, meta: meta[pick.index] }));

/** Whether the pool read found every frame's byte range (plain extxyz files only). */
function framesLocated(units: PoolUnit[], sources: ScannedSource[]): boolean {
  return units.every((unit, u) => {
    const { frames, trace } = sources[u];
    return unit.kind === "extxyz" && (frames === 0 || trace?.starts.range(frames - 1) !== undefined);
  });
}

/** Where each candidate row's frame is, for those in plain extxyz files whose byte ranges the pool read found. */
function frameLocator(units: PoolUnit[], sources: ScannedSource[]): FrameLocator {
  const firstRow = firstRows(sources);
  return (row) => {
    const { unit, index } = locateRow(firstRow, row);
    const range = units[unit].kind === "extxyz" ? sources[unit].trace?.starts.range(index) : undefined;
    return range && { path: units[unit].path, range: { index, ...range } };
  };
}

/** The wanted frames of an extxyz file: read at their byte ranges when all are known, else by counting lines. */
function extxyzFramesAt(file: string, wanted: ReadonlySet<number>, starts: FrameStarts | undefined): AsyncGenerator<{ index: number; frame: Frame }> {
  const indices = Int32Array.from(wanted).sort();
  if (!starts || indices.some((index) => starts.range(index) === undefined)) return readExtxyzFramesAt(file, wanted);
  // Made as they are read: a geometry match may want every frame of a pool (a million ranges).
  const ranges = function* (): Generator<ExtxyzFrameRange> {
    for (const index of indices) yield { index, ...starts.range(index)! };
  };
  return readExtxyzFrameRanges(file, ranges());
}

async function* wantedFrames(unit: PoolUnit, wanted: ReadonlySet<number>): AsyncGenerator<{ index: number; frame: Frame }> {
  for await (const batch of readPoolUnit(unit)) for (const { frame, index } of batch) if (wanted.has(index)) yield { index, frame };
}
