/**
 * LAMMPS text dumps (`dump atom` / `dump custom`), the trajectories of LAMMPS-driven MD exploration (DP-GEN's
 * `traj/*.lammpstrj`, MACE through LAMMPS): pure and incremental, text in, frames out.
 *
 * Each snapshot is `ITEM: TIMESTEP`, `ITEM: NUMBER OF ATOMS`, `ITEM: BOX BOUNDS [xy xz yz] <flags>` with three
 * bound lines, then `ITEM: ATOMS <columns>` and one row per atom (optional `ITEM: UNITS` and `ITEM: TIME` come
 * first). The structure is what ASE's `lammps-dump-text` reader makes of it, so that a dump and its conversion
 * give the same candidate ids:
 * - atoms sorted by `id`; positions from `x y z`, else the fractional `xs ys zs` times the cell, else `xu yu zu`,
 *   else `xsu ysu zsu` (unscaled coordinates as written, not shifted by the box origin);
 * - the cell from the bounds (the tilt factors undone, `a = (xhi − xlo, 0, 0)`, `b = (xy, yhi − ylo, 0)`,
 *   `c = (xz, yz, zhi − zlo)`); a direction is periodic when its boundary flag holds `p`.
 * Species come from the `element` column, else from `type` through the type map (type 1 is its first element),
 * as DP-GEN's `type_map` gives them. ASE without a map would take type numbers for atomic numbers; here that is
 * an error. Coordinates are taken to be in Å (LAMMPS `metal` and `real` units); a dump whose `ITEM: UNITS` says
 * otherwise is refused. The timestep is kept as the frame's `timestep` info.
 */
import { isElement } from "../elements.js";
import { InputError } from "../errors.js";
import type { Frame, InfoValue, Pbc } from "../structure.js";
import { exactDecimal } from "./extxyz.js";
import { LineFrameParser } from "./line-frames.js";

const POSITION_COLUMNS: ReadonlyArray<{ names: [string, string, string]; scaled: boolean }> = [
  { names: ["x", "y", "z"], scaled: false },
  { names: ["xs", "ys", "zs"], scaled: true },
  { names: ["xu", "yu", "zu"], scaled: false },
  { names: ["xsu", "ysu", "zsu"], scaled: true },
];
const ANGSTROM_UNITS = new Set(["metal", "real"]);

type Expect = "item" | "timestep" | "time" | "units" | "natoms" | "bounds" | "atoms";

interface Snapshot {
  timestep: number | null;
  /** 1-based line of its first line. */
  line: number;
  natoms: number | null;
  bounds: string[];
  /** Line of ITEM: BOX BOUNDS. */
  boundsLine: number;
  /** Flags after BOX BOUNDS (tilt names, then boundary flags). */
  boundsItems: string[];
  columns: string[] | null;
  /** Line of ITEM: ATOMS; its rows follow. */
  atomsLine: number;
  rows: string[];
}

export class LammpsDumpParser extends LineFrameParser {
  private expect: Expect = "item";
  private snap: Snapshot = LammpsDumpParser.fresh(1);
  private frames = 0;

  /** `typeMap[t - 1]` is the element of atom type t; null when the dump must carry an element column. */
  constructor(
    private readonly file: string,
    private readonly typeMap: readonly string[] | null,
  ) {
    super();
  }

  private static fresh(line: number): Snapshot {
    return { timestep: null, line, natoms: null, bounds: [], boundsLine: 0, boundsItems: [], columns: null, atomsLine: 0, rows: [] };
  }

  /** The last snapshots, and where the file was cut when it ends inside one (null when it does not). */
  end(): { frames: Frame[]; truncated: string | null } {
    this.flush();
    const started = this.snap.timestep !== null || this.expect !== "item";
    if (this.frames === 0 && !started) throw new InputError(this.file, undefined, 'no snapshot found, expected a LAMMPS text dump ("ITEM: TIMESTEP" blocks)');
    let truncated: string | null = null;
    if (started) {
      const what = this.snap.columns === null ? "before its atoms" : `after ${this.snap.rows.length} of ${this.snap.natoms} atoms`;
      truncated = `line ${this.lineNo}: the file ends inside the snapshot of timestep ${this.snap.timestep ?? "?"} (${what}; dropped)`;
    }
    return { frames: this.take(), truncated };
  }

  private fail(line: number, detail: string): never {
    throw new InputError(this.file, line, detail);
  }

