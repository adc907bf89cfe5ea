/**
 * Candidate summaries (id, atom count, formula) read straight from extxyz bytes, without building frames: the
 * pool pass of `relabel rank` when nothing else of the frames is needed. It reads the plain form: the atom count
 * alone on its line; a comment line the frame reader takes (read directly when it holds Lattice, pbc, Properties
 * and info keys of plain values, as MD pools have them: energy=-1.5 stress="..."); Properties that start with
 * species:S:1 and pos:R:3; atom lines of space-separated tokens with plain decimals (`-12.345`) for the positions,
 * decimals with or without an exponent for other R columns, `-?digits` for I and T or F for L columns; `\n` line
 * ends. Anything else, an error included, makes it give up, and the caller reads the file with the full parser,
 * which reports errors as usual. What it accepts it reads to the same values as that parser (same comment reading,
 * species check and decimal-to-double rule), so the ids are the same. A native reader (extxyz-native.c), when given,
 * reads the frames it can, which are a narrower form read to the same ids, and this reader takes the rest.
 */
import { CandidateNamer, type CandidateSummaries } from "../select/candidate-id.js";
import type { Frame } from "../structure.js";
import { columnsAfterPositions, commentHeader, POW10, readSpecies } from "./extxyz.js";

const NL = 10;
const SPACE = 32;
const QUOTE = 34;
const MINUS = 45;
const DOT = 46;
/** Atom counts beyond this are left to the full parser (it checks the lines exist before allocating). */
const MAX_ATOMS = 1 << 20;
const LATTICE = bytesOf("Lattice");
const PBC = bytesOf("pbc");
const PROPERTIES = bytesOf("Properties");
const DEFAULT_PROPERTIES = "species:S:1:pos:R:3";

function bytesOf(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** b[start .. end) as text, a character per byte. */
function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString("latin1");
}

/** Whether b[start .. end) holds exactly `word`. */
function spells(b: Uint8Array, start: number, end: number, word: Uint8Array): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[start + k] !== word[k]) return false;
  return true;
}

/** Bytes of info keys skipped on a comment line: letters, digits and `_`. */
const KEY_BYTE = new Uint8Array(256);
/** Bytes of their values: letters, digits, `.`, `+` and `-` (no brackets, commas, escapes, `_` or quotes). */
const VALUE_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const alphanumeric = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  KEY_BYTE[c] = alphanumeric || c === 95 ? 1 : 0;
  VALUE_BYTE[c] = alphanumeric || c === DOT || c === 43 || c === MINUS ? 1 : 0;
}
const UID = bytesOf("uid");
const STRESS = bytesOf("stress");
const VIRIAL = bytesOf("virial");

/**
 * The end of the value at b[p] of an info key b[key .. keyEnd) other than Lattice, pbc and Properties, when the frame
 * reader surely reads that value without error (it is kept in info there and changes nothing here); -1 otherwise.
 * That is a bare token or a quoted list of tokens, of VALUE_BYTE bytes; for stress and virial, a quoted list of 6 or 9
 * plain numbers (other shapes are errors there). Keys are of KEY_BYTE bytes, other than uid (which ASE leaves untyped).
 */
function infoValueEnd(b: Uint8Array, key: number, keyEnd: number, p: number): number {
  for (let k = key; k < keyEnd; k++) if (KEY_BYTE[b[k]] === 0) return -1;
  if (spells(b, key, keyEnd, LATTICE) || spells(b, key, keyEnd, PBC) || spells(b, key, keyEnd, PROPERTIES)) return -1;
  if (keyEnd - key === 3 && (b[key] | 32) === UID[0] && (b[key + 1] | 32) === UID[1] && (b[key + 2] | 32) === UID[2]) return -1;
  const stress = keyEnd - key === 6 && (spells(b, key, keyEnd, STRESS) || spells(b, key, keyEnd, VIRIAL));
  if (b[p] !== QUOTE) {
    const start = p;
    while (VALUE_BYTE[b[p]] === 1) p++;
    return p > start && !stress ? p : -1;
  }
  p++;
  let tokens = 0;
  for (;;) {
    while (b[p] === SPACE) p++;
    if (b[p] === QUOTE) break;
    const start = p;
    if (stress) {
      p = plainNumberEnd(b, p);
      if (p < 0) return -1;
    } else while (VALUE_BYTE[b[p]] === 1) p++;
    if (p === start || (b[p] !== SPACE && b[p] !== QUOTE)) return -1;
    tokens++;
  }
  return tokens > 0 && (!stress || tokens === 6 || tokens === 9) ? p + 1 : -1;
}

