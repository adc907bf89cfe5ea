/**
 * Streaming extxyz file reading and writing over the pure parser/writer in core/formats/extxyz.ts.
 * Gzip is recognised by its magic bytes on read and by a `.gz` name on write.
 */
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { ExtxyzEncoder, ExtxyzParser, type ExtxyzFrameAt } from "../core/formats/extxyz.js";
import type { Frame } from "../core/structure.js";
import { CHUNK_BYTES as CHUNK, fileError, openInput } from "./open.js";

const EXPECTED = "an extxyz file";

/**
 * Frames of an extxyz file (plain or gzip), one at a time, each with the 1-based line of its atom-count line.
 * Memory stays bounded by the largest frame plus one 1 MiB chunk. Throws InputError (`FILE:LINE: ...`) at the first
 * bad frame, after yielding every frame before it.
 */
export function readExtxyzWithLines(path: string): AsyncGenerator<ExtxyzFrameAt, void, void> {
  return parseFile(path, (item) => item);
}

/** Frames of an extxyz file; see readExtxyzWithLines for the line numbers. */
export function readExtxyz(path: string): AsyncGenerator<Frame, void, void> {
  return parseFile(path, (item) => item.frame);
}

// One generator for both readers: a second one wrapped around the first would cost a promise per frame.
async function* parseFile<T>(path: string, pick: (item: ExtxyzFrameAt) => T): AsyncGenerator<T, void, void> {
  const { stream } = await openInput(path, EXPECTED);
  const parser = new ExtxyzParser(path);
  try {
    for await (const chunk of stream) {
      for (const item of parser.push(chunk as Buffer)) yield pick(item);
    }
    for (const item of parser.end()) yield pick(item);
  } catch (err) {
    throw fileError(path, err, EXPECTED);
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