  protected line(text: string): void {
    const n = this.lineNo;
    const s = this.snap;
    switch (this.expect) {
      case "item":
        return this.item(text, n);
      case "timestep":
        s.timestep = this.integer(text, n, "the timestep");
        this.expect = "item";
        return;
      case "time":
        this.expect = "item";
        return;
      case "units": {
        const units = text.trim();
        if (!ANGSTROM_UNITS.has(units)) this.fail(n, `units "${units}": only metal and real units (lengths in Å) can be read`);
        this.expect = "item";
        return;
      }
      case "natoms":
        s.natoms = this.integer(text, n, "the number of atoms");
        this.expect = "item";
        return;
      case "bounds":
        s.bounds.push(text);
        if (s.bounds.length === 3) this.expect = "item";
        return;
      case "atoms":
        s.rows.push(text);
        if (s.rows.length === s.natoms) this.finish();
        return;
    }
  }

  private item(text: string, n: number): void {
    const m = /^ITEM: (TIMESTEP|UNITS|TIME|NUMBER OF ATOMS|BOX BOUNDS|ATOMS)\b\s*(.*)$/.exec(text.trim());
    if (!m) {
      if (text.trim() === "") return;
      this.fail(n, `expected an "ITEM:" line of a LAMMPS dump, found ${JSON.stringify(text.slice(0, 60))}`);
    }
    const s = this.snap;
    if ((m[1] === "TIMESTEP" || m[1] === "UNITS" || m[1] === "TIME") && s.timestep !== null) this.fail(n, `ITEM: ${m[1]} inside the snapshot of timestep ${s.timestep}, before its atoms`);
    if (m[1] !== "TIMESTEP" && m[1] !== "UNITS" && m[1] !== "TIME" && s.timestep === null) this.fail(n, `ITEM: ${m[1]} before ITEM: TIMESTEP`);
    switch (m[1]) {
      case "TIMESTEP":
        this.expect = "timestep";
        return;
      case "UNITS":
        this.expect = "units";
        return;
      case "TIME":
        this.expect = "time";
        return;
      case "NUMBER OF ATOMS":
        this.expect = "natoms";
        return;
      case "BOX BOUNDS":
        s.boundsItems = m[2].split(/\s+/).filter((t) => t !== "");
        s.boundsLine = n;
        this.expect = "bounds";
        return;
      case "ATOMS": {
        if (s.natoms === null) this.fail(n, "ITEM: ATOMS before ITEM: NUMBER OF ATOMS");
        if (s.bounds.length !== 3) this.fail(n, "ITEM: ATOMS before ITEM: BOX BOUNDS");
        s.columns = m[2].split(/\s+/).filter((t) => t !== "");
        s.atomsLine = n;
        this.checkColumns(n);
        this.expect = "atoms";
        if (s.natoms === 0) this.finish();
        return;
      }
    }
  }

  private checkColumns(n: number): void {
    const columns = this.snap.columns!;
    const duplicate = columns.find((c, i) => columns.indexOf(c) !== i);
    if (duplicate !== undefined) this.fail(n, `column ${duplicate} appears twice`);
    if (!POSITION_COLUMNS.some((p) => p.names.every((c) => columns.includes(c)))) this.fail(n, "no positions: expected columns x y z, xs ys zs, xu yu zu or xsu ysu zsu");
    if (!columns.includes("element")) {
      if (!columns.includes("type")) this.fail(n, "no element or type column: the species cannot be known");
      if (this.typeMap === null) this.fail(n, "atom types but no element column: the element of each type is needed, type 1 first (relabel rank --type-map Hf,O; type_map: [Hf, O] in the App's selection config or a stage's eval config)");
    }
  }

  private integer(text: string, n: number, what: string): number {
    const t = text.trim();
    if (!/^[+-]?\d+$/.test(t)) this.fail(n, `expected ${what} (an integer), found ${JSON.stringify(t.slice(0, 40))}`);
    const v = Number(t);
    if (what === "the number of atoms" && v < 0) this.fail(n, `expected ${what}, found ${v}`);
    return v;
  }

