/**
 * startRank: what `relabel rank` checks and starts before the pool readers load. Nothing starts when a check
 * fails; the early selection starts only for a .npy large enough and nothing else needed from the pool.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { rankToDir } from "../../src/io/rank.js";
import type { SelectionMemory } from "../../src/core/select/fps.js";
import { placeInSelection, startRank } from "../../src/io/rank-start.js";
import { numpyArray } from "../helpers/numpy-arrays.js";
import { realPath } from "../helpers/real-data.js";

const POOL = realPath("extxyz/imagdau_xtb_md.xyz");
const software = { name: "relabel-loop", version: "test" };
const dir = mkdtempSync(path.join(tmpdir(), "relabel-rank-start-"));
// 201 rows of 5000 values: enough for the early selection.
const features = numpyArray(
  Array.from({ length: 201 }, (_, i) => [Math.sin(i), Math.cos(3 * i), ...Array<number>(4998).fill(0)]),
  path.join(dir, "f.npy"),
);

describe("startRank", () => {
  it("refuses bad options and a used output directory before it starts anything", async () => {
    const used = path.join(dir, "used");
    mkdirSync(used);
    writeFileSync(path.join(used, "ranking.json"), "{}");
    await expect(startRank({ pool: [POOL], select: 0, out: path.join(dir, "a"), software, features })).rejects.toThrow(/--select must be a positive integer/);
    await expect(startRank({ pool: [POOL], select: 5, out: used, software, features })).rejects.toThrow(/exists and is not empty/);
    await expect(startRank({ pool: [path.join(dir, "missing.xyz")], select: 5, out: path.join(dir, "b"), software, features })).rejects.toThrow(/no such file/);
  });

  it("starts the early selection for a large .npy alone, and rankToDir finishes the ranking it started", async () => {
    const o = { pool: [POOL], select: 10, out: path.join(dir, "early"), software, features, threads: 2 };
    expect((await startRank({ ...o, features: undefined })).early).toBeUndefined();
    expect((await startRank({ ...o, labeled: [POOL] })).early).toBeUndefined();
    const started = await startRank(o);
    expect(started.units).toEqual([{ path: POOL, kind: "extxyz" }]);
    // The features file is hashed as the selection starts, for ranking.json.
    const sha256 = createHash("sha256").update(readFileSync(features)).digest("hex");
    expect(started.early?.featuresSha256).toBe(sha256);
    const outcome = await rankToDir(o, started);
    expect(outcome.result.picks).toHaveLength(10);
    expect(JSON.parse(readFileSync(path.join(o.out, "ranking.json"), "utf8")).parameters.features_file_sha256).toBe(sha256);
    expect((await rankToDir({ ...o, out: path.join(dir, "again") })).result.picks).toEqual(outcome.result.picks);
  });
});

describe("placeInSelection", () => {
  it("keeps every candidate in the first thread's region up to oneRegionUpTo feature values, and shares them out above", () => {
    const o = { pool: [POOL], select: 10, out: path.join(dir, "placed"), software, threads: 2 };
    const into: { placed?: SelectionMemory } = {};
    // 5000 rows: blocks of 2048 go to the threads in turn when shared out.
    placeInSelection(o, into, { shared: true, oneRegionUpTo: 10_000 })(5000, 2);
    expect(into.placed!.layout.threads).toBe(2);
    expect(into.placed!.layout.regions.map((region) => region.count)).toEqual([5000, 0]);
    placeInSelection(o, into, { shared: true, oneRegionUpTo: 9_999 })(5000, 2);
    expect(into.placed!.layout.regions.map((region) => region.count)).toEqual([2952, 2048]);
    placeInSelection(o, into)(5000, 2);
    expect(into.placed!.layout.candidateThreads).toBe(2);
  });
});
