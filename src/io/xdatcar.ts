/** Streams an XDATCAR (plain or gzip) from disk through the pure parser in src/core/vasp/xdatcar.ts. */
import type { Frame } from "../core/structure.js";
import { XdatcarParser } from "../core/vasp/xdatcar.js";
import { readTextFrames } from "./text-frames.js";

/** The steps of an XDATCAR in batches as they are read; returns a note saying where the file was cut, if it was. */
export function readXdatcar(path: string): AsyncGenerator<Frame[], string[], void> {
  return readTextFrames(path, new XdatcarParser(path), "an XDATCAR file");
}
