import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it, vi } from "vitest";
import { readExtxyzFrameRanges, readExtxyzFramesAt } from "../../src/io/extxyz.js";
import { UsageError } from "../../src/core/errors.js";
import { rankToDir } from "../../src/io/rank.js";
import { writeSelectedFrames } from "../../src/io/selected.js";
import { numpyArray } from "../helpers/numpy-arrays.js";
import { realPath } from "../helpers/real-data.js";

vi.mock("../../src/io/extxyz.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/io/extxyz.js")>();
  return { ...actual, readExtxyzFramesAt: vi.fn(actual.readExtxyzFramesAt), readExtxyzFrameRanges: vi.fn(actual.readExtxyzFrameRanges) };
});

vi.mock("../../src/io/selected.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/io/selected.js")>();
  return { ...actual, writeSelectedFrames: vi.fn(actual.writeSelectedFrames) };
});

const POOL = realPath("extxyz/imagdau_xtb_md.xyz");
const software = { name: "relabel-loop", version: "test" };

/** The "selecting" progress a ranking reports, as the numbers picked. */
async function selectingProgress(options: { features?: string; threads?: number }): Promise<number[]> {
  const picked: number[] = [];
  const out = path.join(mkdtempSync(path.join(tmpdir(), "relabel-rank-io-")), "out");
  await rankToDir({ pool: [POOL], select: 20, out, software, ...options, onProgress: (phase, done) => phase === "selecting" && picked.push(done) });
  return picked;
}

describe("rankToDir progress", () => {
  it("reports the selection pick by pick on this thread", async () => {
    expect(await selectingProgress({ threads: 1 })).toEqual(Array.from({ length: 21 }, (_, i) => i));
  });

  it("reports a selection that started on a worker before the pool was read, up to the last pick", async () => {
    // 201 rows of 5000 values: enough for the early selection.
    const rows = Array.from({ length: 201 }, (_, i) => [Math.sin(i), Math.cos(3 * i), ...Array<number>(4998).fill(0)]);
    const features = numpyArray(rows, path.join(mkdtempSync(path.join(tmpdir(), "relabel-rank-io-")), "f.npy"));
    const picked = await selectingProgress({ features });
    expect(picked.at(-1)).toBe(20);
    expect(picked).toEqual([...picked].sort((a, b) => a - b));
  });
});

describe("rankToDir with a selection started before the pool was read", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-rank-io-"));
  // 201 rows of 5000 values: enough for the early selection.
  const rows = Array.from({ length: 201 }, (_, i) => [Math.sin(i), Math.cos(3 * i), ...Array<number>(4998).fill(0)]);

  it("builds selected.extxyz while the selection runs; it and ranking.csv are the files the usual path writes", async () => {
    const features = numpyArray(rows, path.join(dir, "f.npy"));
    const selected: string[] = [];
    const csv: string[] = [];
    for (const threads of [2, 1]) {
      vi.mocked(writeSelectedFrames).mockClear();
      const out = path.join(dir, `threads-${threads}`);
      let early = 0;
      await rankToDir({ pool: [POOL], select: 20, out, software, features, threads, onEarlySelection: () => early++ });
      // Only the usual path (no early selection on one thread) writes the frames once the selection is over.
      expect(vi.mocked(writeSelectedFrames).mock.calls.length).toBe(threads === 2 ? 0 : 1);
      expect(early).toBe(threads === 2 ? 1 : 0);
      selected.push(readFileSync(path.join(out, "selected.extxyz"), "utf8"));
      csv.push(readFileSync(path.join(out, "ranking.csv"), "utf8"));
    }
    expect(selected[0]).toBe(selected[1]);
    expect(csv[0]).toBe(csv[1]);
  });

  it("reports a value that is not finite as the usual path does", async () => {
    const features = numpyArray(rows.map((row, i) => (i === 7 ? [row[0], Number.NaN, ...row.slice(2)] : row)), path.join(dir, "nan.npy"));
    const out = path.join(dir, "nan");
    await expect(rankToDir({ pool: [POOL], select: 20, out, software, features })).rejects.toThrow(/nan\.npy: row 7: column 1 of candidate 7 \(\w+\) is NaN, expected a finite number/);
  });
});

describe("rankToDir picks", () => {
  it("reads the picks of a plain pool back at the byte ranges found while reading it, and a gzipped one by counting lines", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-rank-io-"));
    const gz = path.join(dir, "pool.xyz.gz");
    writeFileSync(gz, gzipSync(readFileSync(POOL)));
    const selected: string[] = [];
    for (const [pool, direct] of [[POOL, true], [gz, false]] as const) {
      vi.mocked(readExtxyzFrameRanges).mockClear();
      vi.mocked(readExtxyzFramesAt).mockClear();
      const out = path.join(dir, direct ? "plain" : "gzip");
      await rankToDir({ pool: [pool], select: 20, out, software, threads: 1 });
      expect(vi.mocked(readExtxyzFrameRanges).mock.calls.length).toBe(direct ? 1 : 0);
      expect(vi.mocked(readExtxyzFramesAt).mock.calls.length).toBe(direct ? 0 : 1);
      selected.push(readFileSync(path.join(out, "selected.extxyz"), "utf8").replaceAll(pool, "POOL"));
      // The source's sha256 is of the file's own bytes, also when they are gzipped.
      const sources = (JSON.parse(readFileSync(path.join(out, "ranking.json"), "utf8")) as { sources: { sha256: string }[] }).sources;
      expect(sources[0].sha256).toBe(createHash("sha256").update(readFileSync(pool)).digest("hex"));
    }
    expect(selected[1]).toBe(selected[0]);
  });
});

describe("rankToDir's output folder", () => {
  it("writes into nothing another run filled meanwhile, and into an empty folder made meanwhile", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-rank-io-"));
    const race = (out: string, meanwhile: () => void) =>
      rankToDir({ pool: [POOL], select: 3, out, software, threads: 1, onProgress: (phase, done) => phase === "selecting" && done === 1 && meanwhile() });
    const filled = path.join(dir, "filled");
    const err = await race(filled, () => {
      mkdirSync(filled, { recursive: true });
      writeFileSync(path.join(filled, "ranking.json"), "another run's");
    }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`${filled} was filled while ranking (another run into the same -o?): a ranking is never written over an earlier one; choose a new -o`);
    expect(readFileSync(path.join(filled, "ranking.json"), "utf8")).toBe("another run's");
    expect(readdirSync(dir)).toEqual(["filled"]);
    const empty = path.join(dir, "empty");
    const outcome = await race(empty, () => mkdirSync(empty));
    expect(readdirSync(outcome.dir).sort()).toEqual(["ranking.csv", "ranking.json", "selected.extxyz"]);
  });
});
