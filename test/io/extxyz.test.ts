import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import type { Frame } from "../../src/core/structure.js";
import { ExtxyzSegmenter } from "../../src/core/formats/extxyz-segments.js";
import { CandidateSummaryBuilder } from "../../src/core/select/candidate-id.js";
import {
  ExtxyzFileWriter, ExtxyzReadTrace, readExtxyz, readExtxyzBatches, readExtxyzFrameRanges, readExtxyzFramesAt, readExtxyzWithLines, summarizeExtxyz, writeExtxyz,
  type ExtxyzFrameRange,
} from "../../src/io/extxyz.js";
import { sha256File } from "../../src/io/open.js";
import { aseReference, realPath } from "../helpers/real-data.js";

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/extxyz/edge-cases.extxyz");
const fixtureFrames = parseExtxyz(readFileSync(fixture)).map((f) => f.frame);
const dir = mkdtempSync(path.join(tmpdir(), "relabel-extxyz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

async function failure(gen: AsyncIterable<unknown>): Promise<{ before: number; error: unknown }> {
  let before = 0;
  try {
    for await (const _ of gen) before++;
  } catch (error) {
    return { before, error };
  }
  throw new Error("expected the read to fail");
}

describe("readExtxyz", () => {
  it("streams the frames of a file with the line of each frame", async () => {
    const got = await collect(readExtxyzWithLines(fixture));
    expect(got.map((g) => g.line)).toEqual([1, 6, 8, 11, 17]);
    expect(got.map((g) => g.frame)).toEqual(fixtureFrames);
    expect(await collect(readExtxyz(fixture))).toEqual(fixtureFrames);
  });

  it("reads gzip, recognised by its magic bytes whatever the name", async () => {
    const gz = gzipSync(readFileSync(fixture));
    writeFileSync(path.join(dir, "a.extxyz.gz"), gz);
    writeFileSync(path.join(dir, "b.xyz"), gz);
    expect(await collect(readExtxyz(path.join(dir, "a.extxyz.gz")))).toEqual(fixtureFrames);
    expect(await collect(readExtxyz(path.join(dir, "b.xyz")))).toEqual(fixtureFrames);
  });

  it("reads a real file with the frame count ASE reads", async () => {
    const rel = "mace/imagdau_mace01_eval_solvent_train.xyz";
    const frames = await collect(readExtxyz(realPath(rel)));
    expect(frames).toHaveLength(aseReference()[rel].n_frames as number);
  });

  it("streams frames across many 1 MiB chunks", async () => {
    const frames: string[] = [];
    for (let k = 0; k < 1600; k++) {
      const lines = Array.from({ length: 60 }, (_, a) => `Si ${k}.5 ${a}.25 -1.125 0.001 -0.002 ${a % 7}`);
      frames.push(`60\nProperties=species:S:1:pos:R:3:f:R:3 step=${k}\n${lines.join("\n")}\n`);
    }
    const file = path.join(dir, "big.xyz");
    writeFileSync(file, frames.join(""));
    expect(readFileSync(file).length).toBeGreaterThan(3 << 20);
    const got = await collect(readExtxyzWithLines(file));
    expect(got).toHaveLength(1600);
    expect(got.map((g) => g.frame.info.get("step"))).toEqual(Array.from({ length: 1600 }, (_, k) => ({ kind: "int", value: k })));
    expect(got[1599].line).toBe(1599 * 62 + 1);
    expect(got[1599].frame.positions[0]).toBe(1599.5);
  });

  it("stops reading when the consumer stops", async () => {
    let seen = 0;
    for await (const _ of readExtxyz(fixture)) {
      seen++;
      break;
    }
    expect(seen).toBe(1);
  });

  it("yields every frame before a bad one, then throws an InputError naming file and line", async () => {
    const file = path.join(dir, "broken.xyz");
    writeFileSync(file, "1\n\nH 0 0 0\n1\n\nH 0 0 0\n2\n\nH 0 0 0\nH 0 zero 0\n");
    const { before, error } = await failure(readExtxyz(file));
    expect(before).toBe(2);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(`${file}:10: column 3 (pos[1]): expected a real number, found "zero"`);
  });

  it("reports a truncated gzip frame with its line", async () => {
    const file = path.join(dir, "trunc.xyz.gz");
    writeFileSync(file, gzipSync("2\n\nH 0 0 0\n"));
    const { error } = await failure(readExtxyz(file));
    expect((error as Error).message).toBe(`${file}:1: frame has 1 atom line(s), expected 2: the file ends at line 3`);
  });

  it("turns file-system and gzip failures into InputErrors", async () => {
    const missing = path.join(dir, "missing.xyz");
    const a = await failure(readExtxyz(missing));
    expect(a.error).toBeInstanceOf(InputError);
    expect((a.error as Error).message).toBe(`${missing}: no such file`);

    const b = await failure(readExtxyz(dir));
    expect((b.error as Error).message).toBe(`${dir}: is a directory, expected an extxyz file`);

    const bad = path.join(dir, "bad.xyz.gz");
    writeFileSync(bad, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from("not really gzip")]));
    const c = await failure(readExtxyz(bad));
    expect(c.error).toBeInstanceOf(InputError);
    expect((c.error as Error).message).toMatch(new RegExp(`^${bad.replace(/[.]/g, "\\.")}: broken gzip data: `));

    const cut = path.join(dir, "cut.xyz.gz");
    const whole = gzipSync(readFileSync(fixture));
    writeFileSync(cut, whole.subarray(0, whole.length - 12));
    const d = await failure(readExtxyz(cut));
    expect(d.error).toBeInstanceOf(InputError);
    expect((d.error as Error).message).toMatch(/broken gzip data: unexpected end of file/);
  });
});

