/**
 * Farthest-point selection on several threads: the calling thread and T-1 workers each own every T-th
 * block of candidates in one shared WebAssembly memory. Per pass, the caller posts the pick through a
 * small shared control array, works on its own blocks, waits on Atomics for the workers and merges the
 * best candidates (ties to the lowest index), so the picks equal the single-thread ones exactly. Once the
 * selection picks lazily (see runSelection), the caller picks alone while the workers catch candidates up in the
 * background, and at the end each thread catches up its own blocks.
 *
 * Workers run from source text (`eval: true`) assembled from the self-contained kernel functions, which
 * works the same from TypeScript sources under vitest and from the compiled dist/.
 */

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  KERNEL_FUNCTIONS, adoptRegion, catchUp, catchUpPositions, centroidPass, createSweepState, regionViews, sweep, type SweepState,
  type WasmApi,
} from "../core/select/fps-kernel.js";
import {
  betterCandidate,
  localRunner,
  prepareSelection,
  runSelection,
  selectionKernelBytes,
  type BestCandidate,
  type LazyPolicy,
  type PassRunner,
  type PreparedSelection,
  type SelectionInput,
  type SelectionMemory,
  type SelectionResult,
} from "../core/select/fps.js";
import type { FeatureMatrix } from "../core/select/feature-matrix.js";
import { compiledWorkerScript } from "./worker-script.js";
import { kernelChoiceFromEnv, nativeKernels, type KernelChoice } from "./native-kernels.js";
import { takeBootedSelectionWorker } from "./selection-worker-boot.js";

/** Compiles the selection's kernel ahead, on V8's background threads (while the caller reads the features, say). */
export async function compileKernelAhead(placed: SelectionMemory): Promise<void> {
  const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  placed.module = await api.compile(selectionKernelBytes(placed));
}

/** Per extra thread at least this many float32 features: below, waking workers for every pick costs more. */
const MIN_VALUES_PER_EXTRA_THREAD = 4_000_000;

// Control array slots (Int32Array over a SharedArrayBuffer).
const SEQ = 0;
const OP = 1;
const SLOT = 2;
const REPLACE = 3;
const ARGMAX = 4;
const FAILED = 5;
const DONE = 6;
/** Workers that have their state (counted up once each). */
const READY = 7;
/** 1 for the first pass a deferred selection's workers run: they take over their regions first. */
const ADOPT = 8;
/** Lazy mode: the centre slots written so far, and 1 once the workers are to stop catching up in the background. */
const PUBLISHED = 9;
const BACKGROUND_STOP = 10;
/** The final catch-up's next chunk of positions (see catchUpTogether). */
const NEXT_CHUNK = 11;
const CONTROL_SLOTS = 12;
const OP_CENTROID = 1;
const OP_SWEEP = 2;
const OP_STOP = 3;
const OP_CATCH_UP = 4;
const OP_BACKGROUND = 5;
/** Each thread rebuilds its cells from its region, for passes after lazy picks (adoptRegion). */
const OP_ADOPT = 6;
/**
 * Catching up in the background (see catchUpInBackground): workers take chunks of this many positions in turn, and
 * sweep again once this many slots are new (each call costs about as much as a few dozen slots' tests).
 */
const BACKGROUND_CHUNK = 1024;
const BACKGROUND_MIN_SLOTS = 32;
/**
 * A deferred selection's workers join only while passes are heavy (see ThreadOptions.joinWhenTested): a joining
 * thread starts cold (its code not compiled yet, its region's state rebuilt) and every pass then waits for both
 * threads, which costs more than a second core saves on passes that test few candidates. On clustered 1e5 x 100
 * features, `relabel rank` finished about 5 % sooner when the workers never joined after the pool read (by then
 * passes tested 20,000-50,000 candidates each); on uniform ones (100,000 per pass) joining pays.
 */
