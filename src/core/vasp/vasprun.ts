/**
 * Incremental vasprun.xml reader. Feed it the file in chunks of any size; it hands back each ionic
 * step when its `</calculation>` arrives and a summary at the end. Only the small elements it needs
 * are ever held whole; `<eigenvalues>`, `<dos>`, `<projected>` and other large blocks are skipped by
 * searching for their closing tag, so memory stays bounded by the chunk size.
 */
import { isElement } from "../elements.js";
import { InputError } from "../errors.js";
import type { SkippedStep, VaspStep, VaspSummary } from "./types.js";

/** eV/A^3 per GPa exactly as ASE 3.22.1 computes it (CODATA 2014 elementary charge). */
const ASE_GPA = 1e9 * (1 / 1.6021766208e-19 / 1e30);
/** vasprun kBar with VASP's sign (compressive > 0) to eV/A^3 with ASE's sign, the factor ASE applies. */
const KBAR_TO_ASE_STRESS = -0.1 * ASE_GPA;

/** Incar/parameters tags reported in the summary, besides every LDAU* tag. */
const REPORTED_TAGS = ["ENCUT", "GGA", "METAGGA", "ISPIN", "LASPH", "PREC", "IVDW", "ISIF", "ISMEAR", "SIGMA", "EDIFF", "ML_LMLFF"];

/** Elements we hold whole at the top level of `<modeling>`. */
const COLLECTED_TOP = new Set(["generator", "incar", "parameters", "atominfo"]);
/** Elements known never to contain an element of their own name: skipping them needs only their closing tag. */
const NON_NESTING = new Set([
  "eigenvalues", "eigenvalues_kpoints_opt", "projected", "projected_kpoints_opt", "dos", "kpoints",
  "primitive_cell", "structure", "varray", "time", "energy", "dipole", "scstep", "i", "v", "array",
  "dielectricfunction", "dynmat", "born_charges", "nose", "kpoints_opt",
]);


const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

const enum Ctx {
  Prolog,
  Modeling,
  Calculation,
  Done,
}

type Pending =
  | { kind: "collect"; name: string; tag: string; start: number; searchFrom: number; line: number }
  | { kind: "skip"; name: string; nests: boolean; depth: number; searchFrom: number };

type ParamValue = string | number | boolean | number[];

interface CalcState {
  /** 0-based among all `<calculation>` elements. */
  ordinal: number;
  line: number;
  scsteps: number;
  /** e_fr_energy and e_0_energy of the latest `<scstep>`, or why they could not be read. */
  lastScFree: number;
  lastScSigma0: number;
  lastScProblem: string | null;
  freeEnergy: number | null;
  cell: Float64Array | null;
  fractional: Float64Array | null;
  forces: Float64Array | null;
  /** Raw 3x3 kBar tensor, row-major. */
  stress: Float64Array | null;
  problem: string | null;
}

/** A bad `<v>` row: where in the varray text, and what is wrong. */
interface RowError {
  offset: number;
  detail: string;
}

export interface VasprunParse {
  steps: VaspStep[];
  summary: VaspSummary;
}

/**
 * Streaming vasprun.xml parser. `push` each chunk in file order (strings, or Buffers which are read as
 * ISO-8859-1 as the XML declares), collect the steps it returns, then call `end` for the summary.
 * Throws InputError for input that is not vasprun.xml or is malformed beyond truncation.
 */
export class VasprunReader {
  private buf = "";
  private pos = 0;
  /** Newlines before buf[lineScan] are counted in lineBase (1-based line of buf[lineScan]). */
  private lineBase = 1;
  private lineScan = 0;
  private ctx: Ctx = Ctx.Prolog;
  private pending: Pending | null = null;
  private sawContent = false;
  private out: VaspStep[] = [];

  private calc: CalcState | null = null;
  private calcCount = 0;
  private dftCount = 0;
  private lastTopLevel: string | null = null;

  private symbols: string[] | null = null;
  /** Pseudopotential titles per atom type, from <atominfo>'s atomtypes. */
  private potentials: string[] = [];
  private vaspVersion: string | null = null;
  private incar = new Map<string, ParamValue>();
  private params = new Map<string, ParamValue>();
  private stepsRead = 0;
  private skipped: SkippedStep[] = [];
  private mlStepsSkipped = 0;

  constructor(private readonly file: string) {}

  /** Parses the next piece of the file and returns the ionic steps it completed. */
  push(chunk: string | Buffer): VaspStep[] {
    const text = typeof chunk === "string" ? chunk : chunk.toString("latin1");
    if (text.length === 0 || this.ctx === Ctx.Done) return [];
    this.append(text);
    this.out = [];
    this.run();
    return this.out;
  }

