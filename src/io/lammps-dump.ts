/** Streams a LAMMPS text dump (plain or gzip) from disk through the pure parser in src/core/formats/lammps-dump.ts. */
import { isLammpsDump, LammpsDumpParser } from "../core/formats/lammps-dump.js";
import type { Frame } from "../core/structure.js";
import { fileError, openInput } from "./open.js";

const EXPECTED = "a LAMMPS text dump";

/** The snapshots of a dump in batches as they are read; returns a note saying where the file was cut, if it was. */
export async function* readLammpsDump(path: string, typeMap: readonly string[] | null): AsyncGenerator<Frame[], string[], void> {
  const parser = new LammpsDumpParser(path, typeMap);
  const { stream } = await openInput(path, EXPECTED, isLammpsDump);
  // A dump is ASCII; latin1 maps every byte to one character, so chunk borders never split a character.
  stream.setEncoding("latin1");
  try {
    for await (const chunk of stream) {
      const frames = parser.push(chunk as string);
      if (frames.length > 0) yield frames;
    }
  } catch (err) {
    throw fileError(path, err, EXPECTED);
  } finally {
    stream.destroy();
  }
  const { frames, truncated } = parser.end();
  if (frames.length > 0) yield frames;
  return truncated === null ? [] : [`trajectory cut short: ${truncated}`];
}
