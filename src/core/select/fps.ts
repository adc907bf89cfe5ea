/**
 * Greedy farthest-point selection of candidates (the reference heuristic of docs/mace.md section 6,
 * plus labelled-set seeding, duplicate and trust-window exclusion, and uncertainty-weighted FPS).
 *
 * Semantics:
 * - `nearest` starts as the distance to the pool's feature centroid; with a labelled set it starts as
 *   the distance to the nearest labelled row instead (those count as already covered).
 * - Each of k ranks picks the pickable candidate with the largest score, ties to the lowest index:
 *   weighted: w_div*nearest + w_dis*u;  uwfps: u^alpha * nearest^beta  (u = normalised disagreement).
 * - After a pick, `nearest` becomes the distance to it (first pick, no labelled set: the centroid is
 *   forgotten, as in the reference) or the element-wise minimum with it.
 * - Never picked: excluded candidates (trust window), candidates whose id is in the labelled set, and
 *   every candidate whose id already occurred earlier in the pool (only the first copy is pickable).
 * - k larger than the pool is an error; when fewer than k candidates are pickable, all of them are
 *   picked and the result says so (picks.length < requested).
 *
 * Cost: features live once as float32 in a WebAssembly memory (N*D*4 bytes), with an int8 copy for the
 * kernel's first filter (N*(D rounded up to 16, + 16) bytes) and a few N-sized arrays; no N x N matrix.
 * Time O(N*k*D) at worst, less with the pruning described in fps-kernel.ts and distance-kernel.ts; when that
 * prunes little, the picks are made lazily, and by passes again once it prunes most (see LazyPolicy and pickLazily).
 * Distances are float64 sums over float32 features in a fixed order, so results do not depend on the
 * number of threads.
 */

import { InputError, UsageError } from "../errors.js";
import { firstOccurrences } from "./candidate-id.js";
import {
  distanceKernelBytes, filterSlack, quantizerForRanges, quantizedLength, quantizedUsed, quantizerParamBytes, quantizeRows,
  widenQuantizedRow, writeQuantizerParams, columnStatsBytes, type QuantizeRows, type ScanColumns,
} from "./distance-kernel.js";
import { rowsOf, type FeatureMatrix, type PlacedRows } from "./feature-matrix.js";
import {
  adoptRegion,
  catchUp,
  catchUpRegion,
  centroidPass,
  createSweepState,
  distances,
  prefetchCandidate,
  regionViews,
  sweep,
  type FpsLayout,
  type FpsRule,
  type NativeKernels,
  type Region,
  type RegionLayout,
  type SweepState,
  type WasmApi,
  type WasmMemory,
  type WasmModule,
} from "./fps-kernel.js";

export type SelectionRule =
  | { kind: "weighted"; wDiv: number; wDis: number }
  | { kind: "uwfps"; alpha: number; beta: number };

export const DEFAULT_RULE: SelectionRule = { kind: "weighted", wDiv: 1, wDis: 1 };

export interface SelectionInput {
  /** N x D, already scaled: a matrix, or the candidate rows written into the selection's memory (allocateSelection). */
  features: FeatureMatrix | SelectionMemory;
  /**
   * Candidate ids (candidateId), one per row; equal ids are duplicates. Absent: every candidate counts as
   * distinct, for a selection that runs before the ids are known (see confirmWithIds).
   */
  ids?: readonly string[];
  /** firstOccurrences(ids), when the caller has it already (it is computed otherwise). */
  firstIndex?: Int32Array;
  k: number;
  /** Normalised disagreement in [0, 1], one per candidate; absent without a committee. */
  disagreement?: Float64Array;
  /** Nonzero: never picked (outside the trust window). */
  excluded?: Uint8Array;
  /** Already-labelled structures, scaled like `features`. */
  labelled?: { features: FeatureMatrix; ids: readonly string[] };
  rule?: SelectionRule;
}

export interface SelectionPick {
  /** 1-based. */
  rank: number;
  /** Candidate row. */
  index: number;
  /** `nearest` of the candidate when it was picked. */
  diversity: number;
  /** Its normalised disagreement (0 without a committee). */
  disagreement: number;
  /** The score it won with. */
  score: number;
}

export interface SelectionResult {
  picks: SelectionPick[];
  requested: number;
  /** Candidates pickable at the start (not excluded, not labelled, first of their id). */
  selectable: number;
  /** Every candidate's distance to the nearest picked or labelled structure, after the last pick. */
  distanceToCovered: Float64Array;
  /** How many picks passes made before the first lazy one (see LazyPolicy); null when passes made them all. */
  lazyFrom: number | null;
  /** How many picks were made lazily. */
  lazyPicks: number;
}

export interface BestCandidate {
  score: number;
  /** Candidate index; -1 when nothing is pickable. */
  index: number;
  /** Where it sits: thread and position in that thread's region. */
  thread: number;
  position: number;
}