  /** Declares the end of the input and returns the summary. */
  end(): VaspSummary {
    if (this.ctx === Ctx.Prolog) {
      if (!this.sawContent) throw new InputError(this.file, undefined, "empty file; expected vasprun.xml");
      throw new InputError(this.file, this.lineAt(this.buf.length), "file ends before the <modeling> root element; expected vasprun.xml");
    }
    let truncated: string | null = null;
    if (this.ctx !== Ctx.Done) truncated = this.describeCut();
    const nelm = this.nelm();
    return {
      file: this.file,
      format: "vasprun",
      vaspVersion: this.vaspVersion,
      nelm,
      parameters: this.reportedParameters(),
      symbols: this.symbols ? this.symbols.slice() : [],
      potentials: this.potentials.slice(),
      stepsRead: this.stepsRead,
      skipped: this.skipped,
      mlStepsSkipped: this.mlStepsSkipped,
      truncated,
    };
  }

  private describeCut(): string {
    const line = this.lineAt(this.buf.length);
    const inner = this.pending ? `, in <${this.pending.name}>` : "";
    if (this.ctx === Ctx.Calculation && this.calc) return `line ${line}, inside <calculation> ${this.calc.ordinal + 1}${inner}`;
    if (this.pending) return `line ${line}, inside <${this.pending.name}>`;
    if (this.calcCount > 0) return `line ${line}, after <calculation> ${this.calcCount} (no </modeling>)`;
    if (this.lastTopLevel) return `line ${line}, after </${this.lastTopLevel}>, before any <calculation>`;
    return `line ${line}, right after <modeling>`;
  }

  // ---- buffer and line bookkeeping ----

  private append(text: string): void {
    const keep = this.pending?.kind === "collect" ? this.pending.start : this.pos;
    if (keep > 0) {
      this.lineAt(keep);
      this.lineScan -= keep;
      this.buf = this.buf.slice(keep) + text;
      this.pos -= keep;
      if (this.pending) {
        this.pending.searchFrom -= keep;
        if (this.pending.kind === "collect") this.pending.start -= keep;
      }
    } else {
      this.buf += text;
    }
  }

  /** 1-based line of buf[index]. Counting is incremental: each newline is counted once as parsing moves forward. */
  private lineAt(index: number): number {
    const buf = this.buf;
    let line = this.lineBase;
    let p = this.lineScan;
    if (index < p) {
      // Looking back: count the newlines between index and the scan point instead.
      let back = 0;
      let q = buf.indexOf("\n", index);
      while (q !== -1 && q < p) {
        back++;
        q = buf.indexOf("\n", q + 1);
      }
      return line - back;
    }
    let q = buf.indexOf("\n", p);
    while (q !== -1 && q < index) {
      line++;
      q = buf.indexOf("\n", q + 1);
    }
    this.lineBase = line;
    this.lineScan = index;
    return line;
  }

  // ---- tag scanner ----

  private run(): void {
    const buf = this.buf;
    for (;;) {
      if (this.pending) {
        if (!(this.pending.kind === "collect" ? this.resumeCollect(this.pending) : this.resumeSkip(this.pending))) return;
        continue;
      }
      if (this.ctx === Ctx.Done) return;
      if (this.ctx === Ctx.Prolog && !this.checkProlog()) return;
      const lt = buf.indexOf("<", this.pos);
      if (lt === -1) {
        this.pos = buf.length;
        return;
      }
      if (lt + 1 >= buf.length) {
        this.pos = lt;
        return;
      }
      const c1 = buf.charCodeAt(lt + 1);
      if (c1 === 33 /* ! */ || c1 === 63 /* ? */) {
        if (!this.skipMarkup(lt, c1)) return;
        continue;
      }
      const gt = buf.indexOf(">", lt + 1);
      if (gt === -1) {
        this.pos = lt;
        return;
      }
      this.pos = gt + 1;
      if (c1 === 47 /* / */) {
        this.handleClose(buf.slice(lt + 2, gt).trim(), lt);
      } else {
        const selfClosing = buf.charCodeAt(gt - 1) === 47;
        const tag = buf.slice(lt + 1, selfClosing ? gt - 1 : gt);
        this.handleOpen(tagName(tag), tag, selfClosing, lt);
      }
    }
  }

