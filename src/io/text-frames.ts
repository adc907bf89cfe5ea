/** Streams a text trajectory (plain or gzip) from disk through one of the incremental parsers of src/core. */
import type { LineFrameParser } from "../core/formats/line-frames.js";
import type { Frame } from "../core/structure.js";
import { fileError, openInput } from "./open.js";

/**
 * The frames in batches as they are read; returns a note saying where the file was cut, if it was. `expected`
 * names the format in errors; `ownFormat` claims files that the foreign-format check would otherwise refuse.
 */
export async function* readTextFrames(path: string, parser: LineFrameParser, expected: string, ownFormat?: (head: string) => boolean): AsyncGenerator<Frame[], string[], void> {
  const { stream } = await openInput(path, expected, ownFormat);
  // These formats are ASCII; latin1 maps every byte to one character, so chunk borders never split a character.
  stream.setEncoding("latin1");
  try {
    for await (const chunk of stream) {
      const frames = parser.push(chunk as string);
      if (frames.length > 0) yield frames;
    }
  } catch (err) {
    throw fileError(path, err, expected);
  } finally {
    stream.destroy();
  }
  const { frames, truncated } = parser.end();
  if (frames.length > 0) yield frames;
  return truncated === null ? [] : [`trajectory cut short: ${truncated}`];
}
