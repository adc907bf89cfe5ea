import { describe, expect, it } from "vitest";
import { copyRows, type FeatureMatrix } from "../../src/core/select/feature-matrix.js";
import { allocateSelection, selectCandidates, type LazyPolicy, type SelectionInput } from "../../src/core/select/fps.js";
import {
  claimCandidate, createJoinSignal, releaseBuffer, selectCandidatesThreaded, startSelectionWorker, type SelectionWorker,
} from "../../src/exec/fps-threads.js";

type MatrixSelectionInput = SelectionInput & { features: FeatureMatrix };
import { seededRandom } from "../core/select/fps-oracle.js";

function input(seed: number, N: number, D: number, k: number): MatrixSelectionInput {
  const random = seededRandom(seed);
  const data = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    const cluster = i % 5;
    for (let j = 0; j < D; j++) data[i * D + j] = cluster * 3 + random();
  }
  return { features: { rows: N, cols: D, data }, ids: Array.from({ length: N }, (_, i) => `c${i}`), k };
}

function selectionWorker(): SelectionWorker {
  const worker = startSelectionWorker();
  if (!worker) throw new Error("the selection worker is missing: build first (npm test does)");
  return worker;
}

/** `base` with 40 labelled rows (from `seed`), a tenth of its candidates excluded and random disagreement. */
function withExtras(base: MatrixSelectionInput, seed: number): MatrixSelectionInput {
  const { rows, cols } = base.features;
  const labelled = input(seed, 40, cols, 1);
  const random = seededRandom(seed + 1);
  return {
    ...base,
    labelled: { features: labelled.features, ids: labelled.ids!.map((id) => `l${id}`) },
    excluded: Uint8Array.from({ length: rows }, () => (random() < 0.1 ? 1 : 0)),
    disagreement: Float64Array.from({ length: rows }, () => random()),
  };
}

/**
 * Lets deferred workers join, and blocks the selection's thread a moment so that they are surely started by its
 * next pass (they join only once ready, and a small selection would otherwise end before they are).
 */
function letJoin(joinSignal: Int32Array): void {
  Atomics.store(joinSignal, 0, 1);
  Atomics.wait(createJoinSignal(), 0, 0, 300);
}

/** A deferred selection of `base` on two threads, whose workers exit silently when asked for slot 10, let join at pick `joinAt`. */
function exitingWorkersLetJoinAt(base: SelectionInput, joinAt: number, joinWhenTested: number | undefined) {
  const joinSignal = createJoinSignal();
  const onPick = (picked: number): void => {
    if (picked === joinAt) letJoin(joinSignal);
  };
  const run = selectCandidatesThreaded(base, { threads: 2, stallSeconds: 1, exitWorkersAtSlot: 10, joinSignal, onPick, joinWhenTested, lazy: BY_PASSES });
  run.catch(() => undefined); // awaited by the caller
  return { run, joinSignal };
}

/** Every pick by a pass: for the tests of when deferred workers join passes. */
const BY_PASSES = { passes: Infinity, minShare: 0 };