  /** Before the root element only whitespace, a BOM, declarations and comments may appear. */
  private checkProlog(): boolean {
    const buf = this.buf;
    let i = this.pos;
    while (i < buf.length) {
      const c = buf.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff || c === 0xef || c === 0xbb || c === 0xbf) i++;
      else break;
    }
    this.pos = i;
    if (i >= buf.length) return false;
    this.sawContent = true;
    if (buf.charCodeAt(i) !== 60) {
      let eol = buf.indexOf("\n", i);
      if (eol === -1) eol = buf.length;
      const found = buf.slice(i, Math.min(eol, i + 60)).trim();
      throw new InputError(this.file, this.lineAt(i), `not a vasprun.xml: expected XML starting with "<?xml" or "<modeling>", found "${found}"`);
    }
    return true;
  }

  /** Skips `<?...?>`, `<!-- -->`, `<![CDATA[...]]>` and `<!DOCTYPE ...>`; false when more data is needed. */
  private skipMarkup(lt: number, c1: number): boolean {
    const buf = this.buf;
    let terminator: string;
    if (c1 === 63) terminator = "?>";
    else {
      if (buf.length < lt + 9) {
        this.pos = lt;
        return false;
      }
      if (buf.startsWith("<!--", lt)) terminator = "-->";
      else if (buf.startsWith("<![CDATA[", lt)) terminator = "]]>";
      else terminator = ">";
    }
    const end = buf.indexOf(terminator, lt + 2);
    if (end === -1) {
      this.pos = lt;
      return false;
    }
    this.pos = end + terminator.length;
    return true;
  }

  private handleOpen(name: string, tag: string, selfClosing: boolean, lt: number): void {
    switch (this.ctx) {
      case Ctx.Prolog:
        if (name !== "modeling") {
          throw new InputError(this.file, this.lineAt(lt), `not a vasprun.xml: root element is <${name}>, expected <modeling>`);
        }
        this.ctx = selfClosing ? Ctx.Done : Ctx.Modeling;
        return;
      case Ctx.Modeling:
        if (selfClosing) return;
        if (name === "calculation") {
          this.ctx = Ctx.Calculation;
          this.calc = newCalc(this.calcCount++, this.lineAt(lt));
          return;
        }
        this.lastTopLevel = name;
        if (COLLECTED_TOP.has(name)) this.startCollect(name, tag, lt);
        else {
          // Machine-learned force-field steps are written as bare structure/forces blocks outside <calculation>.
          if (name === "varray" && attribute(tag, "name") === "forces") this.mlStepsSkipped++;
          this.startSkip(name);
        }
        return;
      case Ctx.Calculation:
        if (selfClosing) return;
        if (name === "scstep" || name === "structure" || name === "energy") this.startCollect(name, tag, lt);
        else if (name === "varray" && isForcesOrStress(attribute(tag, "name"))) this.startCollect(name, tag, lt);
        else this.startSkip(name);
        return;
      case Ctx.Done:
        return;
    }
  }

  private handleClose(name: string, lt: number): void {
    if (this.ctx === Ctx.Modeling && name === "modeling") {
      this.ctx = Ctx.Done;
      return;
    }
    if (this.ctx === Ctx.Calculation && name === "calculation") {
      const calc = this.calc!;
      this.calc = null;
      this.ctx = Ctx.Modeling;
      this.finishCalculation(calc);
      return;
    }
    const open = this.ctx === Ctx.Calculation ? "calculation" : this.ctx === Ctx.Modeling ? "modeling" : "document";
    throw new InputError(this.file, this.lineAt(lt), `malformed XML: </${name}> inside <${open}>, expected </${open}>`);
  }

  private startCollect(name: string, tag: string, lt: number): void {
    this.pending = { kind: "collect", name, tag, start: lt, searchFrom: this.pos, line: this.lineAt(lt) };
  }

  private startSkip(name: string): void {
    this.pending = { kind: "skip", name, nests: !NON_NESTING.has(name), depth: 1, searchFrom: this.pos };
  }

  /** Finds `</name>` at or after `from`; -1 when absent, -2 when the buffer ends inside a candidate. */
  private findClose(name: string, from: number): number {
    const buf = this.buf;
    const needle = "</" + name;
    let e = buf.indexOf(needle, from);
    while (e !== -1) {
      const after = e + needle.length;
      if (after >= buf.length) return -2;
      const c = buf.charCodeAt(after);
      if (c === 62 || c === 32 || c === 9 || c === 10 || c === 13) return e;
      e = buf.indexOf(needle, e + 1);
    }
    return -1;
  }

  /** First opening `<name` (possibly self-closing) in buf[from, limit); -1 if none, -2 if the buffer ends inside a candidate. */
  private findOpenBefore(name: string, from: number, limit: number): number {
    const buf = this.buf;
    const needle = "<" + name;
    // A slice bounds the search without copying; indexOf on the whole buffer could run far past limit.
    const region = buf.slice(from, limit);
    let r = region.indexOf(needle);
    while (r !== -1) {
      const after = from + r + needle.length;
      if (after >= buf.length) return -2;
      const c = buf.charCodeAt(after);
      if (c === 62 || c === 47 || c === 32 || c === 9 || c === 10 || c === 13) return from + r;
      r = region.indexOf(needle, r + 1);
    }
    return -1;
  }

  private resumeCollect(p: Extract<Pending, { kind: "collect" }>): boolean {
    const buf = this.buf;
    const e = this.findClose(p.name, p.searchFrom);
    const gt = e >= 0 ? buf.indexOf(">", e) : -1;
    if (gt === -1) {
      // Resume where a closing tag split by the chunk boundary could start.
      p.searchFrom = e >= 0 ? e : Math.max(p.searchFrom, buf.length - p.name.length - 2);
      return false;
    }
    this.pending = null;
    this.pos = gt + 1;
    const contentStart = buf.indexOf(">", p.start) + 1;
    const content = buf.slice(contentStart, e);
    const contentLine = p.line + countNewlines(buf, p.start, contentStart);
    this.handleCollected(p.name, p.tag, content, contentLine);
    return true;
  }

  private resumeSkip(p: Extract<Pending, { kind: "skip" }>): boolean {
    const buf = this.buf;
    const splitSafe = buf.length - p.name.length - 2;
    for (;;) {
      const e = this.findClose(p.name, p.searchFrom);
      if (p.nests) {
        // Only the stretch before the next closing tag can hold a nested opening tag.
        const o = this.findOpenBefore(p.name, p.searchFrom, e >= 0 ? e : buf.length);
        if (o === -2) return this.waitInSkip(p, splitSafe);
        if (o >= 0) {
          const gt = buf.indexOf(">", o);
          if (gt === -1) return this.waitInSkip(p, o);
          if (buf.charCodeAt(gt - 1) !== 47) p.depth++;
          p.searchFrom = gt + 1;
          continue;
        }
      }
      if (e < 0) return this.waitInSkip(p, splitSafe);
      const gt = buf.indexOf(">", e);
      if (gt === -1) return this.waitInSkip(p, e);
      p.searchFrom = gt + 1;
      if (--p.depth === 0) {
        this.pending = null;
        this.pos = gt + 1;
        return true;
      }
    }
  }

  /** Drops what was skipped, keeping only what a closing tag split by the chunk boundary needs. */
  private waitInSkip(p: Extract<Pending, { kind: "skip" }>, resumeAt: number): boolean {
    p.searchFrom = Math.max(p.searchFrom, resumeAt);
    this.pos = p.searchFrom;
    return false;
  }

  // ---- element handlers ----

  private handleCollected(name: string, tag: string, content: string, line: number): void {
    if (this.ctx === Ctx.Modeling) {
      if (name === "generator") this.readGenerator(content);
      else if (name === "incar") readParameters(content, this.incar);
      else if (name === "parameters") readParameters(content, this.params);
      else if (name === "atominfo") this.readAtominfo(content, line);
      return;
    }
    const calc = this.calc!;
    if (name === "scstep") this.readScstep(calc, content, line);
    else if (name === "energy") {
      if (calc.freeEnergy === null && calc.problem === null) {
        const r = readNamedNumbers(content, ["e_fr_energy"]);
        if (typeof r === "string") calc.problem = `<energy> (line ${line}): ${r}`;
        else calc.freeEnergy = r[0];
      }
    } else if (name === "structure") {
      // The step's own structure has no name; named ones (initialpos, finalpos, primitive_cell) are not this step's.
      if (calc.cell === null && attribute(tag, "name") === null) this.readStructure(calc, content, line);
    } else if (name === "varray") {
      const which = attribute(tag, "name");
      if (which === "forces" && calc.forces === null) calc.forces = this.readRows(calc, content, line, "forces", this.symbols?.length ?? null);
      else if (which === "stress" && calc.stress === null) calc.stress = this.readRows(calc, content, line, "stress", 3);
    }
  }

  private readGenerator(content: string): void {
    forEachLeaf(content, (_kind, nameAttr, _type, text) => {
      if (nameAttr === "version" && this.vaspVersion === null) this.vaspVersion = text.trim();
    });
  }

  private readAtominfo(content: string, line: number): void {
    const atoms = findArray(content, "atoms");
    if (atoms === null) {
      throw new InputError(this.file, line, `<atominfo> has no <array name="atoms">; expected the species of every atom`);
    }
    const rows = tableRows(atoms);
    const types = findArray(content, "atomtypes");
    const typeRows = types === null ? [] : tableRows(types);
    const symbols: string[] = [];
    for (const row of rows) {
      const raw = normaliseSymbol(row[0] ?? "");
      let symbol = raw;
      if (!isElement(raw)) {
        // VASP truncates some names (X for Xe, r for Zr); the pseudopotential title names the element.
        const typeIndex = Number(row[1]) - 1;
        const fromPotcar = potcarElement(typeRows[typeIndex]?.[4]);
        if (fromPotcar !== null) symbol = fromPotcar;
      }
      if (symbol === "") throw new InputError(this.file, line, `<atominfo> atom ${symbols.length + 1} has no element name`);
      symbols.push(symbol);
    }
    const declared = /<atoms>\s*(\d+)\s*<\/atoms>/.exec(content);
    if (declared && Number(declared[1]) !== symbols.length) {
      throw new InputError(this.file, line, `<atominfo> declares ${declared[1]} atoms but lists ${symbols.length}`);
    }
    this.symbols = symbols;
    this.potentials = typeRows.map((row) => (row[4] ?? "").trim().split(/\s+/).join(" ")).filter((title) => title !== "");
  }

  private readScstep(calc: CalcState, content: string, line: number): void {
    calc.scsteps++;
    const energyAt = content.indexOf("<energy");
    if (energyAt === -1) return;
    const r = readNamedNumbers(content.slice(energyAt), ["e_fr_energy", "e_0_energy"]);
    if (typeof r === "string") {
      calc.lastScProblem = `<scstep> ${calc.scsteps} (line ${line}): ${r}`;
    } else {
      calc.lastScProblem = null;
      calc.lastScFree = r[0];
      calc.lastScSigma0 = r[1];
    }
  }

  private readStructure(calc: CalcState, content: string, line: number): void {
    let from = 0;
    for (;;) {
      const at = content.indexOf("<varray", from);
      if (at === -1) break;
      const gt = content.indexOf(">", at);
      const end = content.indexOf("</varray", gt);
      if (gt === -1 || end === -1) break;
      const which = attribute(content.slice(at + 1, gt), "name");
      const rowsLine = line + countNewlines(content, 0, gt);
      const body = content.slice(gt + 1, end);
      if (which === "basis" && calc.cell === null) calc.cell = this.readRows(calc, body, rowsLine, "basis", 3);
      else if (which === "positions" && calc.fractional === null) {
        calc.fractional = this.readRows(calc, body, rowsLine, "positions", this.symbols?.length ?? null);
      }
      from = end + 8;
    }
    if (calc.problem === null && (calc.cell === null || calc.fractional === null)) {
      calc.problem = `<structure> (line ${line}) lacks ${calc.cell === null ? '<varray name="basis">' : '<varray name="positions">'}`;
    }
  }

  /** Reads `<v>` rows of three numbers; on a bad value records the step's problem and returns null. */
  private readRows(calc: CalcState, content: string, line: number, what: string, expectRows: number | null): Float64Array | null {
    const rows = expectRows ?? countRows(content);
    const data = new Float64Array(rows * 3);
    const err = readVectorRows(content, data, rows);
    if (typeof err === "number") {
      if (err === rows) return data;
      calc.problem ??= `<varray name="${what}"> (line ${line}) has ${err > rows ? "more than " + rows : err} rows, expected ${rows}`;
      return null;
    }
    calc.problem ??= `<varray name="${what}"> line ${line + countNewlines(content, 0, err.offset)}: ${err.detail}`;
    return null;
  }

  private finishCalculation(calc: CalcState): void {
    const label = `<calculation> ${calc.ordinal + 1} (line ${calc.line})`;
    if (calc.scsteps === 0) {
      if (this.mlEnabled()) this.mlStepsSkipped++;
      else this.skipped.push({ block: calc.ordinal, reason: `${label} has no <scstep>: not a self-consistent DFT result` });
      return;
    }
    const index = this.dftCount++;
    if (this.symbols === null) {
      throw new InputError(this.file, calc.line, `<calculation> ${calc.ordinal + 1} comes before any <atominfo>; expected <atominfo> with <array name="atoms"> listing the species`);
    }
    const missing =
      calc.problem ??
      (calc.cell === null || calc.fractional === null ? "no <structure> with basis and positions" : null) ??
      (calc.forces === null ? 'no <varray name="forces">' : null) ??
      (calc.freeEnergy === null ? "no <energy> block with e_fr_energy" : null) ??
      calc.lastScProblem ??
      (Number.isNaN(calc.lastScFree) ? "no <scstep> with an <energy> block" : null);
    if (missing !== null) {
      this.skipped.push({ block: calc.ordinal, reason: `${label}: ${missing}` });
      return;
    }
    const natoms = this.symbols.length;
    const cell = calc.cell!;
    const frac = calc.fractional!;
    const positions = new Float64Array(natoms * 3);
    for (let a = 0; a < natoms; a++) {
      const f0 = frac[3 * a], f1 = frac[3 * a + 1], f2 = frac[3 * a + 2];
      for (let j = 0; j < 3; j++) positions[3 * a + j] = f0 * cell[j] + f1 * cell[3 + j] + f2 * cell[6 + j];
    }
    let stress: Float64Array | null = null;
    if (calc.stress !== null) {
      const s = calc.stress;
      // Voigt xx yy zz yz xz xy from the upper triangle, as ASE takes it.
      stress = Float64Array.of(s[0], s[4], s[8], s[5], s[2], s[1]).map((v) => v * KBAR_TO_ASE_STRESS);
    }
    const nelm = this.nelm();
    const freeEnergy = calc.freeEnergy!;
    this.stepsRead++;
    this.out.push({
      index,
      symbols: this.symbols.slice(),
      positions,
      cell,
      forces: calc.forces!,
      stress,
      freeEnergy,
      // VASP 5 writes a wrong e_0_energy in the calculation-level block; only the scstep difference is reliable.
      energySigma0: freeEnergy + (calc.lastScSigma0 - calc.lastScFree),
      scfSteps: calc.scsteps,
      nelm,
      scfConverged: nelm === null || calc.scsteps < nelm,
    });
  }

  // ---- parameters ----

  private nelm(): number | null {
    const v = this.params.get("NELM") ?? this.incar.get("NELM");
    return typeof v === "number" && Number.isInteger(v) ? v : null;
  }

  private mlEnabled(): boolean {
    return (this.params.get("ML_LMLFF") ?? this.incar.get("ML_LMLFF")) === true;
  }

  /** `<parameters>` holds what VASP used, `<incar>` only what the user set: prefer the former, except for LDAU lists. */
  private reportedParameters(): Record<string, ParamValue> {
    const out: Record<string, ParamValue> = {};
    for (const key of REPORTED_TAGS) {
      const v = key === "ENCUT" ? (this.params.get("ENMAX") ?? this.incar.get("ENCUT")) : (this.params.get(key) ?? this.incar.get(key));
      if (v !== undefined) out[key] = v;
    }
    // VASP echoes per-species LDAU lists in <parameters> with the first value only; <incar> has them whole.
    const ldau = [...this.incar.keys(), ...this.params.keys()].filter((k) => k.startsWith("LDAU")).sort();
    for (const key of ldau) out[key] ??= (this.incar.get(key) ?? this.params.get(key))!;
    return out;
  }
}

