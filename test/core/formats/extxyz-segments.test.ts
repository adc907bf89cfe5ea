/**
 * Cutting extxyz text into runs of whole frames: each segment, parsed on its own from its first line,
 * must give exactly the frames (and lines, and errors) that parsing the whole text gives.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ExtxyzParser, type ExtxyzFrameAt } from "../../../src/core/formats/extxyz.js";
import { atomCountAt, ExtxyzSegmenter, type ExtxyzSegment } from "../../../src/core/formats/extxyz-segments.js";
import { realPath } from "../../helpers/real-data.js";

function parseAll(bytes: Buffer, firstLine = 1): { frames: ExtxyzFrameAt[]; error: string | undefined } {
  const parser = new ExtxyzParser("x.xyz", firstLine);
  const frames: ExtxyzFrameAt[] = [];
  try {
    frames.push(...parser.push(bytes));
    frames.push(...parser.end());
  } catch (err) {
    return { frames, error: (err as Error).message };
  }
  return { frames, error: undefined };
}

/** Segments of `bytes` fed in chunks of the given sizes (cycled). */
function segmentsOf(bytes: Buffer, targetBytes: number, chunkSizes: number[]): ExtxyzSegment[] {
  const segmenter = new ExtxyzSegmenter(targetBytes);
  const out: ExtxyzSegment[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = chunkSizes[k % chunkSizes.length];
    out.push(...segmenter.push(bytes.subarray(at, at + size)));
    at += size;
  }
  out.push(...segmenter.end());
  return out;
}

/** Parses each segment on its own and checks the frames, lines and first error against the whole text. */
function expectSameAsWhole(bytes: Buffer, segments: ExtxyzSegment[]): void {
  expect(Buffer.concat(segments.map((s) => s.bytes)).equals(bytes)).toBe(true);
  const whole = parseAll(bytes);
  const frames: ExtxyzFrameAt[] = [];
  let error: string | undefined;
  for (const segment of segments) {
    const part = parseAll(segment.bytes, segment.firstLine);
    frames.push(...part.frames);
    if (part.error !== undefined) {
      error = part.error;
      break;
    }
  }
  expect(error).toBe(whole.error);
  expect(frames.map((f) => f.line)).toEqual(whole.frames.map((f) => f.line));
  expect(frames.map(fingerprint)).toEqual(whole.frames.map(fingerprint));
}

/** A frame as one string (typed arrays by their bytes), much faster to compare than the objects. */
function fingerprint({ frame }: ExtxyzFrameAt): string {
  const bytes = (a: ArrayBufferView): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
  const arrays = [...frame.arrays].map(([key, a]) => [key, a.dtype, a.ncols, a.dtype === "S" ? a.data.join(" ") : bytes(a.data)]);
  return JSON.stringify([frame.natoms, frame.symbols.join(" "), bytes(frame.positions), bytes(frame.cell), frame.pbc, [...frame.info], arrays]);
}

const realFiles = readdirSync(realPath("extxyz")).sort();
const realText = Buffer.concat(realFiles.map((f) => readFileSync(path.join(realPath("extxyz"), f))));

describe("atomCountAt", () => {
  it("reads a plain count, with spaces and a CR around it", () => {
    const at = (s: string): number => atomCountAt(Buffer.from(s), 0, s.length);
    expect(at("8")).toBe(8);
    expect(at("  250 \r")).toBe(250);
    expect(at("\t12\t")).toBe(12);
  });

  it("answers -1 for anything else", () => {
    const at = (s: string): number => atomCountAt(Buffer.from(s), 0, s.length);
    for (const s of ["", "  ", "8 atoms", "-3", "+3", "3.0", "VEC1 1 0 0", "Lattice=\"1 0 0\"", "1234567890123"]) expect(at(s)).toBe(-1);
  });
});

