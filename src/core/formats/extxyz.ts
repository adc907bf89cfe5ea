/**
 * Extended XYZ (extxyz): comment-line key/value grammar, Properties, a streaming frame parser over bytes, and
 * a writer. Pure: bytes and strings in, frames and strings out.
 *
 * Semantics are ASE 3.22.1's where ASE defines them (see /work/shared/docs/formats.md section 1), extended by the
 * libAtoms grammar where formats.md asks for it:
 * - value typing int -> float -> bool -> string on the tokens split at whitespace and commas; one token is a scalar;
 *   bools are T F True False true false TRUE FALSE (ASE 3.22.1 knows only T and F);
 * - `[..]` with commas (or a single item) is a new-style array, `[[..],[..]]` a 2-D array; string items give a
 *   `json` list of strings; `[a b c]` without commas is read like an old-style `"a b c"`, as ASE does;
 * - `"\n"` inside double quotes is a newline (ASE reads `n`);
 * - `stress` and `virial` are always stored as 3x3 arrays (6 Voigt values, 9 values in column-major order as ASE
 *   reads them, or a 3x3 array); ASE 3.22.1 rejects the 6-value form;
 * - errors that ASE lets pass are errors here: a column-count mismatch, a blank line between frames (ASE stops
 *   reading there), an unknown chemical symbol, a malformed Properties spec, an unterminated quote.
 *
 * Reading has fast paths for the usual layout (parseKeyValuesBytes for the comment line, parseAtomsPlain for the
 * atom lines) that decline anything else, errors included; the general path then reads the frame, so both give the
 * same frames and the same errors.
 */
import { ByteWriter } from "../byte-writer.js";
import { CHEMICAL_SYMBOLS } from "../elements.js";
import { InputError } from "../errors.js";
import type { AtomArray, Frame, InfoValue, Pbc } from "../structure.js";

/** A frame, the 1-based line of its atom-count line and that line's byte offset in the bytes pushed. */
export interface ExtxyzFrameAt {
  frame: Frame;
  line: number;
  start: number;
}

export type PropertyType = "S" | "I" | "R" | "L";

export interface PropertyColumn {
  name: string;
  type: PropertyType;
  ncols: number;
}

const SYMBOLS = CHEMICAL_SYMBOLS;
const SYMBOL_SET = new Set(SYMBOLS);

const SPECIAL_3X3 = new Set(["stress", "virial"]);
const DEFAULT_PROPERTIES = "species:S:1:pos:R:3";

// ---------------------------------------------------------------------------------------------------------------
// Comment line: key/value pairs
// ---------------------------------------------------------------------------------------------------------------

/** A problem in a comment line; turned into an InputError with file and line by the caller. */
class CommentError extends Error {}

const BOOLS: Record<string, boolean> = {
  T: true, F: false, True: true, False: false, true: true, false: false, TRUE: true, FALSE: false,
};