const NO_CANDIDATE: BestCandidate = { score: -Infinity, index: -1, thread: -1, position: -1 };

/** Runs one pass over every thread's share of the candidates and merges their best candidates. */
export interface PassRunner {
  centroidPass(): BestCandidate;
  sweep(slot: number, replace: boolean, wantArgmax: boolean): BestCandidate;
  /**
   * Lazy mode: the centres in slots before `slots` are written. Other threads may catch candidates up with them in
   * the background meanwhile, until catchUp.
   */
  published(slots: number): void;
  /**
   * Lazy mode: the candidate at position p of the region whose `fresh` this is, held for this thread until release;
   * returns its `fresh` (with threads catching up in the background, it waits while one of them holds it).
   */
  claim(fresh: Int32Array, p: number): number;
  release(fresh: Int32Array, p: number, slots: number): void;
  /** Lazy mode: every candidate's `nearest` catches up with the centres in slots before `to` (catchUpRegion). */
  catchUp(to: number): void;
  /**
   * After lazy picks: catchUp(to), then every thread rebuilds its cells from its region (adoptRegion), so that
   * passes resume; returns the best candidate.
   */
  resume(to: number): BestCandidate;
}

export interface PreparedSelection {
  memory: WasmMemory;
  module: WasmModule;
  /** The native kernels the calling thread's states use, if any. */
  native: NativeKernels | undefined;
  layout: FpsLayout;
  rule: FpsRule;
  /** Thread 0's state; the calling thread always works on share 0. */
  main: SweepState;
  /** Every thread's region, for the calling thread between passes. */
  regions: Region[];
  /** The quantiser's column weights (picks' int16 copies are made with them). */
  qWeight: Int32Array;
  k: number;
  selectable: number;
  disagreement: Float64Array | undefined;
}

const DEFAULT_BLOCK_SIZE = 2048;
const WASM_PAGE = 65536;
const MAX_PAGES = 65536;

/**
 * The selection's memory, laid out before the features exist so that they are written straight into it:
 * without a second copy of them (330 MB at a million candidates with descriptors) next to the selection's.
 */
export interface SelectionMemory {
  memory: WasmMemory;
  /** Its qScale is set once the features are known (prepareSelection). */
  layout: FpsLayout;
  /** Where each candidate's row goes, in the thread regions' initial order; scale them in place. */
  candidates: PlacedRows;
  /** The kernel, compiled ahead (see selectionKernelBytes); prepareSelection compiles it when absent. */
  module?: WasmModule;
}

/** The bytes of the kernel module for a selection's memory (one module per memory kind and row length). */
export function selectionKernelBytes({ memory, layout }: Pick<SelectionMemory, "memory" | "layout">): Uint8Array {
  return distanceKernelBytes(memory.buffer instanceof SharedArrayBuffer, layout.qLen, quantizedUsed(layout.D));
}

/**
 * Memory for a selection of k of N candidates with D features, M labelled rows and `threads` threads; shared
 * (so that it can go to other threads) whenever threads > 1, and on request.
 */
export function allocateSelection(
  N: number, D: number, M: number, k: number, threads: number, shared = threads > 1, candidateThreads = threads,
): SelectionMemory {
  if (threads > 1 && !shared) throw new RangeError("a selection on several threads needs shared memory");
  if (!Number.isInteger(candidateThreads) || candidateThreads < 1 || candidateThreads > threads) {
    throw new RangeError(`candidates for 1 to ${threads} threads, not ${candidateThreads}`);
  }
  const layout = layoutFor(N, D, M, k, threads, DEFAULT_BLOCK_SIZE, candidateThreads);
  const pages = Math.ceil(layout.bytes / WASM_PAGE);
  if (pages > MAX_PAGES) {
    throw new UsageError(`selection over ${N} x ${D} features needs ${(layout.bytes / 2 ** 30).toFixed(1)} GiB, more than the 4 GiB limit`);
  }
  const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  return selectionMemory(new api.Memory({ initial: pages, maximum: pages, shared }), layout);
}

/** A selection's memory with its candidates' rows (see allocateSelection); rebuilds them on a thread it was posted to. */
export function selectionMemory(memory: WasmMemory, layout: FpsLayout, module?: WasmModule): SelectionMemory {
  const { N, D, candidateThreads, regions } = layout;
  const starts = regions.map((region) => region.x / 4);
  // Block b of DEFAULT_BLOCK_SIZE candidates goes to thread b mod candidateThreads, after its earlier blocks.
  const start = (row: number): number => {
    const block = Math.floor(row / DEFAULT_BLOCK_SIZE);
    const position = Math.floor(block / candidateThreads) * DEFAULT_BLOCK_SIZE + (row - block * DEFAULT_BLOCK_SIZE);
    return starts[block % candidateThreads] + position * D;
  };
  return { memory, layout, candidates: { rows: N, cols: D, data: new Float32Array(memory.buffer), start }, module };
}

