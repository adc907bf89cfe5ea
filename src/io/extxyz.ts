/**
 * Streaming extxyz file reading and writing over the pure parser/writer in core/formats/extxyz.ts.
 * Gzip is recognised by its magic bytes on read and by a `.gz` name on write.
 */
import { createHash } from "node:crypto";
import { closeSync, createWriteStream, openSync, readSync } from "node:fs";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { InputError } from "../core/errors.js";
import { ExtxyzEncoder, ExtxyzParser, parseExtxyz, type ExtxyzFrameAt } from "../core/formats/extxyz.js";
import { atomCountAt, FrameStarts, type FrameRange } from "../core/formats/extxyz-segments.js";
import { ExtxyzSummaryScanner, type SummaryReading } from "../core/formats/extxyz-summary.js";
import type { CandidateSummaries } from "../core/select/candidate-id.js";
import type { Frame } from "../core/structure.js";
import { CHUNK_BYTES as CHUNK, fileError, openInput } from "./open.js";

export const EXTXYZ_EXPECTED = "an extxyz file";
export const PARSE_PIECE = 1 << 16;

/**
 * Frames of an extxyz file (plain or gzip), one at a time, each with the 1-based line of its atom-count line.
 * Memory stays bounded by the largest frame plus one 1 MiB chunk. Throws InputError (`FILE:LINE: ...`) at the first
 * bad frame, after yielding every frame before it.
 */
export function readExtxyzWithLines(path: string): AsyncGenerator<ExtxyzFrameAt, void, void> {
  return parseFile(path, (items) => items);
}

/** Frames of an extxyz file; see readExtxyzWithLines for the line numbers. */
export function readExtxyz(path: string): AsyncGenerator<Frame, void, void> {
  return parseFile(path, (items) => items.map((item) => item.frame));
}

/**
 * What one read of a plain (not compressed) extxyz file learns on the way, so that it need not be read again:
 * where each frame starts (to read some frames back directly) and the file's sha256. Both stay unknown for
 * a compressed file, and until the file was read to its end.
 */
export class ExtxyzReadTrace {
  readonly starts = new FrameStarts();
  private readonly hash = createHash("sha256");
  private digest: string | undefined;

  /** The file's bytes, in order. */
  update(bytes: Uint8Array): void {
    this.hash.update(bytes);
  }

  /** The file was read to its end (its frame starts are recorded and ended by the reader). */
  finish(): void {
    this.digest = this.hash.digest("hex");
  }

  get sha256(): string | undefined {
    return this.digest;
  }
}

/**
 * Candidate summaries of an extxyz file in the plain form ExtxyzSummaryScanner reads, without building frames;
 * undefined as soon as the file is anything else (then read it with the full parser, with a fresh trace).
 * `onProgress` hears the number of frames read after each chunk.
 */
export async function summarizeExtxyz(
  path: string, trace?: ExtxyzReadTrace, onProgress?: (frames: number) => void, reading?: SummaryReading,
): Promise<CandidateSummaries | undefined> {
  const { stream, compressed } = await openInput(path, EXTXYZ_EXPECTED);
  // As in parseFile: the offsets and the hash are the file's own only when it is not compressed.
  const traced = compressed ? undefined : trace;
  const scanner = new ExtxyzSummaryScanner(traced && ((offset, line) => traced.starts.add(offset, line)), false, reading);
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      traced?.update(chunk as Buffer);
      if (!scanner.push(chunk as Buffer)) return undefined;
      onProgress?.(scanner.ids.length);
    }
  } catch (err) {
    throw fileError(path, err, EXTXYZ_EXPECTED);
  } finally {
    stream.destroy();
  }
  if (!scanner.end()) return undefined;
  traced?.starts.end(size);
  traced?.finish();
  return scanner.summaries();
}

/**
 * Frames of an extxyz file in batches (those completed by each chunk read): one promise per batch.
 * `trace` learns where the frames of a plain file are, and its sha256.
 */