/** Parses a whole vasprun.xml held in memory. */
export function parseVasprun(content: string | Buffer, file: string): VasprunParse {
  const reader = new VasprunReader(file);
  const steps = reader.push(content);
  return { steps, summary: reader.end() };
}

function newCalc(ordinal: number, line: number): CalcState {
  return {
    ordinal,
    line,
    scsteps: 0,
    lastScFree: NaN,
    lastScSigma0: NaN,
    lastScProblem: null,
    freeEnergy: null,
    cell: null,
    fractional: null,
    forces: null,
    stress: null,
    problem: null,
  };
}

function isForcesOrStress(name: string | null): boolean {
  return name === "forces" || name === "stress";
}

function tagName(tag: string): string {
  let i = 0;
  while (i < tag.length) {
    const c = tag.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 47) break;
    i++;
  }
  return tag.slice(0, i);
}

/** Value of attribute `key` in the text of an opening tag, or null. */
function attribute(tag: string, key: string): string | null {
  let from = 0;
  for (;;) {
    const at = tag.indexOf(key, from);
    if (at === -1) return null;
    from = at + key.length;
    const before = tag.charCodeAt(at - 1);
    if (!(before === 32 || before === 9 || before === 10 || before === 13)) continue;
    let i = from;
    while (tag.charCodeAt(i) === 32) i++;
    if (tag.charCodeAt(i) !== 61 /* = */) continue;
    i++;
    while (tag.charCodeAt(i) === 32) i++;
    const quote = tag[i];
    if (quote !== '"' && quote !== "'") continue;
    const end = tag.indexOf(quote, i + 1);
    if (end === -1) return null;
    return tag.slice(i + 1, end);
  }
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  let q = s.indexOf("\n", from);
  while (q !== -1 && q < to) {
    n++;
    q = s.indexOf("\n", q + 1);
  }
  return n;
}