const isPlaced = (features: FeatureMatrix | SelectionMemory): features is SelectionMemory => "memory" in features;

export function selectCandidates(input: SelectionInput, lazy?: LazyPolicy): SelectionResult {
  const prepared = prepareSelection(input, 1);
  return runSelection(prepared, localRunner(prepared), undefined, lazy);
}

/**
 * Validates the input and lays it out in a (shared, when threads > 1) WebAssembly memory. With `native`, the
 * calling thread's passes use the native kernels (the same results).
 */
export function prepareSelection(input: SelectionInput, threads: number, native?: NativeKernels): PreparedSelection {
  const { ids, k } = input;
  const given = input.features;
  const placed = isPlaced(given) ? given : undefined;
  const features: FeatureMatrix | PlacedRows = isPlaced(given) ? given.candidates : given;
  const N = features.rows;
  const D = features.cols;
  if (N === 0) throw new UsageError("the candidate pool is empty: nothing to select from");
  if (D < 1) throw new UsageError("the feature matrix has no columns");
  if (!("start" in features) && features.data.length !== N * D) {
    throw new UsageError(`feature matrix data has ${features.data.length} values, expected ${N} x ${D}`);
  }
  if (ids && ids.length !== N) throw new UsageError(`${ids.length} candidate ids for ${N} feature rows`);
  if (input.firstIndex && input.firstIndex.length !== N) throw new UsageError(`${input.firstIndex.length} first-occurrence indices for ${N} feature rows`);
  if (!Number.isInteger(k) || k < 1) throw new UsageError(`the selection size must be a positive integer, got ${k}`);
  if (k > N) throw new UsageError(`cannot select ${k} candidates from a pool of ${N}`);
  const rule = input.rule ?? DEFAULT_RULE;
  const disagreement = input.disagreement;
  checkRule(rule, disagreement !== undefined);
  if (disagreement) {
    if (disagreement.length !== N) throw new UsageError(`${disagreement.length} disagreement values for ${N} candidates`);
    for (let i = 0; i < N; i++) {
      const u = disagreement[i];
      if (!(u >= 0 && u <= 1)) throw new UsageError(`normalised disagreement of candidate ${named(i, ids)} is ${u}, expected a value in [0, 1]`);
    }
  }
  if (input.excluded && input.excluded.length !== N) {
    throw new UsageError(`${input.excluded.length} exclusion flags for ${N} candidates`);
  }
  const labelled = input.labelled && input.labelled.features.rows > 0 ? input.labelled : undefined;
  if (labelled) {
    if (labelled.features.cols !== D) {
      throw new UsageError(`labelled features have ${labelled.features.cols} columns, candidates have ${D}`);
    }
    if (labelled.ids.length !== labelled.features.rows) {
      throw new UsageError(`${labelled.ids.length} labelled ids for ${labelled.features.rows} labelled rows`);
    }
  }
  const M = labelled ? labelled.features.rows : 0;
  if (placed && (placed.layout.threads !== threads || placed.layout.M !== M || placed.layout.slots !== M + k)) {
    throw new RangeError(`the selection's memory was laid out for ${placed.layout.threads} threads, ${placed.layout.M} labelled rows and ${placed.layout.slots - placed.layout.M} picks`);
  }
  const { memory, layout: unscaled } = placed ?? allocateSelection(N, D, M, k, threads);
  const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const module = placed?.module ?? new api.Module(selectionKernelBytes({ memory, layout: unscaled }));
  const kernel = new api.Instance(module, { env: { memory } }).exports;
  const buffer = memory.buffer;
  // Candidate rows by block of DEFAULT_BLOCK_SIZE: block b goes to thread b mod candidateThreads, after its earlier blocks.
  const { candidateThreads } = unscaled;
  const blocks: { lo: number; hi: number; thread: number; position: number }[] = [];
  const filled = new Int32Array(threads);
  for (let lo = 0, block = 0; lo < N; lo += DEFAULT_BLOCK_SIZE, block++) {
    const hi = Math.min(N, lo + DEFAULT_BLOCK_SIZE);
    blocks.push({ lo, hi, thread: block % candidateThreads, position: filled[block % candidateThreads] });
    filled[block % candidateThreads] += hi - lo;
  }
  const rowAt = (b: (typeof blocks)[number]): number => unscaled.regions[b.thread].x + b.position * unscaled.rowBytes;
  // Placed rows are where this copy would put them.
  if (!("start" in features)) for (const b of blocks) new Float32Array(buffer, rowAt(b), (b.hi - b.lo) * D).set(features.data.subarray(b.lo * D, b.hi * D));
  const centres = new Float32Array(buffer, unscaled.centres, unscaled.slots * D);
  if (labelled) centres.set(labelled.features.data);

  // Column ranges (for the quantiser) and sums (for the centroid), in candidate order.
  const bytes = native && new Uint8Array(buffer);
  const scan: ScanColumns = native ? (...args) => native.scanColumns(bytes!, ...args) : (kernel.scan_columns as ScanColumns);
  const stats = new Float64Array(buffer, unscaled.columnStats, columnStatsBytes(D) / 8);
  stats.fill(Infinity, 0, D).fill(-Infinity, D, 2 * D).fill(0, 2 * D);
  for (const b of blocks) scan(rowAt(b), D, b.hi - b.lo, unscaled.columnStats);
  if (stats[3 * D] !== 0 || stats[3 * D + 1] !== 0) throwNonFinite(rowsOf(features), ids, "candidate");
  const candidateSums = stats.slice(2 * D, 3 * D);
  if (labelled) {
    scan(unscaled.centres, D, M, unscaled.columnStats);
    if (stats[3 * D] !== 0 || stats[3 * D + 1] !== 0) throwNonFinite(rowsOf(labelled.features), labelled.ids, "labelled structure");
  }

  const quantizer = quantizerForRanges(stats.slice(0, D), stats.slice(D, 2 * D));
  const layout: FpsLayout = { ...unscaled, qScale: quantizer.scale };
  const fpsRule: FpsRule =
    rule.kind === "weighted" ? { kind: 0, wDiv: rule.wDiv, beta: 1 } : { kind: 1, wDiv: 0, beta: rule.beta };
  // Before the native kernels are bound: they read the column weights.
  writeQuantizerParams(quantizer, buffer, layout.quantizer);
  const main = createSweepState(memory, module, layout, fpsRule, 0, filterSlack(D), native);
  const quantize: QuantizeRows = native ? (...args) => native.quantizeRows(bytes!, ...args) : (kernel.quantize_rows as QuantizeRows);
  const regions = layout.regions.map((region) => regionViews(buffer, region, D));
  // Positions and candidate indices are copied from one run of 0 .. N-1: loops per region and block ran cold (in
  // V8's interpreter) before the first pick.
  const identity = new Int32Array(N);
  for (let i = 0; i < N; i++) identity[i] = i;
  for (const region of layout.regions) new Int32Array(buffer, region.positions, region.count).set(identity.subarray(0, region.count));
  const weightOf = (u: number): number => (rule.kind === "weighted" ? rule.wDis * u : Math.pow(u, rule.alpha));
  // Without disagreement every candidate has the weight of u = 0.
  const weightWithout = weightOf(0);
  // Undefined: every candidate is pickable.
  const pickable = ids || input.excluded || labelled
    ? pickableFlags(N, ids && (input.firstIndex ?? firstOccurrences(ids)), input.excluded, ids, labelled?.ids)
    : undefined;
  for (const b of blocks) {
    const region = regions[b.thread];
    quantize(rowAt(b), D, b.hi - b.lo, layout.regions[b.thread].qx + b.position * layout.qRowBytes, layout.qRowBytes, layout.qLen, layout.quantizer, quantizer.margin);
    region.index.set(identity.subarray(b.lo, b.hi), b.position);
    if (pickable) for (let i = b.lo, p = b.position; i < b.hi; i++, p++) region.status[p] = pickable[i] ? 0 : 1;
    else region.status.fill(0, b.position, b.position + b.hi - b.lo);
    if (!disagreement) region.weight.fill(weightWithout, b.position, b.position + b.hi - b.lo);
    else for (let i = b.lo, p = b.position; i < b.hi; i++, p++) region.weight[p] = weightOf(disagreement[i]);
  }
  if (labelled) {
    quantizeRows(quantizer, labelled.features.data, 0, M, buffer, layout.qCentres, layout.qPickBytes, true);
  }
  new Int32Array(buffer, layout.slotThread, layout.slots).fill(-1);
  const centroid = new Float64Array(buffer, layout.centroid, D);
  if (!labelled) for (let c = 0; c < D; c++) centroid[c] = candidateSums[c] / N;
  let selectable = pickable ? 0 : N;
  if (pickable) for (let i = 0; i < N; i++) selectable += pickable[i];
  return { memory, module, native, layout, rule: fpsRule, main, regions, qWeight: quantizer.weight, k, selectable, disagreement };
}

