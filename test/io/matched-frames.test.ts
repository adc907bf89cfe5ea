import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { writeExtxyzFrame } from "../../src/core/formats/extxyz.js";
import { candidateId } from "../../src/core/select/candidate-id.js";
import type { Frame } from "../../src/core/structure.js";
import { firstRowOf, FramesToRows } from "../../src/io/matched-frames.js";

/** An H2 molecule in a 6 A box, at height z, labelled `tag`. */
function h2(z: number, tag: number): Frame {
  return {
    natoms: 2,
    symbols: ["H", "H"],
    positions: Float64Array.of(1, 1, z, 1, 1, z + 0.74),
    cell: Float64Array.of(6, 0, 0, 0, 6, 0, 0, 0, 6),
    pbc: [true, true, true],
    info: new Map([["tag", { kind: "int", value: tag }]]),
    arrays: new Map(),
  };
}

const moved = (f: Frame, dz: number): Frame => ({ ...f, positions: f.positions.map((x, i) => (i % 3 === 2 ? x + dz : x)) });
const tagOf = (f: Frame): number => (f.info.get("tag") as { value: number }).value;

describe("FramesToRows", () => {
  it("matches frames by candidate_id, else by geometry against the rows still waiting, and returns the rest", async () => {
    const rows = [h2(1, 0), h2(2, 1), h2(3, 2), h2(1, 3)];
    const file = path.join(mkdtempSync(path.join(tmpdir(), "relabel-matched-")), "eval.xyz");
    // Row 2 printed 2e-6 A off (another id), a structure that is no row's, row 1 as it is.
    writeFileSync(file, [moved(h2(3, 12), 2e-6), h2(4.5, 99), h2(2, 11)].map(writeExtxyzFrame).join(""));
    const rowOf = firstRowOf(rows.map(candidateId));
    expect([...rowOf.values()]).toEqual([0, 1, 2]);
    const asked: number[][] = [];
    const matcher = new FramesToRows(rowOf, rows.length, async function* (wanted) {
      asked.push(wanted);
      for (const row of wanted) yield { row, frame: rows[row] };
    });
    const got = new Map<number, number>();
    const unmatched = await matcher.read(file, (frame) => tagOf(frame), (row) => rowOf.get(candidateId(rows[row])) === row && !got.has(row), (row, tag) => got.set(row, tag));
    expect([...got.entries()].sort()).toEqual([[1, 11], [2, 12]]);
    expect(unmatched).toEqual([{ n: 1, id: candidateId(h2(4.5, 99)) }]);
    // Only the first rows of each id that had no value yet were read for the geometry match, once.
    expect(asked).toEqual([[0, 2]]);
    await matcher.read(file, (frame) => tagOf(frame), () => true, () => undefined);
    expect(asked).toEqual([[0, 2], [1, 3]]);
  });

  it("holds at most pendingFrames frames: then it indexes the rows waiting and matches later frames as they come", async () => {
    const rows = [h2(1, 0), h2(2, 1), h2(3, 2), h2(5, 3)];
    const file = path.join(mkdtempSync(path.join(tmpdir(), "relabel-matched-")), "eval.xyz");
    const frames = [moved(h2(3, 12), 2e-6), h2(4.5, 99), moved(h2(1, 10), -2e-6), h2(2, 11), moved(h2(5, 13), 3e-6)];
    writeFileSync(file, frames.map(writeExtxyzFrame).join(""));
    const rowOf = firstRowOf(rows.map(candidateId));
    const readWith = async (pendingFrames?: number) => {
      const asked: number[][] = [];
      const indexing: [number, number][] = [];
      const matcher = new FramesToRows(rowOf, rows.length, async function* (wanted) {
        asked.push(wanted);
        for (const row of wanted) yield { row, frame: rows[row] };
      }, { pendingFrames, onIndexing: (done, total) => indexing.push([done, total]) });
      const got = new Map<number, number>();
      const unmatched = await matcher.read(file, (frame) => tagOf(frame), (row) => !got.has(row), (row, tag) => got.set(row, tag));
      return { asked, indexing, got: [...got.entries()].sort(), unmatched };
    };
    const atEnd = await readWith();
    const asTheyCome = await readWith(1);
    expect(atEnd.got).toEqual([[0, 10], [1, 11], [2, 12], [3, 13]]);
    expect(asTheyCome.got).toEqual(atEnd.got);
    expect(asTheyCome.unmatched).toEqual([{ n: 1, id: candidateId(h2(4.5, 99)) }]);
    expect(asTheyCome.unmatched).toEqual(atEnd.unmatched);
    // At the end only the rows no id matched are read; with one frame waiting, every row that was waiting then.
    expect(atEnd.asked).toEqual([[0, 2, 3]]);
    expect(asTheyCome.asked).toEqual([[0, 1, 2, 3]]);
    expect([atEnd.indexing, asTheyCome.indexing]).toEqual([[[3, 3]], [[4, 4]]]);
  });
});