function countRows(content: string): number {
  let n = 0;
  let at = content.indexOf("<v");
  while (at !== -1) {
    n++;
    at = content.indexOf("<v", at + 2);
  }
  return n;
}

/**
 * Reads `<v>` rows of exactly three numbers into out (row-major). Returns the number of rows found
 * (reading stops at `rows`), or the first bad value.
 */
function readVectorRows(content: string, out: Float64Array, rows: number): number | RowError {
  let row = 0;
  let from = 0;
  for (;;) {
    const at = content.indexOf("<v", from);
    if (at === -1) return row;
    const gt = content.indexOf(">", at);
    const end = content.indexOf("</v>", gt);
    if (gt === -1 || end === -1) return { offset: at, detail: "unterminated <v> row" };
    if (row === rows) return row + 1;
    const n = scanNumbers(content, gt + 1, end, out, row * 3, 3);
    if (n < 0) return { offset: -n - 1, detail: `"${tokenAt(content, -n - 1, end)}" is not a number` };
    if (n !== 3) return { offset: gt + 1, detail: `row ${row + 1} has ${n > 3 ? "more than 3" : n} numbers, expected 3` };
    row++;
    from = end + 4;
  }
}

function tokenAt(s: string, from: number, to: number): string {
  let i = from;
  while (i < to) {
    const c = s.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) break;
    i++;
  }
  return s.slice(from, Math.min(i, from + 40));
}

