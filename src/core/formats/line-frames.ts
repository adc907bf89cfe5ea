/**
 * The shared part of the incremental text parsers that read a trajectory line by line (XDATCAR, LAMMPS dumps):
 * text arrives in pieces of any size, complete lines go to the parser (CRLF tolerated), frames come out in batches.
 */
import type { Frame } from "../structure.js";

export abstract class LineFrameParser {
  private pending = "";
  /** 1-based number of the line being read. */
  protected lineNo = 0;
  /** Frames completed since the last push or end. */
  protected ready: Frame[] = [];

  /** Feeds the next piece of text; returns the frames it completed. */
  push(chunk: string): Frame[] {
    const text = this.pending + chunk;
    let start = 0;
    for (let nl = text.indexOf("\n", start); nl >= 0; nl = text.indexOf("\n", start)) {
      this.lineNo++;
      this.line(text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
      start = nl + 1;
    }
    this.pending = text.slice(start);
    return this.take();
  }

  /** The last frames, and where the file was cut when it ends inside one (null when it does not). */
  abstract end(): { frames: Frame[]; truncated: string | null };

  /** Reads the last line when the text does not end with a newline (for end()). */
  protected flush(): void {
    if (this.pending !== "") {
      this.lineNo++;
      this.line(this.pending);
    }
    this.pending = "";
  }

  protected take(): Frame[] {
    const out = this.ready;
    this.ready = [];
    return out;
  }

  /** One line, without its line ending; `lineNo` is its number. */
  protected abstract line(text: string): void;
}
