/** Streams an XDATCAR (plain or gzip) from disk through the pure parser in src/core/vasp/xdatcar.ts. */
import type { Frame } from "../core/structure.js";
import { XdatcarParser } from "../core/vasp/xdatcar.js";
import { fileError, openInput } from "./open.js";

const EXPECTED = "an XDATCAR file";

/** The steps of an XDATCAR in batches as they are read; returns a note saying where the file was cut, if it was. */
export async function* readXdatcar(path: string): AsyncGenerator<Frame[], string[], void> {
  const parser = new XdatcarParser(path);
  const { stream } = await openInput(path, EXPECTED);
  // XDATCAR is ASCII; latin1 maps every byte to one character, so chunk borders never split a character.
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