/**
 * Scans whitespace-separated numbers in s[from, to) into out[outAt...]. Fortran fields that run into
 * each other (`-12.345678-9.876543`) are split at the sign that starts the next number. Returns the
 * count (max + 1 when there are more than max), or -(offset + 1) of the first token that is not a
 * number (`*****`, `NaN`, or a sign that could be a Fortran exponent without its `E`).
 */
export function scanNumbers(s: string, from: number, to: number, out: Float64Array, outAt: number, max: number): number {
  let i = from;
  let n = 0;
  for (;;) {
    let c = 0;
    while (i < to) {
      c = s.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
    if (i >= to) return n;
    const start = i;
    let negative = false;
    if (c === 45 || c === 43) {
      negative = c === 45;
      i++;
    }
    let mantissa = 0;
    let significant = 0;
    let digits = 0;
    let scale = 0;
    let seenDot = false;
    while (i < to) {
      c = s.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        digits++;
        if (seenDot) scale++;
        if (significant > 0 || c !== 48) significant++;
        mantissa = mantissa * 10 + (c - 48);
        i++;
      } else if (c === 46 && !seenDot) {
        seenDot = true;
        i++;
      } else break;
    }
    if (digits === 0) return -(start + 1);
    let exponent = 0;
    if (i < to && (c === 101 || c === 69 || c === 100 || c === 68)) {
      i++;
      let expNegative = false;
      c = i < to ? s.charCodeAt(i) : 0;
      if (c === 45 || c === 43) {
        expNegative = c === 45;
        i++;
      }
      let expDigits = 0;
      while (i < to) {
        c = s.charCodeAt(i);
        if (c < 48 || c > 57) break;
        exponent = exponent * 10 + (c - 48);
        expDigits++;
        i++;
      }
      if (expDigits === 0) return -(start + 1);
      if (expNegative) exponent = -exponent;
    }
    if (i < to) {
      c = s.charCodeAt(i);
      const delimited = c === 32 || c === 9 || c === 10 || c === 13;
      if (!delimited && !((c === 45 || c === 43) && startsFusedNumber(s, i + 1, to))) return -(start + 1);
    }
    const net = exponent - scale;
    let value: number;
    if (significant <= 15 && net >= -22 && net <= 22) {
      value = net >= 0 ? mantissa * POW10[net] : mantissa / POW10[-net];
      if (negative) value = -value;
    } else {
      value = Number(s.slice(start, i).replace(/[dD]/, "e"));
    }
    if (n === max) return max + 1;
    out[outAt + n] = value;
    n++;
  }
}