export function readExtxyzBatches(path: string, trace?: ExtxyzReadTrace): AsyncGenerator<Frame[], void, void> {
  return parseFile(path, (items) => (items.length > 0 ? [items.map((item) => item.frame)] : []), trace);
}

/** readExtxyzBatches with each frame's line (that of its atom count). */
export function readExtxyzBatchesWithLines(path: string, trace?: ExtxyzReadTrace): AsyncGenerator<ExtxyzFrameAt[], void, void> {
  return parseFile(path, (items) => (items.length > 0 ? [items] : []), trace);
}

/**
 * Only the frames at the given 0-based indices of an extxyz file (plain or gzip), in file order, each
 * parsed in full; every other frame is passed over by counting its lines, without parsing. Meant for a
 * file read in full once already (fetching a selection's picks): a count line that is not a number is
 * reported as a file that changed. Files with VEC lines (which follow a frame's atoms) are read in full.
 */
export async function* readExtxyzFramesAt(path: string, wanted: ReadonlySet<number>): AsyncGenerator<{ index: number; frame: Frame }, void, void> {
  let last = -1;
  for (const i of wanted) last = Math.max(last, i);
  if (last < 0) return;
  const { stream } = await openInput(path, EXTXYZ_EXPECTED);
  let index = 0;
  /** Lines of the current frame still to pass (comment and atoms); 0 while reading a count line. */
  let linesLeft = 0;
  let countLine: Buffer[] = [];
  /** The bytes of the current frame, when it is wanted. */
  let frame: Buffer[] | undefined;
  /** A wanted frame read to its last atom: yielded once the next line proves not to be a VEC line. */
  let complete: { index: number; parts: Buffer[] } | undefined;
  let yielded = -1;
  let hasVecLines = false;
  let first = true;
  const parse = (parts: Buffer[]): Frame => parseExtxyz(Buffer.concat(parts), path)[0].frame;
  try {
    reading: for await (const chunk of stream) {
      let b = chunk as Buffer;
      if (first && b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
      first = false;
      let pos = 0;
      while (pos < b.length) {
        if (linesLeft === 0) {
          const newline = b.indexOf(10, pos);
          const end = newline < 0 ? b.length : newline + 1;
          // The common case, a count line within this chunk, is read in place.
          let count = newline >= 0 && countLine.length === 0 ? atomCountAt(b, pos, newline) : -1;
          countLine.push(b.subarray(pos, end));
          pos = end;
          if (newline < 0) break;
          const text = count < 0 ? Buffer.concat(countLine).toString("latin1").trim() : "";
          if (/^VEC\d/i.test(text)) {
            hasVecLines = true;
            break reading;
          }
          if (complete) {
            yield { index: complete.index, frame: parse(complete.parts) };
            yielded = complete.index;
            complete = undefined;
          }
          if (index > last) return;
          if (count < 0) {
            if (!/^\d+$/.test(text)) {
              throw new InputError(path, `frame ${index}`, `expected an atom count, found "${text.slice(0, 40)}": the file changed since it was read`);
            }
            count = Number(text);
          }
          frame = wanted.has(index) ? countLine : undefined;
          countLine = [];
          linesLeft = count + 1;
          continue;
        }
        let p = pos;
        while (linesLeft > 0) {
          const newline = b.indexOf(10, p);
          if (newline < 0) {
            p = b.length;
            break;
          }
          p = newline + 1;
          linesLeft--;
        }
        frame?.push(b.subarray(pos, p));
        pos = p;
        if (linesLeft === 0) {
          if (frame) complete = { index, parts: frame };
          frame = undefined;
          index++;
        }
      }
    }
    if (!hasVecLines) {
      // The last atom line may lack its newline.
      if (linesLeft === 1 && frame) complete = { index: index++, parts: frame };
      if (complete) yield { index: complete.index, frame: parse(complete.parts) };
      else if (index <= last) throw new InputError(path, undefined, `has ${index} frames, expected at least ${last + 1}: the file changed since it was read`);
      return;
    }
  } catch (err) {
    throw fileError(path, err, EXTXYZ_EXPECTED);
  } finally {
    stream.destroy();
  }
  let i = 0;
  for await (const parsed of readExtxyz(path)) {
    if (i > yielded && wanted.has(i)) yield { index: i, frame: parsed };
    if (++i > last) return;
  }
}

/** Frames read and parsed together by readExtxyzFrameRanges (rank's thousand picks are one batch). */
const RANGES_PER_BATCH = 4096;

/** Frame `index` of a plain (not compressed) extxyz file and where it is. */
export interface ExtxyzFrameRange extends FrameRange {
  index: number;
}

/**
 * The frames at known byte ranges of a plain extxyz file (found while reading it before), read
 * directly, in the order given. A range that no longer holds exactly one frame is reported as a file
 * that changed since it was read.
 */
export async function* readExtxyzFrameRanges(
  path: string, ranges: Iterable<ExtxyzFrameRange>, rangesPerBatch = RANGES_PER_BATCH,
): AsyncGenerator<{ index: number; frame: Frame }, void, void> {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw fileError(path, err, EXTXYZ_EXPECTED);
  }
  try {
    // In batches: a geometry match may ask for every frame of a pool, which whole took gigabytes at a million.
    const next = ranges[Symbol.iterator]();
    for (;;) {
      const batch: ExtxyzFrameRange[] = [];
      for (let item = next.next(); !item.done; item = next.next()) {
        if (batch.push(item.value) === rangesPerBatch) break;
      }
      if (batch.length === 0) break;
      // Small reads from a file just read in full: synchronous preads cost microseconds, a promise each far more.
      const pieces = batch.map((range) => {
        const bytes = Buffer.alloc(range.end - range.start);
        return readSync(fd, bytes, 0, bytes.length, range.start) === bytes.length ? bytes : undefined;
      });
      // Parsed as one text, so that frames with the same Properties share their parsing; one by one (with the
      // file's line numbers) only when that does not give each range its own frame.
      const together = pieces.every((bytes) => bytes !== undefined) ? framesOfPieces(path, pieces as Buffer[]) : undefined;
      for (const [k, range] of batch.entries()) {
        let frame = together?.[k];
        if (frame === undefined) {
          const parser = new ExtxyzParser(path, range.line);
          const bytes = pieces[k];
          const items = bytes ? [...parser.push(bytes), ...parser.end()] : [];
          if (items.length !== 1) throw new InputError(path, `frame ${range.index}`, "is no longer where it was: the file changed since it was read");
          frame = items[0].frame;
        }
        yield { index: range.index, frame };
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * framesOfPieces for frames in the plain form with nothing but species and positions, read by the pool read's
 * summary scanner: its code is compiled by then, the frame reader's is not (for rank's 1,000 picks, that reader's
 * first run took about 40 ms and 70 ms more of compiling on V8's threads). Undefined for any other pieces.
 */
function plainFramesOfPieces(pieces: Buffer[]): Frame[] | undefined {
  const scanner = new ExtxyzSummaryScanner(undefined, true);
  for (const [k, piece] of pieces.entries()) {
    if (!scanner.push(piece) || scanner.frames?.length !== k + 1) return undefined;
  }
  return scanner.end() ? (scanner.frames ?? undefined) : undefined;
}

/** The frame of each piece, when the pieces parsed one after another give exactly one frame starting at each; else undefined. */
function framesOfPieces(path: string, pieces: Buffer[]): Frame[] | undefined {
  const plain = plainFramesOfPieces(pieces);
  if (plain) return plain;
  try {
    const parser = new ExtxyzParser(path);
    const items = [...parser.push(Buffer.concat(pieces)), ...parser.end()];
    if (items.length !== pieces.length) return undefined;
    let start = 0;
    for (const [k, item] of items.entries()) {
      if (item.start !== start) return undefined;
      start += pieces[k].length;
    }
    return items.map((item) => item.frame);
  } catch {
    return undefined;
  }
}

// One generator for every reader (frames, frames with lines, batches): a second one wrapped around the first
// would cost a promise per item.
async function* parseFile<T>(path: string, emit: (items: ExtxyzFrameAt[]) => Iterable<T>, trace?: ExtxyzReadTrace): AsyncGenerator<T, void, void> {
  const { stream, compressed } = await openInput(path, EXTXYZ_EXPECTED);
  const parser = new ExtxyzParser(path);
  // The chunks and byte offsets are the file's own only when it is not compressed.
  const traced = compressed ? undefined : trace;
  const locate = (items: ExtxyzFrameAt[]): ExtxyzFrameAt[] => {
    for (const item of items) traced?.starts.add(item.start, item.line);
    return items;
  };
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      traced?.update(chunk as Buffer);
      // Parsed in pieces so that each batch of frames is used and dropped while young: far less
      // garbage-collection work than holding a whole 1 MiB chunk's frames at once.
      for (let at = 0; at < (chunk as Buffer).length; at += PARSE_PIECE) {
        for (const out of emit(locate(parser.push((chunk as Buffer).subarray(at, at + PARSE_PIECE))))) yield out;
      }
    }
    for (const out of emit(locate(parser.end()))) yield out;
    traced?.starts.end(size);
    traced?.finish();
  } catch (err) {
    throw fileError(path, err, EXTXYZ_EXPECTED);
  } finally {
    stream.destroy();
  }
}

export interface ExtxyzWriteOptions {
  /** Append to an existing file instead of replacing it. */
  append?: boolean;
  /** Gzip the output; default: when the path ends in `.gz`. */
  gzip?: boolean;
}

/** Writes frames to a file as they come, in 1 MiB batches, honouring back-pressure. */
export class ExtxyzFileWriter {
  private readonly encoder = new ExtxyzEncoder(CHUNK + (CHUNK >> 2));
  private closed = false;
  /** Frames written so far. */
  frames = 0;

  private constructor(
    readonly path: string,
    private readonly sink: Writable,
    private readonly done: Promise<void>,
  ) {}

  static async open(path: string, options: ExtxyzWriteOptions = {}): Promise<ExtxyzFileWriter> {
    const file = createWriteStream(path, { flags: options.append ? "a" : "w" });
    await once(file, "open");
    const gzip = options.gzip ?? path.toLowerCase().endsWith(".gz");
    if (!gzip) return new ExtxyzFileWriter(path, file, finished(file));
    const zip = createGzip();
    const done = pipeline(zip, file);
    done.catch(() => undefined);
    return new ExtxyzFileWriter(path, zip, done);
  }

  async write(frame: Frame): Promise<void> {
    if (this.closed) throw new Error(`extxyz writer for ${this.path} is closed`);
    this.encoder.frame(frame);
    this.frames++;
    if (this.encoder.length >= CHUNK) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.encoder.length === 0) return;
    if (!this.sink.write(this.encoder.take())) await once(this.sink, "drain");
  }

  /** Flushes and closes the file; resolves once everything is written (or rejects with the write error). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.sink.end();
    await this.done;
  }
}

/** Writes all frames to `path` and returns how many were written. */
export async function writeExtxyz(path: string, frames: Iterable<Frame> | AsyncIterable<Frame>, options: ExtxyzWriteOptions = {}): Promise<number> {
  const writer = await ExtxyzFileWriter.open(path, options);
  try {
    for await (const frame of frames) await writer.write(frame);
  } catch (err) {
    writer.close().catch(() => undefined);
    throw err;
  }
  await writer.close();
  return writer.frames;
}