/**
 * When the selection stops passing every pick over the candidates and picks lazily instead (see pickLazily), and
 * when it passes again:
 * - Lazy picking starts after `passes` passes in a row that each tested at least `minShare` of thread 0's
 *   candidates against a bound, i.e. when the pruning rules out little. Lazy picking still meets every candidate
 *   with every pick, but from cache (see pickLazily), so it pays while passes would test most candidates: on
 *   uniform 1e5 x 100 features one thread took 0.89 s instead of 1.29 s, on overlapping clusters 0.90-1.01 s
 *   instead of 1.14-1.23 s, and `relabel rank` on a million 8-atom cells with the baseline descriptors 16-17 s
 *   instead of 25 s. Not sooner than after 8 passes: a candidate whose score a pick lowers is caught up on its own,
 *   sinking through the heap, and some of the first picks lower nearly every score (on a million such cells, lazy
 *   picking from pick 2 took 17.5 s against 14 s from pick 9).
 * - Passes resume once a sample (see passShareEstimate) says that a pass would test under `resumeShare` of the
 *   candidates, on average over the last RESUME_WINDOW lazy picks (never when `resumeShare` is left out).
 *   Well-separated clusters test every row only until each cluster has its first picks: on the bench's 1e5 mixture,
 *   one thread, the first 150 picks took 0.45 s with picks 10-130 lazy against 0.67 s all by passes, and the picks
 *   after them took longer lazily than by passes (the final catch-up too grows with every lazy pick).
 *   A pick that would lower the scores of more than half the candidates left is left to a pass too.
 * Returning to passes costs a catch-up of every candidate and rebuilding the cells (about 50 ms at 1e5), so after
 * one, lazy picking starts again only after RESUME_WINDOW heavy passes in a row.
 */