/** After a sign glued to the previous number: digits then a dot means a new number, not an exponent. */
function startsFusedNumber(s: string, i: number, to: number): boolean {
  while (i < to) {
    const c = s.charCodeAt(i);
    if (c === 46) return true;
    if (c < 48 || c > 57) return false;
    i++;
  }
  return false;
}

/** Visits each `<i>` and `<v>` leaf: kind, name attribute, type attribute and text. */
function forEachLeaf(content: string, visit: (kind: "i" | "v", name: string | null, type: string | null, text: string) => void): void {
  let from = 0;
  for (;;) {
    const at = content.indexOf("<", from);
    if (at === -1) return;
    const kind = content[at + 1];
    const delim = content.charCodeAt(at + 2);
    if ((kind === "i" || kind === "v") && (delim === 32 || delim === 62 || delim === 9)) {
      const gt = content.indexOf(">", at);
      if (gt === -1) return;
      const tag = content.slice(at + 1, gt);
      if (content.charCodeAt(gt - 1) === 47) {
        visit(kind, attribute(tag, "name"), attribute(tag, "type"), "");
        from = gt + 1;
        continue;
      }
      const end = content.indexOf("</" + kind + ">", gt);
      if (end === -1) return;
      visit(kind, attribute(tag, "name"), attribute(tag, "type"), content.slice(gt + 1, end));
      from = end + 4;
    } else {
      from = at + 1;
    }
  }
}

