/**
 * ASE trajectories (`.traj`), the file ASE's MD and optimisers write by default: structures only, for candidate pools.
 *
 * The container is ASE's ULM format: a 48-byte header ("- of Ulm", or "AFFormat" before ULM version 3; a 16-byte
 * tag, "ASE-Trajectory" here; version, item count and the offset of the item table, int64 little-endian), the table
 * of item offsets, and per item its arrays (raw, 8-byte aligned) followed by an int64 length and a JSON object.
 * Arrays appear in the JSON as `"name.": {"ndarray": [shape, dtype, offset]}`, child objects (the calculator) as
 * `"name.": {...}`. The first item holds pbc and atomic numbers; later items hold them only when they differ from
 * the first item's (or once any item did), as ASE's TrajectoryWriter does.
 *
 * Calculator results (an MD run's model energies and forces) are not carried: they are not DFT labels. The per-atom
 * arrays ASE keeps in a trajectory are, under the names ASE's extxyz gives them (momenta, initial_magmoms,
 * initial_charges, tags, masses), and so are scalar atoms.info values, with their int/float/bool/string types.
 */
import { elementSymbol } from "../elements.js";
import { InputError } from "../errors.js";
import type { AtomArray, Frame, InfoValue, Pbc } from "../structure.js";
import { ASE_TRAJECTORY_TAG, isUlm } from "./format-heads.js";

/** Random access to a file's bytes. */
export interface ByteSource {
  readonly size: number;
  /** `length` bytes from `offset`; callers check both against size first. */
  read(offset: number, length: number): Uint8Array;
}

const HEADER_BYTES = 48;

/** Thrown for an item that lies (partly) beyond the end of the file: the writer was stopped inside it. */
export class TrajectoryCut extends InputError {}

/** A JSON object as the ULM writer left it; child objects and array references are keys ending in ".". */
type Item = Record<string, unknown>;

interface Header {
  numbers: number[];
  pbc: Pbc;
  /** Masses, when the atoms had them set (ASE writes them with the atomic numbers). */
  masses: Float64Array | null;
}

/** Per-atom arrays of a trajectory item, the extxyz names ASE gives them, and whether they hold integers. */
const PER_ATOM: { key: string; name: string; integer: boolean }[] = [
  { key: "momenta", name: "momenta", integer: false },
  { key: "magmoms", name: "initial_magmoms", integer: false },
  { key: "charges", name: "initial_charges", integer: false },
  { key: "tags", name: "tags", integer: true },
];

export class AseTrajectoryReader {
  /** How many items (frames) the header counts. */
  readonly length: number;
  /** atoms.info keys left out of the frames read so far: their values are lists, dicts or arrays. */
  readonly leftOutInfo = new Set<string>();
  private readonly offsets: number[];
  private first: Header | null = null;

  constructor(
    private readonly bytes: ByteSource,
    private readonly file: string,
  ) {
    if (bytes.size === 0) throw new InputError(file, undefined, "empty file, expected an ASE trajectory");
    const head = bytes.read(0, Math.min(HEADER_BYTES, bytes.size));
    if (!isUlm(latin1(head))) throw new InputError(file, undefined, "not an ASE trajectory (it does not start with ULM's \"- of Ulm\")");
    if (head.length < HEADER_BYTES) throw new TrajectoryCut(file, undefined, "the file ends inside its 48-byte header");
    const tag = latin1(head.subarray(8, 24)).trimEnd();
    if (tag !== ASE_TRAJECTORY_TAG) {
      throw new InputError(file, undefined, `a ULM file tagged "${tag}", expected an ASE trajectory (tag "${ASE_TRAJECTORY_TAG}")`);
    }
    const view = dataView(head);
    const count = int64(view, 32);
    const table = int64(view, 40);
    if (count < 0 || table < HEADER_BYTES) throw new InputError(file, undefined, `broken header: ${count} items, item table at byte ${table}`);
    if (table + 8 * count > bytes.size) throw new TrajectoryCut(file, undefined, `the table of its ${count} items lies beyond the end of the file (byte ${bytes.size})`);
    const offsets = dataView(bytes.read(table, 8 * count));
    this.offsets = Array.from({ length: count }, (_, i) => int64(offsets, 8 * i));
    this.length = count;
  }

