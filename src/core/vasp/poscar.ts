/**
 * POSCAR / CONTCAR reading and writing (pure: text in, text out).
 *
 * Read: VASP 4 (no species line) and VASP 5 (species line), optional "Selective dynamics",
 * Direct or Cartesian coordinates, a scaling factor that is one number (negative = target cell
 * volume in A^3) or three per-axis factors. Anything after the atom lines (CONTCAR velocities,
 * predictor-corrector data) is ignored.
 * Write: VASP 5 layout with the species line, fixed-width `%.16f` numbers, so equal frames give
 * byte-equal files.
 *
 * Selective dynamics flags are kept in `frame.arrays.get("selective_dynamics")`: dtype "L", 3
 * columns, 1 = "T" (free to move along that Cartesian axis), exactly as written in the file.
 */

import { isElement } from "../elements.js";
import { InputError } from "../errors.js";
import { cellVolume, hillFormula, invertCell, type AtomArray, type Frame } from "../structure.js";

export const SELECTIVE_DYNAMICS_KEY = "selective_dynamics";

export interface PoscarParseOptions {
  /** Shown in error messages. */
  file: string;
  /**
   * Species for a VASP 4 file (no species line): one per type block, or one per atom.
   * Ignored when the file has its own species line.
   */
  speciesHint?: readonly string[];
}

export interface Poscar {
  frame: Frame;
  /** Line 1, without the line ending. */
  comment: string;
  /** True when the file has a "Selective dynamics" line (flags in frame.arrays, see SELECTIVE_DYNAMICS_KEY). */
  selectiveDynamics: boolean;
  /** How the file gave the positions; frame.positions are always Cartesian Angstrom. */
  coordinates: "direct" | "cartesian";
  /** Where the species came from: the VASP 5 species line, speciesHint, or (VASP 4) a formula-like comment line. */
  speciesSource: "species-line" | "hint" | "comment";
}

export interface PoscarWriteOptions {
  /** Line 1; defaults to the Hill formula. Line breaks are replaced by spaces. */
  comment?: string;
  /** Default "cartesian". */
  coordinates?: "direct" | "cartesian";
  /** Names the frame in error messages (e.g. the extxyz file and frame index it came from). */
  source?: string;
}


/**
 * The element named by a species token as VASP files write it: `Fe`, `FE`, `Fe_pv`, `H.75`,
 * `Si/7a1c...` (POTCAR hash suffix). Returns null when it names no element.
 */
export function elementSymbol(token: string): string | null {
  const m = /^([A-Za-z]{1,2})(?:$|[_./])/.exec(token.trim());
  if (!m) return null;
  const raw = m[1];
  const symbol = raw[0].toUpperCase() + raw.slice(1).toLowerCase();
  return isElement(symbol) ? symbol : null;
}

/** Lines of the text, without line endings (CRLF tolerated). */
function splitLines(text: string): string[] {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.endsWith("\r")) lines[i] = l.slice(0, -1);
  }
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function tokens(line: string): string[] {
  const t = line.trim();
  return t === "" ? [] : t.split(/\s+/);
}

function quote(line: string | undefined): string {
  if (line === undefined) return "end of file";
  const t = line.trim();
  return JSON.stringify(t.length > 60 ? t.slice(0, 57) + "..." : t);
}

function isNumber(tok: string): boolean {
  return tok !== "" && Number.isFinite(Number(tok));
}

const COUNT_RE = /^\d+$/;

