import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { rankToDir } from "../../src/io/rank.js";
import { numpyFloat32 } from "../helpers/numpy-arrays.js";
import { realPath } from "../helpers/real-data.js";

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
    const features = numpyFloat32(rows, path.join(mkdtempSync(path.join(tmpdir(), "relabel-rank-io-")), "f.npy"));
    const picked = await selectingProgress({ features });
    expect(picked.at(-1)).toBe(20);
    expect(picked).toEqual([...picked].sort((a, b) => a - b));
  });
});