describe("ExtxyzSegmenter", () => {
  it("cuts the real extxyz files into segments that parse to the same frames and lines", () => {
    const segments = segmentsOf(realText, 4096, [1 << 20]);
    expect(segments.length).toBeGreaterThan(100);
    expectSameAsWhole(realText, segments);
  });

  it("knows every frame's byte range and first line, whatever the chunk sizes", () => {
    const whole = parseAll(realText);
    for (const sizes of [[1 << 20], [7, 3, 4096]]) {
      const segmenter = new ExtxyzSegmenter(65536);
      for (let at = 0, k = 0; at < realText.length; k++) {
        segmenter.push(realText.subarray(at, at + sizes[k % sizes.length]));
        at += sizes[k % sizes.length];
      }
      segmenter.end();
      expect(segmenter.starts.length).toBe(whole.frames.length);
      whole.frames.forEach((item, i) => {
        const range = segmenter.starts.range(i)!;
        expect(range.line).toBe(item.line);
        const alone = parseAll(realText.subarray(range.start, range.end), range.line);
        expect(alone.frames.map(fingerprint)).toEqual([fingerprint(item)]);
      });
      expect(segmenter.starts.range(whole.frames.length)).toBeUndefined();
    }
  });

  it("cuts at the same places whatever the chunk sizes, also before count lines split across chunks", () => {
    const text = readFileSync(realPath("extxyz/gpumd_nep_PbTe_train.xyz"));
    const reference = segmentsOf(text, 8192, [1 << 20]);
    expect(reference.length).toBeGreaterThan(20);
    expectSameAsWhole(text, reference);
    for (const sizes of [[1], [7, 3, 4096], [8192], [100003]]) {
      const segments = segmentsOf(text, 8192, sizes);
      expect(segments.map((s) => [s.firstLine, s.bytes.length])).toEqual(reference.map((s) => [s.firstLine, s.bytes.length]));
      expect(Buffer.concat(segments.map((s) => s.bytes)).equals(text)).toBe(true);
    }
  });

  it("keeps a byte-order mark and CRLF line ends in the bytes and still cuts", () => {
    const crlf = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(readFileSync(realPath("extxyz/metatrain_carbon_reduced_100.xyz"), "latin1").replace(/\n/g, "\r\n"), "latin1")]);
    const segments = segmentsOf(crlf, 2048, [1 << 20]);
    expect(segments.length).toBeGreaterThan(10);
    expectSameAsWhole(crlf, segments);
  });

  it("stops cutting at the first line that is not a count: VEC lines stay with their frame", () => {
    const frame = (k: number, vec: boolean): string =>
      `2\nenergy=${k} Properties=species:S:1:pos:R:3\nH 0 0 ${k}\nH 0 0.7 ${k}\n${vec ? "VEC1 5 0 0\nVEC2 0 5 0\nVEC3 0 0 5\n" : ""}`;
    const text = Buffer.from(Array.from({ length: 60 }, (_, k) => frame(k, k >= 30)).join(""));
    const segments = segmentsOf(text, 1, [1 << 20]);
    expectSameAsWhole(text, segments);
    // A cut before every frame up to the first VEC line (after frame 30's atoms); the rest is one last segment.
    expect(segments).toHaveLength(31);
    const last = segments[segments.length - 1];
    expect(last.bytes.toString()).toMatch(/^2\nenergy=30 /);
    expect(parseAll(last.bytes, last.firstLine).frames.map((f) => f.frame.cell[0])).toEqual(Array(30).fill(5));
    // Ranges are known up to frame 29; frame 30's VEC lines were where the cutting stopped.
    const segmenter = new ExtxyzSegmenter(1);
    segmenter.push(text);
    segmenter.end();
    expect(segmenter.starts.range(29)).toBeDefined();
    expect(segmenter.starts.range(30)).toBeUndefined();
  });

  it("agrees with the parser's frame starts, which also cover frames with VEC lines", () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const crlf = Buffer.concat([bom, Buffer.from(readFileSync(realPath("extxyz/metatrain_carbon_reduced_100.xyz"), "latin1").replace(/\n/g, "\r\n"), "latin1")]);
    const vec = Buffer.from(Array.from({ length: 40 }, (_, k) => `2\nenergy=${k} Properties=species:S:1:pos:R:3\nH 0 0 ${k}\nH 0 0.7 ${k}\n${k >= 20 ? "VEC1 5 0 0\nVEC2 0 5 0\nVEC3 0 0 5\n" : ""}`).join(""));
    // Frames of about 100 KB: longer than the start of the next chunk that the parser first tries.
    const atoms = (k: number): string => Array.from({ length: 2500 }, (_, a) => `Si ${a}.125 ${k}.5 -${a}.0625`).join("\n");
    const large = Buffer.from(Array.from({ length: 6 }, (_, k) => `2500\nProperties=species:S:1:pos:R:3 step=${k}\n${atoms(k)}\n`).join(""));
    for (const text of [realText, crlf, vec, large]) {
      const whole = parseAll(text);
      for (const sizes of [[1 << 20], [7, 3, 4096], [65541]]) {
        const parser = new ExtxyzParser("x.xyz");
        const items: ExtxyzFrameAt[] = [];
        const segmenter = new ExtxyzSegmenter(1 << 16);
        for (let at = 0, k = 0; at < text.length; k++) {
          const chunk = text.subarray(at, at + sizes[k % sizes.length]);
          items.push(...parser.push(chunk));
          segmenter.push(chunk);
          at += chunk.length;
        }
        items.push(...parser.end());
        segmenter.end();
        expect(items.map((item) => item.line)).toEqual(whole.frames.map((item) => item.line));
        items.forEach((item, i) => {
          const end = i + 1 < items.length ? items[i + 1].start : text.length;
          const alone = parseAll(text.subarray(item.start, end), item.line);
          expect(alone.frames.map(fingerprint)).toEqual([fingerprint(whole.frames[i])]);
          const known = segmenter.starts.range(i);
          if (known) expect(known).toEqual({ start: item.start, end, line: item.line });
        });
      }
    }
  });

  it("gives the whole text's error, at the same line, for a broken frame and for text after a blank line", () => {
    const lines = readFileSync(realPath("extxyz/gpumd_nep_PbTe_train.xyz"), "latin1").split("\n");
    const brokenAtom = [...lines];
    brokenAtom[4000] = brokenAtom[4000].replace(/\S+$/, "x1");
    const missingAtom = lines.filter((_, i) => i !== 5000);
    const blankLine = [...lines.slice(0, 3012), "", ...lines.slice(3012)];
    for (const variant of [brokenAtom, missingAtom, blankLine]) {
      const text = Buffer.from(variant.join("\n"), "latin1");
      const whole = parseAll(text);
      expect(whole.error).toMatch(/^x\.xyz:\d+: /);
      for (const target of [256, 8192]) expectSameAsWhole(text, segmentsOf(text, target, [1 << 20, 777]));
    }
  });

  it("makes no segment of an empty stream, and one of a stream without a complete count line", () => {
    expect(segmentsOf(Buffer.alloc(0), 16, [1])).toEqual([]);
    const partial = segmentsOf(Buffer.from("12"), 1, [1]);
    expect(partial.map((s) => [s.bytes.toString(), s.firstLine])).toEqual([["12", 1]]);
  });
});