export function parsePoscar(text: string, opts: PoscarParseOptions): Poscar {
  const file = opts.file;
  const lines = splitLines(text);
  if (lines.every((l) => l.trim() === "")) {
    throw new InputError(file, undefined, "empty file, expected a POSCAR/CONTCAR (comment, scale, 3 lattice vectors, species, counts, positions)");
  }
  const fail = (lineIndex: number, detail: string): never => {
    throw new InputError(file, lineIndex + 1, detail);
  };

  const comment = lines[0];

  // Scaling factor: one number (negative = volume) or three positive per-axis factors.
  const scaleTokens = tokens(lines[1] ?? "");
  let scale: [number, number, number];
  let targetVolume: number | null = null;
  if (scaleTokens.length >= 3 && scaleTokens.slice(0, 3).every(isNumber)) {
    scale = [Number(scaleTokens[0]), Number(scaleTokens[1]), Number(scaleTokens[2])];
    if (scale.some((s) => s <= 0)) fail(1, `three scaling factors must all be positive, found ${quote(lines[1])}`);
  } else if (scaleTokens.length >= 1 && isNumber(scaleTokens[0])) {
    const s = Number(scaleTokens[0]);
    if (s === 0) fail(1, "scaling factor is 0");
    if (s < 0) targetVolume = -s;
    scale = s < 0 ? [1, 1, 1] : [s, s, s];
  } else {
    return fail(1, `expected the scaling factor (one number, or three positive numbers), found ${quote(lines[1])}`);
  }

  const cell = new Float64Array(9);
  for (let r = 0; r < 3; r++) {
    const t = tokens(lines[2 + r] ?? "");
    if (t.length < 3 || !t.slice(0, 3).every(isNumber)) {
      fail(2 + r, `expected lattice vector a${r + 1} (3 numbers), found ${quote(lines[2 + r])}`);
    }
    for (let c = 0; c < 3; c++) cell[3 * r + c] = Number(t[c]) * scale[c];
  }
  const rawVolume = cellVolume(cell);
  if (rawVolume === 0 || !Number.isFinite(rawVolume)) fail(2, "lattice vectors are linearly dependent (cell volume 0)");
  let cartesianScale = scale;
  if (targetVolume !== null) {
    const s = Math.cbrt(targetVolume / Math.abs(rawVolume));
    for (let i = 0; i < 9; i++) cell[i] *= s;
    cartesianScale = [s, s, s];
  }

  // Line 6: species (VASP 5) or counts (VASP 4).
  let li = 5;
  const line6 = tokens(lines[li] ?? "");
  if (line6.length === 0) fail(li, `expected the species line or the atom counts, found ${quote(lines[li])}`);
  let typeSymbols: string[] | null = null;
  let speciesSource: Poscar["speciesSource"] = "species-line";
  if (!isNumber(line6[0])) {
    typeSymbols = line6.map((tok) => {
      const el = elementSymbol(tok);
      if (el === null) return fail(li, `species line: ${JSON.stringify(tok)} is not a chemical element`);
      return el;
    });
    li++;
  }
  const countTokens = tokens(lines[li] ?? "");
  const expectedTypes = typeSymbols?.length;
  const countsEnd = countTokens.findIndex((t) => !COUNT_RE.test(t));
  const counts = (countsEnd < 0 ? countTokens : countTokens.slice(0, countsEnd)).map(Number);
  if (counts.length === 0 || (expectedTypes !== undefined && counts.length !== expectedTypes) || counts.some((n) => n <= 0)) {
    const what = expectedTypes === undefined ? "atom counts (positive integers)" : `${expectedTypes} atom counts (positive integers), one per species on line ${li}`;
    fail(li, `expected ${what}, found ${quote(lines[li])}`);
  }
  const countsLine = li;
  li++;
  const natoms = counts.reduce((a, b) => a + b, 0);

  let symbols: string[];
  if (typeSymbols !== null) {
    symbols = expand(typeSymbols, counts);
  } else {
    const badHint = opts.speciesHint?.find((s) => elementSymbol(s) === null);
    if (badHint !== undefined) fail(countsLine, `speciesHint: ${JSON.stringify(badHint)} is not a chemical element`);
    const fromHint = opts.speciesHint ? speciesFromHint(opts.speciesHint, counts, natoms) : null;
    if (opts.speciesHint && fromHint === null) {
      fail(countsLine, `speciesHint has ${opts.speciesHint.length} entries, expected ${counts.length} (one per type) or ${natoms} (one per atom)`);
    }
    if (fromHint) {
      symbols = fromHint;
      speciesSource = "hint";
    } else {
      const fromComment = speciesFromFormula(comment, counts);
      if (!fromComment) {
        return fail(countsLine, "VASP 4 POSCAR (no species line before the counts): add the species line above the counts, or write the elements as the comment line, one per type in the order of the counts");
      }
      symbols = fromComment;
      speciesSource = "comment";
    }
  }

  let selectiveDynamics = false;
  if (/^\s*[Ss]/.test(lines[li] ?? "")) {
    selectiveDynamics = true;
    li++;
  }
  const modeLine = lines[li];
  const modeTrim = modeLine?.trim() ?? "";
  if (modeTrim === "") fail(li, `expected "Direct" or "Cartesian", found ${quote(modeLine)}`);
  const cartesian = /^[CcKk]/.test(modeTrim);
  if (!cartesian && !/^[Dd]/.test(modeTrim)) fail(li, `expected "Direct" or "Cartesian", found ${quote(modeLine)}`);
  li++;

  const positions = new Float64Array(3 * natoms);
  const flags = selectiveDynamics ? new Uint8Array(3 * natoms) : null;
  for (let a = 0; a < natoms; a++, li++) {
    const line = lines[li];
    if (line === undefined) fail(li, `file ends after ${a} of ${natoms} atom positions`);
    const t = tokens(line);
    const notFinite = t.slice(0, 3).findIndex((tok) => /^[+-]?(nan|inf(inity)?)$/i.test(tok));
    if (t.length >= 3 && notFinite >= 0) {
      fail(li, `atom ${a} (0-based): position ${"xyz"[notFinite]} is ${t[notFinite]}; expected a finite number`);
    }
    if (t.length < 3 || !t.slice(0, 3).every(isNumber)) {
      fail(li, `expected atom ${a} (0-based) of ${natoms}: 3 coordinates${flags ? " and 3 T/F flags" : ""}, found ${quote(line)}`);
    }
    const x = Number(t[0]);
    const y = Number(t[1]);
    const z = Number(t[2]);
    if (cartesian) {
      positions[3 * a] = x * cartesianScale[0];
      positions[3 * a + 1] = y * cartesianScale[1];
      positions[3 * a + 2] = z * cartesianScale[2];
    } else {
      for (let c = 0; c < 3; c++) positions[3 * a + c] = x * cell[c] + y * cell[3 + c] + z * cell[6 + c];
    }
    if (flags) {
      for (let c = 0; c < 3; c++) {
        const f = t[3 + c];
        if (f === "T" || f === "t") flags[3 * a + c] = 1;
        else if (f !== "F" && f !== "f") {
          fail(li, `expected atom ${a} (0-based) of ${natoms}: 3 coordinates and 3 T/F flags (Selective dynamics), found ${quote(line)}`);
        }
      }
    }
  }

  const arrays = new Map<string, AtomArray>();
  if (flags) arrays.set(SELECTIVE_DYNAMICS_KEY, { dtype: "L", ncols: 3, data: flags });
  return {
    frame: { natoms, symbols, positions, cell, pbc: [true, true, true], info: new Map(), arrays },
    comment,
    selectiveDynamics,
    coordinates: cartesian ? "cartesian" : "direct",
    speciesSource,
  };
}

