import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import { readExtxyz } from "../../src/io/extxyz.js";
import { writeSelectedAtRanges, writeSelectedFrames } from "../../src/io/selected.js";
import { PICKS_POOL as POOL, collect, picksOf } from "../helpers/picks.js";

describe("selected.extxyz", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-selected-"));

  it("is written from frames at their byte ranges as from frames read in full, in the picks' order", async () => {
    const request = await picksOf([7, 0, 12, 3], path.join(dir, "at-ranges.extxyz"));
    await writeSelectedAtRanges(request);
    const all = await collect(readExtxyz(POOL));
    const full = path.join(dir, "full.extxyz");
    await writeSelectedFrames(full, request.picks, new Map(all.map((frame, row) => [row, frame])));
    expect(readFileSync(request.file, "utf8")).toBe(readFileSync(full, "utf8"));
    const written = await collect(readExtxyz(request.file));
    expect(written.map((frame) => frame.info.get("selection_rank"))).toEqual([1, 2, 3, 4].map((value) => ({ kind: "int", value })));
    expect(written.map((frame) => frame.info.get("frame"))).toEqual([7, 0, 12, 3].map((value) => ({ kind: "int", value })));
  });

  it("refuses a frame that is no longer the structure ranked", async () => {
    const request = await picksOf([2, 5], path.join(dir, "changed.extxyz"));
    request.picks[1].meta.id = "0123456789abcdef0123";
    const failure = writeSelectedAtRanges(request);
    await expect(failure).rejects.toThrow(InputError);
    await expect(failure).rejects.toThrow(/gpumd_nep_PbTe_train\.xyz: frame 5: is not the structure ranked a moment ago/);
  });
});
