/**
 * Worker thread of extxyz-scan.ts: parses one segment of an extxyz file (whole frames) and returns what
 * ranking needs of each frame, not the frames.
 */
import { parentPort } from "node:worker_threads";
import { InputError } from "../core/errors.js";
import { ExtxyzParser } from "../core/formats/extxyz.js";
import { CandidateSummaryBuilder } from "../core/select/candidate-id.js";
import { PARSE_PIECE } from "./extxyz.js";
import type { ScanReply, ScanRequest } from "./extxyz-scan.js";

parentPort?.on("message", (request: ScanRequest) => {
  let reply: ScanReply;
  try {
    const parser = new ExtxyzParser(request.file, request.firstLine);
    const summary = new CandidateSummaryBuilder();
    // In pieces, summarised at once (see PARSE_PIECE).
    for (let at = 0; at < request.bytes.length; at += PARSE_PIECE) {
      summary.add(parser.push(request.bytes.subarray(at, at + PARSE_PIECE)).map((item) => item.frame));
    }
    summary.add(parser.end().map((item) => item.frame));
    reply = { summary: summary.finish() };
  } catch (error) {
    reply =
      error instanceof InputError
        ? { inputError: { file: error.file, where: error.where, detail: error.detail } }
        : { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
  parentPort?.postMessage(reply);
});