/** The end of `-?digits(.digits)?` with at most 15 digits before any point, then maybe an exponent; -1 if not that. */
function plainNumberEnd(b: Uint8Array, p: number): number {
  if (b[p] === MINUS) p++;
  const first = p;
  while ((b[p] - 48) >>> 0 <= 9) p++;
  if (p === first || p - first > 15) return -1;
  if (b[p] === DOT) {
    const fraction = ++p;
    while ((b[p] - 48) >>> 0 <= 9) p++;
    if (p === fraction) return -1;
  }
  if (b[p] === 101 || b[p] === 69) {
    p++;
    if (b[p] === 43 || b[p] === MINUS) p++;
    const digits = p;
    while ((b[p] - 48) >>> 0 <= 9) p++;
    if (p === digits) return -1;
  }
  return p;
}

/** Whether b[start .. end) holds exactly the characters of `text`. */
function spellsText(b: Uint8Array, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let k = 0; k < text.length; k++) if (b[start + k] !== text.charCodeAt(k)) return false;
  return true;
}

/**
 * The native frame reader (extxyz-native.c, bound to the element symbols): reads frames from bytes[from] on, up to the
 * last newline before `end`, while they are in its form and fit: frame f's id is ids[20f .. 20f + 20), its offset
 * starts[f], and species[2f], species[2f + 1] bound its species text in speciesText (-1, -1: the last frame's).
 * starts[count] is where it stopped. Returns the frame count.
 */
export type NativeFrameScan = (
  bytes: Uint8Array, from: number, end: number, spec: Uint8Array, kinds: Uint8Array, ids: Uint8Array, natoms: Int32Array,
  starts: Uint32Array, species: Int32Array, speciesText: Uint8Array,
) => number;

/** How a summary scanner reads. */
export interface SummaryReading {
  /** Whether to compute each structure's projections (only finding labelled structures by geometry needs them). */
  projections: boolean;
  /** The native frame reader, used while projections are not asked for and no frames kept. */
  native?: NativeFrameScan;
}

/** Column kinds as the native reader takes them. */
const NATIVE_KIND: Record<string, number> = { R: 1, I: 2, L: 3, S: 4 };
/** Frames per native call; species text room per call (frames of up to 256K atoms with new species). */
const NATIVE_FRAMES = 4096;
const NATIVE_SPECIES_BYTES = 1 << 20;

/**
 * The native reader's output arrays, one set per thread (made at first use): each call's output is taken before
 * the call returns to its scanner, so scanners of many small files share them.
 */
let nativeOutput: { ids: Uint8Array; natoms: Int32Array; starts: Uint32Array; species: Int32Array; speciesText: Uint8Array } | undefined;
const nativeOutputArrays = (): NonNullable<typeof nativeOutput> =>
  (nativeOutput ??= {
    ids: new Uint8Array(20 * NATIVE_FRAMES),
    natoms: new Int32Array(NATIVE_FRAMES),
    starts: new Uint32Array(NATIVE_FRAMES + 1),
    species: new Int32Array(2 * NATIVE_FRAMES),
    speciesText: new Uint8Array(NATIVE_SPECIES_BYTES),
  });

/** A scanner's use of the native reader: the Properties it last passed, and the last formula it read. */
class NativeReading {
  /** null before the first call. */
  properties: string | undefined | null = null;
  spec: Uint8Array = new Uint8Array(0);
  kinds: Uint8Array = new Uint8Array(0);
  lastFormula = "";

