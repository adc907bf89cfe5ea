/**
 * INCAR: `TAG = value` statements, one per line or several separated by `;`, comments after `!` or `#`.
 * Read for the settings a dataset compares, and written for each pick: MAGMOM has a value per atom and LDAUL,
 * LDAUU and LDAUJ one per species of the POSCAR's species line, so picks of varied composition cannot share them.
 */

import { elementProblem } from "../elements.js";
import { InputError } from "../errors.js";
import { atomsBySpecies, type Frame } from "../structure.js";

export type IncarValue = string | number | boolean | number[];

interface Statement {
  key: string;
  /** The value as written, trimmed. */
  text: string;
  /** 1-based line number. */
  line: number;
}

function* statements(text: string): Generator<Statement> {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    for (const statement of lines[i].replace(/[!#].*$/, "").split(";")) {
      const eq = statement.indexOf("=");
      if (eq < 0) continue;
      const key = statement.slice(0, eq).trim().toUpperCase();
      if (/^[A-Z][A-Z0-9_]*$/.test(key)) yield { key, text: statement.slice(eq + 1).trim(), line: i + 1 };
    }
  }
}

/**
 * Parses an INCAR. Numbers become numbers, `.TRUE.`/`T` booleans, several numbers (with VASP's `3*0` repeats)
 * number arrays, anything else the first word as a string. Lines that are not statements are ignored, as VASP
 * ignores them; a tag set twice keeps its last value.
 */
export function parseIncar(text: string): Record<string, IncarValue> {
  const out: Record<string, IncarValue> = {};
  for (const { key, text: value } of statements(text)) {
    const parsed = incarValue(value);
    if (parsed !== undefined) out[key] = parsed;
  }
  return out;
}

/**
 * ICHARG from the start of a vasprun.xml (`<i type="int" name="ICHARG">    11</i>`) or an OUTCAR's parameter echo
 * (`ICHARG =     11    charge: ...`), or null when the head does not give it.
 */
export function ichargFromHead(head: string): number | null {
  const m = /name="ICHARG">\s*(\d+)|\bICHARG\s*=\s*(\d+)/.exec(head);
  return m ? Number(m[1] ?? m[2]) : null;
}

function incarValue(text: string): IncarValue | undefined {
  const words = text.split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) return undefined;
  const numbers: number[] = [];
  for (const word of words) {
    const repeat = /^(\d+)\*(.+)$/.exec(word);
    const count = repeat ? Number(repeat[1]) : 1;
    const v = Number(repeat ? repeat[2] : word);
    if (!Number.isFinite(v)) {
      numbers.length = 0;
      break;
    }
    for (let i = 0; i < count; i++) numbers.push(v);
  }
  if (numbers.length === 1 && words.length === 1) return numbers[0];
  if (numbers.length > 0) return numbers;
  const first = words[0].replace(/^['"]|['"]$/g, "");
  const bool = /^\.?(T|TRUE|F|FALSE)\.?$/i.exec(first);
  if (bool) return bool[1][0].toUpperCase() === "T";
  return first;
}

/** DFT+U of one element: the l-quantum number (-1 for none), U and J in eV. */
export interface DftU {
  l: number;
  u: number;
  j: number;
}

/** Values given per element, written into each pick's INCAR in the order of its POSCAR's species line. */
export interface SpeciesIncarValues {
  /**
   * Initial magnetic moment per element; `*` for every element not named (else VASP's own default, 1). A pick
   * with its own initial_magmoms takes those instead, as pymatgen's input sets take a structure's magmoms.
   */
  magmom?: ReadonlyMap<string, number>;
  /** DFT+U per element; an element not named gets none (L = -1). */
  ldau?: ReadonlyMap<string, DftU>;
  /** How the user gave each (`--magmom`, `vasp_templates.magmom`), for errors. */
  names: { magmom: string; ldau: string };
}

/** VASP's MAGMOM for an atom when the INCAR gives none. */
const VASP_DEFAULT_MAGMOM = 1;

/**
 * "Fe=5,O=0.6,*=0.6" as a map, or the problem in words. "pool" stands for no per-element value: the picks' own
 * initial_magmoms (which always come first), VASP's default for picks without.
 */
export function parseMagmomSpec(text: string): Map<string, number> | string {
  const out = new Map<string, number>();
  for (const part of text.split(",")) {
    if (part.trim() === "pool") continue;
    const m = /^\s*([A-Za-z*]+)\s*=\s*(\S+)\s*$/.exec(part);
    const value = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(value)) return `expected ELEMENT=MOMENT pairs such as Fe=5,O=0.6, or pool (got "${part.trim()}")`;
    const problem = elementProblem(m[1], true) ?? (out.has(m[1]) ? `${m[1]} is given twice` : null);
    if (problem) return problem;
    out.set(m[1], value);
  }
  return out;
}

/** "Fe=2:5.3,Ni=2:6.2:0" (ELEMENT=L:U[:J]) as a map, or the problem in words. */
export function parseLdauSpec(text: string): Map<string, DftU> | string {
  const out = new Map<string, DftU>();
  for (const part of text.split(",")) {
    const m = /^\s*([A-Za-z]+)\s*=\s*([^:\s]+):([^:\s]+)(?::([^:\s]+))?\s*$/.exec(part);
    const dftU = m ? { l: Number(m[2]), u: Number(m[3]), j: m[4] === undefined ? 0 : Number(m[4]) } : null;
    if (!m || !dftU || ![dftU.l, dftU.u, dftU.j].every(Number.isFinite)) return `expected ELEMENT=L:U or ELEMENT=L:U:J such as Fe=2:5.3 (got "${part.trim()}")`;
    const lProblem = ldauProblem(dftU);
    const problem = elementProblem(m[1], false) ?? (lProblem && `${m[1]}: ${lProblem}`) ?? (out.has(m[1]) ? `${m[1]} is given twice` : null);
    if (problem) return problem;
    out.set(m[1], dftU);
  }
  return out;
}

/** Why these DFT+U values cannot go to VASP (L outside -1..3), or null. */
export function ldauProblem(v: DftU): string | null {
  if (!Number.isInteger(v.l) || v.l < -1 || v.l > 3) return `L must be -1 (none), 0, 1, 2 (d) or 3 (f), got ${v.l}`;
  return null;
}

/** The statements a per-pick tag must not meet in the template, each with why. */
function templateConflicts(text: string, values: SpeciesIncarValues): Array<{ line: number; why: string }> {
  const found: Array<{ line: number; why: string }> = [];
  const { magmom, ldau, names } = values;
  for (const s of statements(text)) {
    const v = incarValue(s.text);
    if (magmom && s.key === "MAGMOM") found.push({ line: s.line, why: `sets MAGMOM, which ${names.magmom} writes for each pick; leave it out here` });
    if (magmom && s.key === "ISPIN" && v === 1) found.push({ line: s.line, why: `sets ISPIN = 1, so VASP would ignore the MAGMOM from ${names.magmom}; set ISPIN = 2 or leave it out` });
    if (magmom && (s.key === "LNONCOLLINEAR" || s.key === "LSORBIT") && v === true) {
      found.push({ line: s.line, why: `sets ${s.key}, which takes three moments per atom; ${names.magmom} writes collinear moments only` });
    }
    if (ldau && /^LDAU[LUJ]$/.test(s.key)) found.push({ line: s.line, why: `sets ${s.key}, which ${names.ldau} writes for each pick; leave it out here` });
    if (ldau && s.key === "LDAU" && v === false) found.push({ line: s.line, why: `sets LDAU = .FALSE. while ${names.ldau} asks for DFT+U` });
  }
  return found;
}

/** Throws an InputError naming `file`'s line when the template sets what the per-element values write. */
export function checkIncarTemplate(text: string, file: string, values: SpeciesIncarValues): void {
  const [first] = templateConflicts(text, values);
  if (first) throw new InputError(file, first.line, first.why);
}

/** A structure's POSCAR species line and each species' number of atoms, with its name for errors. */
export interface PickSpecies {
  species: readonly string[];
  counts: readonly number[];
  /** e.g. "rank 2 (Fe16S32)". */
  name: string;
  /** Its own initial moment per atom, in POSCAR order (initialMomentsInOrder), which per-element MAGMOM yields to. */
  moments?: readonly number[];
}

/**
 * ASE's per-atom initial magnetic moments (`initial_magmoms`, as ASE writes them to extxyz and .traj) of `frame`,
 * in the order of `species`' blocks, the POSCAR's; undefined when it has none. `file` and `where` name it in errors.
 */
export function initialMomentsInOrder(frame: Frame, species: readonly string[], file: string, where: string): number[] | undefined {
  const column = frame.arrays.get("initial_magmoms");
  if (!column) return undefined;
  if (column.dtype === "L" || column.dtype === "S") throw new InputError(file, where, "initial_magmoms holds no numbers, expected a magnetic moment per atom");
  if (column.ncols !== 1) throw new InputError(file, where, `initial_magmoms has ${column.ncols} values per atom, expected one: MAGMOM is written collinear`);
  const order = atomsBySpecies(frame.symbols, species);
  return Array.from({ length: frame.natoms }, (_, k) => column.data[order ? order[k] : k]);
}

/**
 * The INCAR of one pick: the template as written, then the per-element values in the order of the pick's species
 * line (MAGMOM as `count*moment` per species; LDAUL/LDAUU/LDAUJ, with LDAU, and ISPIN = 2 and LMAXMIX when the
 * template leaves them out). Without per-element values, a template's own MAGMOM or LDAU lists must fit the pick:
 * a count that does not is an InputError naming `file`'s line and the pick, since VASP would stop on it (or
 * give the values to the wrong atoms).
 */
export function incarForPick(text: string, file: string, pick: PickSpecies, values: SpeciesIncarValues): string {
  checkIncarTemplate(text, file, values);
  const natoms = pick.counts.reduce((a, b) => a + b, 0);
  const set = new Map<string, { line: number; value: IncarValue | undefined }>();
  for (const s of statements(text)) set.set(s.key, { line: s.line, value: incarValue(s.text) });
  const countOf = (key: string): number | null => {
    const v = set.get(key)?.value;
    return Array.isArray(v) ? v.length : typeof v === "number" ? 1 : null;
  };
  const noncollinear = set.get("LNONCOLLINEAR")?.value === true || set.get("LSORBIT")?.value === true;
  // VASP reads MAGMOM only for a spin-polarised run, and the LDAU lists only with LDAU on.
  const spin = noncollinear || set.get("ISPIN")?.value === 2;
  const magmomCount = spin ? countOf("MAGMOM") : null;
  const perAtom = noncollinear ? 3 * natoms : natoms;
  if (!values.magmom && magmomCount !== null && magmomCount !== perAtom) {
    throw new InputError(file, set.get("MAGMOM")!.line, `MAGMOM has ${magmomCount} values, but ${pick.name} has ${natoms} atoms${noncollinear ? " (3 values each)" : ""}: give the moments per element with ${values.names.magmom} and leave MAGMOM out`);
  }
  for (const key of ["LDAUL", "LDAUU", "LDAUJ"]) {
    const count = set.get("LDAU")?.value === true ? countOf(key) : null;
    if (!values.ldau && count !== null && count !== pick.species.length) {
      throw new InputError(file, set.get(key)!.line, `${key} has ${count} values, but ${pick.name} has ${pick.species.length} species (${pick.species.join(" ")}): give DFT+U per element with ${values.names.ldau} and leave ${key} out`);
    }
  }
  if (!values.magmom && !values.ldau) return text;

  const own = values.magmom && pick.moments ? "; MAGMOM from the structure's initial_magmoms" : "";
  const lines = [`# Per-element values for this POSCAR's species line (${pick.species.join(" ")}), written by relabel-loop${own}`];
  if (values.magmom) {
    const moment = (s: string) => values.magmom!.get(s) ?? values.magmom!.get("*") ?? VASP_DEFAULT_MAGMOM;
    const perAtom = pick.moments ?? pick.species.flatMap((s, k) => Array<number>(pick.counts[k]).fill(moment(s)));
    if (!set.has("ISPIN")) lines.push("ISPIN = 2");
    lines.push(`MAGMOM = ${repeats(perAtom)}`);
  }
  if (values.ldau) {
    const none: DftU = { l: -1, u: 0, j: 0 };
    const each = pick.species.map((s) => values.ldau!.get(s) ?? none);
    if (!set.has("LDAU")) lines.push("LDAU = .TRUE.");
    lines.push(`LDAUL = ${each.map((v) => numberText(v.l)).join(" ")}`);
    lines.push(`LDAUU = ${each.map((v) => numberText(v.u)).join(" ")}`);
    lines.push(`LDAUJ = ${each.map((v) => numberText(v.j)).join(" ")}`);
    // VASP asks for LMAXMIX = 4 with d and 6 with f electrons under DFT+U, or the mixer drops their occupancies.
    const lmax = Math.max(...each.map((v) => v.l));
    if (lmax >= 2 && !set.has("LMAXMIX")) lines.push(`LMAXMIX = ${2 * lmax}`);
  }
  // The lines end as the template's do (an INCAR written on Windows keeps CRLF throughout).
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const base = text === "" || text.endsWith("\n") ? text : `${text}${eol}`;
  return `${base}${lines.join(eol)}${eol}`;
}

/** Values as VASP reads them, runs of one value as `count*value`: `2*5 -5 0.6`. */
function repeats(values: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i + 1;
    while (j < values.length && values[j] === values[i]) j++;
    parts.push((j - i === 1 ? "" : `${j - i}*`) + numberText(values[i]));
    i = j;
  }
  return parts.join(" ");
}

function numberText(v: number): string {
  return String(v === 0 ? 0 : v);
}