const JOIN_MIN_TESTED = 50_000;
const JOIN_WINDOW = 8;
/**
 * Polls before sleeping on a futex: waking a sleeping thread costs about as much as a small pass, and a
 * pass per pick is short (a few hundred microseconds at N = 1e5), so both sides spin this many loads first.
 */
const SPIN = 20_000;

export interface ThreadOptions {
  /** Default: min(2, available cores), one for small inputs (under 4 million feature values). */
  threads?: number;
  /**
   * A pass with no result from some worker for this many seconds fails the selection (default 600; one
   * pass takes milliseconds). A worker thread that died without an error (killed, out of memory) would
   * otherwise be waited for forever: the main thread is blocked and cannot see its exit event.
   */
  stallSeconds?: number;
  /** Hears the number of candidates picked so far and the candidate just picked, after each pick (on the calling thread, which is busy meanwhile). */
  onPick?: (picked: number, index: number) => void;
  /** Called once the input is laid out in the selection's own memory: its arrays are not read after this. */
  onPrepared?: () => void;
  /**
   * Shared flags (createJoinSignal): workers join only once element 0 turns 1, and element 1 turns 1 when they have.
   * Until then the calling thread runs every thread's share itself, so that the other core stays free for work of
   * the caller's process (rank reads the pool meanwhile, then builds selected.extxyz while it runs alone). Element 2
   * set to 1 (with element 0) lets them catch up in the background of lazy picks too; otherwise they join lazy
   * picking only for its final catch-up, and the caller keeps its core until then. Workers that hold no candidates
   * (a memory laid out with fewer candidateThreads than threads) never sweep: once let, they help with every catch-up,
   * joining for good (element 1) only for the final one or the background.
   */
  joinSignal?: Int32Array;
  /**
   * Deferred workers join only once the passes so far tested at least this many candidates each, on average over
   * the last JOIN_WINDOW (default JOIN_MIN_TESTED; 0 lets them join at once).
   */
  joinWhenTested?: number;
  /** When to pick lazily (default DEFAULT_LAZY_POLICY). */
  lazy?: LazyPolicy;
  /** Native or WebAssembly kernels (default: RELABEL_KERNELS, else auto); both give the same results. */
  kernels?: KernelChoice;
  /** Tests only: worker threads exit silently when asked for the sweep of this centre slot. */
  exitWorkersAtSlot?: number;
  /** Tests only: called after each chunk of the final catch-up that the calling thread runs before the workers join. */
  onCatchUpChunk?: () => void;
  /**
   * Tests only: the caller sleeps this long between publishing a pass and waking the workers, the way a
   * preempted thread would, so a worker sees the pass by polling and the wake-up arrives after it is done.
   */
  lateWakeMs?: number;
}

/** Threads for a selection over rows x cols features: `requested`, or min(2, cores), one for small inputs. */
export function selectionThreads(rows: number, cols: number, requested?: number): number {
  return Math.max(1, requested ?? Math.min(2, availableParallelism(), Math.floor((rows * cols) / MIN_VALUES_PER_EXTRA_THREAD) + 1));
}

/** The flags of ThreadOptions.joinSignal, all 0. */
export const createJoinSignal = (): Int32Array => new Int32Array(new SharedArrayBuffer(12));

