/** Text built as UTF-8 bytes in one growing buffer: cheaper than building and joining many small strings. */

const encoder = new TextEncoder();
/** "00" .. "99" as pairs of ASCII digits. */
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 48 + (i % 2 === 0 ? Math.floor(i / 20) : (i >> 1) % 10));

export class ByteWriter {
  bytes: Uint8Array;
  length = 0;

  constructor(private readonly initialSize = 1 << 16) {
    this.bytes = new Uint8Array(initialSize);
  }

  /** Empties the writer, keeping its buffer. */
  reset(): void {
    this.length = 0;
  }

  /** Room for `extra` more bytes. */
  reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(2 * this.bytes.length, this.length + extra));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  byte(b: number): void {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }

  /** A string: ASCII copied byte by byte, anything else encoded as UTF-8. */
  text(s: string): void {
    this.reserve(3 * s.length);
    const bytes = this.bytes;
    let at = this.length;
    for (let i = 0; i < s.length; i++) {
      const code = s.charCodeAt(i);
      if (code > 127) {
        at = this.length + encoder.encodeInto(s, bytes.subarray(this.length)).written;
        break;
      }
      bytes[at++] = code;
    }
    this.length = at;
  }

  /** Bytes as they are. */
  append(chunk: Uint8Array): void {
    this.reserve(chunk.length);
    this.bytes.set(chunk, this.length);
    this.length += chunk.length;
  }

  /**
   * Bytes [start, end) of `source`, copied one by one: for many short runs of one buffer (ranking.csv's leading
   * fields), a view per run to append cost more than the copy, and left garbage to collect.
   */
  appendRange(source: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    const bytes = this.bytes;
    let at = this.length;
    for (let b = start; b < end; b++) bytes[at++] = source[b];
    this.length = at;
  }

  /** A number as String() spells it, integers below 2^31 in magnitude digit by digit (-0 as 0). */
  number(v: number): void {
    if (!(Math.abs(v) < 2 ** 31) || v !== Math.floor(v)) {
      this.text(String(v));
      return;
    }
    this.reserve(11);
    this.length = writeInteger(this.bytes, this.length, v);
  }

  /** The bytes written so far, as a view that the next write may change. */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** The bytes written so far, handed over: the writer starts again empty, in a new buffer. */
  take(): Uint8Array {
    const out = this.bytes.subarray(0, this.length);
    this.bytes = new Uint8Array(Math.max(this.initialSize, this.length));
    this.length = 0;
    return out;
  }
}

/**
 * Writes the integer v (|v| < 2^31; -0 as 0) as decimal digits into `bytes` from `at`, which has room for 11
 * bytes; returns the position after them.
 */
export function writeInteger(bytes: Uint8Array, at: number, v: number): number {
  if (v < 0) {
    bytes[at++] = 45;
    v = -v;
  }
  let u = v | 0;
  // The digit count by comparisons (a loop multiplying a limit by 10 took a third of the time here).
  const digits = u < 1e4 ? (u < 100 ? (u < 10 ? 1 : 2) : u < 1000 ? 3 : 4)
    : u < 1e8 ? (u < 1e6 ? (u < 1e5 ? 5 : 6) : u < 1e7 ? 7 : 8)
    : u < 1e9 ? 9 : 10;
  const end = at + digits;
  let p = end;
  // Two digits per division.
  for (; u >= 100; ) {
    const q = (u / 100) | 0;
    const pair = 2 * (u - 100 * q);
    bytes[--p] = DIGIT_PAIRS[pair + 1];
    bytes[--p] = DIGIT_PAIRS[pair];
    u = q;
  }
  if (u >= 10) {
    bytes[--p] = DIGIT_PAIRS[2 * u + 1];
    bytes[--p] = DIGIT_PAIRS[2 * u];
  } else bytes[--p] = 48 + u;
  return end;
}
