/**
 * Worker thread of extxyz-scan.ts: parses one segment of an extxyz file (whole frames) and returns, per
 * frame, what ranking keeps of it, its descriptor row or both, not the frames.
 */
import { parentPort } from "node:worker_threads";
import { InputError } from "../core/errors.js";
import { ExtxyzParser, type ExtxyzFrameAt } from "../core/formats/extxyz.js";
import { extxyzNonFiniteGeometryError } from "../core/formats/finite-geometry.js";
import { ExtxyzSummaryScanner } from "../core/formats/extxyz-summary.js";
import { CandidateSummaryBuilder, type CandidateSummaries } from "../core/select/candidate-id.js";
import { computeDescriptors, descriptorColumns, descriptorSpecies, type DescriptorOptions, type LocalDescriptorOptions, type SpeciesRows } from "../core/select/descriptors.js";
import type { FeatureMatrix } from "../core/select/feature-matrix.js";
import type { Frame } from "../core/structure.js";
import { nativeExtxyzFrames } from "../exec/native-kernels.js";
import { PARSE_PIECE } from "./extxyz.js";
import type { ScanReply, ScanRequest } from "./extxyz-scan.js";

/** A frame the descriptors refused: its index in the segment. */
class FrameRefused extends Error {
  constructor(readonly frame: number, readonly refusal: InputError) {
    super(refusal.message);
  }
}

/**
 * Feeds the segment to `use` in pieces, so that each piece's frames are dropped while young. A frame whose geometry
 * is not finite is an InputError at its line, as on the one-thread path (pool.ts).
 */
function parseSegment(request: ScanRequest, use: (frames: Frame[]) => void): void {
  const parser = new ExtxyzParser(request.file, request.firstLine);
  const framesOf = (items: ExtxyzFrameAt[]): Frame[] =>
    items.map(({ frame, line }) => {
      const error = extxyzNonFiniteGeometryError(request.file, frame, line);
      if (error) throw error;
      return frame;
    });
  for (let at = 0; at < request.bytes.length; at += PARSE_PIECE) {
    use(framesOf(parser.push(request.bytes.subarray(at, at + PARSE_PIECE))));
  }
  use(framesOf(parser.end()));
}

/** Summaries of a segment's frames: plain ones read straight from the bytes, any other through the full parser. */
function summarizeSegment(request: ScanRequest, projections: boolean): CandidateSummaries {
  const scanner = new ExtxyzSummaryScanner(undefined, false, { projections, native: nativeExtxyzFrames() });
  if (scanner.push(request.bytes) && scanner.end()) return scanner.summaries();
  const summary = new CandidateSummaryBuilder(projections);
  parseSegment(request, (frames) => summary.add(frames));
  return summary.finish();
}

/** Descriptor rows of frames, in order; a refused frame is thrown as FrameRefused (its index among them). */
class SegmentDescriber {
  private rows = 0;

  constructor(private readonly options: DescriptorOptions & { origin: string }) {}

  describe(frames: Frame[], species: readonly string[] = this.options.species): FeatureMatrix {
    try {
      return computeDescriptors(frames, { ...this.options, species }, frames.map((_, k) => ({ file: this.options.origin, where: this.rows + k })));
    } catch (error) {
      if (error instanceof InputError && typeof error.where === "number") throw new FrameRefused(error.where, error);
      throw error;
    } finally {
      this.rows += frames.length;
    }
  }
}

function concatRows(parts: FeatureMatrix[], cols: number): FeatureMatrix {
  const rows = parts.reduce((n, part) => n + part.rows, 0);
  const data = new Float32Array(rows * cols);
  for (let p = 0, at = 0; p < parts.length; at += parts[p++].data.length) data.set(parts[p].data, at);
  return { rows, cols, data };
}

function describeSegment(request: ScanRequest, options: DescriptorOptions & { origin: string }): ScanReply {
  const describer = new SegmentDescriber(options);
  const parts: FeatureMatrix[] = [];
  parseSegment(request, (frames) => {
    if (frames.length) parts.push(describer.describe(frames));
  });
  return { descriptors: concatRows(parts, descriptorColumns(options).length) };
}

/**
 * Summaries and descriptor rows in one parse. The rows use the species of their own frames (the file's
 * are not known yet): consecutive frames with the same species share one block.
 */
function summariseAndDescribe(request: ScanRequest, options: LocalDescriptorOptions & { origin: string }, projections: boolean): ScanReply {
  const summary = new CandidateSummaryBuilder(projections);
  const describer = new SegmentDescriber({ ...options, species: [] });
  const blocks: SpeciesRows[] = [];
  let open: { species: string[]; parts: FeatureMatrix[] } | undefined;
  const close = (): void => {
    if (open) blocks.push({ species: open.species, ...concatRows(open.parts, open.parts[0].cols) });
  };
  parseSegment(request, (frames) => {
    if (frames.length === 0) return;
    summary.add(frames);
    const species = descriptorSpecies(frames);
    if (!open || open.species.join(",") !== species.join(",")) {
      close();
      open = { species, parts: [] };
    }
    open.parts.push(describer.describe(frames, species));
  });
  close();
  return { summary: summary.finish(), described: blocks };
}

parentPort?.on("message", (request: ScanRequest) => {
  let reply: ScanReply;
  try {
    if (request.task.kind === "descriptors") reply = describeSegment(request, request.task.options);
    else if (request.task.describe) reply = summariseAndDescribe(request, request.task.describe, request.task.projections);
    else reply = { summary: summarizeSegment(request, request.task.projections) };
  } catch (error) {
    if (error instanceof FrameRefused) {
      reply = { inputError: { file: error.refusal.file, where: undefined, detail: error.refusal.detail, frame: error.frame } };
    } else {
      reply =
        error instanceof InputError
          ? { inputError: { file: error.file, where: error.where, detail: error.detail } }
          : { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
  }
  const transfer = "descriptors" in reply ? [reply.descriptors] : "described" in reply ? (reply.described ?? []) : [];
  parentPort?.postMessage(reply, transfer.map((m) => m.data.buffer as ArrayBuffer));
});