describe("readExtxyzFramesAt", () => {
  const picks = async (file: string, wanted: number[]): Promise<[number, Frame][]> =>
    (await collect(readExtxyzFramesAt(file, new Set(wanted)))).map(({ index, frame }) => [index, frame]);

  it("parses only the wanted frames, in file order, equal to a full read", async () => {
    expect(await picks(fixture, [3, 0, 4])).toEqual([0, 3, 4].map((i) => [i, fixtureFrames[i]]));
    expect(await picks(fixture, [])).toEqual([]);
    const gz = path.join(dir, "picks.extxyz.gz");
    writeFileSync(gz, gzipSync(readFileSync(fixture)));
    expect(await picks(gz, [1, 2])).toEqual([1, 2].map((i) => [i, fixtureFrames[i]]));
  });

  it("finds frames across 1 MiB chunks, after a byte-order mark and without a final newline", async () => {
    const frames: string[] = [];
    for (let k = 0; k < 900; k++) {
      const lines = Array.from({ length: 70 }, (_, a) => `Si ${k}.5 ${a}.25 -1.125`);
      frames.push(`70\nProperties=species:S:1:pos:R:3 step=${k}\n${lines.join("\n")}`);
    }
    const file = path.join(dir, "picks-large.extxyz");
    writeFileSync(file, "\ufeff" + frames.join("\n"));
    const all = await collect(readExtxyz(file));
    const wanted = [0, 1, 317, 318, 640, 899];
    expect(await picks(file, wanted)).toEqual(wanted.map((i) => [i, all[i]]));
  });

  it("says the file changed when its frames no longer line up", async () => {
    const file = path.join(dir, "picks-changed.extxyz");
    writeFileSync(file, readFileSync(fixture, "utf8").replace(/^3\n/m, "three\n"));
    const { error } = await failure(readExtxyzFramesAt(file, new Set([4])));
    expect(error).toBeInstanceOf(InputError);
    expect(String((error as Error).message)).toMatch(/picks-changed\.extxyz.*frame \d+.*the file changed since it was read/);
    const short = path.join(dir, "picks-short.extxyz");
    writeFileSync(short, readFileSync(fixture, "utf8").split("\n").slice(0, 5).join("\n") + "\n");
    expect(String(((await failure(readExtxyzFramesAt(short, new Set([3])))).error as Error).message)).toMatch(/has 1 frames, expected at least 4/);
  });
});

