/** Streams a LAMMPS text dump (plain or gzip) from disk through the pure parser in src/core/formats/lammps-dump.ts. */
import { isLammpsDump } from "../core/formats/format-heads.js";
import { LammpsDumpParser } from "../core/formats/lammps-dump.js";
import type { Frame } from "../core/structure.js";
import { readTextFrames } from "./text-frames.js";

/** The snapshots of a dump in batches as they are read; returns a note saying where the file was cut, if it was. */
export function readLammpsDump(path: string, typeMap: readonly string[] | null): AsyncGenerator<Frame[], string[], void> {
  return readTextFrames(path, new LammpsDumpParser(path, typeMap), "a LAMMPS text dump", isLammpsDump);
}