export async function selectCandidatesThreaded(input: SelectionInput, options: ThreadOptions = {}): Promise<SelectionResult> {
  // Features placed in the selection's memory come with its thread count.
  const { features } = input;
  const threads = "memory" in features ? features.layout.threads : selectionThreads(features.rows, features.cols, options.threads);
  const native = nativeKernels(options.kernels ?? kernelChoiceFromEnv());
  if (threads === 1) {
    const prepared = prepareSelection(input, 1, native?.kernels);
    options.onPrepared?.();
    return runSelection(prepared, localRunner(prepared), options.onPick, options.lazy);
  }

  const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  const results = new Float64Array(new SharedArrayBuffer(threads * 3 * 8));
  const failures: string[] = [];
  // The workers start (a Node environment each) while this thread validates and lays out the input.
  const workers: Worker[] = [];
  for (let t = 1; t < threads; t++) {
    const worker = new Worker(workerSource(), { eval: true, workerData: { thread: t, exitAtSlot: options.exitWorkersAtSlot ?? -1 } });
    worker.on("message", (message: unknown) => {
      if (typeof message === "object" && message !== null && "error" in message) failures.push(String(message.error));
    });
    workers.push(worker);
  }
  try {
    const prepared = prepareSelection(input, threads, native?.kernels);
    options.onPrepared?.();
    const ready = workers.map((worker) => waitForReady(worker));
    const setup = {
      memory: prepared.memory,
      module: prepared.module,
      layout: prepared.layout,
      rule: prepared.rule,
      slack: prepared.main.slack,
      nativePath: native?.path,
      control: control.buffer,
      results: results.buffer,
    };
    for (const worker of workers) worker.postMessage(setup);
    // A deferred selection starts at once; its workers are counted ready through the control array.
    if (options.joinSignal) Promise.all(ready).catch(() => undefined);
    else await Promise.all(ready);
    const runner = threadedRunner(prepared, control, results, threads, options);
    try {
      return runSelection(prepared, runner, options.onPick, options.lazy);
    } catch (error) {
      if (error instanceof WorkerFailure) {
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error(`farthest-point selection failed in a worker thread: ${failures.join("; ") || error.message || "no detail"}`);
      }
      throw error;
    }
  } finally {
    Atomics.store(control, OP, OP_STOP);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

class WorkerFailure extends Error {}

function waitForReady(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      if (message === "ready") {
        worker.off("error", reject);
        resolve();
      }
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
  });
}