export interface LazyPolicy {
  passes: number;
  minShare: number;
  resumeShare?: number;
}

export const DEFAULT_LAZY_POLICY: LazyPolicy = { passes: 8, minShare: 0.9, resumeShare: 0.3 };

/** Lazy picks over which the estimated share of a pass is averaged before passes resume (see LazyPolicy). */
const RESUME_WINDOW = 8;
/** Candidates of thread 0's region in passShareEstimate's sample. */
const SHARE_SAMPLE = 128;

/**
 * Runs the k picks; `runner` decides how many threads share each pass; `onPick` hears the number picked so far and
 * the candidate just picked. Results do not depend on `lazy`.
 */
export function runSelection(
  prepared: PreparedSelection, runner: PassRunner, onPick?: (picked: number, index: number) => void, lazy = DEFAULT_LAZY_POLICY,
): SelectionResult {
  const { layout, regions, k, disagreement } = prepared;
  const { M, D } = layout;
  const buffer = prepared.memory.buffer;
  const bytes = new DataView(buffer);
  const centres = new Float32Array(buffer, layout.centres, layout.slots * D);
  const slotThread = new Int32Array(buffer, layout.slotThread, layout.slots);
  const slotPosition = new Int32Array(buffer, layout.slotPosition, layout.slots);
  const picks: SelectionPick[] = [];
  // The pick becomes the centre in the next slot.
  const take = (thread: number, p: number, score: number): number => {
    const region = regions[thread];
    picks.push({
      rank: picks.length + 1,
      index: region.index[p],
      diversity: region.nearest[p],
      disagreement: disagreement ? disagreement[region.index[p]] : 0,
      score,
    });
    region.status[p] = 1;
    const slot = M + picks.length - 1;
    centres.set(region.X.subarray(p * D, (p + 1) * D), slot * D);
    const qx = layout.regions[thread].qx + p * layout.qRowBytes;
    widenQuantizedRow(bytes, qx, layout.qCentres + slot * layout.qPickBytes, layout.qLen, prepared.qWeight);
    slotThread[slot] = thread;
    slotPosition[slot] = p;
    return slot;
  };
  let best = NO_CANDIDATE;
  if (M === 0) best = runner.centroidPass();
  else for (let slot = 0; slot < M; slot++) best = runner.sweep(slot, slot === 0, slot === M - 1);
  // Passes in a row that tested nearly every candidate of thread 0's share (see LazyPolicy).
  const share = layout.regions[0].count;
  let heavyPasses = 0;
  // Heavy passes in a row that start lazy picking (see LazyPolicy).
  let heavyNeeded = lazy.passes;
  let lazyFrom: number | null = null;
  let lazyPicks = 0;
  while (picks.length < k && best.index >= 0) {
    const slot = take(best.thread, best.position, best.score);
    const tested = prepared.main.tested;
    best = runner.sweep(slot, picks.length === 1 && M === 0, picks.length < k);
    onPick?.(picks.length, picks[picks.length - 1].index);
    heavyPasses = prepared.main.tested - tested >= lazy.minShare * share ? heavyPasses + 1 : 0;
    if (heavyPasses < heavyNeeded || picks.length === k || best.index < 0) continue;
    lazyFrom ??= picks.length;
    const before = picks.length;
    const resume = pickLazily(prepared, runner, picks, take, onPick, lazy.resumeShare ?? 0);
    lazyPicks += picks.length - before;
    if (!resume) {
      runner.catchUp(M + picks.length);
      break;
    }
    best = runner.resume(M + picks.length);
    heavyPasses = 0;
    heavyNeeded = Math.max(lazy.passes, RESUME_WINDOW);
  }
  const distanceToCovered = new Float64Array(layout.N);
  for (const region of regions) {
    for (let p = 0; p < region.index.length; p++) distanceToCovered[region.index[p]] = region.nearest[p];
  }
  return { picks, requested: k, selectable: prepared.selectable, distanceToCovered, lazyFrom, lazyPicks };
}

