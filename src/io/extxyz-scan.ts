/**
 * Large extxyz files read on worker threads: this thread cuts the byte stream into runs of whole frames
 * (extxyz-segments.ts) while the workers parse them and return, per frame, what ranking keeps of it
 * (candidate id, atom count, formula, species), its descriptor row or both, so both cores work on one file.
 * Results come back in file order, and a bad frame is reported as the one-thread reader reports it
 * (same file and line).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { InputError, StructureError } from "../core/errors.js";
import { ExtxyzSegmenter, type ExtxyzSegment } from "../core/formats/extxyz-segments.js";
import type { CandidateSummaries } from "../core/select/candidate-id.js";
import type { DescriptorOptions, LocalDescriptorOptions, SpeciesRows } from "../core/select/descriptors.js";
import type { FeatureMatrix } from "../core/select/feature-matrix.js";
import { compiledWorkerScript } from "../exec/worker-script.js";
import { EXTXYZ_EXPECTED, type ExtxyzReadTrace } from "./extxyz.js";
import { fileError, openInput } from "./open.js";

/** What a worker makes of each frame of a segment: with `describe`, summaries and descriptors in one parse. */
export type ScanTask =
  /** `projections`: also each structure's near-match projections (CandidateSummaries.projections). */
  | { kind: "summaries"; projections: boolean; describe?: LocalDescriptorOptions & { origin: string } }
  | { kind: "descriptors"; options: DescriptorOptions & { origin: string } };

export interface ScanRequest {
  file: string;
  firstLine: number;
  bytes: Uint8Array;
  task: ScanTask;
}

export type ScanReply =
  | { summary: CandidateSummaries; described?: SpeciesRows[] }
  /** Descriptor rows of the segment's frames (column names left out). */
  | { descriptors: FeatureMatrix }
  /** `frame`: the segment's frame (0-based) whose descriptors failed; file and line otherwise. */
  | { inputError: { file: string; where: string | number | undefined; detail: string; frame?: number } }
  | { error: string };

/** Below this size a file is read on the calling thread: starting workers would cost more than they save. */
export const PARALLEL_SCAN_MIN_BYTES = 8 << 20;
const SEGMENT_BYTES = 2 << 20;