const INT_RE = /^[+-]?\d+(?:_\d+)*$/;
const FLOAT_RE = /^[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?$/;
const FLOAT_WORD_RE = /^([+-]?)(nan|inf|infinity)$/i;
const INT64_MAX = 9223372036854775807n;

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Python's int() on a token, restricted to int64 as numpy does; undefined if not an integer in range. */
function parseIntToken(tok: string): number | undefined {
  const n = tok.length;
  let i = n > 0 && (tok.charCodeAt(0) === 45 || tok.charCodeAt(0) === 43) ? 1 : 0;
  if (i === n) return undefined;
  while (i < n && tok.charCodeAt(i) >= 48 && tok.charCodeAt(i) <= 57) i++;
  if (i === n && n <= 16) return Number(tok) + 0;
  if (!INT_RE.test(tok)) return undefined;
  const clean = tok.includes("_") ? tok.replace(/_/g, "") : tok;
  if (clean.length > 18) {
    const big = BigInt(clean);
    if (big > INT64_MAX || big < -INT64_MAX - 1n) return undefined;
  }
  // `+ 0` turns -0 into 0: an integer has no signed zero.
  return Number(clean) + 0;
}

/** Python's float() on a token; undefined if it is not a number. */
function parseFloatToken(tok: string): number | undefined {
  // Made only of digits, signs, '.' and e/E, the token means the same to Number() as to Python's float().
  let plain = tok.length > 0;
  for (let i = 0; i < tok.length && plain; i++) {
    const c = tok.charCodeAt(i);
    plain = (c >= 48 && c <= 57) || c === 46 || c === 43 || c === 45 || c === 101 || c === 69;
  }
  if (plain) {
    const v = Number(tok);
    return v === v ? v : undefined;
  }
  if (FLOAT_RE.test(tok)) return Number(tok.replace(/_/g, ""));
  const m = FLOAT_WORD_RE.exec(tok);
  if (!m) return undefined;
  if (m[2].toLowerCase() === "nan") return NaN;
  return m[1] === "-" ? -Infinity : Infinity;
}

/** Splits an old-style value the way ASE does: at whitespace and commas. */
function splitTokens(raw: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (isSpace(c) || c === 44) {
      if (start >= 0) out.push(raw.slice(start, i));
      start = -1;
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(raw.slice(start));
  return out;
}

/** Types a list of tokens as one int, float or bool array; undefined when they are not all of one such kind. */
function typeTokens(tokens: string[]): { dtype: "int" | "float" | "bool"; data: number[] | boolean[] } | undefined {
  const values: number[] = [];
  let allInt = true;
  for (const t of tokens) {
    const asInt = allInt ? parseIntToken(t) : undefined;
    if (asInt !== undefined) {
      values.push(asInt);
      continue;
    }
    allInt = false;
    const v = parseFloatToken(t);
    if (v === undefined) break;
    values.push(v);
  }
  if (values.length === tokens.length) {
    if (allInt) return { dtype: "int", data: values };
    // Integer tokens read before the first float may have been -0 -> 0; as floats they keep the sign.
    for (let k = 0; k < values.length; k++) if (values[k] === 0) values[k] = Number(tokens[k].replace(/_/g, ""));
    return { dtype: "float", data: values };
  }
  const bools: boolean[] = [];
  for (const t of tokens) {
    if (!Object.hasOwn(BOOLS, t)) return undefined;
    bools.push(BOOLS[t]);
  }
  return { dtype: "bool", data: bools };
}

function scalarOrArray(typed: { dtype: "int" | "float" | "bool"; data: number[] | boolean[] }): InfoValue {
  if (typed.data.length === 1) {
    const v = typed.data[0];
    if (typed.dtype === "bool") return { kind: "bool", value: v as boolean };
    return { kind: typed.dtype, value: v as number };
  }
  return { kind: "array", dtype: typed.dtype, shape: [typed.data.length], data: typed.data };
}

/** Types an old-style value (bare, quoted, `{..}` or `'..'`) the way ASE does. */
function typeValue(raw: string): InfoValue {
  const tokens = splitTokens(raw);
  if (tokens.length > 0) {
    const typed = typeTokens(tokens);
    if (typed) return scalarOrArray(typed);
  }
  if (raw.startsWith("_JSON ")) return typeJson(raw.slice(6));
  return { kind: "string", value: raw };
}

interface Item {
  text: string;
  quoted: boolean;
}
type Node = Item | Node[];

/** Types a new-style `[..]` array (already split into items). */
function typeBracket(items: Node[], spaceSeparated: boolean): InfoValue {
  const nested = items.some((it) => Array.isArray(it));
  if (!nested) {
    const flat = items as Item[];
    if (flat.length === 0) return { kind: "array", dtype: "float", shape: [0], data: [] };
    // `[T F S]` with no commas: ASE reads the inside like an old-style value.
    if (spaceSeparated && flat.length > 1 && !flat.some((i) => i.quoted)) return typeValue(flat.map((i) => i.text).join(" "));
    const typed = flat.some((i) => i.quoted) ? undefined : typeTokens(flat.map((i) => i.text));
    if (typed) return { kind: "array", dtype: typed.dtype, shape: [flat.length], data: typed.data };
    return { kind: "json", value: flat.map((i) => i.text) };
  }
  if (!items.every((it) => Array.isArray(it))) throw new CommentError("a 2-D array mixes rows and single values");
  const rows = items as Node[][];
  const ncols = rows[0].length;
  for (const row of rows) {
    if (row.some((it) => Array.isArray(it))) throw new CommentError("arrays deeper than 2-D are not supported");
    if (row.length !== ncols || ncols === 0) throw new CommentError("the rows of a 2-D array must be non-empty and of equal length");
  }
  const flat = (rows as Item[][]).flat();
  const typed = flat.some((i) => i.quoted) ? undefined : typeTokens(flat.map((i) => i.text));
  if (typed) return { kind: "array", dtype: typed.dtype, shape: [rows.length, ncols], data: typed.data };
  return { kind: "json", value: (rows as Item[][]).map((r) => r.map((i) => i.text)) };
}

/**
 * Parses an extxyz comment line into typed key/values in file order (a repeated key keeps its first position and
 * its last value, as in ASE). `Lattice`, `Properties` and `pbc` are returned like any other key; see `parseHeader`.
 * Throws InputError naming `file` and `line`.
 */
export function parseKeyValues(text: string, file = "<comment line>", line?: number): Map<string, InfoValue> {
  try {
    return parseKeyValuesInner(text);
  } catch (err) {
    if (err instanceof CommentError) throw new InputError(file, line, err.message);
    throw err;
  }
}

function parseKeyValuesInner(text: string): Map<string, InfoValue> {
  return new CommentScanner(text).pairs();
}

/** Character-level reader of a comment line; each method advances `i`. */
class CommentScanner {
  private i = 0;
  private readonly n: number;

  constructor(private readonly s: string) {
    this.n = s.length;
  }

  pairs(): Map<string, InfoValue> {
    const { s, n } = this;
    const out = new Map<string, InfoValue>();
    for (;;) {
      this.skipSpace();
      if (this.i >= n) break;
      if (s.charCodeAt(this.i) === 61) throw new CommentError(`"=" without a key at column ${this.i + 1}`);
      const key = this.word(true);
      if (key === "") throw new CommentError(`empty key at column ${this.i + 1}`);
      this.skipSpace();
      if (this.i >= n || s.charCodeAt(this.i) !== 61) {
        out.set(key, { kind: "bool", value: true });
        continue;
      }
      this.i++;
      this.skipSpace();
      if (this.i >= n) {
        out.set(key, { kind: "string", value: "" });
        break;
      }
      if (key.length === 3 && key.toLowerCase() === "uid") {
        // ASE leaves uid untyped.
        out.set(key, { kind: "string", value: this.word(false) });
      } else if (s.charCodeAt(this.i) === 91) {
        const { items, spaceSeparated } = this.bracket();
        if (this.i < n && !isSpace(s.charCodeAt(this.i))) throw new CommentError(`unexpected ${s[this.i]} after the array of ${key}`);
        out.set(key, typeBracket(items, spaceSeparated));
      } else {
        out.set(key, typeValue(this.word(false)));
      }
      if (SPECIAL_3X3.has(key)) out.set(key, stressMatrix(key, out.get(key) as InfoValue));
    }
    return out;
  }

  private skipSpace(): void {
    const { s, n } = this;
    let i = this.i;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    this.i = i;
  }

  /** Up to the closing delimiter; `\` escapes the next character, `\n` is a newline inside double quotes. */
  private delimited(close: string): string {
    const { s, n } = this;
    const open = s[this.i];
    let i = this.i + 1;
    const closeAt = s.indexOf(close, i);
    const backslashAt = s.indexOf("\\", i);
    if (closeAt >= 0 && (backslashAt < 0 || backslashAt > closeAt)) {
      this.i = closeAt + 1;
      return s.slice(i, closeAt);
    }
    let out = "";
    let start = i;
    while (i < n) {
      const ch = s[i];
      if (ch === "\\") {
        out += s.slice(start, i);
        if (i + 1 >= n) throw new CommentError(`unterminated ${open}...${close} (ends in a backslash)`);
        const next = s[i + 1];
        out += next === "n" && open === '"' ? "\n" : next;
        i += 2;
        start = i;
      } else if (ch === close) {
        this.i = i + 1;
        return out + s.slice(start, i);
      } else i++;
    }
    throw new CommentError(`unterminated ${open}...${close} starting at column ${this.i + 1}`);
  }

  /** A word: bare characters and quoted segments up to whitespace (and up to `=` for keys). */
  private word(isKey: boolean): string {
    const { s, n } = this;
    let out = "";
    let i = this.i;
    let start = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      // The common case: a plain character (not space, quote, =, [, \ or {).
      if (c > 34 && c !== 39 && c !== 61 && c !== 91 && c !== 92 && c !== 123) {
        i++;
        continue;
      }
      if (isSpace(c) || (isKey && c === 61)) break;
      if (c === 34 || c === 39 || c === 123 || c === 91) {
        out += s.slice(start, i);
        this.i = i;
        out += this.delimited(c === 123 ? "}" : c === 91 ? "]" : s[i]);
        i = start = this.i;
      } else if (c === 92) {
        out += s.slice(start, i);
        if (i + 1 >= n) throw new CommentError("line ends in a backslash");
        out += s[i + 1];
        i += 2;
        start = i;
      } else i++;
    }
    this.i = i;
    return out + s.slice(start, i);
  }

  /** A new-style array `[..]`, possibly nested once. */
  private bracket(): { items: Node[]; spaceSeparated: boolean } {
    const { s, n } = this;
    const open = this.i;
    this.i++;
    const items: Node[] = [];
    let commas = 0;
    let needItem = false;
    for (;;) {
      this.skipSpace();
      if (this.i >= n) throw new CommentError(`unterminated [ starting at column ${open + 1}`);
      const ch = s[this.i];
      if (ch === "]") {
        if (needItem) throw new CommentError("an array ends with a comma");
        this.i++;
        return { items, spaceSeparated: commas === 0 };
      }
      if (ch === ",") {
        if (items.length === 0) throw new CommentError("an array starts with a comma");
        if (needItem) throw new CommentError("an array has two commas in a row");
        commas++;
        needItem = true;
        this.i++;
        continue;
      }
      needItem = false;
      if (ch === "[") items.push(this.bracket().items);
      else if (ch === '"') items.push({ text: this.delimited('"'), quoted: true });
      else {
        let i = this.i;
        const start = i;
        while (i < n) {
          const c = s[i];
          if (isSpace(c.charCodeAt(0)) || c === "," || c === "]") break;
          if (c === "[" || c === '"' || c === "'" || c === "{" || c === "}" || c === "=" || c === "\\") {
            throw new CommentError(`unexpected ${c} inside an array item`);
          }
          i++;
        }
        this.i = i;
        items.push({ text: s.slice(start, i), quoted: false });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// _JSON values (Python's json module: NaN and Infinity allowed)
// ---------------------------------------------------------------------------------------------------------------

interface JsonState {
  s: string;
  i: number;
  sawFloat: boolean;
}

function jsonValue(st: JsonState): unknown {
  const { s } = st;
  while (st.i < s.length && isSpace(s.charCodeAt(st.i))) st.i++;
  const ch = s[st.i];
  if (ch === "{") {
    st.i++;
    const obj: Record<string, unknown> = {};
    jsonSkip(st);
    if (s[st.i] === "}") {
      st.i++;
      return obj;
    }
    for (;;) {
      jsonSkip(st);
      if (s[st.i] !== '"') throw new CommentError("_JSON: expected a string key");
      const k = jsonValue(st) as string;
      jsonSkip(st);
      if (s[st.i] !== ":") throw new CommentError("_JSON: expected ':'");
      st.i++;
      Object.defineProperty(obj, k, { value: jsonValue(st), enumerable: true, writable: true, configurable: true });
      jsonSkip(st);
      if (s[st.i] === ",") st.i++;
      else if (s[st.i] === "}") {
        st.i++;
        return obj;
      } else throw new CommentError("_JSON: expected ',' or '}'");
    }
  }
  if (ch === "[") {
    st.i++;
    const arr: unknown[] = [];
    jsonSkip(st);
    if (s[st.i] === "]") {
      st.i++;
      return arr;
    }
    for (;;) {
      arr.push(jsonValue(st));
      jsonSkip(st);
      if (s[st.i] === ",") st.i++;
      else if (s[st.i] === "]") {
        st.i++;
        return arr;
      } else throw new CommentError("_JSON: expected ',' or ']'");
    }
  }
  if (ch === '"') {
    let j = st.i + 1;
    while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
    if (j >= s.length) throw new CommentError("_JSON: unterminated string");
    const text = s.slice(st.i, j + 1);
    st.i = j + 1;
    try {
      return JSON.parse(text) as string;
    } catch {
      throw new CommentError(`_JSON: bad string ${text}`);
    }
  }
  const rest = s.slice(st.i);
  const word = /^(?:true|false|null|NaN|-?Infinity)/.exec(rest);
  if (word) {
    st.i += word[0].length;
    switch (word[0]) {
      case "true": return true;
      case "false": return false;
      case "null": return null;
      case "NaN": st.sawFloat = true; return NaN;
      case "Infinity": st.sawFloat = true; return Infinity;
      default: st.sawFloat = true; return -Infinity;
    }
  }
  const num = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(rest);
  if (!num) throw new CommentError(`_JSON: unexpected ${rest.slice(0, 10) || "end of value"}`);
  st.i += num[0].length;
  if (num[1] !== undefined || num[2] !== undefined) {
    st.sawFloat = true;
    return Number(num[0]);
  }
  return Number(num[0]) + 0;
}

function jsonSkip(st: JsonState): void {
  while (st.i < st.s.length && isSpace(st.s.charCodeAt(st.i))) st.i++;
}

/** Python-compatible JSON parse; `sawFloat` tells whether any number was written as a float. */
function parseJson(text: string): { value: unknown; sawFloat: boolean } {
  const st: JsonState = { s: text, i: 0, sawFloat: false };
  const value = jsonValue(st);
  jsonSkip(st);
  if (st.i !== text.length) throw new CommentError(`_JSON: unexpected text after the value: ${text.slice(st.i, st.i + 10)}`);
  return { value, sawFloat: st.sawFloat };
}

/** A `_JSON ` value typed as ASE types it: numeric and bool arrays (1-D, 2-D) and scalars become typed values. */
function typeJson(text: string): InfoValue {
  const { value, sawFloat } = parseJson(text);
  const numKind = sawFloat ? "float" : "int";
  if (typeof value === "number") return { kind: numKind, value };
  if (typeof value === "boolean") return { kind: "bool", value };
  if (typeof value === "string") return { kind: "string", value };
  if (Array.isArray(value)) {
    const scalarType = (xs: unknown[]): "number" | "boolean" | null =>
      xs.every((x) => typeof x === "number") ? "number" : xs.every((x) => typeof x === "boolean") ? "boolean" : null;
    if (value.length === 0) return { kind: "array", dtype: "float", shape: [0], data: [] };
    const t1 = scalarType(value);
    if (t1) return { kind: "array", dtype: t1 === "number" ? numKind : "bool", shape: [value.length], data: value as number[] };
    if (value.every((r) => Array.isArray(r) && r.length === (value[0] as unknown[]).length)) {
      const flat = (value as unknown[][]).flat();
      const t2 = scalarType(flat);
      if (t2 && flat.length > 0) {
        return { kind: "array", dtype: t2 === "number" ? numKind : "bool", shape: [value.length, (value[0] as unknown[]).length], data: flat as number[] };
      }
    }
  }
  return { kind: "json", value };
}

// ---------------------------------------------------------------------------------------------------------------
// Header: Lattice, pbc, Properties, stress/virial
// ---------------------------------------------------------------------------------------------------------------

/** Parses a Properties spec `name:T:n[:name:T:n...]`. Throws a plain Error with the reason. */
export function parseProperties(spec: string): PropertyColumn[] {
  const fields = spec.split(":");
  const bad = (why: string): Error =>
    new Error(`bad Properties "${spec}": ${why} (expected name:type:count triples, type S, I, R or L, count >= 1)`);
  if (fields.length % 3 !== 0) throw bad(`${fields.length} fields is not a multiple of 3`);
  const cols: PropertyColumn[] = [];
  const seen = new Set<string>();
  for (let k = 0; k < fields.length; k += 3) {
    const [name, type, count] = [fields[k], fields[k + 1], fields[k + 2]];
    if (name === "" || /\s/.test(name)) throw bad(`bad name "${name}"`);
    if (type !== "S" && type !== "I" && type !== "R" && type !== "L") throw bad(`unknown type "${type}" for ${name}`);
    if (!/^\d+$/.test(count) || Number(count) < 1) throw bad(`bad count "${count}" for ${name}`);
    if (seen.has(name)) throw bad(`${name} appears twice`);
    seen.add(name);
    cols.push({ name, type, ncols: Number(count) });
  }
  return cols;
}

function numericData(v: InfoValue): { data: number[]; shape: number[] } | undefined {
  if (v.kind === "int" || v.kind === "float") return { data: [v.value], shape: [] };
  if (v.kind === "array" && v.dtype !== "bool") return { data: v.data as number[], shape: v.shape };
  return undefined;
}

/** Fills `cell` (9 zeros) from a Lattice value. */
function latticeCell(v: InfoValue, cell: Float64Array): void {
  const num = numericData(v);
  const ok = num && num.data.length === 9 && (num.shape.length === 1 || (num.shape[0] === 3 && num.shape[1] === 3));
  if (!ok) {
    const what = num ? `${num.data.length} number(s)` : `a ${v.kind}`;
    throw new CommentError(`Lattice: expected 9 numbers (three cell vectors a1 a2 a3), found ${what}`);
  }
  // Both the 9-value and the nested form list the vectors one after another.
  cell.set(num.data);
}

function pbcValue(v: InfoValue): Pbc {
  if (v.kind === "bool") return [v.value, v.value, v.value];
  if (v.kind === "array" && v.shape.length === 1 && v.shape[0] === 3) {
    if (v.dtype === "bool") return [...(v.data as boolean[])] as Pbc;
    if (v.dtype === "int" && (v.data as number[]).every((x) => x === 0 || x === 1)) return (v.data as number[]).map((x) => x === 1) as Pbc;
  }
  throw new CommentError(`pbc: expected T, F or three of them ("T T F"), found ${describe(v)}`);
}

function describe(v: InfoValue): string {
  if (v.kind === "array") return `${v.dtype} array of shape [${v.shape.join(",")}]`;
  if (v.kind === "json") return "a JSON value";
  return `${v.kind} ${JSON.stringify(v.value)}`;
}

/**
 * `stress` and `virial` as a 3x3 array (row-major data): 9 values are read column-major as ASE does, 6 values are
 * Voigt xx yy zz yz xz xy.
 */
function stressMatrix(key: string, v: InfoValue): InfoValue {
  const num = numericData(v);
  const dtype = v.kind === "int" || (v.kind === "array" && v.dtype === "int") ? "int" : "float";
  if (num && num.shape.length === 2 && num.shape[0] === 3 && num.shape[1] === 3) return v;
  if (num && num.shape.length === 1 && num.data.length === 9) {
    const d = num.data;
    return { kind: "array", dtype, shape: [3, 3], data: [d[0], d[3], d[6], d[1], d[4], d[7], d[2], d[5], d[8]] };
  }
  if (num && num.shape.length === 1 && num.data.length === 6) {
    const [xx, yy, zz, yz, xz, xy] = num.data;
    return { kind: "array", dtype, shape: [3, 3], data: [xx, xy, xz, xy, yy, yz, xz, yz, zz] };
  }
  throw new CommentError(`${key}: expected 6 (Voigt) or 9 numbers or a 3x3 array, found ${describe(v)}`);
}

/**
 * Any stress-like value (6 Voigt values, 9 values column-major, or 3x3) as Voigt xx yy zz yz xz xy; undefined when
 * the value is not one of those shapes.
 */
export function stressVoigt(v: InfoValue): [number, number, number, number, number, number] | undefined {
  const num = numericData(v);
  if (!num) return undefined;
  const d = num.data;
  if (num.shape.length === 1 && d.length === 6) return [d[0], d[1], d[2], d[3], d[4], d[5]];
  // Column-major 9-vector: element (i, j) at i + 3j. A 3x3 array is row-major: (i, j) at 3i + j.
  if (num.shape.length === 1 && d.length === 9) return [d[0], d[4], d[8], d[7], d[6], d[3]];
  if (num.shape.length === 2 && num.shape[0] === 3 && num.shape[1] === 3) return [d[0], d[4], d[8], d[5], d[2], d[1]];
  return undefined;
}

interface Header {
  info: Map<string, InfoValue>;
  cell: Float64Array;
  pbc: Pbc;
  properties: string;
}

/** Interprets a comment line: splits off Lattice, pbc and Properties. */
function parseHeader(comment: string): Header {
  return headerFromInfo(commentKeyValues(comment), new Float64Array(9));
}

function commentKeyValues(comment: string): Map<string, InfoValue> {
  return comment.length === 0 ? new Map<string, InfoValue>() : parseKeyValuesInner(comment);
}

/** Splits Lattice, pbc and Properties off the key/values of a comment line; the cell goes into `cell` (zeros). */
function headerFromInfo(info: Map<string, InfoValue>, cell: Float64Array): Header {
  const lattice = info.get("Lattice");
  if (lattice !== undefined) {
    latticeCell(lattice, cell);
    info.delete("Lattice");
  }
  let pbc: Pbc = lattice !== undefined ? [true, true, true] : [false, false, false];
  const pbcInfo = info.get("pbc");
  if (pbcInfo !== undefined) {
    pbc = pbcValue(pbcInfo);
    info.delete("pbc");
  }
  let properties = DEFAULT_PROPERTIES;
  const props = info.get("Properties");
  if (props !== undefined) {
    if (props.kind !== "string") throw new CommentError(`bad Properties: expected name:type:count triples, found ${describe(props)}`);
    properties = props.value;
    info.delete("Properties");
  }
  return { info, cell, pbc, properties };
}

/**
 * The cell, pbc and Properties text of the comment line b[s .. e) as the frame reader takes them (plainFrameAt);
 * undefined when the line is not a valid comment line there.
 */
export function commentHeader(b: Uint8Array, s: number, e: number): Pick<Header, "cell" | "pbc" | "properties"> | undefined {
  try {
    const info = parseKeyValuesBytes(b, s, e) ?? commentKeyValues(Buffer.from(b.buffer, b.byteOffset + s, e - s).toString("utf8").trim());
    return headerFromInfo(info, new Float64Array(9));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Atom lines
// ---------------------------------------------------------------------------------------------------------------

const K_SPECIES = 0;
const K_REAL = 1;
const K_INT = 2;
const K_BOOL = 3;
const K_STR = 4;

/** How each whitespace-separated column of an atom line is parsed and where it is stored. */
interface Plan {
  spec: string;
  props: PropertyColumn[];
  ncolumns: number;
  /** Per column: K_* kind, index into props, sub-column. */
  kind: Uint8Array;
  prop: Uint16Array;
  sub: Uint16Array;
  posIndex: number;
  speciesIndex: number;
  zIndex: number;
  columnsText: string;
  /** Per column: the width of its property (how far its index moves per atom). */
  colStride: Int32Array;
  /** Scratch for parseAtoms: per column, the index of the next atom's value in its property's array. */
  colIndex: Int32Array;
  /** Columns of R and I properties per atom. */
  realWidth: number;
}

function makePlan(spec: string): Plan {
  const props = parseProperties(spec);
  const posIndex = props.findIndex((p) => p.name === "pos");
  const speciesIndex = props.findIndex((p) => p.name === "species");
  const zIndex = props.findIndex((p) => p.name === "Z");
  const where = `Properties "${spec}"`;
  if (posIndex < 0) throw new Error(`${where} has no pos column (expected pos:R:3)`);
  const pos = props[posIndex];
  if (pos.ncols !== 3 || (pos.type !== "R" && pos.type !== "I")) throw new Error(`${where}: expected pos:R:3, found pos:${pos.type}:${pos.ncols}`);
  if (speciesIndex < 0 && zIndex < 0) throw new Error(`${where} has neither species:S:1 nor Z:I:1`);
  if (speciesIndex >= 0 && (props[speciesIndex].type !== "S" || props[speciesIndex].ncols !== 1)) {
    throw new Error(`${where}: expected species:S:1, found species:${props[speciesIndex].type}:${props[speciesIndex].ncols}`);
  }
  if (zIndex >= 0 && (props[zIndex].type !== "I" || props[zIndex].ncols !== 1)) {
    throw new Error(`${where}: expected Z:I:1, found Z:${props[zIndex].type}:${props[zIndex].ncols}`);
  }
  const ncolumns = props.reduce((n, p) => n + p.ncols, 0);
  const kind = new Uint8Array(ncolumns);
  const prop = new Uint16Array(ncolumns);
  const sub = new Uint16Array(ncolumns);
  let c = 0;
  props.forEach((p, k) => {
    for (let j = 0; j < p.ncols; j++, c++) {
      prop[c] = k;
      sub[c] = j;
      kind[c] = k === speciesIndex ? K_SPECIES : p.type === "R" ? K_REAL : p.type === "I" ? K_INT : p.type === "L" ? K_BOOL : K_STR;
    }
  });
  const columnsText = props.map((p) => `${p.name}:${p.type}:${p.ncols}`).join(" ");
  const colStride = Int32Array.from(prop, (k) => props[k].ncols);
  const realWidth = props.reduce((n, p, k) => (k !== speciesIndex && (p.type === "R" || p.type === "I") ? n + p.ncols : n), 0);
  return { spec, props, ncolumns, kind, prop, sub, posIndex, speciesIndex, zIndex, columnsText, colStride, colIndex: new Int32Array(ncolumns), realWidth };
}

/**
 * The kinds ("R", "I", "L" or "S") of the atom-line columns after species:S:1 and pos:R:3, for a Properties text
 * that starts with those two and has no Z column; undefined for any other, or one the frame reader refuses.
 */
export function columnsAfterPositions(spec: string): ("R" | "I" | "L" | "S")[] | undefined {
  let plan: Plan;
  try {
    plan = makePlan(spec);
  } catch {
    return undefined;
  }
  if (plan.speciesIndex !== 0 || plan.posIndex !== 1 || plan.zIndex >= 0 || plan.props[1].type !== "R") return undefined;
  const names = { [K_REAL]: "R", [K_INT]: "I", [K_BOOL]: "L", [K_STR]: "S" } as const;
  return Array.from(plan.kind.subarray(4), (k) => names[k as keyof typeof names]);
}

/** 10^k, exact (k <= 22): a decimal mantissa over one of these is the correctly rounded value of the decimal. */
export const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/** End of the last token read by the token readers. */
let tokenEnd = 0;
/** Value of the last number read; a typed-array slot, so that no heap number is allocated per value. */
const NUM = new Float64Array(1);

/**
 * Reads a decimal number at b[p..] (p < end) into NUM[0] and sets tokenEnd; false if the token is not a number in
 * Python's float() grammar. Exact when the digits make an integer below 2^53 and the power of ten is at most 22
 * (one correctly rounded multiply or divide); otherwise defers to Number(). Never reads at or past `end`: reading
 * past the end of a typed array would slow down every later read.
 */
function readReal(b: Uint8Array, p: number, end: number): boolean {
  const start = p;
  let c = b[p];
  let neg = false;
  if (c === 45 || c === 43) {
    neg = c === 45;
    c = ++p < end ? b[p] : 32;
  }
  let mant = 0;
  let exp = 0;
  const first = p;
  while ((c - 48) >>> 0 <= 9) {
    mant = mant * 10 + (c - 48);
    c = ++p < end ? b[p] : 32;
  }
  let any = p > first;
  if (c === 46) {
    c = ++p < end ? b[p] : 32;
    const fracStart = p;
    while ((c - 48) >>> 0 <= 9) {
      mant = mant * 10 + (c - 48);
      c = ++p < end ? b[p] : 32;
    }
    exp = fracStart - p;
    any = any || p > fracStart;
  }
  if (any && (c === 101 || c === 69)) {
    c = ++p < end ? b[p] : 32;
    let eneg = false;
    if (c === 45 || c === 43) {
      eneg = c === 45;
      c = ++p < end ? b[p] : 32;
    }
    let e = 0;
    const expStart = p;
    while ((c - 48) >>> 0 <= 9) {
      if (e < 100000) e = e * 10 + (c - 48);
      c = ++p < end ? b[p] : 32;
    }
    if (p === expStart) return slowReal(b, start, end);
    exp += eneg ? -e : e;
  }
  if (!any || !isSpace(c)) return slowReal(b, start, end);
  tokenEnd = p;
  NUM[0] = exactDecimal(mant, exp, neg) ?? Number(latin1(b, start, p));
  return true;
}

/**
 * ±mant·10^exp when both the mantissa and the power of ten are exact doubles: one correctly rounded operation gives
 * the same double as a full decimal parse. Undefined otherwise (the caller parses the text).
 */
export function exactDecimal(mant: number, exp: number, neg: boolean): number | undefined {
  if (mant > Number.MAX_SAFE_INTEGER || exp < -22 || exp > 22) return undefined;
  const v = exp === 0 ? mant : exp < 0 ? mant / POW10[-exp] : mant * POW10[exp];
  return neg ? -v : v;
}

function latin1(b: Uint8Array, from: number, to: number): string {
  return Buffer.from(b.buffer, b.byteOffset + from, to - from).toString("latin1");
}

function tokenEndAt(b: Uint8Array, p: number, end: number): number {
  while (p < end && !isSpace(b[p])) p++;
  return p;
}

function slowReal(b: Uint8Array, start: number, end: number): boolean {
  tokenEnd = tokenEndAt(b, start, end);
  const v = parseFloatToken(latin1(b, start, tokenEnd));
  if (v === undefined) return false;
  NUM[0] = v;
  return true;
}

/** Reads an integer into NUM[0] like readReal; false if the token is not an integer. */
function readInt(b: Uint8Array, p: number, end: number): boolean {
  const start = p;
  let c = b[p];
  let neg = false;
  if (c === 45 || c === 43) {
    neg = c === 45;
    c = ++p < end ? b[p] : 32;
  }
  let v = 0;
  const first = p;
  while ((c - 48) >>> 0 <= 9) {
    v = v * 10 + (c - 48);
    c = ++p < end ? b[p] : 32;
  }
  if (p === first || p - first > 15 || !isSpace(c)) {
    tokenEnd = tokenEndAt(b, start, end);
    const slow = parseIntToken(latin1(b, start, tokenEnd));
    if (slow === undefined) return false;
    NUM[0] = slow;
    return true;
  }
  tokenEnd = p;
  NUM[0] = neg && v !== 0 ? -v : v;
  return true;
}

function readBool(b: Uint8Array, p: number, end: number): boolean | undefined {
  tokenEnd = tokenEndAt(b, p, end);
  const len = tokenEnd - p;
  const c = b[p];
  if (len === 1) return c === 84 ? true : c === 70 ? false : undefined;
  const word = latin1(b, p, tokenEnd);
  return word === "True" ? true : word === "False" ? false : undefined;
}

/** Symbols by a key made of the first bytes of the token, so common species cost no string allocation. */
const speciesCache = new Map<number, string>();

/** The element symbol of the token at b[p] (ending by `end` at the latest), as ASE capitalises it; undefined when it names none. */
export function readSpecies(b: Uint8Array, p: number, end: number): string | undefined {
  const e = tokenEndAt(b, p, end);
  tokenEnd = e;
  const len = e - p;
  if (len <= 3) {
    const c0 = b[p];
    const c1 = len > 1 ? b[p + 1] : 0;
    const c2 = len > 2 ? b[p + 2] : 0;
    if (c0 < 128 && c1 < 128 && c2 < 128) {
      const key = (len << 21) | (c0 << 14) | (c1 << 7) | c2;
      const hit = speciesCache.get(key);
      if (hit !== undefined) return hit;
      const sym = capitalize(latin1(b, p, e));
      if (!SYMBOL_SET.has(sym)) return undefined;
      speciesCache.set(key, sym);
      return sym;
    }
  }
  const sym = capitalize(Buffer.from(b.buffer, b.byteOffset + p, len).toString("utf8"));
  return SYMBOL_SET.has(sym) ? sym : undefined;
}

/** Python's str.capitalize(), as ASE applies it to species (`MG` -> `Mg`). */
function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

interface AtomData {
  symbols: string[];
  positions: Float64Array;
  arrays: Map<string, AtomArray>;
}

function countColumns(b: Uint8Array, q: number, end: number): number {
  let n = 0;
  for (;;) {
    while (q < end && b[q] !== 10 && isSpace(b[q])) q++;
    if (q >= end || b[q] === 10) return n;
    n++;
    while (q < end && !isSpace(b[q])) q++;
  }
}

function columnCountError(b: Uint8Array, lineStart: number, end: number, plan: Plan, file: string, line: number): InputError {
  return new InputError(file, line, `expected ${plan.ncolumns} columns (${plan.columnsText}), found ${countColumns(b, lineStart, end)}`);
}

function badTokenError(b: Uint8Array, q: number, end: number, plan: Plan, c: number, file: string, line: number): InputError {
  const pr = plan.props[plan.prop[c]];
  const name = pr.ncols === 1 ? pr.name : `${pr.name}[${plan.sub[c]}]`;
  let text = Buffer.from(b.buffer, b.byteOffset + q, tokenEndAt(b, q, end) - q).toString("utf8");
  if (text.length > 40) text = `${text.slice(0, 40)}...`;
  const expected = plan.kind[c] === K_SPECIES ? "a chemical symbol" : pr.type === "R" ? "a real number" : pr.type === "I" ? "an integer" : "T or F";
  return new InputError(file, line, `column ${c + 1} (${name}): expected ${expected}, found "${text}"`);
}

/** The arrays parseAtoms fills, one per property. */
interface AtomColumns {
  real: (Float64Array | null)[];
  bools: (Uint8Array | null)[];
  strs: (string[] | null)[];
  symbols: string[];
  /** Per column: its R/I array. */
  colReal: (Float64Array | null)[];
}

/**
 * Arrays for `natoms` atoms; the R and I ones are views into `store` from `byteOffset` on (one allocation per frame
 * instead of one per array). Resets plan.colIndex.
 */
function atomColumns(plan: Plan, natoms: number, store: ArrayBuffer, byteOffset: number): AtomColumns {
  const { props, ncolumns, prop } = plan;
  const real: (Float64Array | null)[] = [];
  const bools: (Uint8Array | null)[] = [];
  const strs: (string[] | null)[] = [];
  let offset = byteOffset;
  for (let k = 0; k < props.length; k++) {
    const pr = props[k];
    const size = natoms * pr.ncols;
    if (k !== plan.speciesIndex && (pr.type === "R" || pr.type === "I")) {
      real.push(new Float64Array(store, offset, size));
      offset += 8 * size;
    } else real.push(null);
    bools.push(pr.type === "L" ? new Uint8Array(size) : null);
    strs.push(k !== plan.speciesIndex && pr.type === "S" ? new Array<string>(size) : null);
  }
  const colReal: (Float64Array | null)[] = [];
  for (let c = 0; c < ncolumns; c++) colReal.push(real[prop[c]]);
  plan.colIndex.set(plan.sub);
  return { real, bools, strs, symbols: new Array<string>(natoms), colReal };
}

/** The filled columns as frame data; symbols from Z replace those of species (InputError for a bad Z). */
function atomData(plan: Plan, natoms: number, cols: AtomColumns, file: string, firstLine: number): AtomData {
  const { props } = plan;
  const { real, bools, strs, symbols } = cols;
  const positions = real[plan.posIndex] as Float64Array;
  if (plan.zIndex >= 0) {
    // ASE 3.22.1 takes the atomic numbers from Z even when species is present.
    const z = real[plan.zIndex] as Float64Array;
    for (let a = 0; a < natoms; a++) {
      const sym = SYMBOLS[z[a]];
      if (sym === undefined) throw new InputError(file, firstLine + a, `Z: ${z[a]} is not an atomic number (0-${SYMBOLS.length - 1})`);
      symbols[a] = sym;
    }
  }
  const arrays = new Map<string, AtomArray>();
  for (let k = 0; k < props.length; k++) {
    if (k === plan.posIndex || k === plan.speciesIndex) continue;
    const pr = props[k];
    if (pr.type === "R" || pr.type === "I") arrays.set(pr.name, { dtype: pr.type, ncols: pr.ncols, data: real[k] as Float64Array });
    else if (pr.type === "L") arrays.set(pr.name, { dtype: "L", ncols: pr.ncols, data: bools[k] as Uint8Array });
    else arrays.set(pr.name, { dtype: "S", ncols: pr.ncols, data: strs[k] as string[] });
  }
  return { symbols, positions, arrays };
}

/**
 * Parses `natoms` atom lines starting at b[p]; the frame's bytes end at `end` (all lines present). Throws
 * InputError naming `file` and the line of a bad atom line.
 */
function parseAtoms(b: Uint8Array, p: number, end: number, natoms: number, plan: Plan, file: string, firstLine: number): AtomData {
  const { ncolumns, kind, prop, colIndex, colStride } = plan;
  const cols = atomColumns(plan, natoms, new ArrayBuffer(8 * natoms * plan.realWidth), 0);
  const { colReal, bools, strs, symbols } = cols;
  for (let a = 0; a < natoms; a++) {
    const lineStart = p;
    for (let c = 0; c < ncolumns; c++) {
      let ch = p < end ? b[p] : 10;
      while (ch !== 10 && isSpace(ch)) ch = ++p < end ? b[p] : 10;
      if (ch === 10) throw columnCountError(b, lineStart, end, plan, file, firstLine + a);
      const at = colIndex[c];
      colIndex[c] = at + colStride[c];
      switch (kind[c]) {
        case K_REAL: {
          if (!readReal(b, p, end)) throw badTokenError(b, p, end, plan, c, file, firstLine + a);
          (colReal[c] as Float64Array)[at] = NUM[0];
          break;
        }
        case K_INT: {
          if (!readInt(b, p, end)) throw badTokenError(b, p, end, plan, c, file, firstLine + a);
          (colReal[c] as Float64Array)[at] = NUM[0];
          break;
        }
        case K_SPECIES: {
          const sym = readSpecies(b, p, end);
          if (sym === undefined) throw badTokenError(b, p, end, plan, c, file, firstLine + a);
          symbols[a] = sym;
          break;
        }
        case K_BOOL: {
          const v = readBool(b, p, end);
          if (v === undefined) throw badTokenError(b, p, end, plan, c, file, firstLine + a);
          (bools[prop[c]] as Uint8Array)[at] = v ? 1 : 0;
          break;
        }
        default: {
          tokenEnd = tokenEndAt(b, p, end);
          (strs[prop[c]] as string[])[at] = Buffer.from(b.buffer, b.byteOffset + p, tokenEnd - p).toString("utf8");
        }
      }
      p = tokenEnd;
    }
    let ch = p < end ? b[p] : 10;
    while (ch !== 10 && isSpace(ch)) ch = ++p < end ? b[p] : 10;
    if (ch !== 10) throw columnCountError(b, lineStart, end, plan, file, firstLine + a);
    p++;
  }
  return atomData(plan, natoms, cols, file, firstLine);
}

/** Thrown by the plain-frame readers when the frame needs the general path; never seen outside this module. */
const NOT_PLAIN = Symbol("not a plain frame");

/**
 * parseAtoms for atom lines in the usual form (columns apart by spaces or tabs, `\n` or `\r\n` line ends): fills
 * `cols` with the same values and returns where the lines end; throws NOT_PLAIN on anything else, including every
 * error. b[end - 1] must be a newline: the inner loops stop at it, so they need no bounds checks of their own.
 */
function parseAtomsPlain(b: Uint8Array, p: number, end: number, natoms: number, plan: Plan, cols: AtomColumns): number {
  const { ncolumns, kind, colIndex, colStride } = plan;
  const { colReal, symbols } = cols;
  for (let a = 0; a < natoms; a++) {
    if (p >= end) throw NOT_PLAIN;
    for (let c = 0; c < ncolumns; c++) {
      let d = b[p];
      while (d === 32 || d === 9) d = b[++p];
      if (d >= 10 && d <= 13) throw NOT_PLAIN;
      const at = colIndex[c];
      colIndex[c] = at + colStride[c];
      switch (kind[c]) {
        case K_REAL: {
          // Inline for the usual `-12.345678`; anything else (exponent, `+`, `.5`, long mantissa) via readReal.
          const start = p;
          const neg = d === 45;
          if (neg) d = b[++p];
          const first = p;
          let mant = 0;
          while ((d - 48) >>> 0 <= 9) {
            mant = mant * 10 + (d - 48);
            d = b[++p];
          }
          let scale = 0;
          if (d === 46 && p > first) {
            d = b[++p];
            const fracStart = p;
            while ((d - 48) >>> 0 <= 9) {
              mant = mant * 10 + (d - 48);
              d = b[++p];
            }
            scale = p - fracStart;
          }
          if (p > first && (d === 32 || d === 10 || d === 9 || d === 13) && scale <= 22 && mant <= Number.MAX_SAFE_INTEGER) {
            const v = scale === 0 ? mant : mant / POW10[scale];
            (colReal[c] as Float64Array)[at] = neg ? -v : v;
          } else {
            if (!readReal(b, start, end)) throw NOT_PLAIN;
            (colReal[c] as Float64Array)[at] = NUM[0];
            p = tokenEnd;
          }
          break;
        }
        case K_SPECIES: {
          const sym = readSpecies(b, p, end);
          if (sym === undefined) throw NOT_PLAIN;
          symbols[a] = sym;
          p = tokenEnd;
          break;
        }
        default:
          p = plainColumn(b, p, end, c, at, plan, cols);
      }
    }
    let d = b[p];
    while (d === 32 || d === 9 || d === 13) d = b[++p];
    if (d !== 10) throw NOT_PLAIN;
    p++;
  }
  return p;
}

/** An I, L or S value for parseAtomsPlain (kept apart so that its hot loop stays small); returns the token end. */
function plainColumn(b: Uint8Array, p: number, end: number, c: number, at: number, plan: Plan, cols: AtomColumns): number {
  const k = plan.prop[c];
  switch (plan.kind[c]) {
    case K_INT:
      if (!readInt(b, p, end)) throw NOT_PLAIN;
      (cols.real[k] as Float64Array)[at] = NUM[0];
      break;
    case K_BOOL: {
      const v = readBool(b, p, end);
      if (v === undefined) throw NOT_PLAIN;
      (cols.bools[k] as Uint8Array)[at] = v ? 1 : 0;
      break;
    }
    default:
      tokenEnd = tokenEndAt(b, p, end);
      (cols.strs[k] as string[])[at] = Buffer.from(b.buffer, b.byteOffset + p, tokenEnd - p).toString("utf8");
  }
  return tokenEnd;
}

// ---------------------------------------------------------------------------------------------------------------
// Comment line straight from bytes: the common case
// ---------------------------------------------------------------------------------------------------------------

/**
 * Recently seen short ASCII strings, found by a hash of their bytes: the keys and many values of a comment line
 * repeat in every frame, and this way they cost no new string. Direct-mapped, so its size is fixed.
 */
class AsciiStrings {
  private readonly slots = new Array<string | undefined>(1024).fill(undefined);

  get(b: Uint8Array, s: number, e: number): string {
    const len = e - s;
    if (len > 64) return latin1(b, s, e);
    let h = len;
    for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 0x01000193);
    const slot = (h ^ (h >>> 16)) & 1023;
    const hit = this.slots[slot];
    if (hit !== undefined && hit.length === len) {
      let same = true;
      for (let k = 0; k < len && same; k++) same = hit.charCodeAt(k) === b[s + k];
      if (same) return hit;
    }
    const text = latin1(b, s, e);
    this.slots[slot] = text;
    return text;
  }
}

const asciiStrings = new AsciiStrings();

/** Byte classes for the comment fast path. */
const SPACE = 1;
/** A key or bare-value byte that CommentScanner.word reads as itself: printable ASCII but for " ' = [ \ {. */
const PLAIN = 2;
/** Ends a token of an old-style value: whitespace or a comma. */
const SEPARATOR = 4;
/** A byte allowed inside quotes: printable ASCII or whitespace, but for `"` and `\`. */
const QUOTABLE = 8;
const BYTE_CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const space = c === 32 || (c >= 9 && c <= 13);
  BYTE_CLASS[c] =
    (space ? SPACE | SEPARATOR | QUOTABLE : 0) |
    (c === 44 ? SEPARATOR : 0) |
    (c === 33 || (c > 34 && c < 127 && c !== 39 && c !== 61 && c !== 91 && c !== 92 && c !== 123) ? PLAIN : 0) |
    (c >= 32 && c < 127 && c !== 34 && c !== 92 ? QUOTABLE : 0);
}

const NOT_NUMBER = 0;
const INT_TOKEN = 1;
const FLOAT_TOKEN = 2;
/** A token that the general grammar may read as a number (`1_000`, `nan`, a long integer): leave it to that path. */
const UNSURE = 3;

/**
 * Classifies the token at b[s..] (it ends at whitespace, a comma or `e`) as parseIntToken and parseFloatToken
 * would, setting tokenEnd, and NUM[0] for a number. Made only of digits, signs, `.` and e/E, a token is a number
 * exactly when it fits the decimal grammar that Number() and Python's float() share.
 */
function commentToken(b: Uint8Array, s: number, e: number): number {
  let p = s;
  let neg = false;
  if (b[p] === 45) {
    neg = true;
    p++;
  } else if (b[p] === 43) p++;
  let mant = 0;
  const first = p;
  while (p < e && (b[p] - 48) >>> 0 <= 9) mant = mant * 10 + (b[p++] - 48);
  const intDigits = p - first;
  let any = intDigits > 0;
  let isInt = true;
  let exp = 0;
  if (p < e && b[p] === 46) {
    isInt = false;
    p++;
    const fracStart = p;
    while (p < e && (b[p] - 48) >>> 0 <= 9) mant = mant * 10 + (b[p++] - 48);
    exp = fracStart - p;
    any = any || p > fracStart;
  }
  if (any && p < e && (b[p] | 32) === 101) {
    isInt = false;
    p++;
    let eneg = false;
    if (p < e && b[p] === 45) {
      eneg = true;
      p++;
    } else if (p < e && b[p] === 43) p++;
    const expStart = p;
    let x = 0;
    while (p < e && (b[p] - 48) >>> 0 <= 9) {
      if (x < 100000) x = x * 10 + (b[p] - 48);
      p++;
    }
    if (p === expStart) any = false;
    exp += eneg ? -x : x;
  }
  if (!any || (p < e && (BYTE_CLASS[b[p]] & SEPARATOR) === 0)) {
    while (p < e && (BYTE_CLASS[b[p]] & SEPARATOR) === 0) p++;
    tokenEnd = p;
    return notNumberKind(b, s, p);
  }
  tokenEnd = p;
  if (isInt) {
    if (intDigits > 15) return UNSURE;
    NUM[0] = neg ? -mant : mant;
    return INT_TOKEN;
  }
  NUM[0] = exactDecimal(mant, exp, neg) ?? Number(latin1(b, s, p));
  return FLOAT_TOKEN;
}

/** NOT_NUMBER, or UNSURE for tokens with `_` (`1_000`) or spelling nan / inf / infinity. */
function notNumberKind(b: Uint8Array, s: number, e: number): number {
  let numberChars = true;
  let underscore = false;
  for (let p = s; p < e; p++) {
    const c = b[p];
    if (c === 95) underscore = true;
    else if (!((c - 48) >>> 0 <= 9 || c === 43 || c === 45 || c === 46 || (c | 32) === 101)) numberChars = false;
  }
  if (numberChars) return underscore ? UNSURE : NOT_NUMBER;
  const p = b[s] === 43 || b[s] === 45 ? s + 1 : s;
  const first = b[p] | 32;
  return (first === 110 || first === 105) && FLOAT_WORD_RE.test(latin1(b, s, e)) ? UNSURE : NOT_NUMBER;
}

/** Whether b[s..e) spells `word`. */
function spells(b: Uint8Array, s: number, e: number, word: string): boolean {
  if (e - s !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[s + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** The token as one of the BOOLS words; undefined otherwise. */
function boolToken(b: Uint8Array, s: number, e: number): boolean | undefined {
  const len = e - s;
  const c = b[s];
  if (len === 1) return c === 84 ? true : c === 70 ? false : undefined;
  if (len === 4) return spells(b, s, e, "True") || spells(b, s, e, "true") || spells(b, s, e, "TRUE") ? true : undefined;
  if (len === 5) return spells(b, s, e, "False") || spells(b, s, e, "false") || spells(b, s, e, "FALSE") ? false : undefined;
  return undefined;
}

/** typeValue over the bytes of an old-style value; undefined when the value needs the general path. */
function typeValueBytes(b: Uint8Array, s: number, e: number): InfoValue | undefined {
  const values: number[] = [];
  let tokens = 0;
  let allNumbers = true;
  let allInts = true;
  let bools: boolean[] | undefined = [];
  let i = s;
  for (;;) {
    while (i < e && (BYTE_CLASS[b[i]] & SEPARATOR) !== 0) i++;
    if (i >= e) break;
    const t = i;
    tokens++;
    // Like typeTokens, numbers are looked for up to the first token that is not one.
    if (allNumbers) {
      const kind = commentToken(b, t, e);
      i = tokenEnd;
      if (kind === UNSURE) return undefined;
      if (kind === NOT_NUMBER) allNumbers = false;
      else {
        values.push(NUM[0]);
        if (kind === FLOAT_TOKEN) allInts = false;
      }
    } else while (i < e && (BYTE_CLASS[b[i]] & SEPARATOR) === 0) i++;
    if (bools !== undefined) {
      const v = boolToken(b, t, i);
      if (v === undefined) bools = undefined;
      else bools.push(v);
    }
  }
  if (tokens > 0 && allNumbers) {
    // An integer has no signed zero.
    if (allInts) for (let k = 0; k < values.length; k++) values[k] += 0;
    return scalarOrArray({ dtype: allInts ? "int" : "float", data: values });
  }
  if (tokens > 0 && bools !== undefined) return scalarOrArray({ dtype: "bool", data: bools });
  const raw = asciiStrings.get(b, s, e);
  if (raw.startsWith("_JSON ")) return typeJson(raw.slice(6));
  return { kind: "string", value: raw };
}

/**
 * The key/values of the comment line b[s..e), as parseKeyValues gives them, read straight from the bytes for the
 * common forms: printable ASCII, `key=value`, `key="value"` without backslashes, bare keys. Undefined for anything
 * else (brackets, braces, single quotes, escapes, `uid`, text that may read as `1_000` or `nan`, any error): the
 * caller then uses parseKeyValues, which also gives the error.
 */
export function parseKeyValuesBytes(b: Uint8Array, s: number, e: number): Map<string, InfoValue> | undefined {
  try {
    return keyValuesBytes(b, s, e);
  } catch (err) {
    if (err instanceof CommentError) return undefined;
    throw err;
  }
}

function keyValuesBytes(b: Uint8Array, s: number, e: number): Map<string, InfoValue> | undefined {
  const out = new Map<string, InfoValue>();
  let i = s;
  for (;;) {
    while (i < e && (BYTE_CLASS[b[i]] & SPACE) !== 0) i++;
    if (i >= e) return out;
    const keyStart = i;
    while (i < e && (BYTE_CLASS[b[i]] & PLAIN) !== 0) i++;
    if (i === keyStart || (i < e && b[i] !== 61 && (BYTE_CLASS[b[i]] & SPACE) === 0)) return undefined;
    if (i - keyStart === 3 && (b[keyStart] | 32) === 117 && (b[keyStart + 1] | 32) === 105 && (b[keyStart + 2] | 32) === 100) return undefined;
    const key = asciiStrings.get(b, keyStart, i);
    while (i < e && (BYTE_CLASS[b[i]] & SPACE) !== 0) i++;
    if (i >= e || b[i] !== 61) {
      out.set(key, { kind: "bool", value: true });
      continue;
    }
    i++;
    while (i < e && (BYTE_CLASS[b[i]] & SPACE) !== 0) i++;
    if (i >= e) {
      out.set(key, { kind: "string", value: "" });
      return out;
    }
    let valueStart: number;
    let valueEnd: number;
    if (b[i] === 34) {
      valueStart = ++i;
      while (i < e && (BYTE_CLASS[b[i]] & QUOTABLE) !== 0) i++;
      if (i >= e || b[i] !== 34) return undefined;
      valueEnd = i++;
      if (i < e && (BYTE_CLASS[b[i]] & SPACE) === 0) return undefined;
    } else {
      valueStart = i;
      while (i < e && (BYTE_CLASS[b[i]] & PLAIN) !== 0) i++;
      if (i < e && (BYTE_CLASS[b[i]] & SPACE) === 0) return undefined;
      valueEnd = i;
    }
    const value = typeValueBytes(b, valueStart, valueEnd);
    if (value === undefined) return undefined;
    out.set(key, SPECIAL_3X3.has(key) ? stressMatrix(key, value) : value);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Frames from a byte stream
// ---------------------------------------------------------------------------------------------------------------

type FrameResult = { frame: Frame; next: number; lines: number } | { incomplete: true; needNewlines: number };

/**
 * Incremental extxyz parser: `push` byte chunks as they arrive and get the frames they complete, then call `end`.
 * Holds at most one partial frame plus the chunk being parsed. A bad frame ends the file: the call that meets it
 * still returns every frame before it, and that call (if it returned nothing) or the next `push`/`end` throws the
 * InputError.
 */
export class ExtxyzParser {
  private pending: Buffer[] = [];
  private needNewlines = 0;
  /** Line number of the first byte of `pending`. */
  private line = 1;
  /** First blank line seen where a frame could start; content after it is an error. */
  private blankLine = 0;
  private plan: Plan | undefined;
  private started = false;
  private failure: unknown;
  /** A frame had VEC lines, which plainFrameAt leaves to frameAt. */
  private vecLines = false;
  /** Bytes pushed so far; `pending` is always the last bytes pushed, so it starts at this minus its length. */
  private bytesPushed = 0;
  /** The count line and atom count of the last frame read, to explain an atom line where a count should be. */
  private lastFrame: { line: number; natoms: number } | null = null;

  /** firstLine: the line number of the first byte pushed (a later part of a file split at frame starts). */
  constructor(
    readonly file: string,
    firstLine = 1,
  ) {
    this.line = firstLine;
  }

  push(chunk: Uint8Array): ExtxyzFrameAt[] {
    if (this.failure !== undefined) throw this.failure;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length === 0) return [];
    this.pending.push(buf);
    this.bytesPushed += buf.length;
    if (this.needNewlines > 0) {
      let q = buf.indexOf(10);
      while (q >= 0 && this.needNewlines > 0) {
        this.needNewlines--;
        if (this.needNewlines > 0) q = buf.indexOf(10, q + 1);
      }
      if (this.needNewlines > 0) return [];
    }
    return this.drain(false);
  }

  end(): ExtxyzFrameAt[] {
    if (this.failure !== undefined) throw this.failure;
    return this.drain(true);
  }

  private drain(final: boolean): ExtxyzFrameAt[] {
    const out: ExtxyzFrameAt[] = [];
    const pending = this.pending;
    if (pending.length === 0) return out;
    this.pending = [];
    /** Offset of b[0] in the bytes pushed. */
    let base = this.bytesPushed;
    for (const part of pending) base -= part.length;
    let b: Buffer | undefined;
    let last: Buffer | undefined;
    // Frames that start in the held-back tail are read from the tail plus the start of the new chunk, and the rest
    // from the chunk itself, so that the chunk is not copied. `stop` is where the tail ends in `b`.
    let stop = Infinity;
    if (pending.length > 1 && this.started && !final) {
      last = pending[pending.length - 1];
      const head = pending.length === 2 ? pending[0] : Buffer.concat(pending.slice(0, -1));
      const extra = Math.max(1 << 16, 2 * head.length);
      if (extra < last.length) {
        b = Buffer.concat([head, last.subarray(0, extra)]);
        stop = head.length;
      }
    }
    if (b === undefined) {
      b = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      // A UTF-8 byte-order mark may arrive split over the first chunks.
      if (!this.started && (b.length >= 3 || final)) {
        this.started = true;
        if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
          b = b.subarray(3);
          base += 3;
        }
      }
    }
    let pos = 0;
    // Just past the last newline in b.
    let linesEnd = b.lastIndexOf(10) + 1;
    for (;;) {
      if (pos >= stop) {
        // Past the tail: carry on in the chunk.
        b = last as Buffer;
        linesEnd = b.lastIndexOf(10) + 1;
        base += stop;
        pos -= stop;
        stop = Infinity;
      }
      if (pos >= b.length) break;
      let r;
      try {
        r = this.frameAt(b, pos, final, linesEnd);
      } catch (err) {
        this.failure = err;
        if (out.length === 0) throw err;
        return out;
      }
      if ("incomplete" in r) {
        if (stop !== Infinity) {
          // The start of the chunk was not enough: read on from the tail and the whole chunk.
          b = Buffer.concat([b.subarray(pos, stop), last as Buffer]);
          linesEnd = b.lastIndexOf(10) + 1;
          base += pos;
          pos = 0;
          stop = Infinity;
          continue;
        }
        this.needNewlines = r.needNewlines;
        // Copy so that the (possibly large) chunk can be freed.
        this.pending = [Buffer.from(b.subarray(pos))];
        return out;
      }
      if (r.frame) {
        out.push({ frame: r.frame, line: this.line, start: base + pos });
        this.lastFrame = { line: this.line, natoms: r.frame.natoms };
      }
      this.line += r.lines;
      pos = r.next;
    }
    this.needNewlines = 0;
    return out;
  }

  /**
   * The common frame (atom count alone on its line, no VEC lines, every line ending in a newline before
   * `linesEnd`) read without first finding every line end; undefined when the frame is anything else or has an
   * error, which frameAt then handles.
   */
  private plainFrameAt(b: Buffer, pos: number, final: boolean, linesEnd: number): FrameResult | undefined {
    const n = linesEnd;
    let p = pos;
    while (p < n && (b[p] === 32 || b[p] === 9)) p++;
    const digits = p;
    let natoms = 0;
    while (p < n && (b[p] - 48) >>> 0 <= 9) natoms = natoms * 10 + (b[p++] - 48);
    if (p === digits || p - digits > 9) return undefined;
    while (p < n && (b[p] === 32 || b[p] === 9 || b[p] === 13)) p++;
    if (p >= n || b[p] !== 10) return undefined;
    const commentStart = p + 1;
    const commentEnd = b.indexOf(10, commentStart);
    if (commentEnd < 0) return undefined;
    // An atom line has at least two bytes: a count larger than the data allows is left to frameAt, which waits
    // for the lines before allocating anything.
    if (2 * natoms > n - commentEnd) return undefined;
    let header: Header;
    let atoms: AtomData;
    let next: number;
    try {
      const info = parseKeyValuesBytes(b, commentStart, commentEnd) ?? commentKeyValues(b.toString("utf8", commentStart, commentEnd).trim());
      const props = info.get("Properties");
      const spec = props === undefined ? DEFAULT_PROPERTIES : props.kind === "string" ? props.value : undefined;
      if (spec === undefined) return undefined;
      let plan = this.plan;
      if (plan === undefined || plan.spec !== spec) plan = this.plan = makePlan(spec);
      // The cell and the R and I arrays share one allocation.
      const store = new ArrayBuffer(8 * (9 + natoms * plan.realWidth));
      header = headerFromInfo(info, new Float64Array(store, 0, 9));
      const cols = atomColumns(plan, natoms, store, 72);
      next = parseAtomsPlain(b, commentEnd + 1, n, natoms, plan, cols);
      atoms = atomData(plan, natoms, cols, this.file, this.line + 2);
    } catch {
      return undefined;
    }
    // As in frameAt: VEC lines may follow.
    const size = b.length;
    let t = next;
    while (t < size && (b[t] === 32 || b[t] === 9)) t++;
    if (t + 3 > size) {
      if (!final && (t === size || b[t] === 86)) return undefined;
    } else if (b[t] === 86 && b[t + 1] === 69 && b[t + 2] === 67) {
      // A file with VEC lines has them in every frame, most likely: stop reading its atoms twice.
      this.vecLines = true;
      return undefined;
    }
    const frame: Frame = {
      natoms,
      symbols: atoms.symbols,
      positions: atoms.positions,
      cell: header.cell,
      pbc: header.pbc,
      info: header.info,
      arrays: atoms.arrays,
    };
    return { frame, next, lines: 2 + natoms };
  }

  /** One frame (or one blank line) at b[pos]; `frame` is null for a blank line. */
  private frameAt(b: Buffer, pos: number, final: boolean, linesEnd: number): FrameResult | { frame: null; next: number; lines: number } {
    if (this.blankLine === 0 && !this.vecLines) {
      const plain = this.plainFrameAt(b, pos, final, linesEnd);
      if (plain !== undefined) return plain;
    }
    const file = this.file;
    const line = this.line;
    let nl = b.indexOf(10, pos);
    if (nl < 0) {
      if (!final) return { incomplete: true, needNewlines: 1 };
      nl = b.length;
    }
    let s = pos;
    let e = nl;
    while (s < e && isSpace(b[s])) s++;
    while (e > s && isSpace(b[e - 1])) e--;
    if (s === e) {
      if (this.blankLine === 0) this.blankLine = line;
      return { frame: null, next: nl + 1, lines: 1 };
    }
    if (this.blankLine !== 0) {
      throw new InputError(file, this.blankLine, `blank line between frames (blank lines are allowed only at the end of the file; more frames follow at line ${line})`);
    }
    const natomsText = b.toString("utf8", s, e);
    const natoms = /^\+?\d+$/.test(natomsText) ? Number(natomsText) : NaN;
    if (!Number.isSafeInteger(natoms)) {
      const shown = natomsText.length > 40 ? `${natomsText.slice(0, 40)}...` : natomsText;
      const before = this.lastFrame;
      // An atom line right after the previous frame's atoms: that frame's count was too small.
      if (before !== null && before.line + 2 + before.natoms === line && this.plan !== undefined && countColumns(b, s, e) === this.plan.ncolumns) {
        throw new InputError(
          file,
          before.line,
          `the atom count says ${before.natoms}, but the frame runs on: line ${line}, after its ${before.natoms} atom line(s) (${atomLineRange(before.line, before.natoms)}), is one more atom line ("${shown}") where the next frame's atom count should be`,
        );
      }
      throw new InputError(file, line, `expected the number of atoms (a non-negative integer), found "${shown}"`);
    }

    // Find the comment line and the atom lines; all must be present before parsing.
    const commentStart = nl + 1;
    let q = commentStart;
    let found = 0;
    const needed = natoms + 1;
    while (found < needed) {
      if (q >= b.length) break;
      const next = b.indexOf(10, q);
      if (next < 0) {
        if (!final) break;
        q = b.length + 1;
        found++;
        break;
      }
      q = next + 1;
      found++;
    }
    if (found < needed) {
      if (!final) return { incomplete: true, needNewlines: needed - found };
      if (found === 0) throw new InputError(file, line, `file ends after the atom count ${natoms}: expected a comment line and ${natoms} atom line(s)`);
      throw new InputError(file, line, `frame has ${found - 1} atom line(s), expected ${natoms}: the file ends at line ${line + found}`);
    }
    const atomsEnd = Math.min(q, b.length);

    // VEC1..VEC3 pseudo-atom lines after the atoms carry the cell (ASE vec_cell).
    const vecStarts: number[] = [];
    let v = atomsEnd;
    for (;;) {
      let t = v;
      while (t < b.length && (b[t] === 32 || b[t] === 9)) t++;
      if (t + 3 > b.length) {
        if (!final && (t === b.length || b[t] === 86)) return { incomplete: true, needNewlines: 0 };
        break;
      }
      if (b[t] !== 86 || b[t + 1] !== 69 || b[t + 2] !== 67) break;
      const vnl = b.indexOf(10, t);
      if (vnl < 0 && !final) return { incomplete: true, needNewlines: 1 };
      vecStarts.push(t);
      v = vnl < 0 ? b.length : vnl + 1;
    }
    const nvec = vecStarts.length;
    const commentNewline = b.indexOf(10, commentStart);
    const commentEnd = commentNewline < 0 ? b.length : commentNewline;
    const comment = b.toString("utf8", commentStart, commentEnd).trim();

    let header: Header;
    if (nvec > 0) {
      header = { info: new Map([["comment", { kind: "string", value: comment }]]), cell: new Float64Array(9), pbc: [false, false, false], properties: DEFAULT_PROPERTIES };
    } else {
      try {
        header = parseHeader(comment);
      } catch (err) {
        if (err instanceof CommentError) throw new InputError(file, line + 1, err.message);
        throw err;
      }
    }
    let plan = this.plan;
    if (plan === undefined || plan.spec !== header.properties) {
      try {
        plan = makePlan(header.properties);
      } catch (err) {
        throw new InputError(file, line + 1, (err as Error).message);
      }
      this.plan = plan;
    }
    let atoms: AtomData;
    try {
      atoms = parseAtoms(b, Math.min(commentEnd + 1, b.length), atomsEnd, natoms, plan, file, line + 2);
    } catch (err) {
      throw shortFrameError(err, b, Math.min(commentEnd + 1, b.length), atomsEnd, natoms, line) ?? err;
    }

    if (nvec > 0) readVecLines(b, vecStarts, header, file, line + 2 + natoms);
    const frame: Frame = {
      natoms,
      symbols: atoms.symbols,
      positions: atoms.positions,
      cell: header.cell,
      pbc: header.pbc,
      info: header.info,
      arrays: atoms.arrays,
    };
    return { frame, next: v, lines: 2 + natoms + nvec };
  }
}

/** "3-34" for the atom lines of the frame whose count is on line `countLine`; "none" without atoms. */
function atomLineRange(countLine: number, natoms: number): string {
  return natoms === 0 ? "none" : natoms === 1 ? `${countLine + 2}` : `${countLine + 2}-${countLine + 1 + natoms}`;
}

/**
 * When an atom line that failed to parse holds a lone integer, the frame's count was too large and the next
 * frame's count line was taken for an atom: the error names the count line and where the atoms really ended.
 */
function shortFrameError(err: unknown, b: Uint8Array, atomsStart: number, atomsEnd: number, natoms: number, countLine: number): InputError | undefined {
  if (!(err instanceof InputError) || typeof err.where !== "number") return undefined;
  const index = err.where - (countLine + 2);
  if (index < 0 || index >= natoms) return undefined;
  let s = atomsStart;
  for (let k = 0; k < index; k++) {
    const nl = b.indexOf(10, s);
    if (nl < 0 || nl >= atomsEnd) return undefined;
    s = nl + 1;
  }
  let e = b.indexOf(10, s);
  if (e < 0 || e > atomsEnd) e = atomsEnd;
  const text = Buffer.from(b.buffer, b.byteOffset + s, e - s).toString("utf8").trim();
  if (!/^\+?\d+$/.test(text)) return undefined;
  return new InputError(
    err.file,
    countLine,
    `the atom count says ${natoms}, but line ${err.where} ("${text}") looks like the next frame's atom count: this frame has ${index} atom line(s) (${atomLineRange(countLine, index)})`,
  );
}

function readVecLines(b: Buffer, starts: number[], header: Header, file: string, firstLine: number): void {
  if (starts.length > 3) throw new InputError(file, firstLine + 3, "more than 3 VEC lines (expected VEC1, VEC2, VEC3 at most)");
  starts.forEach((t, k) => {
    const nl = b.indexOf(10, t);
    const text = b.toString("utf8", t, nl < 0 ? b.length : nl).trim();
    const parts = text.split(/\s+/);
    if (parts[0] !== `VEC${k + 1}`) throw new InputError(file, firstLine + k, `expected VEC${k + 1}, found "${parts[0]}"`);
    const xyz = parts.slice(1).map(parseFloatToken);
    if (xyz.length !== 3 || xyz.some((x) => x === undefined)) {
      throw new InputError(file, firstLine + k, `VEC${k + 1}: expected 3 numbers, found "${parts.slice(1).join(" ")}"`);
    }
    header.cell.set(xyz as number[], 3 * k);
    header.pbc[k] = true;
  });
}

/** Parses a whole extxyz text or byte buffer (convenience over ExtxyzParser). */
export function parseExtxyz(input: string | Uint8Array, file = "<string>"): ExtxyzFrameAt[] {
  const parser = new ExtxyzParser(file);
  const bytes = typeof input === "string" ? Buffer.from(input, "utf8") : input;
  return [...parser.push(bytes), ...parser.end()];
}

// ---------------------------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------------------------

/**
 * Decimal text of a non-zero x when it is exactly the double nearest to a decimal with at most 8 fraction digits
 * and 15 significant digits (true of most values in files written with %.8f); undefined otherwise. Such a decimal
 * is the shortest that reads back as x, so the digits equal String(x)'s, only never in exponent form; integers
 * come back without a decimal point.
 */
function fixedDecimal(x: number): string | undefined {
  const k = Math.round(x * 1e8);
  if (k === 0 || k / 1e8 !== x || k >= 1e15 || k <= -1e15) return undefined;
  let a = k < 0 ? -k : k;
  const sign = k < 0 ? "-" : "";
  const whole = Math.floor(a / 1e8);
  a -= whole * 1e8;
  if (a === 0) return sign + whole;
  let digits = 8;
  while (a % 10 === 0) {
    a /= 10;
    digits--;
  }
  const frac = String(a);
  return `${sign}${whole}.${frac.length < digits ? "0".repeat(digits - frac.length) + frac : frac}`;
}

/** A float that reads back as the same double and stays a float (`1.0`, not `1`; `-0.0` keeps its sign). */
export function formatFloat(x: number): string {
  if (x !== x) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return 1 / x < 0 ? "-0.0" : "0.0";
  // Below 1e-6 String() switches to exponent form; keep its form there.
  const s = (Math.abs(x) >= 1e-6 ? fixedDecimal(x) : undefined) ?? String(x);
  return Number.isInteger(x) && !s.includes("e") ? `${s}.0` : s;
}

/** A per-atom R value: the column type already says float, so no `.0` is needed. */
function formatReal(x: number): string {
  if (x === 0) return 1 / x < 0 ? "-0" : "0";
  const fixed = fixedDecimal(x);
  if (fixed !== undefined) return fixed;
  if (x !== x) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  return String(x);
}

function formatInt(x: number, what: string): string {
  if (!Number.isInteger(x)) throw new Error(`extxyz writer: ${what} holds ${x}, which is not an integer`);
  return String(x);
}

const NEEDS_QUOTES = /[\s"'{}[\]=\\,]/;

function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, "\\n")}"`;
}

function formatKey(key: string): string {
  if (key === "" || /[\n\r]/.test(key)) throw new Error(`extxyz writer: info key ${JSON.stringify(key)} cannot be written`);
  return NEEDS_QUOTES.test(key) ? quote(key) : key;
}

/** A string value that reads back as the same string; JSON-encoded when the text would read as something else. */
function formatString(key: string, s: string): string {
  if (key.toLowerCase() === "uid") return NEEDS_QUOTES.test(s) || s === "" ? quote(s) : s;
  let same = s !== "" && !/[\n\r]/.test(s) && !s.startsWith("_JSON ");
  if (same) {
    const back = typeValue(s);
    same = back.kind === "string" && back.value === s;
  }
  if (!same) return quote(`_JSON ${JSON.stringify(s)}`);
  return NEEDS_QUOTES.test(s) ? quote(s) : s;
}

/** Python-json text of a value (NaN and Infinity as Python writes them). */
function jsonText(v: unknown): string {
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v !== v ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return `[${v.map(jsonText).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}: ${jsonText(x)}`).join(", ")}}`;
  }
  throw new Error(`extxyz writer: cannot write a ${typeof v} as JSON`);
}

function formatElement(dtype: "int" | "float" | "bool", x: number | boolean, key: string): string {
  if (dtype === "bool") return x ? "T" : "F";
  return dtype === "float" ? formatFloat(x as number) : formatInt(x as number, key);
}

function jsonElement(dtype: "int" | "float" | "bool", x: number | boolean, key: string): string {
  if (dtype === "bool") return x ? "true" : "false";
  const n = x as number;
  if (!Number.isFinite(n)) return jsonText(n);
  return dtype === "float" ? formatFloat(n) : formatInt(n, key);
}

function formatInfoValue(key: string, v: InfoValue): string {
  switch (v.kind) {
    case "int":
      return formatInt(v.value, key);
    case "float":
      return formatFloat(v.value);
    case "bool":
      return v.value ? "T" : "F";
    case "string":
      return formatString(key, v.value);
    case "json":
      return quote(`_JSON ${jsonText(v.value)}`);
    case "array": {
      const { dtype, shape } = v;
      const data = v.data as (number | boolean)[];
      const size = shape.reduce((a, b) => a * b, 1);
      if (data.length !== size) throw new Error(`extxyz writer: ${key} has shape [${shape.join(",")}] but ${data.length} values`);
      if (SPECIAL_3X3.has(key)) {
        const m = stressMatrix(key, v);
        const d = m.kind === "array" ? (m.data as number[]) : [];
        // ASE writes and reads these 9 values column-major.
        const colMajor = [d[0], d[3], d[6], d[1], d[4], d[7], d[2], d[5], d[8]];
        return quote(colMajor.map((x) => formatElement(dtype, x, key)).join(" "));
      }
      if (shape.length === 1 && data.length >= 2) return quote(data.map((x) => formatElement(dtype, x, key)).join(" "));
      // One-element arrays (which would read back as scalars), empty arrays and 2-D arrays go through JSON.
      if (shape.length === 1) return quote(`_JSON [${data.map((x) => jsonElement(dtype, x, key)).join(", ")}]`);
      if (shape.length === 2) {
        const rows: string[] = [];
        for (let r = 0; r < shape[0]; r++) {
          rows.push(`[${data.slice(r * shape[1], (r + 1) * shape[1]).map((x) => jsonElement(dtype, x, key)).join(", ")}]`);
        }
        return quote(`_JSON [${rows.join(", ")}]`);
      }
      throw new Error(`extxyz writer: ${key} has unsupported shape [${shape.join(",")}]`);
    }
  }
}

const RESERVED = new Set(["Lattice", "Properties", "pbc"]);

/** The comment line for a frame, the way ASE writes it: Lattice, Properties, info keys in order, pbc. */
export function formatComment(frame: Frame): string {
  const parts: string[] = [];
  let hasCell = false;
  for (let k = 0; k < 9; k++) if (frame.cell[k] !== 0) hasCell = true;
  if (hasCell) parts.push(`Lattice="${Array.from(frame.cell, formatFloat).join(" ")}"`);
  let props = "species:S:1:pos:R:3";
  for (const [name, arr] of frame.arrays) {
    if (name === "species" || name === "pos" || name === "" || /[\s:"'=]/.test(name)) {
      throw new Error(`extxyz writer: per-atom array name ${JSON.stringify(name)} cannot be written`);
    }
    props += `:${name}:${arr.dtype}:${arr.ncols}`;
  }
  parts.push(`Properties=${props}`);
  for (const [key, value] of frame.info) {
    if (RESERVED.has(key)) throw new Error(`extxyz writer: info must not hold ${key}; it is written from the frame`);
    parts.push(`${formatKey(key)}=${formatInfoValue(key, value)}`);
  }
  parts.push(`pbc="${frame.pbc.map((p) => (p ? "T" : "F")).join(" ")}"`);
  return parts.join(" ");
}

function checkAtomText(s: string, what: string): string {
  if (s === "" || /\s/.test(s)) throw new Error(`extxyz writer: ${what} ${JSON.stringify(s)} cannot be written in an atom line`);
  return s;
}

/**
 * Encodes frames as extxyz bytes into a growing buffer: atom lines are written digit by digit, without
 * intermediate strings. `take` hands over the bytes written so far.
 */
export class ExtxyzEncoder extends ByteWriter {
  override take(): Buffer {
    const out = super.take();
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  }

  /** The bytes written so far as text, keeping the buffer for reuse. */
  takeText(): string {
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.length).toString("utf8");
    this.reset();
    return text;
  }

  frame(frame: Frame): void {
    const n = frame.natoms;
    if (frame.symbols.length !== n || frame.positions.length !== 3 * n) {
      throw new Error(`extxyz writer: frame has natoms ${n} but ${frame.symbols.length} symbols and ${frame.positions.length / 3} positions`);
    }
    const arrays = [...frame.arrays.values()];
    for (const [name, arr] of frame.arrays) {
      if (arr.data.length !== n * arr.ncols) throw new Error(`extxyz writer: array ${name} has ${arr.data.length} values, expected ${n * arr.ncols}`);
    }
    this.text(`${n}\n${formatComment(frame)}\n`);
    const pos = frame.positions;
    for (let a = 0; a < n; a++) {
      this.text(checkAtomText(frame.symbols[a], "symbol"));
      this.real(pos[3 * a]);
      this.real(pos[3 * a + 1]);
      this.real(pos[3 * a + 2]);
      for (let k = 0; k < arrays.length; k++) {
        const arr = arrays[k];
        const m = arr.ncols;
        const base = a * m;
        switch (arr.dtype) {
          case "R":
            for (let j = 0; j < m; j++) this.real(arr.data[base + j]);
            break;
          case "I":
            for (let j = 0; j < m; j++) this.text(` ${formatInt(arr.data[base + j], "an I column")}`);
            break;
          case "L":
            for (let j = 0; j < m; j++) this.text(arr.data[base + j] ? " T" : " F");
            break;
          default:
            for (let j = 0; j < m; j++) this.text(` ${checkAtomText(arr.data[base + j], "string value")}`);
        }
      }
      this.byte(10);
    }
  }

  /** A space and a per-atom real, with the digits fixedDecimal would give, or formatReal's text. */
  private real(x: number): void {
    const k = Math.round(x * 1e8);
    if (k / 1e8 !== x || k >= 1e15 || k <= -1e15) {
      this.text(` ${formatReal(x)}`);
      return;
    }
    this.reserve(28);
    const b = this.bytes;
    let p = this.length;
    b[p++] = 32;
    let a = k;
    if (k < 0 || (k === 0 && 1 / x < 0)) {
      b[p++] = 45;
      a = -k;
    }
    const whole = Math.floor(a / 1e8);
    const frac = a - whole * 1e8;
    // whole < 1e7 and frac < 1e8: int32 arithmetic from here on.
    let w = whole;
    let width = 1;
    while (w >= 10) {
      w = (w / 10) | 0;
      width++;
    }
    w = whole;
    for (let q = p + width - 1; q >= p; q--) {
      const next = (w / 10) | 0;
      b[q] = 48 + w - next * 10;
      w = next;
    }
    p += width;
    if (frac !== 0) {
      let digits = 8;
      let f = frac;
      let next = (f / 10) | 0;
      while (f === next * 10) {
        f = next;
        next = (f / 10) | 0;
        digits--;
      }
      b[p++] = 46;
      for (let q = p + digits - 1; q >= p; q--) {
        next = (f / 10) | 0;
        b[q] = 48 + f - next * 10;
        f = next;
      }
      p += digits;
    }
    this.length = p;
  }
}

const sharedEncoder = new ExtxyzEncoder();

/** One frame as extxyz text, ending in a newline. Every number reads back as the same double. */
export function writeExtxyzFrame(frame: Frame): string {
  try {
    sharedEncoder.frame(frame);
  } catch (err) {
    sharedEncoder.takeText();
    throw err;
  }
  return sharedEncoder.takeText();
}
