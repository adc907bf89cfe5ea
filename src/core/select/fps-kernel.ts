/**
 * Inner loops of greedy farthest-point selection over one thread's share of the candidates.
 *
 * Every function listed in KERNEL_FUNCTIONS is self-contained: it refers only to its arguments,
 * to globals of the language (Math, WebAssembly, typed arrays) and to other functions of that list.
 * src/exec/fps-threads.ts ships their source text to worker threads, so keep it that way
 * (no imports, no module-level constants used inside them).
 *
 * Thread t owns the candidates of every T-th block of `blockSize` rows (by candidate index) and keeps
 * them in its own region of the shared memory, grouped by cell: the cell of a centre (a labelled row
 * or a pick) holds the candidates nearest to it, stored as contiguous segments of the region. Rows, their
 * quantised copies and their per-candidate values move together when a candidate changes cell, so every
 * pass reads memory sequentially. A pick only visits cells with d(centre, pick) < 2*radius (radius: at
 * least the largest `nearest` in the cell); other cells cannot get closer. When a pick concerns most of the region anyway, one
 * pass in position order is cheaper than moving rows between cells: the grouping is then left stale and
 * restored (one in-place permutation) once two picks in a row concern few cells. Results do not
 * depend on where rows sit: distances are computed from row contents and ties go to the lowest
 * candidate index.
 */

import type { CentroidRows, CopyBytes, ListRows, NearestToSlots, PermuteRows, QuantizeRows, ScanColumns, SqdistRows } from "./distance-kernel.js";

/** The parts of the WebAssembly JS API used here (the project's lib settings do not declare them). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
/** A compiled module (opaque). */
export interface WasmModule {
  readonly compiledModule?: never;
}
export interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
}

/**
 * The native kernels (native-kernels.c, loaded by src/exec/native-kernels.ts): `bind` gives one thread the
 * native versions of nearest_to_slots and of sqdist_rows, over the selection's whole memory. They give exactly
 * what the WebAssembly kernel gives.
 */
export interface NativeKernels {
  /** scan_columns and quantize_rows (see ScanColumns and QuantizeRows) on a selection's memory, given as bytes. */
  scanColumns(memory: Uint8Array, ...args: Parameters<ScanColumns>): void;
  quantizeRows(memory: Uint8Array, ...args: Parameters<QuantizeRows>): void;
  bind(
    memory: Uint8Array, centres: number, qCentres: number, slots: number, D: number, rowBytes: number, qLen: number,
    qPickBytes: number, slack: number, qScale: number, quantizer: number,
  ): NativeSweep;
  /** scanPass's loop over the rows that got closer, on one thread's arrays (see SweepState.moveRows). */
  moves(
    size: Int32Array, radius: Float64Array, cellScore: Float64Array, cellIndex: Int32Array, cellPosition: Int32Array,
    dirtyStamp: Int32Array, moved: Int32Array, counts: Int32Array, nearestSq: Float64Array, nearest: Float64Array,
    cellOf: Int32Array, score: Float64Array, weight: Float64Array, status: Uint8Array, index: Int32Array, rows: Int32Array,
    out: Float64Array, kind: number, wDiv: number,
  ): (closer: number, slot: number, stamp: number) => void;
}
export interface NativeSweep {
  /** nearest_to_slots for the centres in slots [from, to), the offset of the centre that lowered `nearest` to i32[lowered]. */
  nearest(x: number, qx: number, nearestSq: number, nearest: number, lowered: number, from: number, to: number): number;
  /** sqdist_rows with bounds (useBound = 1). */
  rows(
    x: number, rows: number, count: number, pick: number, bounds: number, roots: number, out: number, qx: number,
    qRowBytes: number, qPick: number, kept: number,
  ): number;
  /** sqdist_rows without bounds (useBound = 0). */
  exact(x: number, rows: number, count: number, pick: number, out: number): void;
  /** catchUp for a range of positions of a region, given by its arrays' offsets (see catchUpPositions). */
  catchUpRange(
    x: number, qx: number, qRowBytes: number, nearestSq: number, nearest: number, fresh: number, cellOf: number, score: number,
    weight: number, lowered: number, first: number, end: number, to: number, kind: number, wDiv: number,
  ): void;
  /** Fetches a candidate's row, quantised copy and entries of those arrays into the cache (see prefetchCandidate). */
  prefetch(x: number, qx: number, nearestSq: number, nearest: number, score: number, fresh: number): void;
}

/** Byte offsets of one thread's arrays (all 16-byte aligned); positions 0 .. count-1. */
export interface RegionLayout {
  count: number;
  /** count rows (layout.rowBytes each), then one spare row used when moving rows. */
  x: number;
  /** Their quantised copies (layout.qRowBytes each), in the same order, then a spare. */
  qx: number;
  /** The positions 0 .. count-1 (int32) and one more entry: a row list for whole-region passes. */
  positions: number;
  nearestSq: number;
  nearest: number;
  score: number;
  weight: number;
  /** Candidate index of the row at each position. */
  index: number;
  /** Cell (centre slot) of each position; -1 before the first centre. */
  cellOf: number;
  status: number;
  /** Scratch: `blockSize` + 1 i32 positions, then `blockSize` + 1 f64 distances. */
  rows: number;
  out: number;
  /** Scratch for regrouping: the position each position's candidate comes from (count i32). */
  inverse: number;
  /** Scratch for listing rows (see ListRows): slots + 1 f64. */
  reach: number;
  /**
   * Once the selection picks lazily (see catchUp): the centre slots each position's `nearest` accounts for (count
   * i32), or -1 while a thread catches it up (see PassRunner.claim).
   */
  fresh: number;
}

