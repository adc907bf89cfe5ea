/**
 * Worker thread of extxyz-scan.ts: parses one segment of an extxyz file (whole frames) and returns, per
 * frame, what ranking keeps of it or its descriptor row, not the frames.
 */
import { parentPort } from "node:worker_threads";
import { InputError } from "../core/errors.js";
import { ExtxyzParser } from "../core/formats/extxyz.js";
import { CandidateSummaryBuilder } from "../core/select/candidate-id.js";
import { computeDescriptors, type DescriptorOptions } from "../core/select/descriptors.js";
import type { Frame } from "../core/structure.js";
import { PARSE_PIECE } from "./extxyz.js";
import type { ScanReply, ScanRequest } from "./extxyz-scan.js";

/** A frame the descriptors refused: its index in the segment. */
class FrameRefused extends Error {
  constructor(readonly frame: number, readonly refusal: InputError) {
    super(refusal.message);
  }
}

/** Feeds the segment to `use` in pieces, so that each piece's frames are dropped while young. */
function parseSegment(request: ScanRequest, use: (frames: Frame[]) => void): void {
  const parser = new ExtxyzParser(request.file, request.firstLine);
  for (let at = 0; at < request.bytes.length; at += PARSE_PIECE) {
    use(parser.push(request.bytes.subarray(at, at + PARSE_PIECE)).map((item) => item.frame));
  }
  use(parser.end().map((item) => item.frame));
}

function describeSegment(request: ScanRequest, options: DescriptorOptions & { origin: string }): ScanReply {
  const parts: Float32Array[] = [];
  let rows = 0;
  let cols = 0;
  parseSegment(request, (frames) => {
    if (frames.length === 0) return;
    try {
      const part = computeDescriptors(frames, options, frames.map((_, k) => ({ file: options.origin, where: rows + k })));
      parts.push(part.data);
      cols = part.cols;
    } catch (error) {
      if (error instanceof InputError && typeof error.where === "number") throw new FrameRefused(error.where, error);
      throw error;
    }
    rows += frames.length;
  });
  const data = new Float32Array(rows * cols);
  for (let p = 0, at = 0; p < parts.length; at += parts[p++].length) data.set(parts[p], at);
  return { descriptors: { rows, cols, data } };
}

parentPort?.on("message", (request: ScanRequest) => {
  let reply: ScanReply;
  try {
    if (request.task.kind === "descriptors") reply = describeSegment(request, request.task.options);
    else {
      const summary = new CandidateSummaryBuilder();
      parseSegment(request, (frames) => summary.add(frames));
      reply = { summary: summary.finish() };
    }
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
  parentPort?.postMessage(reply, "descriptors" in reply ? [reply.descriptors.data.buffer as ArrayBuffer] : []);
});