function threadedRunner(
  prepared: PreparedSelection,
  control: Int32Array,
  results: Float64Array,
  threads: number,
  options: ThreadOptions,
): PassRunner {
  const { main, memory, module, native, layout, rule } = prepared;
  const { joinSignal, stallSeconds = 600, lateWakeMs = 0, joinWhenTested = JOIN_MIN_TESTED } = options;
  // Workers that hold no candidates only catch candidates up: every pass runs on this thread.
  const sweepsAlone = layout.candidateThreads < threads;
  // Until the workers join (see ThreadOptions.joinSignal), this thread sweeps their regions too.
  let solo: SweepState[] | null = joinSignal
    ? Array.from({ length: layout.candidateThreads - 1 }, (_, t) => createSweepState(memory, module, layout, rule, t + 1, main.slack, native))
    : null;
  // Candidates tested by the last JOIN_WINDOW passes alone, each.
  const recent = new Float64Array(JOIN_WINDOW);
  let passesAlone = 0;
  // One thread's part of a pass.
  const work = (st: SweepState, op: number, slot: number, replace: boolean, wantArgmax: boolean): void => {
    if (op === OP_CENTROID) centroidPass(st);
    else if (op === OP_ADOPT) adoptRegion(st);
    else sweep(st, slot, replace, wantArgmax);
  };
  const alone = (op: number, slot: number, replace: boolean, wantArgmax: boolean): BestCandidate => {
    const states = [main, ...(solo ?? [])];
    const before = states.reduce((sum, st) => sum + st.tested, 0);
    let best = NO_BEST;
    for (const [t, st] of states.entries()) {
      work(st, op, slot, replace, wantArgmax);
      best = betterCandidate(best, { score: st.bestScore, index: st.bestIndex, thread: t, position: st.bestPosition });
    }
    // Rebuilding cells tests nothing: it says nothing of how heavy passes are.
    if (op !== OP_ADOPT) recent[passesAlone++ % JOIN_WINDOW] = states.reduce((sum, st) => sum + st.tested, 0) - before;
    return best;
  };
  const heavy = (): boolean =>
    joinWhenTested <= 0 || (passesAlone >= JOIN_WINDOW && recent.reduce((sum, n) => sum + n, 0) >= joinWhenTested * JOIN_WINDOW);
  const post = (op: number, slot: number, replace: boolean, wantArgmax: boolean, adopt: boolean): void => {
    control[ADOPT] = adopt ? 1 : 0;
    control[OP] = op;
    control[SLOT] = slot;
    control[REPLACE] = replace ? 1 : 0;
    control[ARGMAX] = wantArgmax ? 1 : 0;
    Atomics.store(control, DONE, 0);
    Atomics.add(control, SEQ, 1);
    if (lateWakeMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, lateWakeMs);
    Atomics.notify(control, SEQ);
  };
  const awaitWorkers = (): void => {
    for (let spin = 0; spin < SPIN && Atomics.load(control, DONE) !== threads - 1; spin++);
    // Waits in 1 s slices and counts the silent ones, so that a clock jump (a suspended machine) ends one
    // slice early instead of passing a deadline.
    for (let silent = 0; ; ) {
      const done = Atomics.load(control, DONE);
      if (done === threads - 1) break;
      if (Atomics.wait(control, DONE, done, 1000) === "timed-out" && ++silent >= stallSeconds) {
        throw new WorkerFailure(`no result from a worker thread for ${stallSeconds} s (it may have been killed)`);
      }
    }
    if (Atomics.load(control, FAILED) !== 0) throw new WorkerFailure();
  };
  const together = (op: number, slot: number, replace: boolean, wantArgmax: boolean, adopt: boolean): BestCandidate => {
    post(op, slot, replace, wantArgmax, adopt);
    work(main, op, slot, replace, wantArgmax);
    let best: BestCandidate = { score: main.bestScore, index: main.bestIndex, thread: 0, position: main.bestPosition };
    awaitWorkers();
    for (let t = 1; t < threads; t++) {
      const candidate = { score: results[3 * t], index: results[3 * t + 1], thread: t, position: results[3 * t + 2] };
      best = betterCandidate(best, candidate);
    }
    return best;
  };
  // The workers take over their regions (adoptRegion) with the first pass they join; results do not depend on
  // which thread sweeps a region.
  // Deferred workers may join once the caller lets them and all are ready; joining is for good.
  const mayJoin = (): boolean => Atomics.load(joinSignal!, 0) === 1 && Atomics.load(control, READY) === threads - 1;
  const join = (): void => {
    solo = null;
    Atomics.store(joinSignal!, 1, 1);
  };
  const run = (op: number, slot: number, replace: boolean, wantArgmax: boolean): BestCandidate => {
    if (sweepsAlone) return alone(op, slot, replace, wantArgmax);
    if (solo === null) return together(op, slot, replace, wantArgmax, false);
    if (!mayJoin() || !heavy()) return alone(op, slot, replace, wantArgmax);
    join();
    return together(op, slot, replace, wantArgmax, true);
  };
  // Lazy mode: the workers catch candidates up in the background while this thread picks, once they may run.
  let background = false;
  const published = (slots: number): void => {
    Atomics.store(control, PUBLISHED, slots);
    if (background) return;
    if (solo !== null) {
      if (!mayJoin() || Atomics.load(joinSignal!, 2) !== 1) return;
      join();
    }
    Atomics.store(control, BACKGROUND_STOP, 0);
    post(OP_BACKGROUND, 0, false, false, false);
    background = true;
  };
  // `joining`: deferred workers may join for it. Joining is for good, so not when passes follow (see JOIN_MIN_TESTED).
  const catchUpAll = (to: number, joining: boolean): void => {
    if (background) {
      Atomics.store(control, BACKGROUND_STOP, 1);
      background = false;
      awaitWorkers();
    }
    // Every thread takes chunks from one counter. Catching up needs none of a region's cell state, so deferred
    // workers take the rest as soon as they may join, without taking their regions over. Workers holding no
    // candidates may help with any catch-up without joining for good: the passes after it stay on this thread.
    Atomics.store(control, NEXT_CHUNK, 0);
    const helps = joining || sweepsAlone;
    const enter = (): boolean => {
      if (!helps || !mayJoin()) return false;
      if (joining) join();
      return true;
    };
    let workersIn = solo === null || enter();
    if (workersIn) post(OP_CATCH_UP, to, false, false, false);
    catchUpTogether({ catchUpPositions, regionViews }, main, control, NEXT_CHUNK, to, BACKGROUND_CHUNK, () => {
      if (workersIn || !helps) return;
      options.onCatchUpChunk?.();
      if (!enter()) return;
      post(OP_CATCH_UP, to, false, false, false);
      workersIn = true;
    });
    if (workersIn) awaitWorkers();
  };
  return {
    centroidPass: () => run(OP_CENTROID, 0, false, true),
    sweep: (slot, replace, wantArgmax) => run(OP_SWEEP, slot, replace, wantArgmax),
    published,
    claim: (fresh, p) => claimCandidate(fresh, p, stallSeconds),
    release: (fresh, p, slots) => void Atomics.store(fresh, p, slots),
    catchUp: (to) => catchUpAll(to, true),
    resume(to) {
      catchUpAll(to, false);
      // Whether passes are heavy enough for the workers to join is for the passes from here on to say.
      recent.fill(0);
      passesAlone = 0;
      return run(OP_ADOPT, to, false, true);
    },
  };
}