class ScanWorker {
  private readonly waiting: { resolve: (reply: ScanReply) => void; reject: (error: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor(readonly worker: Worker) {
    worker.on("message", (reply: ScanReply) => this.waiting.shift()?.resolve(reply));
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => this.fail(new Error(`an extxyz scan worker exited (code ${code})`)));
  }

  run(segment: ExtxyzSegment, file: string, task: ScanTask): Promise<ScanReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      const request: ScanRequest = { file, firstLine: segment.firstLine, bytes: segment.bytes, task };
      this.worker.postMessage(request, [segment.bytes.buffer as ArrayBuffer]);
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

type ScanResult = Exclude<ScanReply, { inputError: unknown } | { error: string }>;

/** A reply's result, or its failure thrown; `whereFrame` names a segment's frame for a descriptor problem. */
function resultOf(reply: ScanReply, whereFrame?: (frame: number) => string): ScanResult {
  if ("inputError" in reply) {
    const { file, where, detail, frame } = reply.inputError;
    if (frame !== undefined && whereFrame) throw new StructureError(file, whereFrame(frame), detail);
    throw new InputError(file, where, detail);
  }
  if ("error" in reply) throw new Error(`extxyz scan worker failed: ${reply.error}`);
  return reply;
}

/** Where `describe` names a frame it cannot describe: `frame <its index in the file>`, as the one-thread path does. */
function framesOfFile(): { where: (frame: number) => string; advance: (rows: number) => void } {
  let row = 0;
  return { where: (frame) => `frame ${row + frame}`, advance: (rows) => (row += rows) };
}

export class ExtxyzScanner {
  private constructor(private readonly workers: ScanWorker[]) {}

  /** Undefined when this machine has one core or the worker script is missing (then read on this thread). */
  static open(threads: number = Math.min(2, availableParallelism())): ExtxyzScanner | undefined {
    const script = compiledWorkerScript(import.meta.url, "io", "extxyz-scan-worker");
    if (script === undefined || threads < 2) return undefined;
    return new ExtxyzScanner(Array.from({ length: threads }, () => new ScanWorker(new Worker(script))));
  }

  /**
   * The file's frames summarised in batches, in file order (plain or gzip). `trace` learns where the
   * frames of a plain file are, and its sha256 (this thread hashes the bytes while the workers parse).
   */
  async *scan(path: string, trace?: ExtxyzReadTrace, projections = true): AsyncGenerator<CandidateSummaries, void, void> {
    for await (const result of this.run(path, { kind: "summaries", projections }, trace)) yield (result as { summary: CandidateSummaries }).summary;
  }

  /**
   * scan and describe in one read: each batch's summaries and the descriptor rows of its frames, in blocks
   * that use the species of their own frames (placeDescriptorRows puts them into the file's columns).
   */
  async *scanAndDescribe(
    path: string, options: LocalDescriptorOptions, origin: string, trace?: ExtxyzReadTrace, projections = true,
  ): AsyncGenerator<{ summary: CandidateSummaries; described: SpeciesRows[] }, void, void> {
    const rows = framesOfFile();
    for await (const result of this.run(path, { kind: "summaries", projections, describe: { ...options, origin } }, trace, rows.where)) {
      const { summary, described } = result as { summary: CandidateSummaries; described: SpeciesRows[] };
      yield { summary, described };
      rows.advance(summary.ids.length);
    }
  }

  /**
   * Descriptor rows of the file's frames (computeDescriptors with `options`), in batches in file order. A frame
   * that cannot be described is a StructureError at `origin`, `frame <its index in the file>`.
   */
  async *describe(path: string, options: DescriptorOptions, origin: string): AsyncGenerator<FeatureMatrix, void, void> {
    const rows = framesOfFile();
    for await (const result of this.run(path, { kind: "descriptors", options: { ...options, origin } }, undefined, rows.where)) {
      const { descriptors } = result as { descriptors: FeatureMatrix };
      yield descriptors;
      rows.advance(descriptors.rows);
    }
  }

  private async *run(
    path: string, task: ScanTask, trace?: ExtxyzReadTrace, whereFrame?: (frame: number) => string,
  ): AsyncGenerator<ScanResult, void, void> {
    const { stream, compressed } = await openInput(path, EXTXYZ_EXPECTED);
    // The chunks and byte offsets are the file's own only when it is not compressed.
    const traced = compressed ? undefined : trace;
    const segmenter = new ExtxyzSegmenter(SEGMENT_BYTES, traced?.starts);
    const inflight: Promise<ScanReply>[] = [];
    let next = 0;
    const submit = (segment: ExtxyzSegment): void => {
      const reply = this.workers[next++ % this.workers.length].run(segment, path, task);
      reply.catch(() => undefined); // awaited in order below; this only keeps a later failure from going unhandled
      inflight.push(reply);
    };
    try {
      for await (const chunk of stream) {
        for (const segment of segmenter.push(chunk as Buffer)) submit(segment);
        traced?.update(chunk as Buffer);
        // Two segments per worker in flight: the workers never wait, and memory stays bounded.
        while (inflight.length >= 2 * this.workers.length) yield resultOf(await inflight.shift()!, whereFrame);
      }
      for (const segment of segmenter.end()) submit(segment);
      while (inflight.length > 0) yield resultOf(await inflight.shift()!, whereFrame);
      traced?.finish();
    } catch (err) {
      throw fileError(path, err, EXTXYZ_EXPECTED);
    } finally {
      stream.destroy();
      await Promise.allSettled(inflight);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