/**
 * While picks are made lazily: the share of the candidates that a pass for each new pick would test, estimated on a
 * fixed sample of thread 0's candidates, those whose cell's centre is within twice their `nearest` of the pick (the
 * test of listRows in scanPass). The sample's `nearest` and cells are kept current here (exact distances from the
 * kernel, on this thread's scratch), from the regions' arrays as they are when lazy picking starts.
 */
function passShareEstimate(st: SweepState): (slot: number) => number {
  const { region } = st;
  const n = region.index.length;
  const S = Math.min(SHARE_SAMPLE, n);
  const positions = Int32Array.from({ length: S }, (_, j) => Math.floor((j * n) / S));
  const nearestSq = Float64Array.from(positions, (p) => region.nearestSq[p]);
  const cell = Int32Array.from(positions, (p) => region.cellOf[p]);
  const rowSq = new Float64Array(S);
  // centreSq[c]: the squared distance from the centre in slot c to the pick whose slot + 1 is in stamp[c].
  const centreSq = new Float64Array(st.layout.slots);
  const stamp = new Int32Array(st.layout.slots);
  const limit = 2 * (1 + 1e-9);
  return (slot) => {
    if (S === 0) return 1;
    st.rows.set(positions);
    distances(st, false, S, slot, false);
    rowSq.set(st.out.subarray(0, S));
    let cells = 0;
    for (let j = 0; j < S; j++) {
      const c = cell[j];
      if (c < 0 || stamp[c] === slot + 1) continue;
      stamp[c] = slot + 1;
      st.rows[cells++] = c;
    }
    distances(st, true, cells, slot, false);
    for (let t = 0; t < cells; t++) centreSq[st.rows[t]] = st.out[t];
    let listed = 0;
    for (let j = 0; j < S; j++) {
      // A candidate with no cell yet (none before the first centre) would be listed.
      if (cell[j] < 0 || Math.sqrt(centreSq[cell[j]]) < limit * Math.sqrt(nearestSq[j])) listed++;
      if (rowSq[j] < nearestSq[j]) {
        nearestSq[j] = rowSq[j];
        cell[j] = slot;
      }
    }
    return listed / S;
  };
}

/**
 * The picks after `picks`, each `nearest` caught up only as far as needed: nearest only falls, so a stale value
 * bounds the current one from above, and the best candidate by stale scores (in a heap) is the pick once its own
 * score is current. Candidates with low scores need no catching up until the end, and one that does meets the picks
 * since its last update one after another, from cache, instead of every pick passing over every row of memory.
 * Results equal the passes': the same distances, the same ties to the lowest index. Other threads may catch
 * candidates up meanwhile (PassRunner.published), so each is claimed while read or changed here; the caller then
 * catches every candidate up with the last pick (PassRunner.catchUp). Returns true when it stopped for passes to
 * resume (see LazyPolicy), with picks left to make (possibly in the middle of one: every candidate is released).
 */