/** Reads the named `<i>` numbers of an energy block, in the order asked; a string says what is wrong. */
function readNamedNumbers(content: string, names: string[]): number[] | string {
  const values: number[] = [];
  const one = new Float64Array(1);
  for (const name of names) {
    const text = namedLeafText(content, name);
    if (text === null) return `no ${name}`;
    if (scanNumbers(text, 0, text.length, one, 0, 1) !== 1) return `${name} "${text.trim()}" is not a number`;
    values.push(one[0]);
  }
  return values;
}

/** Text of the first `<i name="...">` leaf with this name, or null. */
function namedLeafText(content: string, name: string): string | null {
  // VASP always writes `<i name="x">`; the general scan handles any other spelling.
  const fast = content.indexOf(`<i name="${name}">`);
  if (fast !== -1) {
    const from = fast + name.length + 11;
    const end = content.indexOf("</i>", from);
    return end === -1 ? null : content.slice(from, end);
  }
  let found: string | null = null;
  forEachLeaf(content, (kind, leafName, _type, text) => {
    if (found === null && kind === "i" && leafName === name) found = text;
  });
  return found;
}

/** Collects typed `<i>`/`<v>` settings; the first occurrence of a tag wins (later ones are echoes). */
function readParameters(content: string, into: Map<string, ParamValue>): void {
  forEachLeaf(content, (kind, name, type, text) => {
    if (name === null || into.has(name)) return;
    into.set(name, kind === "i" ? scalarParameter(type, text) : vectorParameter(type, text));
  });
}

function scalarParameter(type: string | null, text: string): ParamValue {
  const t = text.trim();
  if (type === "string") return t;
  if (type === "logical") {
    const u = t.replace(/^\./, "").toUpperCase();
    if (u.startsWith("T")) return true;
    if (u.startsWith("F")) return false;
    return t;
  }
  const v = t === "" ? NaN : Number(t);
  return Number.isFinite(v) ? v : t;
}

function vectorParameter(type: string | null, text: string): ParamValue {
  const t = text.trim();
  if (type === "string" || type === "logical") return t;
  const parts = t === "" ? [] : t.split(/\s+/).map(Number);
  return parts.every(Number.isFinite) ? parts : t;
}

/** Content of `<array name="...">` inside atominfo, or null. */
function findArray(content: string, name: string): string | null {
  let from = 0;
  for (;;) {
    const at = content.indexOf("<array", from);
    if (at === -1) return null;
    const gt = content.indexOf(">", at);
    const end = content.indexOf("</array>", gt);
    if (gt === -1 || end === -1) return null;
    if (attribute(content.slice(at + 1, gt), "name") === name) return content.slice(gt + 1, end);
    from = end;
  }
}

/** Cells of each `<rc>` row of an atominfo array. */
function tableRows(array: string): string[][] {
  const rows: string[][] = [];
  let from = 0;
  for (;;) {
    const at = array.indexOf("<rc>", from);
    if (at === -1) return rows;
    const end = array.indexOf("</rc>", at);
    if (end === -1) return rows;
    const cells: string[] = [];
    let c = array.indexOf("<c>", at);
    while (c !== -1 && c < end) {
      const ce = array.indexOf("</c>", c);
      if (ce === -1 || ce > end) break;
      cells.push(array.slice(c + 3, ce));
      c = array.indexOf("<c>", ce);
    }
    rows.push(cells);
    from = end + 5;
  }
}

/** `MG ` -> `Mg`. */
function normaliseSymbol(raw: string): string {
  const t = raw.trim();
  return t.length === 0 ? t : t[0].toUpperCase() + t.slice(1).toLowerCase();
}

/** Element of a pseudopotential title such as `PAW_PBE Zr_sv 04Jan2005`, or null. */
function potcarElement(title: string | undefined): string | null {
  if (!title) return null;
  const words = title.trim().split(/\s+/);
  const name = words.length > 1 ? words[1] : words[0];
  const symbol = normaliseSymbol(name.split(/[_.]/)[0]);
  return isElement(symbol) ? symbol : null;
}