  /** Frame `index` (0-based). Throws TrajectoryCut when the item lies beyond the end of the file. */
  frame(index: number): Frame {
    const item = this.item(index);
    const where = `frame ${index}`;
    let header: Header;
    if ("numbers." in item || "numbers" in item) header = this.header(item, where);
    else header = this.first ?? (this.first = this.header(this.item(0), "frame 0"));
    if (index === 0) this.first = header;
    const natoms = header.numbers.length;
    const positions = this.floats(item, "positions", [natoms, 3], where);
    const cell = this.floats(item, "cell", [3, 3], where);
    for (let i = 0; i < positions.length; i++) {
      if (!Number.isFinite(positions[i])) throw new InputError(this.file, where, `atom ${Math.floor(i / 3)}: position is not a finite number`);
    }
    for (const x of cell) if (!Number.isFinite(x)) throw new InputError(this.file, where, "the cell holds a value that is not a finite number");
    const symbols = header.numbers.map((z, atom) => {
      const symbol = elementSymbol(z);
      if (symbol === undefined) throw new InputError(this.file, where, `atom ${atom}: atomic number ${z} is not an element`);
      return symbol;
    });
    const arrays = new Map<string, AtomArray>();
    for (const { key, name, integer } of PER_ATOM) {
      if (`${key}.` in item || key in item) arrays.set(name, this.perAtom(item, key, natoms, integer, where));
    }
    if (header.masses) arrays.set("masses", { dtype: "R", ncols: 1, data: header.masses });
    return { natoms, symbols, positions, cell, pbc: header.pbc, info: infoOf(item.info, this.leftOutInfo), arrays };
  }