describe("readExtxyzFrameRanges", () => {
  /** Every frame's byte range, as the segmenter finds them while a file is read. */
  function rangesOf(bytes: Buffer): ExtxyzFrameRange[] {
    const segmenter = new ExtxyzSegmenter(1 << 20);
    segmenter.push(bytes);
    segmenter.end();
    return Array.from({ length: segmenter.starts.length }, (_, index) => ({ index, ...segmenter.starts.range(index)! }));
  }

  it("reads the frames at their byte ranges, equal to a full read", async () => {
    const file = realPath("extxyz/gpumd_nep_PbTe_train.xyz");
    const all = await collect(readExtxyz(file));
    const ranges = rangesOf(readFileSync(file));
    expect(ranges).toHaveLength(all.length);
    const wanted = [0, 7, ranges.length - 1].map((i) => ranges[i]);
    expect((await collect(readExtxyzFrameRanges(file, wanted))).map(({ index, frame }) => [index, frame])).toEqual(
      wanted.map(({ index }) => [index, all[index]]),
    );
  });

  it("reads back every frame at the range readExtxyzBatches found, and knows the file's sha256, for a plain file only", async () => {
    for (const file of [fixture, realPath("extxyz/gpumd_nep_PbTe_train.xyz")]) {
      const trace = new ExtxyzReadTrace();
      const all = (await collect(readExtxyzBatches(file, trace))).flat();
      const ranges = all.map((_, index) => ({ index, ...trace.starts.range(index)! }));
      expect((await collect(readExtxyzFrameRanges(file, ranges))).map(({ frame }) => frame)).toEqual(all);
      // Read and parsed a few at a time (a geometry match may ask for a whole pool): the same frames.
      expect((await collect(readExtxyzFrameRanges(file, ranges, 3))).map(({ frame }) => frame)).toEqual(all);
      expect(trace.starts.range(all.length)).toBeUndefined();
      expect(trace.sha256).toBe(await sha256File(file));
    }
    const gz = path.join(dir, "located.extxyz.gz");
    writeFileSync(gz, gzipSync(readFileSync(fixture)));
    const trace = new ExtxyzReadTrace();
    expect((await collect(readExtxyzBatches(gz, trace))).flat()).toEqual(fixtureFrames);
    expect(trace.starts.range(0)).toBeUndefined();
    expect(trace.sha256).toBeUndefined();
  });

  it("summarizes a plain file as the frames read in full would be, with the same trace; gives up on any other", async () => {
    const file = realPath("extxyz/imagdau_xtb_md.xyz");
    const full = new ExtxyzReadTrace();
    const frames = (await collect(readExtxyzBatches(file, full))).flat();
    const trace = new ExtxyzReadTrace();
    const progress: number[] = [];
    expect(await summarizeExtxyz(file, trace, (n) => progress.push(n))).toEqual(new CandidateSummaryBuilder().add(frames).finish());
    expect(progress.at(-1)).toBe(frames.length);
    expect(trace.sha256).toBe(full.sha256);
    for (const index of [0, 100, frames.length - 1]) expect(trace.starts.range(index)).toEqual(full.starts.range(index));
    const crlf = path.join(dir, "crlf.extxyz");
    writeFileSync(crlf, "1\r\nProperties=species:S:1:pos:R:3\r\nH 0 0 0\r\n");
    expect(await summarizeExtxyz(crlf)).toBeUndefined();
    const gz = path.join(dir, "summary.extxyz.gz");
    writeFileSync(gz, gzipSync(readFileSync(file)));
    const gzTrace = new ExtxyzReadTrace();
    expect((await summarizeExtxyz(gz, gzTrace))?.ids).toHaveLength(frames.length);
    expect(gzTrace.sha256).toBeUndefined();
  });

  it("says the file changed when a range no longer holds one frame, naming the line", async () => {
    const file = path.join(dir, "ranges-changed.extxyz");
    const text = readFileSync(realPath("extxyz/gpumd_nep_PbTe_train.xyz"));
    const ranges = rangesOf(text);
    writeFileSync(file, Buffer.concat([Buffer.from("1\n\nH 0 0 0\n"), text]));
    const { error } = await failure(readExtxyzFrameRanges(file, [ranges[1]]));
    expect(error).toBeInstanceOf(InputError);
    expect(String((error as Error).message)).toMatch(/^.*ranges-changed\.extxyz(:\d+: |: frame 1: is no longer where it was: the file changed since it was read)/);
    writeFileSync(file, text.subarray(0, ranges[2].start));
    expect(String(((await failure(readExtxyzFrameRanges(file, [ranges[3]]))).error as Error).message)).toMatch(/frame 3: is no longer where it was/);
    // Two frames in one range and none in the next: as many frames as ranges, but not one in each.
    writeFileSync(file, text);
    const moved = [{ ...ranges[1], end: ranges[2].end }, { ...ranges[2], start: ranges[2].end }];
    expect(String(((await failure(readExtxyzFrameRanges(file, moved))).error as Error).message)).toMatch(/frame 1: is no longer where it was/);
  });

  it("reads ranges in the order given, the same one twice included", async () => {
    const file = realPath("extxyz/gpumd_nep_PbTe_train.xyz");
    const all = await collect(readExtxyz(file));
    const ranges = rangesOf(readFileSync(file));
    const wanted = [7, 0, 7, 3].map((i) => ranges[i]);
    expect((await collect(readExtxyzFrameRanges(file, wanted))).map(({ index, frame }) => [index, frame])).toEqual(
      wanted.map(({ index }) => [index, all[index]]),
    );
  });
});