export interface FpsLayout {
  N: number;
  D: number;
  /** Labelled rows: centre slots 0 .. M-1. */
  M: number;
  /** Centre slots: labelled rows, then pick r in slot M + r. */
  slots: number;
  threads: number;
  /**
   * Threads holding candidates (threads 0 .. candidateThreads-1; the others' regions are empty): fewer than `threads`
   * when the other threads only catch candidates up and every pass runs on thread 0 (see fps-threads.ts).
   */
  candidateThreads: number;
  blockSize: number;
  /** Bytes per feature row (D float32). */
  rowBytes: number;
  /** The quantised copies the kernel filters with (see distance-kernel.ts): values per row, bytes per
   * candidate's copy (int8) and per centre's (int16), and the scale. */
  qLen: number;
  qRowBytes: number;
  qPickBytes: number;
  qScale: number;
  /** Rows of all centres (slots x rowBytes), and their quantised copies (slots x qPickBytes). */
  centres: number;
  qCentres: number;
  /** Owner thread and position of the pick in each slot (set by the caller before its pass). */
  slotThread: number;
  slotPosition: number;
  centroid: number;
  /** The quantiser's arrays for the kernel's quantize_rows (writeQuantizerParams). */
  quantizer: number;
  /** Scratch for the kernel's scan_columns (columnStatsBytes). */
  columnStats: number;
  regions: RegionLayout[];
  bytes: number;
}

export interface FpsRule {
  /** 0 = weighted sum w_div*nearest + weight, 1 = weight * nearest^beta (weight = u^alpha). */
  kind: number;
  wDiv: number;
  beta: number;
}

export interface Region {
  /** Rows 0 .. count-1, then the spare row. */
  X: Float32Array;
  nearestSq: Float64Array;
  nearest: Float64Array;
  score: Float64Array;
  /** Per-candidate term of the score: w_dis*u (weighted) or u^alpha (uwfps). */
  weight: Float64Array;
  index: Int32Array;
  cellOf: Int32Array;
  /** 0 = may still be picked. */
  status: Uint8Array;
  fresh: Int32Array;
}

/** One thread's views and bookkeeping; the best candidate of its last pass in best*. */
export interface SweepState {
  layout: FpsLayout;
  rule: FpsRule;
  thread: number;
  region: Region;
  centres: Float32Array;
  slotThread: Int32Array;
  slotPosition: Int32Array;
  rows: Int32Array;
  out: Float64Array;
  rowsPtr: number;
  outPtr: number;
  sqdistRows: SqdistRows;
  copyBytes: CopyBytes;
  permuteRows: PermuteRows;
  listRows: ListRows;
  centroidRows: CentroidRows;
  nearestToSlots: NearestToSlots;
  /** The native versions of nearestToSlots and sqdistRows, where they are loaded. */
  native: NativeSweep | null;
  /** The float64 view of RegionLayout.reach. */
  reach: Float64Array;
  /** Share of the region within reach of the last pick that listRows was used for (see scanPass). */
  inReachShare: number;
  /** Candidates the kernel has tested against a bound so far (a measure of the passes' work). */
  tested: number;
  /** filterSlack(D), see distance-kernel.ts. */
  slack: number;
  /** Cells, by slot: first segment, size, radius, best pickable candidate (score, index, position). */
  firstSegment: Int32Array;
  size: Int32Array;
  radius: Float64Array;
  cellScore: Float64Array;
  cellIndex: Int32Array;
  cellPosition: Int32Array;
  cellDist: Float64Array;
  /** Segments [start, end) chained per cell; freed ones chained from freeSegment. */
  segStart: Int32Array;
  segEnd: Int32Array;
  segNext: Int32Array;
  segCount: number;
  freeSegment: number;
  /** Whether every active cell's members are exactly its segments. */
  grouped: boolean;
  /** Picks in a row that concerned at most half of the region (see updatePass). */
  smallPicks: number;
  /** Non-empty cells: active[0 .. activeCount). */
  active: Int32Array;
  activeCount: number;
  affected: Int32Array;
  /** affectedStamp[c] = slot + 1 while cell c is updated for the pick in `slot`. */
  affectedStamp: Int32Array;
  /** dirtyStamp[c] = slot + 1 once cell c lost its best candidate to the pick in `slot` (scanPass). */
  dirtyStamp: Int32Array;
  /**
   * While `listed`: each cell's members as a doubly linked list of positions (head per cell), kept by
   * scanPass, so that a cell that lost its best is searched through its members, not the whole region.
   */
  memberHead: Int32Array;
  memberNext: Int32Array;
  memberPrev: Int32Array;
  listed: boolean;
  /** Scratch of scanPass: (position, cell it left) of each candidate that moved (at most once a pass each). */
  moved: Int32Array;
  /**
   * Native kernels, when the rule's score is plain arithmetic (plainScore): scanPass's loop over
   * the rows of a block that got closer, keeping moveCounts (moved pairs, dirty cells) current.
   */
  moveRows: ((closer: number, slot: number, stamp: number) => void) | null;
  moveCounts: Int32Array;
  /** Segments detached for the current pick: (segment, cell) pairs. */
  pending: Int32Array;
  /** Scratch for regrouping: target of each position and its inverse (in the memory), next free position of each cell. */
  target: Int32Array;
  inverse: Int32Array;
  cellStart: Int32Array;
  bestScore: number;
  bestIndex: number;
  bestPosition: number;
}