  constructor(readonly scan: NativeFrameScan) {}
}

class GiveUp extends Error {}
const GIVE_UP = new GiveUp();

/** The offset of the first byte from b[p] on that is no white space (the frame reader's: space, \t to \r). */
function blankTo(b: Uint8Array, p: number): number {
  while (p < b.length && (b[p] === SPACE || (b[p] >= 9 && b[p] <= 13))) p++;
  return p;
}

/** The offset after the digits at b[p], at least one (else it gives up). */
function digitsAfter(b: Uint8Array, p: number): number {
  const first = p;
  while ((b[p] - 48) >>> 0 <= 9) p++;
  if (p === first) throw GIVE_UP;
  return p;
}

export class ExtxyzSummaryScanner {
  private readonly namer: CandidateNamer;
  private readonly withProjections: boolean;
  private readonly native: NativeReading | undefined;
  readonly ids: string[] = [];
  readonly natoms: number[] = [];
  readonly formulas: string[] = [];
  readonly projections: number[] = [];
  /** False once the bytes were anything but the plain form (then nothing read so far is to be used). */
  ok = true;
  private pending: Uint8Array | null = null;
  /** Offset and line number (1-based) of the next frame. */
  private offset = 0;
  private line = 1;
  private positions = new Float64Array(24);
  /** The offset of the last newline of the bytes being read (-1 when none). */
  private lastNewline = -1;
  private readonly cell = new Float64Array(9);
  private readonly pbc: [boolean, boolean, boolean] = [false, false, false];
  private readonly structure = { natoms: 0, positions: this.positions, cell: this.cell, pbc: this.pbc };
  /**
   * The last Properties text and the kinds of its columns after the positions (none before the first frame); its
   * bytes when columnsAt read it (null otherwise: a text read through the comment reader has no bytes here).
   */
  private properties: string | undefined;
  private columns: readonly string[] = [];
  private propertiesBytes: Uint8Array | null = null;
  /** The last frame's species, and as text: frames of one system repeat them. */
  private symbols: string[] = [];
  private speciesText = "";

  /**
   * With `keepFrames`, the frames read, as the frame reader would give them, while every one has only Lattice, pbc
   * and Properties on its comment line (read directly) and no columns beyond species and positions; null otherwise.
   */
  frames: Frame[] | null;
  /** Whether the last comment line held only Lattice, pbc and Properties, read directly (see comment). */
  private direct = true;

  /** `onFrame` hears each frame's byte offset and first line, in order. */
  constructor(private readonly onFrame?: (offset: number, line: number) => void, keepFrames = false, reading: SummaryReading = { projections: true }) {
    this.frames = keepFrames ? [] : null;
    this.namer = new CandidateNamer(reading.projections);
    this.withProjections = reading.projections;
    this.native = reading.native && !keepFrames && !reading.projections ? new NativeReading(reading.native) : undefined;
  }