function pickLazily(
  prepared: PreparedSelection,
  runner: PassRunner,
  picks: SelectionPick[],
  take: (thread: number, p: number, score: number) => number,
  onPick: ((picked: number, index: number) => void) | undefined,
  resumeShare: number,
): boolean {
  const { regions, k, main } = prepared;
  const T = regions.length;
  let slots = prepared.layout.M + picks.length;
  // Candidate g is position (g - t) / T of thread t = g mod T; the heap holds g with its score and index beside it.
  let size = 0;
  for (const region of regions) size += region.index.length;
  const heap = new Int32Array(size);
  const heapScore = new Float64Array(size);
  const heapIndex = new Int32Array(size);
  size = 0;
  for (let t = 0; t < T; t++) {
    const { status, fresh, score, index } = regions[t];
    fresh.fill(slots);
    for (let p = 0; p < status.length; p++) {
      if (status[p] !== 0) continue;
      heap[size] = p * T + t;
      heapScore[size] = score[p];
      heapIndex[size++] = index[p];
    }
  }
  const siftDown = (at: number): void => {
    const g = heap[at];
    const s = heapScore[at];
    const i = heapIndex[at];
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      const right = child + 1;
      if (right < size && (heapScore[right] > heapScore[child] || (heapScore[right] === heapScore[child] && heapIndex[right] < heapIndex[child]))) {
        child = right;
      }
      if (!(heapScore[child] > s || (heapScore[child] === s && heapIndex[child] < i))) break;
      heap[at] = heap[child];
      heapScore[at] = heapScore[child];
      heapIndex[at] = heapIndex[child];
      at = child;
    }
    heap[at] = g;
    heapScore[at] = s;
    heapIndex[at] = i;
  };
  for (let at = (size >> 1) - 1; at >= 0; at--) siftDown(at);
  // Before any thread catches up in the background: the estimate starts from the regions' arrays.
  const estimate = resumeShare > 0 ? passShareEstimate(main) : undefined;
  const recent = new Float64Array(RESUME_WINDOW);
  let estimated = 0;
  runner.published(slots);
  while (picks.length < k && size > 0) {
    // The top's stale score bounds every other candidate's: once its own is current and still that, it is the pick.
    let t: number;
    let p: number;
    for (let sunk = 0; ; sunk++) {
      // A pick that lowers most scores costs less by a pass than through the heap (see LazyPolicy): passes take it.
      if (estimate && 2 * sunk > size) return true;
      const g = heap[0];
      t = g % T;
      p = (g - t) / T;
      const region = regions[t];
      // The better of the top's children is likely the next top: it comes from memory while this one is caught up
      // (picks 10-150 of a 1e5 mixture took 17 % less time).
      if (size > 1) {
        const next = size > 2 && heapScore[2] > heapScore[1] ? heap[2] : heap[1];
        const nextThread = next % T;
        prefetchCandidate(main, prepared.layout.regions[nextThread], (next - nextThread) / T);
      }
      const from = runner.claim(region.fresh, p);
      if (from < slots) catchUp(main, prepared.layout.regions[t], region, p, from, slots);
      if (region.score[p] === heapScore[0]) break;
      heapScore[0] = region.score[p];
      runner.release(region.fresh, p, slots);
      siftDown(0);
    }
    size--;
    heap[0] = heap[size];
    heapScore[0] = heapScore[size];
    heapIndex[0] = heapIndex[size];
    siftDown(0);
    take(t, p, regions[t].score[p]);
    runner.release(regions[t].fresh, p, slots);
    runner.published(++slots);
    onPick?.(picks.length, picks[picks.length - 1].index);
    if (!estimate) continue;
    recent[estimated++ % RESUME_WINDOW] = estimate(slots - 1);
    if (estimated < RESUME_WINDOW) continue;
    let sum = 0;
    for (let w = 0; w < RESUME_WINDOW; w++) sum += recent[w];
    if (sum < resumeShare * RESUME_WINDOW && picks.length < k && size > 0) return true;
  }
  return false;
}

/** Every pass on the calling thread alone. */
export function localRunner(prepared: PreparedSelection): PassRunner {
  const st = prepared.main;
  const result = (): BestCandidate => ({ score: st.bestScore, index: st.bestIndex, thread: 0, position: st.bestPosition });
  return {
    centroidPass() {
      centroidPass(st);
      return result();
    },
    sweep(slot, replace, wantArgmax) {
      sweep(st, slot, replace, wantArgmax);
      return result();
    },
    published: () => undefined,
    claim: (fresh, p) => fresh[p],
    release: (fresh, p, slots) => {
      fresh[p] = slots;
    },
    catchUp: (to) => catchUpRegion(st, to),
    resume(to) {
      catchUpRegion(st, to);
      adoptRegion(st);
      return result();
    },
  };
}

/** The better of two threads' candidates: higher score, ties to the lower index. */
export function betterCandidate(a: BestCandidate, b: BestCandidate): BestCandidate {
  if (b.index < 0) return a;
  if (a.index < 0) return b;
  if (b.score > a.score || (b.score === a.score && b.index < a.index)) return b;
  return a;
}

function checkRule(rule: SelectionRule, hasCommittee: boolean): void {
  const nonNegative = (value: number, label: string): void => {
    if (!(Number.isFinite(value) && value >= 0)) throw new UsageError(`${label} must be a finite number >= 0, got ${value}`);
  };
  if (rule.kind === "weighted") {
    nonNegative(rule.wDiv, "w_div");
    nonNegative(rule.wDis, "w_dis");
    if (rule.wDiv === 0 && rule.wDis === 0) throw new UsageError("w_div and w_dis are both 0: nothing to rank by");
    if (rule.wDiv === 0 && !hasCommittee) {
      throw new UsageError("w_div = 0 ranks by committee disagreement alone and needs a committee of at least 2 models");
    }
  } else {
    nonNegative(rule.alpha, "alpha");
    nonNegative(rule.beta, "beta");
    if (rule.alpha > 0 && !hasCommittee) {
      throw new UsageError("uwfps with alpha > 0 weights by committee disagreement and needs a committee of at least 2 models");
    }
  }
}