function expand(typeSymbols: readonly string[], counts: readonly number[]): string[] {
  const out: string[] = [];
  for (let t = 0; t < counts.length; t++) for (let k = 0; k < counts[t]; k++) out.push(typeSymbols[t]);
  return out;
}

function speciesFromHint(hint: readonly string[], counts: number[], natoms: number): string[] | null {
  const clean = hint.map((s) => elementSymbol(s) as string);
  if (clean.length === counts.length) return expand(clean, counts);
  if (clean.length === natoms) return clean;
  return null;
}

/** A comment line such as "Fe2 O3" or "Si" names the species of a VASP 4 file when it matches the counts. */
function speciesFromFormula(comment: string, counts: number[]): string[] | null {
  const t = tokens(comment);
  if (t.length !== counts.length) return null;
  const typeSymbols: string[] = [];
  for (let i = 0; i < t.length; i++) {
    const m = /^([A-Z][a-z]?)(\d*)$/.exec(t[i]);
    if (!m || !isElement(m[1])) return null;
    if (m[2] !== "" && Number(m[2]) !== counts[i]) return null;
    typeSymbols.push(m[1]);
  }
  return expand(typeSymbols, counts);
}

/** `%.16f` right-aligned in `width` columns, with at least one blank before it. */
function fixed(v: number, width: number): string {
  const s = v.toFixed(16);
  return s.length >= width ? " " + s : s.padStart(width);
}

/** Vacuum between periodic copies of a structure without a cell (Angstrom), by default: see inVacuumBox. */
export const DEFAULT_VACUUM = 10;