  /** Reads the frames completed by `chunk`; false once it gave up. */
  push(chunk: Uint8Array): boolean {
    if (!this.ok) return false;
    // Always a plain Uint8Array (a Buffer's is another map): the hot functions below then stay monomorphic.
    let b = chunk.constructor === Uint8Array ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.pending !== null) {
      b = new Uint8Array(this.pending.length + chunk.length);
      b.set(this.pending);
      b.set(chunk, this.pending.length);
    }
    this.lastNewline = b.lastIndexOf(NL);
    let pos = 0;
    try {
      for (;;) {
        if (this.native) pos = this.nativeFrames(b, pos);
        const next = this.frameAt(b, pos);
        if (next < 0) break;
        pos = next;
      }
    } catch (err) {
      if (!(err instanceof GiveUp)) throw err;
      this.ok = false;
      return false;
    }
    this.pending = pos < b.length ? b.slice(pos) : null;
    this.offset += pos;
    return true;
  }

  /** The end of the bytes: a partial frame left over is not the plain form (blank lines are allowed). */
  end(): boolean {
    if (this.pending !== null && blankTo(this.pending, 0) < this.pending.length) this.ok = false;
    return this.ok;
  }

  summaries(): CandidateSummaries {
    return { ids: this.ids, natoms: this.natoms, formulas: this.formulas, projections: this.projections, species: [...this.namer.species].sort() };
  }

  /** The frame at b[pos]: the offset after it, or -1 when b ends before it does. */
  private frameAt(b: Uint8Array, pos: number): number {
    const size = b.length;
    if (pos >= size) return -1;
    // Blank lines may end the file, and nothing may follow them.
    if (b[pos] <= SPACE) {
      if (blankTo(b, pos) < size) throw GIVE_UP;
      return -1;
    }
    let p = pos;
    let natoms = 0;
    while (p < size && (b[p] - 48) >>> 0 <= 9) natoms = natoms * 10 + (b[p++] - 48);
    if (p >= size) return -1;
    if (p === pos || b[p] !== NL || natoms === 0 || natoms > MAX_ATOMS) throw GIVE_UP;
    // The comment line must be there; each atom line is known to be there when it starts at or before b's last
    // newline (one search per frame, not one per line).
    const commentStart = p + 1;
    const commentEnd = b.indexOf(NL, commentStart);
    if (commentEnd < 0 || commentEnd + natoms > this.lastNewline) return -1;
    const columns = this.comment(b, commentStart);
    if (this.positions.length < 3 * natoms) this.positions = new Float64Array(3 * natoms);
    const positions = this.positions;
    let q = commentEnd + 1;
    const symbols = this.symbols;
    let same = symbols.length === natoms;
    for (let a = 0; a < natoms; a++) {
      if (q > this.lastNewline) {
        // The frame goes on in the next chunk; its species so far are compared afresh when it is read again.
        symbols.length = 0;
        return -1;
      }
      while (b[q] === SPACE) q++;
      const start = q;
      while (b[q] > SPACE) q++;
      if (q === start || b[q] !== SPACE) throw GIVE_UP;
      // Frames of one system repeat their species atom by atom: the same bytes as the last frame's need no lookup.
      if (!same || !spellsText(b, start, q, symbols[a])) {
        const symbol = readSpecies(b, start, q);
        if (symbol === undefined) throw GIVE_UP;
        if (same && symbols[a] !== symbol) same = false;
        symbols[a] = symbol;
      }
      for (let k = 0; k < 3; k++) q = this.decimal(b, q, positions, 3 * a + k);
      for (const kind of columns) q = this.token(b, q, kind);
      while (b[q] === SPACE) q++;
      if (b[q] !== NL) throw GIVE_UP;
      q++;
    }
    if (!same) {
      symbols.length = natoms;
      this.speciesText = symbols.join(",");
    }
    const species = this.speciesText;
    this.onFrame?.(this.offset + pos, this.line);
    this.line += natoms + 2;
    // One structure object for every frame (the id reads the first 3 * natoms positions only).
    const structure = this.structure;
    structure.natoms = natoms;
    structure.positions = positions;
    this.namer.nameWithSpecies(structure, species);
    this.ids.push(this.namer.id);
    this.natoms.push(natoms);
    this.formulas.push(this.namer.formula);
    if (this.withProjections) this.projections.push(this.namer.projections[0], this.namer.projections[1]);
    if (this.frames !== null) {
      if (columns.length > 0 || !this.direct) this.frames = null;
      else {
        this.frames.push({
          natoms, symbols: symbols.slice(0, natoms), positions: positions.slice(0, 3 * natoms), cell: this.cell.slice(),
          pbc: [this.pbc[0], this.pbc[1], this.pbc[2]], info: new Map(), arrays: new Map(),
        });
      }
    }
    return q;
  }

  /**
   * The frames from b[pos] on that the native reader reads (in its form, whole before b's last newline), added as
   * frameAt adds them; the offset of the first frame it left.
   */
  private nativeFrames(b: Uint8Array, pos: number): number {
    const native = this.native!;
    const out = nativeOutputArrays();
    const end = this.lastNewline + 1;
    // The Properties the last frame had (the default before any): the native reader takes only frames of the same.
    if (native.properties !== this.properties) {
      native.properties = this.properties;
      native.spec = bytesOf(this.properties ?? DEFAULT_PROPERTIES);
      native.kinds = Uint8Array.from(this.properties ? this.columns : [], (kind) => NATIVE_KIND[kind]);
    }
    while (pos < end) {
      const count = native.scan(b, pos, end, native.spec, native.kinds, out.ids, out.natoms, out.starts, out.species, out.speciesText);
      if (count === 0) break;
      const ids = latin1(out.ids, 0, 20 * count);
      for (let k = 0; k < count; k++) {
        const natoms = out.natoms[k];
        this.onFrame?.(this.offset + out.starts[k], this.line);
        this.line += natoms + 2;
        if (out.species[2 * k] >= 0) native.lastFormula = this.namer.formulaOf(latin1(out.speciesText, out.species[2 * k], out.species[2 * k + 1]));
        this.ids.push(ids.slice(20 * k, 20 * k + 20));
        this.natoms.push(natoms);
        this.formulas.push(native.lastFormula);
      }
      pos = out.starts[count];
      if (count < NATIVE_FRAMES) break;
    }
    return pos;
  }

  /**
   * Reads the comment line at b[p] into cell and pbc; returns the kinds of the atom columns after the positions.
   * A line of only Lattice, pbc and Properties (each at most once, quoted values without escapes) is read here;
   * any other line as the frame reader reads it.
   */
  private comment(b: Uint8Array, p: number): readonly string[] {
    this.direct = true;
    try {
      return this.commentDirectly(b, p);
    } catch (err) {
      // A number there that is not a plain decimal (an exponent, say): the frame reader's reading decides.
      if (err instanceof GiveUp) return this.commentAsRead(b, p);
      throw err;
    }
  }

  private commentDirectly(b: Uint8Array, p: number): readonly string[] {
    const start = p;
    let lattice = false;
    let pbc = false;
    let properties = -1;
    let propertiesEnd = -1;
    for (;;) {
      while (b[p] === SPACE) p++;
      if (b[p] === NL) break;
      const key = p;
      while (b[p] !== 61 && b[p] > SPACE) p++;
      const keyEnd = p++;
      if (b[keyEnd] !== 61) return this.commentAsRead(b, start);
      if (!lattice && spells(b, key, keyEnd, LATTICE) && b[p] === QUOTE) {
        lattice = true;
        p++;
        for (let k = 0; k < 9; k++) p = this.decimal(b, p, this.cell, k, QUOTE);
        while (b[p] === SPACE) p++;
        if (b[p++] !== QUOTE) return this.commentAsRead(b, start);
      } else if (!pbc && spells(b, key, keyEnd, PBC) && b[p] === QUOTE) {
        pbc = true;
        p++;
        for (let k = 0; k < 3; k++) {
          while (b[p] === SPACE) p++;
          if (b[p] !== 84 && b[p] !== 70) return this.commentAsRead(b, start);
          this.pbc[k] = b[p++] === 84;
        }
        while (b[p] === SPACE) p++;
        if (b[p++] !== QUOTE) return this.commentAsRead(b, start);
      } else if (properties < 0 && spells(b, key, keyEnd, PROPERTIES)) {
        properties = p;
        while (b[p] > SPACE && b[p] !== QUOTE) p++;
        propertiesEnd = p;
      } else {
        p = infoValueEnd(b, key, keyEnd, p);
        if (p < 0) return this.commentAsRead(b, start);
        this.direct = false;
      }
      if (b[p] !== SPACE && b[p] !== NL) return this.commentAsRead(b, start);
    }
    if (!lattice) this.cell.fill(0);
    if (!pbc) this.pbc.fill(lattice);
    return properties < 0 ? this.columnsOf(DEFAULT_PROPERTIES) : this.columnsAt(b, properties, propertiesEnd);
  }

  /** The comment line at b[start] as the frame reader reads it. */
  private commentAsRead(b: Uint8Array, start: number): readonly string[] {
    this.direct = false;
    const header = commentHeader(b, start, b.indexOf(NL, start));
    // A cell of nan or inf is left to the full reader's caller, which names its line.
    if (header === undefined || !header.cell.every(Number.isFinite)) throw GIVE_UP;
    this.cell.set(header.cell);
    for (let k = 0; k < 3; k++) this.pbc[k] = header.pbc[k];
    return this.columnsOf(header.properties);
  }

  /** columnsOf for the Properties text b[start .. end), the same as the last frame's most of the time. */
  private columnsAt(b: Uint8Array, start: number, end: number): readonly string[] {
    if (this.propertiesBytes !== null && spells(b, start, end, this.propertiesBytes)) return this.columns;
    const bytes = b.slice(start, end);
    const columns = this.columnsOf(String.fromCharCode(...bytes));
    this.propertiesBytes = bytes;
    return columns;
  }

  private columnsOf(spec: string): readonly string[] {
    if (spec === this.properties) return this.columns;
    const columns = columnsAfterPositions(spec);
    if (columns === undefined) throw GIVE_UP;
    this.properties = spec;
    this.columns = columns;
    // The bytes were another text's (columnsAt sets them again when it read this one).
    this.propertiesBytes = null;
    return columns;
  }

  /**
   * An R (`-?digits(.digits)?`, then maybe `e` or `E`, a sign and digits: values that are not kept need no exact
   * reading), I (`-?digits`), L (T or F) or S (any) column's token at b[p] (after spaces); the offset after it.
   */
  private token(b: Uint8Array, p: number, kind: string): number {
    while (b[p] === SPACE) p++;
    const start = p;
    if (kind === "R") {
      if (b[p] === MINUS) p++;
      p = digitsAfter(b, p);
      if (b[p] === DOT) p = digitsAfter(b, p + 1);
      if (b[p] === 101 || b[p] === 69) {
        p++;
        if (b[p] === 43 || b[p] === MINUS) p++;
        p = digitsAfter(b, p);
      }
    } else if (kind === "I") {
      if (b[p] === MINUS) p++;
      const digits = p;
      while ((b[p] - 48) >>> 0 <= 9) p++;
      if (p === digits || p - digits > 9) throw GIVE_UP;
    } else if (kind === "L") {
      if (b[p] === 84 || b[p] === 70) p++;
    } else while (b[p] > SPACE) p++;
    if (p === start || (b[p] !== SPACE && b[p] !== NL)) throw GIVE_UP;
    return p;
  }

  /**
   * A plain decimal at b[p] (after spaces), `-?digits(.digits)?`, ending at a space, a newline or `close`; into
   * out[at] when out is given. Returns the offset after it.
   */
  private decimal(b: Uint8Array, p: number, out: Float64Array | null, at: number, close = NL): number {
    while (b[p] === SPACE) p++;
    const neg = b[p] === MINUS;
    if (neg) p++;
    const first = p;
    let mant = 0;
    let d = b[p];
    while ((d - 48) >>> 0 <= 9) {
      mant = mant * 10 + (d - 48);
      d = b[++p];
    }
    if (p === first) throw GIVE_UP;
    let scale = 0;
    if (d === DOT) {
      const fraction = ++p;
      d = b[p];
      while ((d - 48) >>> 0 <= 9) {
        mant = mant * 10 + (d - 48);
        d = b[++p];
      }
      scale = p - fraction;
      if (scale === 0) throw GIVE_UP;
    }
    if ((d !== SPACE && d !== NL && d !== close) || scale > 22 || mant > Number.MAX_SAFE_INTEGER) throw GIVE_UP;
    if (out !== null) {
      const v = scale === 0 ? mant : mant / POW10[scale];
      out[at] = neg ? -v : v;
    }
    return p;
  }
}
