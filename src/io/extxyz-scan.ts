/**
 * What ranking needs of every frame of a large extxyz file (candidate id, atom count, formula, species),
 * read on worker threads: this thread cuts the byte stream into runs of whole frames (extxyz-segments.ts)
 * while the workers parse and hash them, so both cores work on one file. Results come back in file
 * order, and a bad frame is reported as the one-thread reader reports it (same file and line).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { InputError } from "../core/errors.js";
import { ExtxyzSegmenter, type ExtxyzSegment, type FrameStarts } from "../core/formats/extxyz-segments.js";
import type { CandidateSummaries } from "../core/select/candidate-id.js";
import { compiledWorkerScript } from "../exec/worker-script.js";
import { EXTXYZ_EXPECTED } from "./extxyz.js";
import { fileError, openInput } from "./open.js";

export interface ScanRequest {
  file: string;
  firstLine: number;
  bytes: Uint8Array;
}

export type ScanReply =
  | { summary: CandidateSummaries }
  | { inputError: { file: string; where: string | number | undefined; detail: string } }
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

  run(segment: ExtxyzSegment, file: string): Promise<ScanReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      const request: ScanRequest = { file, firstLine: segment.firstLine, bytes: segment.bytes };
      this.worker.postMessage(request, [segment.bytes.buffer as ArrayBuffer]);
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

function summaryOf(reply: ScanReply): CandidateSummaries {
  if ("inputError" in reply) throw new InputError(reply.inputError.file, reply.inputError.where, reply.inputError.detail);
  if ("error" in reply) throw new Error(`extxyz scan worker failed: ${reply.error}`);
  return reply.summary;
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
   * The file's frames summarised in batches, in file order (plain or gzip). For a plain file,
   * `onStarts` then gets where each frame is, to read picks back directly.
   */
  async *scan(path: string, onStarts?: (starts: FrameStarts) => void): AsyncGenerator<CandidateSummaries, void, void> {
    const { stream, gzipped } = await openInput(path, EXTXYZ_EXPECTED);
    const segmenter = new ExtxyzSegmenter(SEGMENT_BYTES);
    const inflight: Promise<ScanReply>[] = [];
    let next = 0;
    const submit = (segment: ExtxyzSegment): void => {
      const reply = this.workers[next++ % this.workers.length].run(segment, path);
      reply.catch(() => undefined); // awaited in order below; this only keeps a later failure from going unhandled
      inflight.push(reply);
    };
    try {
      for await (const chunk of stream) {
        for (const segment of segmenter.push(chunk as Buffer)) submit(segment);
        // Two segments per worker in flight: the workers never wait, and memory stays bounded.
        while (inflight.length >= 2 * this.workers.length) yield summaryOf(await inflight.shift()!);
      }
      for (const segment of segmenter.end()) submit(segment);
      while (inflight.length > 0) yield summaryOf(await inflight.shift()!);
      if (!gzipped) onStarts?.(segmenter.starts);
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