  private finish(): void {
    const s = this.snap;
    const { cell, pbc } = this.box();
    const columns = s.columns!;
    const natoms = s.natoms!;
    const ncol = columns.length;
    const position = POSITION_COLUMNS.find((p) => p.names.every((c) => columns.includes(c)))!;
    const [px, py, pz] = position.names.map((c) => columns.indexOf(c));
    const idCol = columns.indexOf("id");
    const elementCol = columns.indexOf("element");
    const typeCol = columns.indexOf("type");
    const xyz = new Float64Array(3 * natoms);
    const symbols: string[] = new Array<string>(natoms);
    const ids = new Float64Array(natoms);
    const elements = new Map<string, string>();
    let sorted = true;
    const wanted = new Int8Array(ncol).fill(-1);
    [px, py, pz].forEach((c, k) => (wanted[c] = k));
    for (let i = 0; i < natoms; i++) {
      const line = s.atomsLine + 1 + i;
      const text = s.rows[i];
      const n = text.length;
      let p = 0;
      for (let col = 0; col < ncol; col++) {
        while (p < n && isBlank(text.charCodeAt(p))) p++;
        const start = p;
        if (wanted[col] >= 0 && p < n) {
          // The number is read as the token is scanned (one pass); a token that is more than a number is refused.
          const v = readDecimal(text, p, n);
          p = scanEnd;
          if (Number.isNaN(v) || (p < n && !isBlank(text.charCodeAt(p)))) {
            while (p < n && !isBlank(text.charCodeAt(p))) p++;
            this.fail(line, `${columns[col]}: expected a number, found ${JSON.stringify(text.slice(start, p))}`);
          }
          xyz[3 * i + wanted[col]] = v;
          continue;
        }
        while (p < n && !isBlank(text.charCodeAt(p))) p++;
        if (start === p) this.fail(line, `expected ${ncol} values (${columns.join(" ")}), found ${col}`);
        if (col === elementCol) {
          const raw = text.slice(start, p);
          let symbol = elements.get(raw);
          if (symbol === undefined) {
            symbol = raw[0].toUpperCase() + raw.slice(1).toLowerCase();
            if (!isElement(symbol)) this.fail(line, `element ${JSON.stringify(raw)} is not an element symbol`);
            elements.set(raw, symbol);
          }
          symbols[i] = symbol;
        } else if (col === typeCol && elementCol < 0) {
          const type = wholeNumberAt(text, start, p);
          if (!(type >= 1 && type <= this.typeMap!.length)) this.fail(line, `atom type ${text.slice(start, p)} has no element in the type map (${this.typeMap!.map((e, k) => `${k + 1}=${e}`).join(" ")})`);
          symbols[i] = this.typeMap![type - 1];
        } else if (col === idCol) {
          ids[i] = wholeNumberAt(text, start, p);
          if (Number.isNaN(ids[i])) this.fail(line, `atom id ${JSON.stringify(text.slice(start, p))} is not an integer`);
          if (i > 0 && ids[i] <= ids[i - 1]) sorted = false;
        }
      }
      while (p < n && isBlank(text.charCodeAt(p))) p++;
      if (p < n) this.fail(line, `expected ${ncol} values (${columns.join(" ")}), found ${text.trim().split(/\s+/).length}`);
    }
    // Atoms by id, as ASE orders them (dumps are often in processor order).
    let order: number[] | null = null;
    if (!sorted) {
      order = Array.from({ length: natoms }, (_, i) => i).sort((a, b) => ids[a] - ids[b]);
      for (let k = 1; k < natoms; k++) if (ids[order[k]] === ids[order[k - 1]]) this.fail(s.line, `atom id ${ids[order[k]]} appears twice in the snapshot of timestep ${s.timestep}`);
    }
    const positions = new Float64Array(3 * natoms);
    const ordered: string[] = order === null ? symbols : new Array<string>(natoms);
    for (let i = 0; i < natoms; i++) {
      const j = order === null ? i : order[i];
      if (order !== null) ordered[i] = symbols[j];
      const [a, b, c] = [xyz[3 * j], xyz[3 * j + 1], xyz[3 * j + 2]];
      for (let k = 0; k < 3; k++) positions[3 * i + k] = position.scaled ? a * cell[k] + b * cell[3 + k] + c * cell[6 + k] : xyz[3 * j + k];
    }
    const info = new Map<string, InfoValue>([["timestep", { kind: "int", value: s.timestep! }]]);
    this.ready.push({ natoms, symbols: ordered, positions, cell, pbc, info, arrays: new Map() });
    this.frames++;
    this.snap = LammpsDumpParser.fresh(this.lineNo + 1);
    this.expect = "item";
  }