export function regionViews(buffer: ArrayBuffer | SharedArrayBuffer, region: RegionLayout, D: number): Region {
  const n = region.count;
  return {
    X: new Float32Array(buffer, region.x, (n + 1) * D),
    nearestSq: new Float64Array(buffer, region.nearestSq, n),
    nearest: new Float64Array(buffer, region.nearest, n),
    score: new Float64Array(buffer, region.score, n),
    weight: new Float64Array(buffer, region.weight, n),
    index: new Int32Array(buffer, region.index, n),
    cellOf: new Int32Array(buffer, region.cellOf, n),
    status: new Uint8Array(buffer, region.status, n),
    fresh: new Int32Array(buffer, region.fresh, n),
  };
}

export function createSweepState(
  memory: WasmMemory,
  module: WasmModule,
  layout: FpsLayout,
  rule: FpsRule,
  thread: number,
  slack: number,
  native?: NativeKernels,
): SweepState {
  const buffer = memory.buffer;
  const { D, slots, blockSize } = layout;
  const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const instance = new api.Instance(module, { env: { memory } });
  const regionLayout = layout.regions[thread];
  const segments = 64;
  const region = regionViews(buffer, regionLayout, D);
  const rows = new Int32Array(buffer, regionLayout.rows, blockSize);
  const out = new Float64Array(buffer, regionLayout.out, blockSize + 1);
  const cells = {
    size: new Int32Array(slots),
    radius: new Float64Array(slots),
    cellScore: new Float64Array(slots).fill(-Infinity),
    cellIndex: new Int32Array(slots).fill(-1),
    cellPosition: new Int32Array(slots).fill(-1),
    dirtyStamp: new Int32Array(slots),
    moved: new Int32Array(2 * regionLayout.count),
    moveCounts: new Int32Array(2),
  };
  const moveRows = native && plainScore(rule)
    ? native.moves(
      cells.size, cells.radius, cells.cellScore, cells.cellIndex, cells.cellPosition, cells.dirtyStamp, cells.moved, cells.moveCounts,
      region.nearestSq, region.nearest, region.cellOf, region.score, region.weight, region.status, region.index, rows, out, rule.kind,
      rule.wDiv,
    )
    : null;
  return {
    layout,
    rule,
    thread,
    region,
    centres: new Float32Array(buffer, layout.centres, slots * D),
    slotThread: new Int32Array(buffer, layout.slotThread, slots),
    slotPosition: new Int32Array(buffer, layout.slotPosition, slots),
    rows,
    out,
    rowsPtr: regionLayout.rows,
    outPtr: regionLayout.out,
    sqdistRows: instance.exports.sqdist_rows as SqdistRows,
    copyBytes: instance.exports.copy_bytes as CopyBytes,
    permuteRows: instance.exports.permute_rows as PermuteRows,
    listRows: instance.exports.list_rows as ListRows,
    centroidRows: instance.exports.centroid_rows as CentroidRows,
    nearestToSlots: instance.exports.nearest_to_slots as NearestToSlots,
    native: native
      ? native.bind(
        new Uint8Array(buffer), layout.centres, layout.qCentres, slots, D, layout.rowBytes, layout.qLen, layout.qPickBytes,
        slack, layout.qScale, layout.quantizer,
      )
      : null,
    reach: new Float64Array(buffer, regionLayout.reach, slots + 1),
    inReachShare: 1,
    tested: 0,
    slack,
    firstSegment: new Int32Array(slots).fill(-1),
    ...cells,
    moveRows,
    cellDist: new Float64Array(slots),
    segStart: new Int32Array(segments),
    segEnd: new Int32Array(segments),
    segNext: new Int32Array(segments),
    segCount: 0,
    freeSegment: -1,
    grouped: true,
    smallPicks: 0,
    active: new Int32Array(slots),
    activeCount: 0,
    affected: new Int32Array(slots),
    affectedStamp: new Int32Array(slots),
    memberHead: new Int32Array(slots).fill(-1),
    memberNext: new Int32Array(regionLayout.count),
    memberPrev: new Int32Array(regionLayout.count),
    listed: false,
    pending: new Int32Array(128),
    target: new Int32Array(regionLayout.count),
    inverse: new Int32Array(buffer, regionLayout.inverse, regionLayout.count),
    cellStart: new Int32Array(slots),
    bestScore: -Infinity,
    bestIndex: -1,
    bestPosition: -1,
  };
}

/** Whether scoreOf is plain arithmetic under the rule (no Math.pow, whose last bit is V8's own): native code may compute it. */
export function plainScore(rule: FpsRule): boolean {
  return rule.kind === 0 || rule.beta === 1;
}

export function scoreOf(rule: FpsRule, nearest: number, weight: number): number {
  if (rule.kind === 0) return rule.wDiv * nearest + weight;
  return weight * (rule.beta === 1 ? nearest : Math.pow(nearest, rule.beta));
}

/** Initial `nearest`: the distance to the feature centroid (no labelled set). */
export function centroidPass(st: SweepState): void {
  const { D, blockSize, rowBytes, centroid } = st.layout;
  const { nearest, nearestSq, score, weight, status, index, cellOf } = st.region;
  const out = st.out;
  const n = index.length;
  let best = -Infinity;
  let bestIndex = -1;
  let bestPosition = -1;
  for (let start = 0; start < n; start += blockSize) {
    const count = Math.min(n, start + blockSize) - start;
    st.centroidRows(st.layout.regions[st.thread].x + start * rowBytes, D, count, centroid, st.outPtr);
    for (let t = 0; t < count; t++) {
      const p = start + t;
      const d2 = out[t];
      const d = Math.sqrt(d2);
      nearestSq[p] = d2;
      nearest[p] = d;
      cellOf[p] = -1;
      const s = scoreOf(st.rule, d, weight[p]);
      score[p] = s;
      if (status[p] === 0 && (s > best || (s === best && index[p] < bestIndex))) {
        best = s;
        bestIndex = index[p];
        bestPosition = p;
      }
    }
  }
  st.bestScore = best;
  st.bestIndex = bestIndex;
  st.bestPosition = bestPosition;
}