/** Throws the error for the first value of `matrix` that is not finite, naming its row and column. */
function throwNonFinite(matrix: PlacedRows, ids: readonly string[] | undefined, what: string): never {
  const { data, cols, rows, start } = matrix;
  for (let row = 0; row < rows; row++) {
    const p = start(row);
    for (let c = 0; c < cols; c++) {
      const v = data[p + c];
      if (v - v !== 0) throw new InputError("features", `${what} ${named(row, ids)}`, `column ${c} is ${v}, expected a finite number`);
    }
  }
  throw new Error("a non-finite feature value was found and then not found again");
}

const named = (i: number, ids: readonly string[] | undefined): string => (ids ? `${i} (${ids[i]})` : String(i));

/**
 * 1 = may be picked: not excluded, the first occurrence of its id (firstIndex, from firstOccurrences; every
 * candidate when absent) and not labelled (ids needed for that).
 */
function pickableFlags(
  N: number,
  firstIndex: Int32Array | undefined,
  excluded: Uint8Array | undefined,
  ids?: readonly string[],
  labelledIds?: readonly string[],
): Uint8Array {
  const labelled = new Set<string>(labelledIds ?? []);
  const pickable = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    const first = firstIndex === undefined || firstIndex[i] === i;
    const isLabelled = ids !== undefined && labelled.size > 0 && labelled.has(ids[i]);
    pickable[i] = first && !isLabelled && !(excluded && excluded[i] !== 0) ? 1 : 0;
  }
  return pickable;
}

/**
 * The selection with ids from one run without them (every candidate taken as distinct), or undefined
 * when that run picked a candidate the ids make unpickable (a later copy of an earlier structure);
 * `firstIndex` is firstOccurrences(ids), and `excluded` what the run was given.
 * Otherwise both runs agree pick by pick: each pick was the best candidate of a larger set and belongs
 * to the smaller one, so it is also the best there (ties included), and the same picks leave the same
 * distances. Only `selectable` changes. Valid only for runs without labelled rows.
 */
export function confirmWithIds(result: SelectionResult, firstIndex: Int32Array, excluded?: Uint8Array): SelectionResult | undefined {
  const N = result.distanceToCovered.length;
  if (firstIndex.length !== N) throw new UsageError(`${firstIndex.length} candidate ids for ${N} candidates`);
  const pickable = pickableFlags(N, firstIndex, excluded);
  if (result.picks.some((pick) => pickable[pick.index] === 0)) return undefined;
  let selectable = 0;
  for (let i = 0; i < N; i++) selectable += pickable[i];
  return { ...result, selectable };
}

/** The memory layout; qScale is 0 until prepareSelection knows the features. */
function layoutFor(N: number, D: number, M: number, k: number, threads: number, blockSize: number, candidateThreads: number): FpsLayout {
  let offset = 0;
  const take = (bytes: number): number => {
    const at = offset;
    offset += Math.ceil(bytes / 16) * 16;
    return at;
  };
  const slots = M + k;
  const rowBytes = D * 4;
  const qLen = quantizedLength(D);
  const qRowBytes = qLen + 16;
  const qPickBytes = 2 * qLen + 16;
  const centres = take(slots * rowBytes);
  const qCentres = take(slots * qPickBytes);
  const slotThread = take(slots * 4);
  const slotPosition = take(slots * 4);
  const centroid = take(D * 8);
  const quantizer = take(quantizerParamBytes(D));
  const columnStats = take(columnStatsBytes(D));
  const regions: RegionLayout[] = [];
  for (let t = 0; t < threads; t++) {
    let count = 0;
    if (t < candidateThreads) for (let lo = t * blockSize; lo < N; lo += candidateThreads * blockSize) count += Math.min(N, lo + blockSize) - lo;
    regions.push({
      count,
      x: take((count + 1) * rowBytes),
      qx: take((count + 1) * qRowBytes),
      positions: take((count + 1) * 4),
      nearestSq: take(count * 8),
      nearest: take(count * 8),
      score: take(count * 8),
      weight: take(count * 8),
      index: take(count * 4),
      cellOf: take(count * 4),
      status: take(count),
      rows: take((blockSize + 1) * 4),
      out: take((blockSize + 1) * 8),
      inverse: take(count * 4),
      reach: take((slots + 1) * 8),
      fresh: take(count * 4),
    });
  }
  return {
    N, D, M, slots, threads, candidateThreads, blockSize, rowBytes, qLen, qRowBytes, qPickBytes, qScale: 0,
    centres, qCentres, slotThread, slotPosition, centroid, quantizer, columnStats, regions, bytes: offset,
  };
}