describe("writeExtxyz", () => {
  it("writes frames that read back identically and returns the count", async () => {
    const file = path.join(dir, "out.extxyz");
    expect(await writeExtxyz(file, fixtureFrames)).toBe(fixtureFrames.length);
    expect(await collect(readExtxyz(file))).toEqual(fixtureFrames);
  });

  it("gzips a .gz path and accepts an async source", async () => {
    const file = path.join(dir, "out.extxyz.gz");
    async function* source(): AsyncGenerator<Frame> {
      yield* fixtureFrames;
    }
    await writeExtxyz(file, source());
    const bytes = readFileSync(file);
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    expect(await collect(readExtxyz(file))).toEqual(fixtureFrames);
  });

  it("appends when asked", async () => {
    const file = path.join(dir, "append.extxyz");
    await writeExtxyz(file, fixtureFrames.slice(0, 2));
    await writeExtxyz(file, fixtureFrames.slice(2), { append: true });
    expect(await collect(readExtxyz(file))).toEqual(fixtureFrames);
  });

  it("writes many frames in batches through ExtxyzFileWriter", async () => {
    const file = path.join(dir, "many.extxyz");
    const writer = await ExtxyzFileWriter.open(file);
    for (let k = 0; k < 3000; k++) await writer.write(fixtureFrames[0]);
    await writer.close();
    expect(writer.frames).toBe(3000);
    const back = await collect(readExtxyz(file));
    expect(back).toHaveLength(3000);
    expect(back[2999]).toEqual(fixtureFrames[0]);
    await expect(writer.write(fixtureFrames[0])).rejects.toThrow(`extxyz writer for ${file} is closed`);
  });

  it("fails when the file cannot be created", async () => {
    await expect(writeExtxyz(path.join(dir, "no-such-dir", "x.extxyz"), fixtureFrames)).rejects.toThrow(/ENOENT/);
  });
});