describe("threaded selection", () => {
  it("gives the single-thread result exactly with 2 and 3 threads", async () => {
    const base = input(7, 7000, 11, 300);
    const single = selectCandidates(base);
    for (const threads of [2, 3]) {
      const threaded = await selectCandidatesThreaded(base, { threads });
      expect(threaded.picks).toEqual(single.picks);
      expect(Array.from(threaded.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
    }
  });

  it("agrees with labelled seeding, exclusions and disagreement", async () => {
    const extras: MatrixSelectionInput = { ...withExtras(input(8, 5000, 6, 200), 9), rule: { kind: "uwfps", alpha: 1, beta: 2 } };
    const single = selectCandidates(extras);
    const threaded = await selectCandidatesThreaded(extras, { threads: 2 });
    expect(threaded.picks).toEqual(single.picks);
    expect(Array.from(threaded.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
  });

  it("with its workers deferred, gives the single-thread result whether they join before the first pick, early, late or never", async () => {
    const plain = input(14, 6000, 9, 250);
    const extras = withExtras(plain, 15);
    // Every row twice (distinct ids): equal scores in one cell, which go to the lower candidate index.
    const ties = input(17, 6000, 9, 250);
    ties.features.data.forEach((_, i, data) => (data[i] = data[(Math.floor(i / 18) * 2) * 9 + (i % 9)]));
    for (const base of [plain, extras, ties]) {
      const single = selectCandidates(base);
      for (const threads of [2, 3]) {
        for (const joinAt of [1, 17, 150, Infinity]) {
          const joinSignal = createJoinSignal();
          const onPick = (picked: number): void => {
            if (picked === joinAt) letJoin(joinSignal);
          };
          const threaded = await selectCandidatesThreaded(base, { threads, joinSignal, onPick, joinWhenTested: 0 });
          expect(threaded.picks, `${threads} threads joining at pick ${joinAt}`).toEqual(single.picks);
          expect(joinSignal[1]).toBe(joinAt === Infinity ? 0 : 1);
          expect(Array.from(threaded.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
        }
      }
    }
  });

  it.each<[string, LazyPolicy]>([
    ["to the end", { passes: 1, minShare: 0 }],
    // Eight lazy picks, then passes (each thread rebuilds its cells), eight of them, then lazy picks again, and so on.
    ["and by passes in turn", { passes: 1, minShare: 0, resumeShare: 2 }],
  ])("picks lazily %s with the single-thread result, the workers catching up their shares whether they joined or not", async (_, lazy) => {
    for (const base of [input(18, 6000, 9, 250), withExtras(input(19, 6000, 9, 250), 20)]) {
      const single = selectCandidates(base, BY_PASSES);
      expect(single.lazyFrom).toBeNull();
      for (const threads of [2, 3]) {
        const together = await selectCandidatesThreaded(base, { threads, lazy });
        expect(together.lazyFrom).toBe(1);
        // In turn: at most 8 lazy picks of every 16 (fewer where a pick is left to a pass, see LazyPolicy).
        if (lazy.resumeShare) expect(together.lazyPicks).toBeGreaterThan(100);
        expect(together.lazyPicks).toBeLessThanOrEqual(lazy.resumeShare ? 128 : 249);
        expect(together.picks).toEqual(single.picks);
        expect(Array.from(together.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
        // Deferred workers join for the catching up, once let (pick 17 comes during the lazy picks), or never.
        for (const joinAt of [17, Infinity]) {
          const joinSignal = createJoinSignal();
          const onPick = (picked: number): void => {
            if (picked === joinAt) letJoin(joinSignal);
          };
          const deferred = await selectCandidatesThreaded(base, { threads, lazy, joinSignal, onPick, joinWhenTested: 0 });
          expect(deferred.picks).toEqual(single.picks);
          expect(joinSignal[1]).toBe(joinAt === Infinity ? 0 : 1);
          expect(Array.from(deferred.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
        }
      }
    }
  });

  it("keeps deferred workers out of the catching up before passes resume, as out of light passes", async () => {
    const base = input(18, 6000, 9, 250);
    const single = selectCandidates(base, BY_PASSES);
    const joinSignal = createJoinSignal();
    const onPick = (picked: number): void => {
      if (picked === 1) letJoin(joinSignal);
    };
    // Lazy and by passes in turn, the last pick by a pass (no final catch-up), and no pass heavy enough to join.
    const lazy = { passes: 1, minShare: 0, resumeShare: 2 };
    const result = await selectCandidatesThreaded(base, { threads: 2, lazy, joinSignal, onPick, joinWhenTested: Infinity });
    expect(result.lazyPicks).toBeGreaterThan(100);
    expect(joinSignal[1]).toBe(0);
    expect(result.picks).toEqual(single.picks);
    expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
  });

  it("lets deferred workers join passes after lazy picks only once those passes are heavy themselves", async () => {
    const base = input(18, 6000, 9, 250);
    const single = selectCandidates(base, BY_PASSES);
    const joinSignal = createJoinSignal();
    let joinedAt17 = -1;
    const onPick = (picked: number): void => {
      if (picked === 8) letJoin(joinSignal);
      if (picked === 17) joinedAt17 = joinSignal[1];
    };
    // Picks 1-8 by passes (every pass counts as heavy), 9-16 lazily, then passes again; let join after pick 8, the
    // workers may join once eight passes after the lazy picks tested enough, not on the strength of those before.
    const lazy = { passes: 8, minShare: 0, resumeShare: 2 };
    const result = await selectCandidatesThreaded(base, { threads: 2, lazy, joinSignal, onPick, joinWhenTested: 1 });
    expect(result.lazyFrom).toBe(8);
    expect(joinedAt17).toBe(0);
    expect(joinSignal[1]).toBe(1);
    expect(result.picks).toEqual(single.picks);
    expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
  });

  it("lets deferred workers catch up in the background of lazy picks only when the caller allows it, else from the final catch-up", async () => {
    const lazy = { passes: 1, minShare: 0 };
    const base = input(21, 6000, 9, 250);
    const single = selectCandidates(base);
    for (const background of [true, false]) {
      const joinSignal = createJoinSignal();
      let joinedBy40 = -1;
      const onPick = (picked: number): void => {
        if (picked === 17) {
          Atomics.store(joinSignal, 2, background ? 1 : 0);
          letJoin(joinSignal);
        }
        if (picked === 40) joinedBy40 = joinSignal[1];
      };
      const deferred = await selectCandidatesThreaded(base, { threads: 2, lazy, joinSignal, onPick, joinWhenTested: 0 });
      expect(joinedBy40, `background ${background}`).toBe(background ? 1 : 0);
      expect(joinSignal[1]).toBe(1);
      expect(deferred.picks).toEqual(single.picks);
      expect(Array.from(deferred.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
    }
  });

  it("lets deferred workers join the final catch-up while the calling thread is at it", async () => {
    const lazy = { passes: 1, minShare: 0 };
    const base = input(22, 9000, 9, 250);
    const single = selectCandidates(base);
    for (const threads of [2, 3]) {
      const joinSignal = createJoinSignal();
      let chunks = 0;
      const onCatchUpChunk = (): void => {
        if (++chunks === 2) letJoin(joinSignal);
      };
      const deferred = await selectCandidatesThreaded(base, { threads, lazy, joinSignal, onCatchUpChunk, joinWhenTested: 0 });
      expect(chunks).toBe(2);
      expect(joinSignal[1]).toBe(1);
      expect(deferred.picks).toEqual(single.picks);
      expect(Array.from(deferred.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
    }
  });

  it("runs no pass on deferred workers before they are let join, and every pass after", async () => {
    const base = input(12, 3000, 5, 50);
    const never = createJoinSignal();
    // Workers that would exit at slot 10 are never asked for it...
    await expect(selectCandidatesThreaded(base, { threads: 2, stallSeconds: 1, exitWorkersAtSlot: 10, joinSignal: never, lazy: BY_PASSES })).resolves.toBeDefined();
    // ...until they join at pick 5.
    await expect(exitingWorkersLetJoinAt(base, 5, 0).run).rejects.toThrow(/no result from a worker thread for 1 s/);
  });

  it("keeps deferred workers out while the passes test fewer candidates than joinWhenTested, and lets them in after", async () => {
    const base = input(12, 3000, 5, 50);
    // Passes over 3000 candidates test at most 3000 each: workers that would exit at slot 10 never join...
    for (const joinWhenTested of [undefined, 3001]) {
      const { run, joinSignal } = exitingWorkersLetJoinAt(base, 1, joinWhenTested);
      await expect(run).resolves.toBeDefined();
      expect(joinSignal[1]).toBe(0);
    }
    // ...while the first passes (before the cells narrow) test all 3000, so a threshold of 1500 lets them join.
    await expect(exitingWorkersLetJoinAt(base, 1, 1500).run).rejects.toThrow(/no result from a worker thread for 1 s/);
  });

  it("fails instead of waiting forever when a worker thread dies without an error", async () => {
    const base = input(12, 3000, 5, 50);
    await expect(selectCandidatesThreaded(base, { threads: 2, stallSeconds: 1, exitWorkersAtSlot: 10 })).rejects.toThrow(
      /failed in a worker thread: no result from a worker thread for 1 s/,
    );
  });

  it("runs each pass once when the wake-up for a pass arrives after a worker has already run it", async () => {
    const base = input(13, 3000, 5, 12);
    const single = selectCandidates(base);
    const threaded = await selectCandidatesThreaded(base, { threads: 2, stallSeconds: 2, lateWakeMs: 30 });
    expect(threaded.picks).toEqual(single.picks);
  });

  it("tells when the input is laid out, before the first pick, on one thread and on several", async () => {
    for (const threads of [1, 2]) {
      const events: string[] = [];
      await selectCandidatesThreaded(input(12, 3000, 5, 20), { threads, onPrepared: () => events.push("prepared"), onPick: (n) => events.push(`pick ${n}`) });
      expect(events.slice(0, 2)).toEqual(["prepared", "pick 1"]);
      expect(events.filter((e) => e === "prepared")).toHaveLength(1);
    }
  });

  it("moves the features to its worker thread (detached here) and gives the single-thread result", async () => {
    const base = input(13, 6000, 7, 150);
    const single = selectCandidates(base);
    const moved = input(13, 6000, 7, 150);
    const running = selectionWorker().run(moved, { threads: 2 });
    expect(moved.features.data.length).toBe(0);
    const result = await running.result;
    expect(result.picks).toEqual(single.picks);
    expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
  });

  it("shares a selection memory the features were written into with its worker thread, with 1 or 2 threads there", async () => {
    const base = input(17, 6000, 7, 150);
    const single = selectCandidates(base);
    for (const threads of [1, 2]) {
      const placed = allocateSelection(6000, 7, 0, 150, threads, true);
      copyRows(base.features.data, 0, 6000, placed.candidates, 0);
      const running = selectionWorker().run({ ...base, features: placed });
      const result = await running.result;
      expect(result.picks).toEqual(single.picks);
      expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
    }
  });

  it("reports the rows it picked with its progress, in greedy order", async () => {
    const worker = selectionWorker();
    const base = input(18, 3000, 5, 250);
    const reported: number[] = [];
    const counts: number[] = [];
    const running = worker.run(base, {
      threads: 1,
      onPick: (picked, rows) => {
        counts.push(picked);
        reported.push(...rows);
      },
    });
    const result = await running.result;
    // Every 1 % of the picks (here every second pick), with the picks since.
    expect(counts).toEqual(Array.from({ length: 125 }, (_, i) => 2 * (i + 1)));
    expect(reported).toEqual(result.picks.map((pick) => pick.index));
  });

  it("releases a buffer: detached at once, its memory handed back without waiting for a garbage collection", async () => {
    const buffer = new ArrayBuffer(64 << 20);
    new Uint8Array(buffer).fill(1);
    const before = process.memoryUsage().arrayBuffers;
    // Other small buffers come and go meanwhile (the test runner's own messages).
    const freed = (): number => before - process.memoryUsage().arrayBuffers;
    releaseBuffer(buffer);
    expect(buffer.byteLength).toBe(0);
    // Freed once the dropped message is disposed of, a few event-loop turns later.
    for (let turn = 0; turn < 200 && freed() < 60 << 20; turn++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(freed()).toBeGreaterThanOrEqual(60 << 20);
  });

  it("gives the same result from features written into its memory, with 1 to 3 threads", async () => {
    // 9000 rows: blocks of 2048 shared round-robin, the last one short.
    const base = input(14, 9000, 6, 120);
    const labelled = input(15, 30, 6, 1);
    const random = seededRandom(16);
    const extras = {
      labelled: { features: labelled.features, ids: labelled.ids!.map((id) => `l${id}`) },
      excluded: Uint8Array.from({ length: 9000 }, () => (random() < 0.1 ? 1 : 0)),
      disagreement: Float64Array.from({ length: 9000 }, () => random()),
    };
    const single = selectCandidates({ ...base, ...extras });
    for (const threads of [1, 2, 3]) {
      const placed = allocateSelection(9000, 6, 30, 120, threads);
      copyRows(base.features.data, 0, 9000, placed.candidates, 0);
      const result = await selectCandidatesThreaded({ ...base, ...extras, features: placed });
      expect(result.picks).toEqual(single.picks);
      expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
    }
    const wrong = allocateSelection(9000, 6, 0, 120, 2);
    await expect(selectCandidatesThreaded({ ...base, ...extras, features: wrong })).rejects.toThrow(/laid out for 2 threads, 0 labelled rows and 120 picks/);
  });

  it("with every candidate on the calling thread, runs each pass there and lets the workers only catch candidates up", async () => {
    const base = input(23, 7000, 9, 250);
    const single = selectCandidates(base);
    const lazyPolicies: (LazyPolicy | undefined)[] = [undefined, { passes: 1, minShare: 0 }, { passes: 1, minShare: 0, resumeShare: 2 }];
    for (const lazy of lazyPolicies) {
      for (const background of [true, false]) {
        const placed = allocateSelection(7000, 9, 0, 250, 2, true, 1);
        expect(placed.layout.regions.map((region) => region.count)).toEqual([7000, 0]);
        copyRows(base.features.data, 0, 7000, placed.candidates, 0);
        const joinSignal = createJoinSignal();
        const onPick = (picked: number): void => {
          if (picked !== 1) return;
          Atomics.store(joinSignal, 2, background ? 1 : 0);
          letJoin(joinSignal);
        };
        // A worker asked to sweep slot 10 exits silently, which fails the selection: none is asked. joinWhenTested 0
        // would let workers holding candidates into every pass.
        const options = { threads: 2, lazy, joinSignal, onPick, exitWorkersAtSlot: 10, stallSeconds: 1, joinWhenTested: 0 };
        const result = await selectCandidatesThreaded({ ...base, features: placed }, options);
        expect(result.picks, `lazy ${JSON.stringify(lazy)}, background ${background}`).toEqual(single.picks);
        expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
        // Lazy to the end: they join for the catching up (in the background, or the final one).
        if (lazy && !lazy.resumeShare) expect(joinSignal[1]).toBe(1);
        if (result.lazyFrom === null) expect(joinSignal[1]).toBe(0);
      }
    }
    expect(() => allocateSelection(100, 4, 0, 10, 2, true, 3)).toThrow(RangeError);
  });

  it("lets workers holding no candidates help catch candidates up before passes resume, without joining for good", async () => {
    const base = input(24, 6000, 9, 250);
    const single = selectCandidates(base, BY_PASSES);
    // Lazy picks and passes in turn: every candidate is caught up to slot 2, 18, 34, ... before passes resume.
    const lazy = { passes: 1, minShare: 0, resumeShare: 2 };
    for (const exitAt of [18, -1]) {
      const placed = allocateSelection(6000, 9, 0, 250, 2, true, 1);
      copyRows(base.features.data, 0, 6000, placed.candidates, 0);
      const joinSignal = createJoinSignal();
      const onPick = (picked: number): void => {
        if (picked === 1) letJoin(joinSignal);
      };
      const run = selectCandidatesThreaded({ ...base, features: placed }, { threads: 2, lazy, joinSignal, onPick, exitWorkersAtSlot: exitAt, stallSeconds: 1 });
      // A worker that exits when asked to catch up to slot 18 stops the selection: it was asked.
      if (exitAt === 18) {
        await expect(run).rejects.toThrow(/no result from a worker thread for 1 s/);
        continue;
      }
      const result = await run;
      expect(result.picks).toEqual(single.picks);
      expect(Array.from(result.distanceToCovered)).toEqual(Array.from(single.distanceToCovered));
      // Helping with a catch-up before passes is no joining: the caller's core is free again after it.
      if (result.lazyPicks < 249) expect(joinSignal[1]).toBe(0);
    }
  });

  it("reports input errors (the workers started alongside are stopped)", async () => {
    const base = input(11, 10, 2, 11);
    await expect(selectCandidatesThreaded(base, { threads: 2 })).rejects.toThrow(/cannot select 11 candidates from a pool of 10/);
  });
});

describe("claimCandidate", () => {
  it("claims a free candidate: returns its slots and marks it taken (-1)", () => {
    const fresh = new Int32Array(new SharedArrayBuffer(12)).fill(7);
    expect(claimCandidate(fresh, 1)).toBe(7);
    expect(Array.from(fresh)).toEqual([7, -1, 7]);
  });

  it("waits for a claim another thread holds, and gives up when it is never released", () => {
    const fresh = new Int32Array(new SharedArrayBuffer(8)).fill(-1);
    expect(() => claimCandidate(fresh, 1, 0.05)).toThrow(/held candidate 1 for 0.05 s/);
    expect(fresh[1]).toBe(-1);
  });
});