  /** A per-atom array: one value per atom, or a row of them (non-collinear magnetic moments). */
  private perAtom(item: Item, key: string, natoms: number, integer: boolean, where: string): AtomArray & { data: Float64Array } {
    const { shape, data } = this.values(item, key, where);
    if (shape[0] !== natoms || shape.length > 2) throw new InputError(this.file, where, `${key} has shape [${shape}], expected ${natoms} atoms`);
    const values = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      values[i] = Number(data[i]);
      if (!Number.isFinite(values[i]) || (integer && !Number.isInteger(values[i]))) throw new InputError(this.file, where, `${key} holds ${data[i]}, expected ${integer ? "integers" : "finite numbers"}`);
    }
    return { dtype: integer ? "I" : "R", ncols: shape.length === 2 ? shape[1] : 1, data: values };
  }

  private item(index: number): Item {
    const at = this.offsets[index];
    const where = `frame ${index}`;
    if (at + 8 > this.bytes.size) throw new TrajectoryCut(this.file, where, `starts at byte ${at}, beyond the end of the file`);
    const size = int64(dataView(this.bytes.read(at, 8)), 0);
    if (size < 2 || at + 8 + size > this.bytes.size) throw new TrajectoryCut(this.file, where, `its data (${size} bytes from byte ${at + 8}) runs past the end of the file`);
    let item: unknown;
    try {
      item = parseItem(UTF8.decode(this.bytes.read(at + 8, size)));
    } catch (err) {
      throw new InputError(this.file, where, `broken JSON data: ${(err as Error).message}`);
    }
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw new InputError(this.file, where, "its data is not a JSON object");
    if ((item as Item)._little_endian === false) throw new InputError(this.file, where, "written on a big-endian machine: convert it there (python3 -m ase convert FILE OUT.extxyz)");
    return item as Item;
  }

  private header(item: Item, where: string): Header {
    const numbers = this.values(item, "numbers", where);
    if (numbers.shape.length !== 1) throw new InputError(this.file, where, `numbers has shape [${numbers.shape}], expected one atomic number per atom`);
    const pbc = this.values(item, "pbc", where);
    if (pbc.data.length !== 3) throw new InputError(this.file, where, `pbc has ${pbc.data.length} values, expected 3`);
    const atomicNumbers: number[] = [];
    for (let i = 0; i < numbers.data.length; i++) atomicNumbers.push(Number(numbers.data[i]));
    const masses = "masses." in item || "masses" in item ? this.perAtom(item, "masses", atomicNumbers.length, false, where).data : null;
    return { numbers: atomicNumbers, pbc: [Boolean(pbc.data[0]), Boolean(pbc.data[1]), Boolean(pbc.data[2])], masses };
  }

  private floats(item: Item, key: string, shape: number[], where: string): Float64Array {
    const { shape: found, data } = this.values(item, key, where);
    if (found.length !== shape.length || found.some((n, i) => n !== shape[i])) {
      throw new InputError(this.file, where, `${key} has shape [${found}], expected [${shape}]`);
    }
    if (data instanceof Float64Array) return data;
    if (Array.prototype.some.call(data, (x) => typeof x !== "number")) throw new InputError(this.file, where, `${key} holds values that are not numbers`);
    return Float64Array.from(data as ArrayLike<number>);
  }

  /** A key's values, flattened: an ndarray stored beside the JSON ("key."), or a JSON list ("key"). */
  private values(item: Item, key: string, where: string): { shape: number[]; data: ArrayLike<number | boolean> } {
    const ref = item[`${key}.`];
    if (ref !== undefined) return this.ndarray(ref, key, where);
    const value = item[key];
    if (value === undefined) throw new InputError(this.file, where, `no ${key}`);
    const shape: number[] = [];
    for (let v: unknown = value; Array.isArray(v); v = v[0]) shape.push(v.length);
    const data: (number | boolean)[] = [];
    const flatten = (v: unknown, depth: number): void => {
      if (depth < shape.length && Array.isArray(v) && v.length === shape[depth]) for (const x of v) flatten(x, depth + 1);
      else if (depth === shape.length && (typeof v === "number" || typeof v === "boolean")) data.push(v);
      else throw new InputError(this.file, where, `${key} is not a regular list of numbers`);
    };
    flatten(value, 0);
    return { shape, data };
  }

  private ndarray(ref: unknown, key: string, where: string): { shape: number[]; data: ArrayLike<number | boolean> } {
    const spec = (ref as { ndarray?: unknown })?.ndarray;
    if (!Array.isArray(spec) || spec.length !== 3 || !Array.isArray(spec[0])) throw new InputError(this.file, where, `${key} is not an array reference`);
    const [shape, dtype, offset] = spec as [number[], string, number];
    if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0) || !Number.isSafeInteger(offset) || offset < 0) {
      throw new InputError(this.file, where, `${key} has a broken array reference (shape [${shape}], byte ${offset})`);
    }
    const read = DTYPES[dtype];
    if (!read) throw new InputError(this.file, where, `${key} has dtype ${dtype}, expected one of ${Object.keys(DTYPES).join(", ")}`);
    const count = shape.reduce((a, b) => a * b, 1);
    const bytes = count * read.size;
    if (!Number.isSafeInteger(bytes) || offset + bytes > this.bytes.size) {
      throw new TrajectoryCut(this.file, where, `${key} (${bytes} bytes from byte ${offset}) runs past the end of the file`);
    }
    const raw = this.bytes.read(offset, bytes);
    // Positions: one copy of the bytes when they are already in this machine's order.
    if (dtype === "float64" && LITTLE_ENDIAN) return { shape, data: new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + bytes)) };
    const view = dataView(raw);
    const data: (number | boolean)[] = new Array(count);
    for (let i = 0; i < count; i++) data[i] = read.at(view, i * read.size);
    return { shape, data };
  }
}

const UTF8 = new TextDecoder();
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const DTYPES: Record<string, { size: number; at: (v: DataView, o: number) => number | boolean }> = {
  float64: { size: 8, at: (v, o) => v.getFloat64(o, true) },
  float32: { size: 4, at: (v, o) => v.getFloat32(o, true) },
  // Two halves: exact below 2^53, and far cheaper than a BigInt per value.
  int64: { size: 8, at: (v, o) => v.getInt32(o + 4, true) * 2 ** 32 + v.getUint32(o, true) },
  int32: { size: 4, at: (v, o) => v.getInt32(o, true) },
  bool: { size: 1, at: (v, o) => v.getUint8(o) !== 0 },
};

/**
 * atoms.info's scalar values, typed as Python wrote them (FLOAT_KEYS: parseItem); the keys of lists, dicts and arrays
 * go to `leftOut`.
 */