const NO_BEST: BestCandidate = { score: -Infinity, index: -1, thread: -1, position: -1 };

/**
 * While other threads catch up candidates in the background, a thread claims a candidate before it reads or changes
 * its `nearest` and score: its `fresh` becomes -1 until released with the new value. Returns the old one. A claim
 * lasts one catchUp, so the wait is short; one held for `patienceSeconds` means its thread died (killed), and throws.
 */
export function claimCandidate(fresh: Int32Array, p: number, patienceSeconds = 600): number {
  for (let spin = 0, slept = 0; ; spin++) {
    const f = Atomics.load(fresh, p);
    if (f >= 0) {
      if (Atomics.compareExchange(fresh, p, f, -1) === f) return f;
    } else if (spin > 100_000) {
      // Shared memory only: the only claims come from other threads.
      Atomics.wait(fresh, p, -1, 1);
      if (++slept > patienceSeconds * 1000) throw new Error(`a selection thread held candidate ${p} for ${patienceSeconds} s (it may have been killed)`);
    }
  }
}

/**
 * Lazy mode, beside the thread that picks: catches up this thread's share of every region's candidates (chunks
 * `share` mod `shares` of `chunk` positions) with the centre slots published in control[published], sweep after
 * sweep while at least `minSlots` new ones wait, until control[stop] turns nonzero. Each candidate is claimed
 * (as claimCandidate does) while it is caught up, so the picking thread never sees it half done. Runs on a worker,
 * from source text: it refers only to its arguments and to globals of the language.
 */
function catchUpInBackground(
  kernel: { catchUp: typeof catchUp; regionViews: typeof regionViews },
  st: SweepState, control: Int32Array, published: number, stop: number, share: number, shares: number, chunk: number, minSlots: number,
): void {
  const { layout } = st;
  const buffer = st.centres.buffer;
  const regions = layout.regions.map((at) => kernel.regionViews(buffer, at, layout.D));
  let swept = 0;
  while (Atomics.load(control, stop) === 0) {
    const to = Atomics.load(control, published);
    if (to - swept < minSlots) {
      Atomics.wait(control, published, to, 1);
      continue;
    }
    let c = 0;
    for (let t = 0; t < regions.length && Atomics.load(control, stop) === 0; t++) {
      const at = layout.regions[t];
      const region = regions[t];
      for (let start = 0; start < at.count; start += chunk, c++) {
        if (c % shares !== share) continue;
        if (Atomics.load(control, stop) !== 0) break;
        for (let p = start, end = Math.min(at.count, start + chunk); p < end; p++) {
          const f = Atomics.load(region.fresh, p);
          if (f < 0 || f >= to || Atomics.compareExchange(region.fresh, p, f, -1) !== f) continue;
          kernel.catchUp(st, at, region, p, f, to);
          Atomics.store(region.fresh, p, to);
        }
      }
    }
    swept = to;
  }
}

