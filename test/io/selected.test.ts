import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import { readExtxyz } from "../../src/io/extxyz.js";
import { SelectedFramesInAdvance, writeSelectedFrames } from "../../src/io/selected.js";
import { PICKS_POOL as POOL, collect, picksOf, picksPool } from "../helpers/picks.js";

describe("selected.extxyz built while the selection runs", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-selected-"));

  it("is the file written from frames read in full, with picks added in batches and the rest read at the end", async () => {
    const { meta, locate } = await picksPool();
    const picks = picksOf([7, 0, 12, 3, 9], meta);
    const inAdvance = new SelectedFramesInAdvance(locate, meta);
    inAdvance.add([7, 0]);
    inAdvance.add([12]);
    const file = path.join(dir, "in-advance.extxyz");
    expect(await inAdvance.finish(picks, file)).toBe(true);
    const all = await collect(readExtxyz(POOL));
    const full = path.join(dir, "full.extxyz");
    await writeSelectedFrames(full, picks, new Map(all.map((frame, row) => [row, frame])));
    expect(readFileSync(file, "utf8")).toBe(readFileSync(full, "utf8"));
    const written = await collect(readExtxyz(file));
    expect(written.map((frame) => frame.info.get("selection_rank"))).toEqual([1, 2, 3, 4, 5].map((value) => ({ kind: "int", value })));
    expect(written.map((frame) => frame.info.get("frame"))).toEqual([7, 0, 12, 3, 9].map((value) => ({ kind: "int", value })));
  });

  it("writes nothing when the picks are not those it was given, or a frame's place is unknown", async () => {
    const { meta, locate } = await picksPool();
    const others = new SelectedFramesInAdvance(locate, meta);
    others.add([7, 1]);
    const file = path.join(dir, "others.extxyz");
    expect(await others.finish(picksOf([7, 0, 12], meta), file)).toBe(false);
    const unknown = new SelectedFramesInAdvance((row) => (row === 12 ? undefined : locate(row)), meta);
    unknown.add([7, 0]);
    expect(await unknown.finish(picksOf([7, 0, 12], meta), file)).toBe(false);
    expect(existsSync(file)).toBe(false);
  });

  it("refuses a frame that is no longer the structure ranked", async () => {
    const { meta, locate } = await picksPool();
    meta[5] = { ...meta[5], id: "0123456789abcdef0123" };
    const inAdvance = new SelectedFramesInAdvance(locate, meta);
    inAdvance.add([2, 5]);
    const failure = inAdvance.finish(picksOf([2, 5], meta), path.join(dir, "changed.extxyz"));
    await expect(failure).rejects.toThrow(InputError);
    await expect(failure).rejects.toThrow(/gpumd_nep_PbTe_train\.xyz: frame 5: is not the structure ranked a moment ago/);
  });
});