function infoOf(info: unknown, leftOut: Set<string>): Map<string, InfoValue> {
  const out = new Map<string, InfoValue>();
  if (typeof info !== "object" || info === null) return out;
  const floats = (info as { [FLOAT_KEYS]?: Set<string> })[FLOAT_KEYS];
  for (const [key, value] of Object.entries(info)) {
    // A number that is not whole was a float; a whole one only when parseJson saw it written as one.
    if (typeof value === "number") out.set(key, floats?.has(key) || !Number.isInteger(value) ? { kind: "float", value } : { kind: "int", value });
    else if (typeof value === "boolean") out.set(key, { kind: "bool", value });
    else if (typeof value === "string") out.set(key, { kind: "string", value });
    else leftOut.add(key);
  }
  return out;
}

/**
 * An item's JSON. JSON.parse reads it, unless it holds NaN or Infinity (Python writes them; parseJson reads them).
 * Whether an info value such as 300.0 was a float is lost then: when info holds a whole number, its own text is read
 * again by parseJson. ASE writes info last, so that text runs from the last `"info": ` to the item's closing brace;
 * when it does not parse as exactly that object, the whole item is read by parseJson.
 */
function parseItem(text: string): unknown {
  let item: Item;
  try {
    item = JSON.parse(text) as Item;
  } catch {
    return parseJson(text);
  }
  const info = item?.info;
  if (typeof info !== "object" || info === null || !Object.values(info).some((v) => Number.isInteger(v))) return item;
  try {
    const exact = parseJson(text.slice(text.lastIndexOf('"info": ') + 8, text.lastIndexOf("}"))) as Record<string, unknown>;
    if (Object.keys(exact).join("\0") === Object.keys(info).join("\0")) return { ...item, info: exact };
  } catch {
    // Not the top-level info's text.
  }
  return parseJson(text);
}

/** The keys of a parsed JSON object whose values were written as floats (with ".", an exponent, NaN or Infinity). */
const FLOAT_KEYS = Symbol("float keys");

/**
 * JSON as Python's json module writes it: also NaN, Infinity and -Infinity, and with each object's float-valued keys
 * under FLOAT_KEYS (JSON.parse loses whether 300.0 was a float).
 */
export function parseJson(text: string): unknown {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at character ${at}`);
  };
  const space = (): void => {
    while (at < text.length && (text[at] === " " || text[at] === "\n" || text[at] === "\t" || text[at] === "\r")) at++;
  };
  const NUMBER = /-?(?:Infinity|\d+(\.\d+)?([eE][+-]?\d+)?)|NaN/y;
  const value = (): { value: unknown; float: boolean } => {
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const out: Record<string | symbol, unknown> = {};
      const floats = new Set<string>();
      space();
      if (text[at] === "}") at++;
      else {
        for (;;) {
          space();
          if (text[at] !== '"') fail("expected a key");
          const key = string();
          space();
          if (text[at++] !== ":") fail("expected ':'");
          const member = value();
          out[key] = member.value;
          if (member.float) floats.add(key);
          space();
          if (text[at] === ",") at++;
          else if (text[at] === "}") {
            at++;
            break;
          } else fail("expected ',' or '}'");
        }
      }
      if (floats.size > 0) Object.defineProperty(out, FLOAT_KEYS, { value: floats });
      return { value: out, float: false };
    }
    if (c === "[") {
      at++;
      const out: unknown[] = [];
      space();
      if (text[at] === "]") at++;
      else {
        for (;;) {
          out.push(value().value);
          space();
          if (text[at] === ",") at++;
          else if (text[at] === "]") {
            at++;
            break;
          } else fail("expected ',' or ']'");
        }
      }
      return { value: out, float: false };
    }
    if (c === '"') return { value: string(), float: false };
    for (const [word, literal] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return { value: literal, float: false };
      }
    }
    NUMBER.lastIndex = at;
    const m = NUMBER.exec(text);
    if (!m) return fail("expected a value");
    at += m[0].length;
    const number = m[0].endsWith("NaN") ? NaN : m[0].endsWith("Infinity") ? (m[0][0] === "-" ? -Infinity : Infinity) : Number(m[0]);
    return { value: number, float: !/^-?\d+$/.test(m[0]) };
  };
  const string = (): string => {
    const start = at;
    for (at++; at < text.length && text[at] !== '"'; at++) if (text[at] === "\\") at++;
    if (at >= text.length) fail("unterminated string");
    at++;
    const raw = text.slice(start, at);
    return raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };
  const result = value().value;
  space();
  if (at !== text.length) fail("unexpected text after the value");
  return result;
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function int64(view: DataView, offset: number): number {
  return Number(view.getBigInt64(offset, true));
}