/**
 * The final catch-up of a lazy selection, on every thread at once: each takes the next chunk of positions (of any
 * region, through an atomic counter) until none is left. Each region's own thread would finish unevenly: the
 * background catch-up leaves more of some regions than of others (a thread waited 30-70 ms for the other at N = 1e5).
 * No other thread touches the candidates meanwhile, so they need no claims. `between` runs after each chunk.
 */
function catchUpTogether(
  kernel: { catchUpPositions: typeof catchUpPositions; regionViews: typeof regionViews },
  st: SweepState, control: Int32Array, next: number, to: number, chunk: number, between?: () => void,
): void {
  const { layout } = st;
  const buffer = st.centres.buffer;
  const chunks = layout.regions.map((at) => Math.ceil(at.count / chunk));
  const regions = layout.regions.map((at) => kernel.regionViews(buffer, at, layout.D));
  for (;;) {
    let c = Atomics.add(control, next, 1);
    let t = 0;
    while (t < chunks.length && c >= chunks[t]) c -= chunks[t++];
    if (t === chunks.length) return;
    const at = layout.regions[t];
    kernel.catchUpPositions(st, at, regions[t], c * chunk, Math.min(at.count, (c + 1) * chunk), to);
    between?.();
  }
}

/** The worker's loop; receives the kernel functions, node:worker_threads and both catch-ups as arguments. */
function workerMain(
  kernel: {
    createSweepState: typeof createSweepState; centroidPass: typeof centroidPass; sweep: typeof sweep;
    adoptRegion: typeof adoptRegion; catchUp: typeof catchUp; catchUpPositions: typeof catchUpPositions; regionViews: typeof regionViews;
  },
  threadsModule: typeof import("node:worker_threads"),
  slots: {
    SEQ: number; OP: number; SLOT: number; REPLACE: number; ARGMAX: number; FAILED: number; DONE: number;
    READY: number; ADOPT: number; PUBLISHED: number; BACKGROUND_STOP: number; NEXT_CHUNK: number; OP_CENTROID: number;
    OP_ADOPT: number; OP_STOP: number; OP_CATCH_UP: number; OP_BACKGROUND: number; BACKGROUND_CHUNK: number; BACKGROUND_MIN_SLOTS: number; SPIN: number;
  },
  background: typeof catchUpInBackground,
  together: typeof catchUpTogether,
): void {
  const { workerData, parentPort } = threadsModule;
  if (!parentPort) return;
  const port = parentPort;
  // The shared memory and the kernel arrive once the caller has laid out the input.
  port.once("message", (setup) => {
    // The native kernels, when the calling thread uses them (src/exec/native-kernels.ts checked them there).
    let native: Parameters<typeof createSweepState>[6];
    if (setup.nativePath) {
      const loaded = { exports: {} as NonNullable<typeof native> };
      process.dlopen(loaded, setup.nativePath);
      native = loaded.exports;
    }
    const st = kernel.createSweepState(setup.memory, setup.module, setup.layout, setup.rule, workerData.thread, setup.slack, native);
    const control = new Int32Array(setup.control);
    const results = new Float64Array(setup.results);
    const t = workerData.thread as number;
    let seen = Atomics.load(control, slots.SEQ);
    Atomics.add(control, slots.READY, 1);
    port.postMessage("ready");
    for (;;) {
      for (let spin = 0; spin < slots.SPIN && Atomics.load(control, slots.SEQ) === seen; spin++);
      // A wake-up is no proof of a new pass: the caller's notify for a pass this worker already ran (seen
      // by polling) can arrive late, and running that pass twice would race the caller's next one.
      while (Atomics.load(control, slots.SEQ) === seen) Atomics.wait(control, slots.SEQ, seen);
      seen = Atomics.load(control, slots.SEQ);
      const op = control[slots.OP];
      if (op === slots.OP_STOP) return;
      if (op !== slots.OP_CENTROID && control[slots.SLOT] === workerData.exitAtSlot) process.exit(0);
      try {
        // The caller swept this region so far, or passes resume after lazy picks: the state takes it over from the
        // shared memory.
        if (control[slots.ADOPT] === 1 || op === slots.OP_ADOPT) kernel.adoptRegion(st);
        if (op === slots.OP_CENTROID) kernel.centroidPass(st);
        else if (op === slots.OP_CATCH_UP) together(kernel, st, control, slots.NEXT_CHUNK, control[slots.SLOT], slots.BACKGROUND_CHUNK);
        else if (op === slots.OP_BACKGROUND) {
          const shares = setup.layout.threads - 1;
          background(
            kernel, st, control, slots.PUBLISHED, slots.BACKGROUND_STOP, t - 1, shares, slots.BACKGROUND_CHUNK, slots.BACKGROUND_MIN_SLOTS,
          );
        }
        else if (op !== slots.OP_ADOPT) kernel.sweep(st, control[slots.SLOT], control[slots.REPLACE] === 1, control[slots.ARGMAX] === 1);
        results[3 * t] = st.bestScore;
        results[3 * t + 1] = st.bestIndex;
        results[3 * t + 2] = st.bestPosition;
      } catch (error) {
        Atomics.store(control, slots.FAILED, 1);
        port.postMessage({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      }
      Atomics.add(control, slots.DONE, 1);
      Atomics.notify(control, slots.DONE);
    }
  });
}

let cachedSource: string | undefined;

function workerSource(): string {
  if (cachedSource === undefined) {
    const slots = {
      SEQ, OP, SLOT, REPLACE, ARGMAX, FAILED, DONE, READY, ADOPT, PUBLISHED, BACKGROUND_STOP, NEXT_CHUNK, OP_CENTROID, OP_ADOPT, OP_STOP,
      OP_CATCH_UP, OP_BACKGROUND, BACKGROUND_CHUNK, BACKGROUND_MIN_SLOTS, SPIN,
    };
    cachedSource = [
      ...KERNEL_FUNCTIONS.map((fn) => fn.toString()),
      catchUpInBackground.toString(),
      catchUpTogether.toString(),
      `(${workerMain.toString()})({ createSweepState, centroidPass, sweep, adoptRegion, catchUp, catchUpPositions, regionViews }, require("node:worker_threads"), ${JSON.stringify(slots)}, catchUpInBackground, catchUpTogether);`,
    ].join("\n");
  }
  return cachedSource;
}

/** Frees a buffer now rather than at some later garbage collection: moved into a message nobody receives. */
export function releaseBuffer(buffer: ArrayBuffer): void {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [buffer]);
  port1.close();
  port2.close();
}

/** Frees an array's memory now when it owns its whole buffer (else leaves it to the collector); it must not be read afterwards. */
export function releaseArray(array: Float32Array): void {
  const { buffer } = array;
  if (buffer instanceof ArrayBuffer && array.byteOffset === 0 && array.byteLength === buffer.byteLength) releaseBuffer(buffer);
}

/**
 * What a SelectionWorker posts: the input with its features as a matrix (moved to the worker) or as a shared
 * selection memory without its candidates' row function (rebuilt there by selectionMemory).
 */
export type PostedSelectionInput = Omit<SelectionInput, "features"> & { features: FeatureMatrix | Omit<SelectionMemory, "candidates"> };

/** What selection-worker.ts posts: progress (about every 1% of the picks, with the candidates picked since), then the result or an error. */
export type SelectionWorkerReply = { picked: number; rows: number[] } | { result: SelectionResult } | { error: string };

/** What rank asks of a selection worker. */
export type SelectionWorkerRequest = { input: PostedSelectionInput; threads?: number; joinSignal?: Int32Array };

/** A selection running on a worker thread: its result, and a way to stop it early. */
export interface WorkerSelection {
  result: Promise<SelectionResult>;
  stop(): Promise<void>;
  /**
   * With `alone`: lets the selection's other threads join (see ThreadOptions.joinSignal); with `background`, also to
   * catch candidates up in the background of lazy picks.
   */
  join(background?: boolean): void;
  /** With `alone`: whether they have (the selection then uses every core it was given). */
  joined(): boolean;
}

export interface SelectionWorkerOptions {
  threads?: number;
  /** Hears the number of candidates picked so far and those picked since the last call, in greedy order. */
  onPick?: (picked: number, rows: readonly number[]) => void;
  /** The worker runs every thread's share until join() is called: the caller's work gets a core of its own meanwhile. */
  alone?: boolean;
}

/**
 * A worker thread for one selection (and more threads, as selectCandidatesThreaded decides), so that the caller's
 * thread stays free (rank reads the pool meanwhile); it boots while the caller prepares the input. Features in a
 * shared selection memory are shared with it; a feature matrix's buffer is moved to the worker, not copied (it is
 * detached here), and freed there once the selection has its own copy.
 */
export interface SelectionWorker {
  /** Runs the selection (once). */
  run(input: SelectionInput, options?: SelectionWorkerOptions): WorkerSelection;
  /** Stops the worker, running or not. */
  stop(): Promise<void>;
}

/** Starts a selection worker; undefined when the compiled worker is missing. */
export function startSelectionWorker(): SelectionWorker | undefined {
  const script = compiledWorkerScript(import.meta.url, "exec", "selection-worker");
  if (script === undefined) return undefined;
  const worker = takeBootedSelectionWorker() ?? new Worker(script);
  const post = (request: SelectionWorkerRequest, transfer: ArrayBuffer[] = []): void => worker.postMessage(request, transfer);
  let heard: SelectionWorkerOptions["onPick"];
  const result = new Promise<SelectionResult>((resolve, reject) => {
    worker.on("message", (reply: SelectionWorkerReply) => {
      if ("picked" in reply) heard?.(reply.picked, reply.rows);
      else if ("error" in reply) reject(new Error(`selection on a worker thread failed: ${reply.error}`));
      else resolve(reply.result);
    });
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the selection worker exited (code ${code})`)));
  });
  const stop = async (): Promise<void> => {
    await worker.terminate();
  };
  const settled = result.finally(stop);
  settled.catch(() => undefined); // nobody awaits the result of a run stopped early
  return {
    stop,
    run(input, { threads, onPick, alone = false } = {}) {
      heard = onPick;
      const { features } = input;
      const joinSignal = alone ? createJoinSignal() : undefined;
      if ("memory" in features) {
        const { memory, layout, module } = features;
        const posted: PostedSelectionInput = { ...input, features: { memory, layout, module } };
        post({ input: posted, threads, joinSignal });
      } else {
        // A SharedArrayBuffer cannot be moved; it is shared instead (and not freed by the worker).
        const buffer = features.data.buffer;
        post({ input, threads, joinSignal }, buffer instanceof ArrayBuffer ? [buffer] : []);
      }
      const join = (background = true): void => {
        if (!joinSignal) return;
        Atomics.store(joinSignal, 2, background ? 1 : 0);
        Atomics.store(joinSignal, 0, 1);
      };
      const joined = (): boolean => joinSignal !== undefined && Atomics.load(joinSignal, 1) === 1;
      return { result: settled, stop, join, joined };
    },
  };
}