/**
 * A structure without a cell (a molecule, all nine cell components zero) as VASP needs it: in a cubic box whose
 * edge is its largest extent along x, y or z plus `vacuum` (rounded up to 0.01 A), pbc all true. Its periodic
 * copies are then at least `vacuum` apart wherever the box starts, so the positions stay as they are (the
 * structure is found again in VASP's output). Any other frame is returned as it is; `boxed` says which happened.
 */
export function inVacuumBox(frame: Frame, vacuum: number = DEFAULT_VACUUM): { frame: Frame; boxed: boolean } {
  if (!frame.cell.every((x) => x === 0) || frame.natoms === 0) return { frame, boxed: false };
  let extent = 0;
  for (let axis = 0; axis < 3; axis++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = axis; i < 3 * frame.natoms; i += 3) {
      lo = Math.min(lo, frame.positions[i]);
      hi = Math.max(hi, frame.positions[i]);
    }
    extent = Math.max(extent, hi - lo);
  }
  const edge = Math.ceil((extent + vacuum) * 100) / 100;
  return { frame: { ...frame, cell: Float64Array.of(edge, 0, 0, 0, edge, 0, 0, 0, edge), pbc: [true, true, true] }, boxed: true };
}

/** Writes a POSCAR (VASP 5 layout, scale 1, species line, Cartesian or Direct). */
export function writePoscar(frame: Frame, opts: PoscarWriteOptions = {}): string {
  const source = opts.source ?? "<frame>";
  const cell = frame.cell;
  const volume = cellVolume(cell);
  if (volume === 0 || !Number.isFinite(volume)) {
    throw new InputError(source, undefined, "cannot write a POSCAR: the frame has no (or a singular) cell");
  }
  if (frame.natoms === 0) throw new InputError(source, undefined, "cannot write a POSCAR: the frame has no atoms");
  for (let i = 0; i < 3 * frame.natoms; i++) {
    if (!Number.isFinite(frame.positions[i])) {
      throw new InputError(source, undefined, `cannot write a POSCAR: atom ${Math.floor(i / 3) + 1} has a non-finite position`);
    }
  }

  const blockSymbols: string[] = [];
  const blockCounts: number[] = [];
  for (const s of frame.symbols) {
    if (blockSymbols.length > 0 && blockSymbols[blockSymbols.length - 1] === s) blockCounts[blockCounts.length - 1]++;
    else {
      blockSymbols.push(s);
      blockCounts.push(1);
    }
  }

  const flags = selectiveFlags(frame);
  const direct = opts.coordinates === "direct";
  const out: string[] = [];
  out.push((opts.comment ?? hillFormula(frame.symbols)).replace(/[\r\n]+/g, " "));
  out.push("   1.00000000000000");
  for (let r = 0; r < 3; r++) out.push(" " + [0, 1, 2].map((c) => fixed(cell[3 * r + c], 22)).join(""));
  out.push(blockSymbols.map((s) => s.padStart(5)).join(""));
  out.push(blockCounts.map((n) => String(n).padStart(6)).join(""));
  if (flags) out.push("Selective dynamics");
  out.push(direct ? "Direct" : "Cartesian");
  const inv = direct ? invertCell(cell) : null;
  for (let a = 0; a < frame.natoms; a++) {
    const x = frame.positions[3 * a];
    const y = frame.positions[3 * a + 1];
    const z = frame.positions[3 * a + 2];
    const v = inv
      ? [0, 1, 2].map((c) => x * inv[c] + y * inv[3 + c] + z * inv[6 + c])
      : [x, y, z];
    let line = v.map((x) => fixed(x, 20)).join("");
    if (flags) line += [0, 1, 2].map((c) => (flags[3 * a + c] ? "   T" : "   F")).join("");
    out.push(line);
  }
  return out.join("\n") + "\n";
}

/** Per-atom, per-axis "free" flags from selective_dynamics (L:3) or an extxyz move_mask (L:1 or L:3). */
function selectiveFlags(frame: Frame): Uint8Array | null {
  const sd = frame.arrays.get(SELECTIVE_DYNAMICS_KEY) ?? frame.arrays.get("move_mask");
  if (!sd || sd.dtype !== "L") return null;
  if (sd.ncols === 3) return sd.data;
  if (sd.ncols !== 1) return null;
  const flags = new Uint8Array(3 * frame.natoms);
  for (let a = 0; a < frame.natoms; a++) flags.fill(sd.data[a] ? 1 : 0, 3 * a, 3 * a + 3);
  return flags;
}