  /** The cell and pbc of the snapshot's BOX BOUNDS, as ASE's construct_cell makes them. */
  private box(): { cell: Float64Array; pbc: Pbc } {
    const s = this.snap;
    const line = s.boundsLine;
    const items = s.boundsItems;
    const rows = s.bounds.map((b, i) => b.trim().split(/\s+/).map((t) => this.decimal(t, line + 1 + i, "box bound")));
    const triclinic = rows[0].length === 3;
    if (!rows.every((r) => r.length === (triclinic ? 3 : 2))) this.fail(line, "box bounds: expected three lines of lo hi (and a tilt factor each for a triclinic box)");
    let [xy, xz, yz] = triclinic ? [rows[0][2], rows[1][2], rows[2][2]] : [0, 0, 0];
    if (triclinic && items.length >= 3) {
      const tilt = [rows[0][2], rows[1][2], rows[2][2]];
      const at = (name: string) => items.indexOf(name);
      if (at("xy") < 0 || at("xz") < 0 || at("yz") < 0) this.fail(line, `box bounds: expected the tilt names xy xz yz, found "${items.join(" ")}"`);
      [xy, xz, yz] = [tilt[at("xy")], tilt[at("xz")], tilt[at("yz")]];
    }
    const [xlo, xhi] = rows[0];
    const [ylo, yhi] = rows[1];
    const [zlo, zhi] = rows[2];
    const cell = new Float64Array([xhi - xlo - Math.abs(xy) - Math.abs(xz), 0, 0, xy, yhi - ylo - Math.abs(yz), 0, xz, yz, zhi - zlo]);
    const flags = items.length === 3 ? items : items.length > 3 ? items.slice(3, 6) : ["f", "f", "f"];
    const pbc = flags.map((f) => f.toLowerCase().includes("p")) as Pbc;
    return { cell, pbc };
  }

  private decimal(token: string, line: number, column: string): number {
    const v = decimalToken(token);
    if (Number.isNaN(v)) this.fail(line, `${column}: expected a number, found ${JSON.stringify(token)}`);
    return v;
  }
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 13;
}

/** Where readDecimal stopped: the first character after the number. */
let scanEnd = 0;

/**
 * The decimal number at text[from..] (`-1.5`, `2e-05`, `.5`, as LAMMPS prints them), read up to the first character
 * that cannot continue it (scanEnd); NaN when there is no number there. Exact through exactDecimal when the digits
 * allow, else through Number() on the number's text.
 */
function readDecimal(text: string, from: number, to: number): number {
  let p = from;
  let c = text.charCodeAt(p);
  const neg = c === 45;
  if (c === 45 || c === 43) c = text.charCodeAt(++p);
  let mant = 0;
  let digits = 0;
  while (p < to && (c - 48) >>> 0 <= 9) {
    mant = mant * 10 + (c - 48);
    digits++;
    c = text.charCodeAt(++p);
  }
  let exp = 0;
  if (p < to && c === 46) {
    c = text.charCodeAt(++p);
    while (p < to && (c - 48) >>> 0 <= 9) {
      mant = mant * 10 + (c - 48);
      digits++;
      exp--;
      c = text.charCodeAt(++p);
    }
  }
  scanEnd = p;
  if (digits === 0) return NaN;
  if (p < to && (c === 101 || c === 69)) {
    c = text.charCodeAt(++p);
    const eneg = c === 45;
    if (c === 45 || c === 43) c = text.charCodeAt(++p);
    const expStart = p;
    let e = 0;
    while (p < to && (c - 48) >>> 0 <= 9) {
      if (e < 100000) e = e * 10 + (c - 48);
      c = text.charCodeAt(++p);
    }
    scanEnd = p;
    if (p === expStart) return NaN;
    exp += eneg ? -e : e;
  }
  return exactDecimal(mant, exp, neg) ?? Number(text.slice(from, p));
}

/** A whole token that is a decimal number; NaN otherwise. */
function decimalToken(token: string): number {
  const v = readDecimal(token, 0, token.length);
  return scanEnd === token.length ? v : NaN;
}

/** A whole number of digits only (atom ids and types); NaN otherwise. */
function wholeNumberAt(text: string, from: number, to: number): number {
  if (to - from > 15) return NaN;
  let v = 0;
  for (let p = from; p < to; p++) {
    const d = text.charCodeAt(p) - 48;
    if (d >>> 0 > 9) return NaN;
    v = v * 10 + d;
  }
  return v;
}
