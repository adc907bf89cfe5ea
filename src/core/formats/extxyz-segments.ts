/**
 * Cuts an extxyz byte stream into runs of whole frames, so that several threads can parse one file.
 * Frames are found by counting lines (an atom-count line, then count + 1 more lines), without parsing.
 * A cut is made only before a line that is a plain atom count, so that anything else (VEC lines that
 * belong to the frame before, blank lines, a broken frame) stays with the text before it: from the
 * first line that is not a count, everything up to the end goes into one last segment, where the
 * full parser gives the same frames, or the same error at the same line, as reading the file at once.
 */

export interface ExtxyzSegment {
  bytes: Buffer;
  /** Line number (1-based, in the whole stream) of the segment's first byte. */
  firstLine: number;
}

const NEWLINE = 10;

/** Where a frame is in a plain extxyz file: bytes [start, end), and the line of its count line. */
export interface FrameRange {
  start: number;
  end: number;
  line: number;
}

/**
 * Where the frames of a plain extxyz file start (byte offset and line of each count line, from frame 0),
 * recorded while the file is read, so that some frames can be read again directly. Frame i ends where
 * frame i + 1 starts, and the last one where the bytes end.
 */
export class FrameStarts {
  private readonly offsets: number[] = [];
  private readonly lines: number[] = [];
  /** Frames whose range is known; none until the end of the bytes was seen. */
  private known = 0;
  private size = 0;

  get length(): number {
    return this.offsets.length;
  }

  add(offset: number, line: number): void {
    this.offsets.push(offset);
    this.lines.push(line);
  }

  /**
   * The bytes ended at `size`. With `lastOpen`, the last frame recorded may go on past the point where
   * frames stopped being recorded (VEC lines after its atoms), so its range stays unknown.
   */
  end(size: number, lastOpen = false): void {
    this.size = size;
    this.known = lastOpen ? Math.max(0, this.offsets.length - 1) : this.offsets.length;
  }

  range(i: number): FrameRange | undefined {
    if (i >= this.known) return undefined;
    const end = i + 1 < this.offsets.length ? this.offsets[i + 1] : this.size;
    return { start: this.offsets[i], end, line: this.lines[i] };
  }
}

/** The atom count on a count line b[from, to) (spaces and a CR around it allowed); -1 when it is anything else. */
export function atomCountAt(b: Uint8Array, from: number, to: number): number {
  while (from < to && (b[from] === 32 || b[from] === 9)) from++;
  while (to > from && (b[to - 1] === 32 || b[to - 1] === 9 || b[to - 1] === 13)) to--;
  if (from === to || to - from > 12) return -1;
  let n = 0;
  for (let p = from; p < to; p++) {
    const digit = b[p] - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

export class ExtxyzSegmenter {
  /** Bytes of the open segment from earlier chunks. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Start of a count line that began in an earlier chunk, and its offset in the open segment. */
  private countLine: Buffer[] = [];
  private countLineAt = 0;
  /** Lines of the current frame still to pass (comment and atoms); 0 at a count line. */
  private linesLeft = 0;
  /** Line number of the next line to start. */
  private line = 1;
  private segmentLine = 1;
  private framesInSegment = 0;
  /** A line that is not a plain count was met: no more cuts. */
  private stopped = false;
  private first = true;
  /** Byte offset (in the stream) of the open segment. */
  private segmentStart = 0;
  private bytesSeen = 0;
  /**
   * Where each frame starts; complete once the stream has ended, except for frames after a line that
   * stopped the cutting and the frame just before it (VEC lines that follow a frame's atoms belong to it).
   */
  readonly starts: FrameStarts;

  /** targetBytes: a segment is closed at the first frame start at or after this size; `starts` may be given to fill. */
  constructor(
    private readonly targetBytes: number,
    starts = new FrameStarts(),
  ) {
    this.starts = starts;
  }

  push(chunk: Buffer): ExtxyzSegment[] {
    const out: ExtxyzSegment[] = [];
    let pos = 0;
    if (this.first && chunk.length > 0) {
      this.first = false;
      // A UTF-8 byte-order mark stays in the bytes (the parser drops it) but is not part of the count.
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) pos = 3;
    }
    /** Where the open segment starts in this chunk (0 when it started in an earlier one). */
    let from = 0;
    while (pos < chunk.length && !this.stopped) {
      if (this.linesLeft === 0) {
        const newline = chunk.indexOf(NEWLINE, pos);
        if (newline < 0) {
          if (this.countLine.length === 0) this.countLineAt = this.partBytes + (pos - from);
          this.countLine.push(chunk.subarray(pos));
          break;
        }
        let count: number;
        let lineAt: number;
        if (this.countLine.length === 0) {
          count = atomCountAt(chunk, pos, newline);
          lineAt = this.partBytes + (pos - from);
        } else {
          const line = Buffer.concat([...this.countLine, chunk.subarray(0, newline)]);
          count = atomCountAt(line, 0, line.length);
          lineAt = this.countLineAt;
          this.countLine = [];
        }
        if (count < 0) {
          this.stopped = true;
          break;
        }
        this.starts.add(this.segmentStart + lineAt, this.line);
        if (this.framesInSegment > 0 && lineAt >= this.targetBytes) {
          // Cut before this count line: the segment is the open parts plus this chunk up to the cut.
          this.parts.push(chunk.subarray(from, pos));
          this.partBytes += pos - from;
          from = pos;
          out.push(this.cut(lineAt));
        }
        this.framesInSegment++;
        this.linesLeft = count + 1;
        this.line++;
        pos = newline + 1;
        continue;
      }
      while (this.linesLeft > 0) {
        const newline = chunk.indexOf(NEWLINE, pos);
        if (newline < 0) {
          pos = chunk.length;
          break;
        }
        pos = newline + 1;
        this.linesLeft--;
        this.line++;
      }
    }
    if (from < chunk.length) {
      this.parts.push(chunk.subarray(from));
      this.partBytes += chunk.length - from;
    }
    this.bytesSeen += chunk.length;
    return out;
  }

  /** The last segment (empty input gives none). */
  end(): ExtxyzSegment[] {
    this.starts.end(this.bytesSeen, this.stopped);
    return this.partBytes > 0 ? [this.cut(this.partBytes)] : [];
  }

  /** Closes the segment at byte `at` of the open parts; the bytes after it open the next segment. */
  private cut(at: number): ExtxyzSegment {
    // A fresh buffer of its own, so that it can be moved to another thread.
    const bytes = Buffer.from(new ArrayBuffer(at));
    const rest: Buffer[] = [];
    let filled = 0;
    for (const part of this.parts) {
      const take = Math.min(part.length, at - filled);
      bytes.set(part.subarray(0, take), filled);
      filled += take;
      if (take < part.length) rest.push(part.subarray(take));
    }
    const segment = { bytes, firstLine: this.segmentLine };
    this.parts = rest;
    this.partBytes -= at;
    this.segmentStart += at;
    this.framesInSegment = 0;
    this.segmentLine = this.line;
    return segment;
  }
}