/** Chains segment [start, end) to cell c (members only; see foldRange for radius and best). */
export function linkSegment(st: SweepState, c: number, start: number, end: number): void {
  let g = st.freeSegment;
  if (g >= 0) {
    st.freeSegment = st.segNext[g];
  } else {
    if (st.segCount === st.segStart.length) {
      st.segStart = growInt32(st.segStart);
      st.segEnd = growInt32(st.segEnd);
      st.segNext = growInt32(st.segNext);
    }
    g = st.segCount++;
  }
  st.segStart[g] = start;
  st.segEnd[g] = end;
  st.segNext[g] = st.firstSegment[c];
  st.firstSegment[c] = g;
}

export function growInt32(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/**
 * Folds positions [start, end), all members of cell c, into its size, radius and best. Nothing follows the loop: V8
 * compiles a long first call's loop on the stack, and code after it without type feedback would drop that code at
 * every later call (thousands of times a selection).
 */
export function foldRange(st: SweepState, c: number, start: number, end: number): void {
  const { nearest, score, status, index } = st.region;
  const { radius, cellScore, cellIndex, cellPosition } = st;
  st.size[c] += end - start;
  for (let p = start; p < end; p++) {
    if (nearest[p] > radius[c]) radius[c] = nearest[p];
    if (status[p] === 0) {
      const s = score[p];
      if (s > cellScore[c] || (s === cellScore[c] && index[p] < cellIndex[c])) {
        cellScore[c] = s;
        cellIndex[c] = index[p];
        cellPosition[c] = p;
      }
    }
  }
}

/** Empties cell c; returns its former chain of segments. */
export function takeSegments(st: SweepState, c: number): number {
  const first = st.firstSegment[c];
  st.firstSegment[c] = -1;
  st.size[c] = 0;
  st.radius[c] = 0;
  st.cellScore[c] = -Infinity;
  st.cellIndex[c] = -1;
  st.cellPosition[c] = -1;
  return first;
}

/** Copies the feature row and its quantised copy at position `from` to position `to` (count = the spare). */
export function copyRow(st: SweepState, from: number, to: number): void {
  const { rowBytes, qRowBytes } = st.layout;
  const { x, qx } = st.layout.regions[st.thread];
  st.copyBytes(x + to * rowBytes, x + from * rowBytes, rowBytes);
  st.copyBytes(qx + to * qRowBytes, qx + from * qRowBytes, qRowBytes);
}

/** Swaps the candidates at positions p and q (row and every per-candidate value). */
export function swapPositions(st: SweepState, p: number, q: number): void {
  const r = st.region;
  const spare = r.index.length;
  copyRow(st, p, spare);
  copyRow(st, q, p);
  copyRow(st, spare, q);
  let f = r.nearestSq[p]; r.nearestSq[p] = r.nearestSq[q]; r.nearestSq[q] = f;
  f = r.nearest[p]; r.nearest[p] = r.nearest[q]; r.nearest[q] = f;
  f = r.score[p]; r.score[p] = r.score[q]; r.score[q] = f;
  f = r.weight[p]; r.weight[p] = r.weight[q]; r.weight[q] = f;
  let i = r.index[p]; r.index[p] = r.index[q]; r.index[q] = i;
  i = r.cellOf[p]; r.cellOf[p] = r.cellOf[q]; r.cellOf[q] = i;
  i = r.status[p]; r.status[p] = r.status[q]; r.status[q] = i;
}

/**
 * Brings `nearest` up to date with the centre in `slot` (a labelled row or a pick, already copied to
 * the centres). With `replace` the distance overwrites `nearest` (the reference's first pick);
 * otherwise the minimum is kept.
 *
 * Pruning keeps results identical to computing every distance: a candidate of cell c with
 * d(c, pick) >= 2*nearest*(1 + 1e-9) cannot get closer (triangle inequality, with a margin far above
 * the rounding error of a distance), which rules out whole cells through their radius; the kernel
 * proves most other "not closer" cases from bounds (see distance-kernel.ts).
 */
export function sweep(st: SweepState, slot: number, replace: boolean, wantArgmax: boolean): void {
  if (replace) replacePass(st, slot);
  else updatePass(st, slot);
  let kept = 0;
  const active = st.active;
  for (let a = 0; a < st.activeCount; a++) if (st.size[active[a]] > 0) active[kept++] = active[a];
  if (st.size[slot] > 0) active[kept++] = slot;
  st.activeCount = kept;
  bestOfCells(st, wantArgmax);
}

/** The best of the active cells' best candidates (ties to the lowest index), or none unless `wantArgmax`. */
export function bestOfCells(st: SweepState, wantArgmax: boolean): void {
  let best = -Infinity;
  let bestIndex = -1;
  let bestPosition = -1;
  if (wantArgmax) {
    for (let a = 0; a < st.activeCount; a++) {
      const c = st.active[a];
      const s = st.cellScore[c];
      const i = st.cellIndex[c];
      if (i >= 0 && (s > best || (s === best && i < bestIndex))) {
        best = s;
        bestIndex = i;
        bestPosition = st.cellPosition[c];
      }
    }
  }
  st.bestScore = best;
  st.bestIndex = bestIndex;
  st.bestPosition = bestPosition;
}

/** Every candidate's `nearest` becomes its distance to the centre in `slot`; one cell holds them all. */
export function replacePass(st: SweepState, slot: number): void {
  const { D, blockSize } = st.layout;
  const regionLayout = st.layout.regions[st.thread];
  const { nearest, nearestSq, score, weight, cellOf } = st.region;
  const { rows, out } = st;
  const n = regionLayout.count;
  st.listed = false;
  for (let a = 0; a < st.activeCount; a++) takeSegments(st, st.active[a]);
  st.activeCount = 0;
  st.segCount = 0;
  st.freeSegment = -1;
  for (let start = 0; start < n; start += blockSize) {
    const count = Math.min(n, start + blockSize) - start;
    for (let t = 0; t < count; t++) rows[t] = start + t;
    distances(st, false, count, slot, false);
    for (let t = 0; t < count; t++) {
      const p = start + t;
      const d = Math.sqrt(out[t]);
      nearestSq[p] = out[t];
      nearest[p] = d;
      cellOf[p] = slot;
      score[p] = scoreOf(st.rule, d, weight[p]);
    }
  }
  takeSegments(st, slot);
  if (n > 0) {
    linkSegment(st, slot, 0, n);
    foldRange(st, slot, 0, n);
  }
  st.grouped = true;
}

/** `nearest` = min(nearest, distance to the centre in `slot`) over the cells the pick can affect. */
export function updatePass(st: SweepState, slot: number): void {
  const layout = st.layout;
  const { D, blockSize } = layout;
  const { cellOf } = st.region;
  const { rows, out, active, affected, cellDist } = st;
  const n = layout.regions[st.thread].count;
  for (let a = 0; a < st.activeCount; a += blockSize) {
    const count = Math.min(st.activeCount, a + blockSize) - a;
    for (let t = 0; t < count; t++) rows[t] = active[a + t];
    distances(st, true, count, slot, false);
    for (let t = 0; t < count; t++) cellDist[rows[t]] = Math.sqrt(out[t]);
  }
  // A candidate picked with nearest = 0 stays in its cell, which must still forget it as its best.
  const pickCell = st.slotThread[slot] === st.thread ? cellOf[st.slotPosition[slot]] : -2;
  const stamp = slot + 1;
  let affectedCount = 0;
  let affectedMembers = 0;
  for (let a = 0; a < st.activeCount; a++) {
    const c = active[a];
    if (cellDist[c] < 2 * st.radius[c] * (1 + 1e-9) || c === pickCell) {
      affected[affectedCount++] = c;
      affectedMembers += st.size[c];
      st.affectedStamp[c] = stamp;
    }
  }
  takeSegments(st, slot);
  // Moving rows between cells needs them grouped; regrouping a stale region moves every row, which pays
  // only when picks keep concerning few candidates: not for one small pick among large ones.
  st.smallPicks = affectedMembers * 2 > n ? 0 : st.smallPicks + 1;
  if (st.smallPicks === 0 || (!st.grouped && st.smallPicks < 2)) {
    scanPass(st, slot, affectedCount, affectedMembers);
    return;
  }
  // Candidates move between positions from here on: the member lists are rebuilt when next needed.
  st.listed = false;
  // Picks split segments; regrouping moves every row, which costs more than walking a few thousand extra segments
  // (at 4 per cell instead of 16, a 1e5 mixture regrouped at pick 613, and the picks after took 15 ms longer).
  if (!st.grouped || st.segCount > 16 * st.activeCount + 1024) regroup(st);
  // Detach the affected cells' segments and compute their candidates' distances in batches.
  let pendingCount = 0;
  let count = 0;
  for (let a = 0; a < affectedCount; a++) {
    const c = affected[a];
    const limit = 2 * (1 + 1e-9);
    const cd = cellDist[c];
    let g = takeSegments(st, c);
    while (g >= 0) {
      if (2 * pendingCount + 2 > st.pending.length) st.pending = growInt32(st.pending);
      st.pending[2 * pendingCount] = g;
      st.pending[2 * pendingCount + 1] = c;
      pendingCount++;
      const { nearest } = st.region;
      for (let p = st.segStart[g]; p < st.segEnd[g]; p++) {
        const np = nearest[p];
        if (np > 0 && cd < limit * np) {
          rows[count++] = p;
          if (count === blockSize) {
            applyDistances(st, slot, count);
            count = 0;
          }
        }
      }
      g = st.segNext[g];
    }
  }
  if (count > 0) applyDistances(st, slot, count);
  splitSegments(st, slot, pendingCount);
}

/**
 * Stayers to the front of each of the `pendingCount` segments updatePass detached, candidates now nearest to the
 * pick in `slot` to the back, each part linked to its cell. Its own function: see foldRange on code after a long loop.
 */
export function splitSegments(st: SweepState, slot: number, pendingCount: number): void {
  const { cellOf } = st.region;
  for (let q = 0; q < pendingCount; q++) {
    const g = st.pending[2 * q];
    const c = st.pending[2 * q + 1];
    const start = st.segStart[g];
    const end = st.segEnd[g];
    let i = start;
    let j = end - 1;
    for (;;) {
      while (i <= j && cellOf[i] !== slot) i++;
      while (i <= j && cellOf[j] === slot) j--;
      if (i >= j) break;
      swapPositions(st, i, j);
      i++;
      j--;
    }
    st.segNext[g] = st.freeSegment;
    st.freeSegment = g;
    if (i > start) {
      linkSegment(st, c, start, i);
      foldRange(st, c, start, i);
    }
    if (end > i) {
      linkSegment(st, slot, i, end);
      foldRange(st, slot, i, end);
    }
  }
}

/** Distances for rows[0 .. count) (overwritten); candidates that got closer move to cell `slot`. */
export function applyDistances(st: SweepState, slot: number, count: number): void {
  const closer = distances(st, false, count, slot, true);
  for (let t = 0; t < closer; t++) moveCloser(st, st.rows[t], st.out[t], slot);
}

/** The candidate at position p is d2 (squared) from the centre in `slot`, closer than before: it joins that cell. */
export function moveCloser(st: SweepState, p: number, d2: number, slot: number): void {
  const { nearest, nearestSq, score, weight, cellOf } = st.region;
  const d = Math.sqrt(d2);
  nearestSq[p] = d2;
  nearest[p] = d;
  cellOf[p] = slot;
  score[p] = scoreOf(st.rule, d, weight[p]);
}

/**
 * One pass in position order over the members of the affected (stamped) cells; leaves cells ungrouped.
 * Cell statistics are kept incrementally: sizes exactly, a radius may stay above the largest `nearest`
 * of its cell (it is only used as an upper bound), and a cell's best is recomputed only when that
 * candidate left it or was picked. The kernel gets the rows that pass the triangle test (listRows, about a
 * nanosecond per row), or every row when the last listing kept nearly all of them.
 */
export function scanPass(st: SweepState, slot: number, affectedCount: number, affectedMembers: number): void {
  const { blockSize } = st.layout;
  const n = st.layout.regions[st.thread].count;
  const { nearest, nearestSq, cellOf, score, weight, status, index } = st.region;
  const { rows, out, cellDist, affectedStamp, dirtyStamp, size, radius, cellScore, cellIndex, cellPosition } = st;
  const stamp = slot + 1;
  // Only rows with d(centre, pick) < 2*nearest can get closer (listRows finds them). When the last listing kept
  // most of the region, the int8 filter proves the others not closer for less than listing costs; every eighth
  // such pass lists anyway, to notice when that changes.
  const everyRow = (affectedCount === st.activeCount || 2 * affectedMembers > n) && st.inReachShare > 0.9 && (slot & 7) !== 0;
  st.segCount = 0;
  st.freeSegment = -1;
  for (let a = 0; a < st.activeCount; a++) st.firstSegment[st.active[a]] = -1;
  const limit = 2 * (1 + 1e-9);
  let moved = 0;
  let dirty = 0;
  if (st.slotThread[slot] === st.thread) {
    dirtyStamp[cellOf[st.slotPosition[slot]]] = stamp;
    dirty++;
  }
  const regionLayout = st.layout.regions[st.thread];
  if (!everyRow) {
    const reach = st.reach;
    reach[0] = Infinity;
    for (let a = 0; a < st.activeCount; a++) {
      const c = st.active[a];
      reach[c + 1] = affectedStamp[c] === stamp ? cellDist[c] : Infinity;
    }
  }
  let inReach = 0;
  for (let start = 0; start < n; start += blockSize) {
    const end = Math.min(n, start + blockSize);
    let closer;
    if (everyRow) {
      // The rows listRows would leave out cannot get closer, so the kernel proves them not closer.
      closer = distances(st, false, end - start, slot, true, start);
    } else {
      const count = st.listRows(
        regionLayout.cellOf + 4 * start, regionLayout.nearest + 8 * start, regionLayout.reach, end - start, start, limit, st.rowsPtr,
      );
      inReach += count;
      closer = count > 0 ? distances(st, false, count, slot, true) : 0;
    }
    if (st.moveRows) {
      st.moveCounts[0] = moved;
      st.moveCounts[1] = dirty;
      st.moveRows(closer, slot, stamp);
      moved = st.moveCounts[0];
      dirty = st.moveCounts[1];
      continue;
    }
    for (let t = 0; t < closer; t++) {
      const p = rows[t];
      const from = cellOf[p];
      size[from]--;
      if (cellPosition[from] === p && dirtyStamp[from] !== stamp) {
        dirtyStamp[from] = stamp;
        dirty++;
      }
      moveCloser(st, p, out[t], slot);
      st.moved[2 * moved] = p;
      st.moved[2 * moved + 1] = from;
      moved++;
      const d = nearest[p];
      const s = score[p];
      size[slot]++;
      if (d > radius[slot]) radius[slot] = d;
      if (status[p] === 0 && (s > cellScore[slot] || (s === cellScore[slot] && index[p] < cellIndex[slot]))) {
        cellScore[slot] = s;
        cellIndex[slot] = index[p];
        cellPosition[slot] = p;
      }
    }
  }
  // The member lists follow the moves while few rows moved; when many did (the first picks move much of the
  // region), one pass over the region finds the dirty cells' best candidates for less than following them costs.
  const byLists = moved <= n >> 6;
  if (byLists && st.listed) followMoves(st, slot, moved);
  else if (byLists) listMembers(st);
  else st.listed = false;
  if (dirty > 0) {
    for (let a = 0; a < st.activeCount; a++) {
      const c = st.active[a];
      if (dirtyStamp[c] !== stamp) continue;
      cellScore[c] = -Infinity;
      cellIndex[c] = -1;
      cellPosition[c] = -1;
      if (!byLists) continue;
      for (let p = st.memberHead[c]; p >= 0; p = st.memberNext[p]) if (status[p] === 0) bestOfCell(st, c, p);
    }
    if (!byLists) bestOfDirtyCells(st, stamp, n);
  }
  if (!everyRow) st.inReachShare = inReach / Math.max(1, n);
  st.grouped = false;
}

/**
 * Rebuilds a state's cell bookkeeping from its region's shared arrays (cells, nearest, scores, status): for a thread
 * taking over a region that another thread swept so far, and for passes after lazy picks (which keep only those
 * arrays). Each run of positions in one cell becomes a segment of it, so a region left grouped stays grouped; one
 * scattered into too many runs is left ungrouped, to be grouped or listed by the next pass. Radii are exact maxima
 * again. Ends with the region's best candidate, as a pass does.
 */
export function adoptRegion(st: SweepState): void {
  const { nearest, score, status, index, cellOf } = st.region;
  const { size, radius, cellScore, cellIndex, cellPosition, active } = st;
  const n = cellOf.length;
  st.firstSegment.fill(-1);
  size.fill(0);
  radius.fill(0);
  cellScore.fill(-Infinity);
  cellIndex.fill(-1);
  cellPosition.fill(-1);
  st.activeCount = 0;
  st.segCount = 0;
  st.freeSegment = -1;
  // The next pass lists the rows in reach (see scanPass) rather than assuming nearly all are.
  st.inReachShare = 0;
  let runs = 0;
  for (let p = 0; p < n; p++) {
    const c = cellOf[p];
    if (c < 0) continue;
    if (p === 0 || cellOf[p - 1] !== c) runs++;
    if (size[c]++ === 0) active[st.activeCount++] = c;
    if (nearest[p] > radius[c]) radius[c] = nearest[p];
    if (status[p] !== 0) continue;
    const s = score[p];
    if (s > cellScore[c] || (s === cellScore[c] && index[p] < cellIndex[c])) {
      cellScore[c] = s;
      cellIndex[c] = index[p];
      cellPosition[c] = p;
    }
  }
  st.grouped = st.activeCount > 0 && runs <= 16 * st.activeCount + 1024;
  if (st.grouped) {
    for (let p = 0, start = 0; p < n; p++) {
      if (p + 1 === n || cellOf[p + 1] !== cellOf[p]) {
        if (cellOf[p] >= 0) linkSegment(st, cellOf[p], start, p + 1);
        start = p + 1;
      }
    }
  }
  st.listed = false;
  st.smallPicks = 0;
  bestOfCells(st, true);
}

/**
 * The best candidates of the cells stamped dirty, from one pass over the region's first n positions. Its own function:
 * scanPass's code after its long loop runs unoptimised at times (see foldRange).
 */
export function bestOfDirtyCells(st: SweepState, stamp: number, n: number): void {
  const { cellOf, status } = st.region;
  const { dirtyStamp } = st;
  for (let p = 0; p < n; p++) if (dirtyStamp[cellOf[p]] === stamp && status[p] === 0) bestOfCell(st, cellOf[p], p);
}

/** Candidate p becomes its cell c's best when it beats it (ties to the lower candidate index). */
export function bestOfCell(st: SweepState, c: number, p: number): void {
  const s = st.region.score[p];
  const i = st.region.index[p];
  if (s > st.cellScore[c] || (s === st.cellScore[c] && i < st.cellIndex[c])) {
    st.cellScore[c] = s;
    st.cellIndex[c] = i;
    st.cellPosition[c] = p;
  }
}

/** The member lists after the moves scanPass recorded (position, cell it left) into the cell in `slot`. */
export function followMoves(st: SweepState, slot: number, moved: number): void {
  const { memberHead, memberNext, memberPrev } = st;
  memberHead[slot] = -1;
  for (let m = 0; m < moved; m++) {
    const p = st.moved[2 * m];
    const prev = memberPrev[p];
    const next = memberNext[p];
    if (prev >= 0) memberNext[prev] = next;
    else memberHead[st.moved[2 * m + 1]] = next;
    if (next >= 0) memberPrev[next] = prev;
    const head = memberHead[slot];
    memberNext[p] = head;
    memberPrev[p] = -1;
    if (head >= 0) memberPrev[head] = p;
    memberHead[slot] = p;
  }
}

/** Builds every cell's member list from cellOf (positions in increasing order). */
export function listMembers(st: SweepState): void {
  const { cellOf } = st.region;
  const { memberHead, memberNext, memberPrev } = st;
  // Before the long loop, not after it (see foldRange).
  st.listed = true;
  for (let a = 0; a < st.activeCount; a++) memberHead[st.active[a]] = -1;
  for (let p = cellOf.length - 1; p >= 0; p--) {
    const c = cellOf[p];
    const head = memberHead[c];
    memberNext[p] = head;
    memberPrev[p] = -1;
    if (head >= 0) memberPrev[head] = p;
    memberHead[c] = p;
  }
}

/** Reorders the region so that every active cell is one segment (an in-place permutation). */
export function regroup(st: SweepState): void {
  const n = st.layout.regions[st.thread].count;
  const r = st.region;
  const { active, target, inverse, cellStart } = st;
  st.segCount = 0;
  st.freeSegment = -1;
  let offset = 0;
  for (let a = 0; a < st.activeCount; a++) {
    const c = active[a];
    cellStart[c] = offset;
    st.firstSegment[c] = -1;
    linkSegment(st, c, offset, offset + st.size[c]);
    offset += st.size[c];
  }
  for (let p = 0; p < n; p++) target[p] = cellStart[r.cellOf[p]]++;
  for (let a = 0; a < st.activeCount; a++) {
    const c = active[a];
    if (st.cellPosition[c] >= 0) st.cellPosition[c] = target[st.cellPosition[c]];
  }
  for (let p = 0; p < n; p++) inverse[target[p]] = p;
  const at = st.layout.regions[st.thread];
  st.permuteRows(
    n, at.inverse, at.x, st.layout.rowBytes, at.qx, st.layout.qRowBytes,
    at.nearestSq, at.nearest, at.score, at.weight, at.index, at.cellOf, at.status,
  );
  st.grouped = true;
}

/**
 * Kernel call: squared distances from rows[0 .. count) (of the centres, or of the thread's candidates;
 * with firstPosition >= 0, the positions firstPosition .. firstPosition+count-1) to the centre in `slot`,
 * into out[0 .. count). `bounded` (candidates only): only those closer than their
 * `nearestSq` are kept, compacted into rows[0 .. k) and out[0 .. k). Returns k (count when not bounded).
 */
export function distances(
  st: SweepState, ofCentres: boolean, count: number, slot: number, bounded: boolean, firstPosition = -1,
): number {
  const { D, rowBytes, qLen, qRowBytes, qPickBytes, qScale, centres, qCentres } = st.layout;
  const region = st.layout.regions[st.thread];
  const rows = firstPosition < 0 ? st.rowsPtr : region.positions + 4 * firstPosition;
  if (bounded) st.tested += count;
  if (st.native && bounded) {
    return st.native.rows(
      region.x, rows, count, centres + slot * rowBytes, region.nearestSq, region.nearest, st.outPtr, region.qx, qRowBytes,
      qCentres + slot * qPickBytes, st.rowsPtr,
    );
  }
  if (st.native) {
    st.native.exact(ofCentres ? centres : region.x, rows, count, centres + slot * rowBytes, st.outPtr);
    return count;
  }
  return st.sqdistRows(
    ofCentres ? centres : region.x, rowBytes, D * 4, rows, count, centres + slot * rowBytes,
    bounded ? region.nearestSq : 0, bounded ? region.nearest : 0, st.outPtr, bounded ? 1 : 0, st.slack,
    region.qx, qRowBytes, qCentres + slot * qPickBytes, qLen, qScale, st.rowsPtr,
  );
}

/**
 * Lazy mode (see runSelection): the candidate at position p of a region (any thread's: the memory is shared) gets
 * its `nearest`, cell and score for the centres in slots [from, to) too. The caller has claimed it
 * (PassRunner.claim) or is the only thread at work, and sets its `fresh` to `to` afterwards.
 */
export function catchUp(st: SweepState, at: RegionLayout, region: Region, p: number, from: number, to: number): void {
  const { D, rowBytes, qLen, qRowBytes, qPickBytes, qScale, centres, qCentres } = st.layout;
  st.tested += to - from;
  // The kernel leaves the offset of the centre that lowered `nearest` (or -1) in this thread's scratch.
  if (st.native) {
    st.native.nearest(at.x + p * rowBytes, at.qx + p * qRowBytes, at.nearestSq + 8 * p, at.nearest + 8 * p, st.rowsPtr, from, to);
  } else {
    st.nearestToSlots(
      at.x + p * rowBytes, rowBytes, D * 4, 0, to - from, centres + from * rowBytes, at.nearestSq + 8 * p, at.nearest + 8 * p,
      st.rowsPtr, 0, st.slack, at.qx + p * qRowBytes, qPickBytes, qCentres + from * qPickBytes, qLen, qScale, 0,
    );
  }
  if (st.rows[0] >= 0) region.cellOf[p] = from + st.rows[0];
  region.score[p] = scoreOf(st.rule, region.nearest[p], region.weight[p]);
}

/**
 * Lazy mode: the candidate at position p of a region, likely the next to catch up, is fetched into the cache meanwhile
 * (native kernels only). A pick in a cluster sinks its members one after another, each a few cache misses.
 */
export function prefetchCandidate(st: SweepState, at: RegionLayout, p: number): void {
  const { rowBytes, qRowBytes } = st.layout;
  st.native?.prefetch(at.x + p * rowBytes, at.qx + p * qRowBytes, at.nearestSq + 8 * p, at.nearest + 8 * p, at.score + 8 * p, at.fresh + 4 * p);
}

/**
 * catchUp for each position in [first, end) of a region whose `fresh` is below `to`, which then becomes `to`; no
 * other thread may claim them meanwhile. In one native call when the score is plain arithmetic (as for moveRows).
 */
export function catchUpPositions(st: SweepState, at: RegionLayout, region: Region, first: number, end: number, to: number): void {
  const { rule } = st;
  if (st.native && plainScore(rule)) {
    st.native.catchUpRange(
      at.x, at.qx, st.layout.qRowBytes, at.nearestSq, at.nearest, at.fresh, at.cellOf, at.score, at.weight, st.rowsPtr, first, end, to,
      rule.kind, rule.wDiv,
    );
    return;
  }
  const fresh = region.fresh;
  for (let p = first; p < end; p++) {
    if (fresh[p] >= to) continue;
    catchUp(st, at, region, p, fresh[p], to);
    fresh[p] = to;
  }
}

/** Lazy mode, with no other thread at work on the region: its candidates get their `nearest` for all centre slots before `to`. */
export function catchUpRegion(st: SweepState, to: number): void {
  const at = st.layout.regions[st.thread];
  catchUpPositions(st, at, st.region, 0, at.count, to);
}

/** The functions a worker thread needs. */
export const KERNEL_FUNCTIONS = [
  regionViews, createSweepState, plainScore, scoreOf, centroidPass, linkSegment, growInt32, foldRange, takeSegments,
  copyRow, swapPositions, sweep, bestOfCells, replacePass, updatePass, splitSegments, applyDistances, moveCloser, scanPass, adoptRegion,
  listMembers, bestOfDirtyCells, bestOfCell, followMoves, regroup, distances, catchUp, catchUpPositions,
] as const;
