/**
 * Incremental OUTCAR parser (pure): feed text in any chunking, get DFT ionic steps as they complete,
 * then a summary. Only the blocks we need are parsed; every other line costs a few character tests.
 *
 * Per DFT ionic step, in file order: `Iteration` lines (counted), the SCF end marker, the
 * `FORCE on cell` block with its `in kB` row, `direct lattice vectors`, the `POSITION ...
 * TOTAL-FORCE (eV/Angst)` block, `free  energy   TOTEN` and `energy(sigma->0)`. The step is
 * complete at the `energy(sigma->0)` line. Machine-learned force-field blocks (VASP >= 6.3,
 * marked "ML") are counted and left out.
 */

import { InputError } from "../errors.js";
import { elementSymbol } from "./poscar.js";
import type { SkippedStep, VaspStep, VaspSummary } from "./types.js";

/** ase.units.GPa of ASE 3.22.1 (CODATA 2014): 1 GPa in eV/A^3. Same double ASE uses, so stresses match bit for bit. */
export const ASE_GPA = 1e9 * (1 / 1.6021766208e-19 / 1e30);

export interface OutcarParserOptions {
  /** Names the file in messages and in summary.file. */
  file: string;
  /**
   * Species from files beside the OUTCAR (POSCAR, CONTCAR, vasprun.xml): one per atom, or one per
   * POTCAR type. Used only when the OUTCAR itself does not tell the species of every atom.
   */
  species?: readonly string[];
}

export interface OutcarResult {
  steps: VaspStep[];
  summary: VaspSummary;
}

const enum Block {
  None,
  /** Reading the 3 rows after `direct lattice vectors`. */
  Lattice,
  /** Expecting the dashes under the POSITION/TOTAL-FORCE header. */
  ForceDashes,
  /** Reading `x y z fx fy fz` rows until the closing dashes. */
  ForceRows,
}

const enum StressOwner {
  None,
  Dft,
  Ml,
}

/** Parameters copied into summary.parameters when found in the parameter echo (after "Startparameter for this run"). */
const PARAM_RE =
  /(?<![A-Z0-9_])(ENCUT|GGA|METAGGA|ISPIN|LASPH|PREC|IVDW|ISIF|ISMEAR|SIGMA|EDIFF|NELM|LDAU|LDAUTYPE|LDAUL|LDAUU|LDAUJ)\s*=\s*([^;]*)/g;
const ITERATION_RE = /Iteration\s+\d+\(\s*\d+\)/;
const ARRAY_PARAMS = new Set(["LDAUL", "LDAUU", "LDAUJ"]);
const PREC_NAMES: Record<string, string> = { l: "low", m: "medium", h: "high", n: "normal", a: "accurate" };

// Scratch results of scanNumbers (kept outside to avoid an allocation per row).
let scanProblem: string | null = null;
let scanRestBlank = true;
const rowScratch = new Float64Array(6);

export class OutcarParser {
  private readonly file: string;
  private readonly speciesHint: readonly string[] | undefined;
  private pending = "";
  private lineNo = 0;
  private ready: VaspStep[] = [];
  private ended = false;

  // Header.
  private sawVersion = false;
  private vaspVersion: string | null = null;
  private inHeader = true;
  private inParameterEcho = false;
  private potcarSymbols: string[] = [];
  private titelSymbols: string[] = [];
  private ionsPerType: number[] | null = null;
  private ionsPerTypeLine = 0;
  private nions: number | null = null;
  private nelm: number | null = null;
  private readonly parameters: Record<string, string | number | boolean | number[]> = {};
  private symbols: string[] | null = null;

  // Current cell (persists across steps; every step prints its own).
  private cell = new Float64Array(9);
  private nextCell = new Float64Array(9);
  private cellProblem: string | null = null;

  // Block reader.
  private block = Block.None;
  private blockRow = 0;
  private forceBlockLine = 0;
  private rows = 0;
  private positions = new Float64Array(0);
  private forces = new Float64Array(0);

  // Current DFT step.
  private scfSteps = 0;
  private scfUnconvergedMarker = false;
  private stressOwner = StressOwner.None;
  private stress: Float64Array | null = null;
  private forcesComplete = false;
  private forcesOpen = false;
  private freeEnergy: number | null = null;
  private stepProblem: string | null = null;

  // Totals.
  private dftBlocks = 0;
  private stepsRead = 0;
  private readonly skipped: SkippedStep[] = [];
  private mlSteps = 0;
  private footer = false;

  constructor(opts: OutcarParserOptions) {
    this.file = opts.file;
    this.speciesHint = opts.species;
  }

  /** Feeds the next piece of text; returns the steps completed by it. */
  push(chunk: string): VaspStep[] {
    if (this.ended) throw new Error("OutcarParser.push after end()");
    const text = this.pending.length > 0 ? this.pending + chunk : chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.lineNo++;
      this.line(text, start, end);
      start = nl + 1;
    }
    this.pending = start < text.length ? text.slice(start) : "";
    return this.take();
  }

  /** Ends the input: returns the steps completed by the last line and the summary. */
  end(): OutcarResult {
    if (this.ended) throw new Error("OutcarParser.end called twice");
    if (this.pending.length > 0) {
      const last = this.pending.endsWith("\r") ? this.pending.slice(0, -1) : this.pending;
      this.pending = "";
      this.lineNo++;
      this.line(last, 0, last.length);
    }
    this.ended = true;
    if (!this.sawVersion) {
      throw new InputError(this.file, undefined, 'empty file, expected an OUTCAR (first line "vasp.X.Y.Z ...")');
    }
    const inside = this.stepInProgress();
    let truncated: string | null = null;
    if (!this.footer) {
      truncated = inside
        ? `line ${this.lineNo}: no "General timing" footer; the file ends inside DFT ionic step ${this.dftBlocks + 1} (dropped)`
        : this.dftBlocks === 0
          ? `line ${this.lineNo}: no "General timing" footer; the file ends before the first ionic step`
          : `line ${this.lineNo}: no "General timing" footer; the file ends after DFT ionic step ${this.dftBlocks}`;
    } else if (inside) {
      this.skipped.push({ block: this.dftBlocks, reason: `line ${this.lineNo}: the last ionic step is incomplete (no forces or no energy)` });
    }
    const symbols = this.symbols ?? this.tryResolveSpecies();
    const summary: VaspSummary = {
      file: this.file,
      format: "outcar",
      vaspVersion: this.vaspVersion,
      nelm: this.nelm,
      parameters: this.parameters,
      symbols: typeof symbols === "string" ? [] : [...symbols],
      potentials: this.potentialTitles(),
      stepsRead: this.stepsRead,
      skipped: this.skipped,
      mlStepsSkipped: this.mlSteps,
      truncated,
    };
    return { steps: this.take(), summary };
  }

  private take(): VaspStep[] {
    const out = this.ready;
    if (out.length > 0) this.ready = [];
    return out;
  }

  private stepInProgress(): boolean {
    return this.scfSteps > 0 || this.forcesOpen || this.forcesComplete || this.stress !== null || this.freeEnergy !== null;
  }

  /** One line: text[s, e). */
  private line(text: string, s: number, e: number): void {
    if (this.block !== Block.None) {
      this.blockRowLine(text.slice(s, e));
      return;
    }
    let i = s;
    while (i < e && text.charCodeAt(i) === 32) i++;
    if (i === e) return;
    if (!this.sawVersion) {
      this.versionLine(text.slice(s, e));
      return;
    }
    if (this.inHeader) this.headerLine(text.slice(i, e));
    switch (text.charCodeAt(i)) {
      case 45: // '-': SCF iteration separator or SCF end marker
        if (text.charCodeAt(i + 1) === 45) this.dashLine(text.slice(i, e));
        break;
      case 70: // 'F'
        if (text.startsWith("FORCE on cell", i)) this.stressOwner = StressOwner.Dft;
        break;
      case 77: // 'M'
        if (text.startsWith("ML FORCE on cell", i)) this.stressOwner = StressOwner.Ml;
        break;
      case 105: // 'i'
        if (text.startsWith("in kB", i)) this.stressLine(text.slice(i, e));
        break;
      case 100: // 'd'
        if (text.startsWith("direct lattice vectors", i)) {
          this.block = Block.Lattice;
          this.blockRow = 0;
        }
        break;
      case 80: // 'P'
        if (text.startsWith("POSITION", i)) this.positionHeader(text.slice(i, e));
        break;
      case 102: // 'f'
        if (text.startsWith("free  energy   TOTEN", i)) this.freeEnergyLine(text.slice(i, e));
        else if (text.startsWith("free  energy ML TOTEN", i)) this.mlSteps++;
        break;
      case 101: // 'e'
        if (text.startsWith("energy  without entropy", i)) this.sigma0Line(text.slice(i, e));
        break;
      case 71: // 'G'
        if (text.startsWith("General timing", i)) this.footer = true;
        break;
    }
  }

  private versionLine(line: string): void {
    const m = /^\s*vasp\.(\S+)/.exec(line);
    if (!m) {
      const shown = JSON.stringify(line.trim().slice(0, 60));
      const hint = line.trimStart().startsWith("<") ? " (this is XML, e.g. a vasprun.xml; read it with the vasprun reader)" : "";
      throw new InputError(this.file, this.lineNo, `not an OUTCAR: expected the VASP version line ("vasp.X.Y.Z ..."), found ${shown}${hint}`);
    }
    this.sawVersion = true;
    this.vaspVersion = m[1];
  }

  /** Header lines (before the first SCF iteration): species, counts, NIONS, the parameter echo. `line` starts at its first non-blank. */
  private headerLine(line: string): void {
    if (line.startsWith("POTCAR:")) {
      this.potcarSymbols.push(line.slice(7));
      return;
    }
    if (line.startsWith("TITEL")) {
      this.titelSymbols.push(line.slice(line.indexOf("=") + 1));
      return;
    }
    if (line.startsWith("ions per type")) {
      this.ionsPerType = line.slice(line.indexOf("=") + 1).trim().split(/\s+/).filter((t) => t !== "").map(Number);
      this.ionsPerTypeLine = this.lineNo;
      return;
    }
    if (line.startsWith("Startparameter for this run")) {
      this.inParameterEcho = true;
      return;
    }
    if (line.startsWith("LDA+U is selected")) {
      this.parameters.LDAU = true;
      this.parameterLine(line);
      return;
    }
    if (this.nions === null && line.includes("NIONS")) {
      const m = /NIONS\s*=\s*(\d+)/.exec(line);
      if (m) this.nions = Number(m[1]);
    }
    if (this.inParameterEcho && line.includes("=")) this.parameterLine(line);
  }

  private parameterLine(line: string): void {
    PARAM_RE.lastIndex = 0;
    for (let m = PARAM_RE.exec(line); m !== null; m = PARAM_RE.exec(line)) {
      const key = m[1];
      if (key in this.parameters) continue; // first occurrence wins (SIGMA is echoed twice)
      const raw = m[2].trim();
      const words = raw.split(/\s+/);
      let value: string | number | boolean | number[];
      if (ARRAY_PARAMS.has(key)) {
        const nums: number[] = [];
        for (const w of words) {
          const v = Number(w);
          if (w === "" || !Number.isFinite(v)) break;
          nums.push(v);
        }
        value = nums;
      } else {
        value = parameterValue(key, words[0]);
      }
      this.parameters[key] = value;
      if (key === "NELM" && typeof value === "number") this.nelm = value;
    }
  }

  private dashLine(line: string): void {
    if (ITERATION_RE.test(line)) {
      this.inHeader = false;
      this.scfSteps++;
    } else if (line.includes("aborting loop") && line.includes("not reached")) {
      this.scfUnconvergedMarker = true;
    }
  }

  private stressLine(line: string): void {
    const owner = this.stressOwner;
    this.stressOwner = StressOwner.None;
    if (owner !== StressOwner.Dft) return;
    const kb = new Float64Array(6);
    const n = scanNumbers(line, 5, 6, kb, 0);
    if (scanProblem !== null || n !== 6) {
      this.problem(`line ${this.lineNo}: bad "in kB" stress row (${scanProblem ?? `found ${n} of 6 numbers`})`);
      return;
    }
    // VASP order XX YY ZZ XY YZ ZX, kBar, positive = compressive -> ASE Voigt xx yy zz yz zx xy, eV/A^3, positive = tensile.
    const order = [0, 1, 2, 4, 5, 3];
    const stress = new Float64Array(6);
    for (let k = 0; k < 6; k++) stress[k] = -kb[order[k]] * 0.1 * ASE_GPA;
    this.stress = stress;
  }

  private positionHeader(line: string): void {
    if (!line.includes("TOTAL-FORCE")) return;
    if (line.includes("(ML)")) return; // ML force-field prediction: counted at its "free  energy ML TOTEN" line
    if (this.forcesComplete) {
      this.problem(`line ${this.lineNo}: a second TOTAL-FORCE block before the energy of the previous one`);
    }
    this.block = Block.ForceDashes;
    this.forceBlockLine = this.lineNo;
    this.forcesOpen = true;
    this.forcesComplete = false;
    this.rows = 0;
    // Fresh arrays per block: emitted steps own theirs.
    this.positions = new Float64Array(3 * (this.nions ?? 0));
    this.forces = new Float64Array(3 * (this.nions ?? 0));
  }

  /** A line inside a block that is read row by row. */
  private blockRowLine(line: string): void {
    switch (this.block) {
      case Block.Lattice: {
        const n = scanNumbers(line, 0, 3, this.nextCell, 3 * this.blockRow);
        if (scanProblem !== null || n !== 3) {
          this.cellProblem = `line ${this.lineNo}: bad lattice vector row after "direct lattice vectors" (${scanProblem ?? `found ${n} of 3 numbers`})`;
          this.block = Block.None;
          return;
        }
        if (++this.blockRow === 3) {
          const done = this.nextCell;
          this.nextCell = this.cell;
          this.cell = done;
          this.cellProblem = null;
          this.block = Block.None;
        }
        return;
      }
      case Block.ForceDashes:
        this.block = Block.ForceRows;
        if (!isDashes(line)) this.blockRowLine(line);
        return;
      case Block.ForceRows: {
        if (isDashes(line)) {
          this.block = Block.None;
          this.forcesOpen = false;
          this.forcesComplete = true;
          if (this.nions !== null && this.rows !== this.nions) {
            this.problem(`line ${this.forceBlockLine}: TOTAL-FORCE block has ${this.rows} rows, expected NIONS = ${this.nions}`);
          }
          return;
        }
        if (this.rows === this.nions) {
          // No closing dashes after NIONS rows: end the block here and read this line normally.
          this.block = Block.None;
          this.forcesOpen = false;
          this.forcesComplete = true;
          this.problem(`line ${this.lineNo}: expected the dashes closing the TOTAL-FORCE block after ${this.nions} rows`);
          this.line(line, 0, line.length);
          return;
        }
        const r = this.rows++;
        if (3 * r + 3 > this.positions.length) this.growRows();
        const n = scanNumbers(line, 0, 6, rowScratch, 0);
        let problem = scanProblem;
        if (problem === null && (n !== 6 || !scanRestBlank)) problem = "expected 6 numbers: x y z fx fy fz";
        if (problem !== null) {
          this.problem(`line ${this.lineNo}: bad TOTAL-FORCE row (${problem})`);
          return;
        }
        for (let c = 0; c < 3; c++) {
          this.positions[3 * r + c] = rowScratch[c];
          this.forces[3 * r + c] = rowScratch[3 + c];
        }
        return;
      }
    }
  }

  private growRows(): void {
    const size = Math.max(24, this.positions.length * 2);
    const p = new Float64Array(size);
    p.set(this.positions);
    const f = new Float64Array(size);
    f.set(this.forces);
    this.positions = p;
    this.forces = f;
  }

  private freeEnergyLine(line: string): void {
    const eq = line.indexOf("=");
    const out = [0];
    const n = scanNumbers(line, eq + 1, 1, out, 0);
    if (scanProblem !== null || n !== 1) {
      this.problem(`line ${this.lineNo}: bad "free  energy   TOTEN" line (${scanProblem ?? "no number"})`);
      this.freeEnergy = Number.NaN;
      return;
    }
    this.freeEnergy = out[0];
  }

  /** `energy  without entropy= Y  energy(sigma->0) = Z`: the last line of a DFT ionic step. */
  private sigma0Line(line: string): void {
    const at = line.lastIndexOf("=");
    const out = [0];
    const n = scanNumbers(line, at + 1, 1, out, 0);
    if (scanProblem !== null || n !== 1 || !line.includes("sigma->0")) {
      this.problem(`line ${this.lineNo}: bad "energy(sigma->0)" line (${scanProblem ?? "no number"})`);
    }
    this.finishStep(out[0]);
  }

  private finishStep(energySigma0: number): void {
    const index = this.dftBlocks++;
    if (this.forcesOpen || !this.forcesComplete) this.problem(`line ${this.lineNo}: energy without a complete TOTAL-FORCE block before it`);
    if (this.freeEnergy === null) this.problem(`line ${this.lineNo}: no "free  energy   TOTEN" line before "energy(sigma->0)"`);
    const problem = this.stepProblem ?? this.cellProblem;
    if (problem !== null) {
      this.skipped.push({ block: index, reason: problem });
    } else {
      const symbols = this.speciesFor(this.rows);
      const natoms = this.rows;
      const positions = this.positions.length === 3 * natoms ? this.positions : this.positions.slice(0, 3 * natoms);
      const forces = this.forces.length === 3 * natoms ? this.forces : this.forces.slice(0, 3 * natoms);
      const nelm = this.nelm;
      this.ready.push({
        index,
        symbols: symbols.slice(),
        positions,
        cell: new Float64Array(this.cell),
        forces,
        stress: this.stress,
        freeEnergy: this.freeEnergy as number,
        energySigma0,
        scfSteps: this.scfSteps,
        nelm,
        scfConverged: !this.scfUnconvergedMarker && (nelm === null || this.scfSteps < nelm),
      });
      this.stepsRead++;
    }
    this.scfSteps = 0;
    this.scfUnconvergedMarker = false;
    this.stressOwner = StressOwner.None;
    this.stress = null;
    this.forcesComplete = false;
    this.forcesOpen = false;
    this.freeEnergy = null;
    this.stepProblem = null;
    this.positions = new Float64Array(0);
    this.forces = new Float64Array(0);
  }

  private problem(reason: string): void {
    this.stepProblem ??= reason;
  }

  /** Species per atom for a step of `natoms` atoms; throws when neither the OUTCAR nor the hint tells. */
  private speciesFor(natoms: number): string[] {
    if (this.symbols === null) {
      const r = this.tryResolveSpecies();
      if (typeof r === "string") throw new InputError(this.file, this.ionsPerTypeLine || this.lineNo, r);
      this.symbols = r;
    }
    if (this.symbols.length !== natoms) {
      throw new InputError(this.file, this.forceBlockLine, `TOTAL-FORCE block has ${natoms} atoms but the species list has ${this.symbols.length}`);
    }
    return this.symbols;
  }

  /** The pseudopotential title per type: the TITEL lines, else the header's list of POTCAR lines. */
  private potentialTitles(): string[] {
    const types = this.titelSymbols.length > 0 ? this.titelSymbols : this.potcarSymbols.slice(0, this.ionsPerType?.length ?? this.potcarSymbols.length >> 1);
    return types.map((title) => title.trim().split(/\s+/).join(" "));
  }

  /** Species per atom from POTCAR/TITEL lines and `ions per type`, else the hint; a message when neither is enough. */
  private tryResolveSpecies(): string[] | string {
    const nions = this.nions;
    const counts = this.ionsPerType ?? [];
    // POTCAR lines appear twice (header list, then once per potential): the first half is the type list.
    const potcar = this.potcarSymbols.slice(0, Math.max(counts.length, this.potcarSymbols.length >> 1)).map(potcarElement);
    const titel = this.titelSymbols.map(potcarElement);
    let types: (string | null)[] = potcar.length > 0 ? potcar : titel;
    if (types.some((t) => t === null)) types = [];
    let typeCounts: number[] | null = null;
    if (counts.length > 0 && counts.every((n) => Number.isInteger(n) && n > 0)) {
      const total = counts.reduce((a, b) => a + b, 0);
      if (types.length === counts.length && (nions === null || total === nions)) typeCounts = counts;
      else if (types.length === counts.length + 1 && nions !== null && nions > total) {
        // `ions per type` printed one number short (long type lists are cut): the last count follows from NIONS.
        typeCounts = [...counts, nions - total];
      }
    }
    if (typeCounts !== null && types.length === typeCounts.length) {
      const out: string[] = [];
      for (let t = 0; t < types.length; t++) for (let k = 0; k < typeCounts[t]; k++) out.push(types[t] as string);
      return out;
    }
    const hint = this.speciesHint;
    if (hint && hint.length > 0) {
      const els = hint.map((h) => elementSymbol(h));
      if (els.every((x) => x !== null)) {
        const clean = els as string[];
        if (nions === null || clean.length === nions) return clean;
        if (typeCounts === null && counts.length === clean.length && counts.reduce((a, b) => a + b, 0) === nions) {
          const out: string[] = [];
          for (let t = 0; t < clean.length; t++) for (let k = 0; k < counts[t]; k++) out.push(clean[t]);
          return out;
        }
      }
      return `the species given beside the OUTCAR (${hint.length} entries) do not fit NIONS = ${nions ?? "?"}`;
    }
    const found = `${types.length} POTCAR species, ions per type = ${counts.length > 0 ? counts.join(" ") : "(missing)"}, NIONS = ${nions ?? "(missing)"}`;
    return `cannot tell the species of every atom (${found}); give its run directory instead of the file, with the POSCAR, CONTCAR or vasprun.xml that name them`;
  }
}

/** Reads a whole OUTCAR held in memory. */
export function parseOutcar(text: string, opts: OutcarParserOptions): OutcarResult {
  const parser = new OutcarParser(opts);
  const first = parser.push(text);
  const rest = parser.end();
  return { steps: first.length > 0 ? [...first, ...rest.steps] : rest.steps, summary: rest.summary };
}

/** `   PAW_PBE Na_pv 19Sep2006` -> Na; `PAW Ni 02Aug2007` -> Ni; `H_h` -> H. */
function potcarElement(rest: string): string | null {
  const t = rest.trim().split(/\s+/);
  const name = t.length > 1 && /^(PAW|US|NC)/i.test(t[0]) ? t[1] : t[0];
  return name === undefined ? null : elementSymbol(name);
}

function parameterValue(key: string, word: string | undefined): string | number | boolean {
  if (word === undefined || word === "") return "";
  if (word === "T" || word === ".TRUE.") return true;
  if (word === "F" || word === ".FALSE.") return false;
  const v = Number(word);
  if (Number.isFinite(v)) return v;
  if (key === "PREC") return PREC_NAMES[word[0].toLowerCase()] ?? word;
  return word;
}

function isDashes(line: string): boolean {
  let i = 0;
  while (i < line.length && line.charCodeAt(i) === 32) i++;
  return line.charCodeAt(i) === 45 && line.charCodeAt(i + 1) === 45;
}

/**
 * Reads up to `max` numbers from line[from..] into out[offset..] and returns how many it read.
 * Fused Fortran fields (`-12.345678-9.876543`, `0.5079271E+00-0.229E+00`) are split; a field of
 * `*` (overflow) or one that cannot be split unambiguously sets `scanProblem`. After the call
 * `scanRestBlank` tells whether only blanks follow the numbers read.
 */
function scanNumbers(line: string, from: number, max: number, out: Float64Array | number[], offset: number): number {
  scanProblem = null;
  let n = 0;
  let i = from;
  const len = line.length;
  while (n < max) {
    while (i < len && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
    if (i >= len) break;
    let j = i;
    while (j < len && line.charCodeAt(j) !== 32 && line.charCodeAt(j) !== 9) j++;
    const tok = line.slice(i, j);
    const v = Number(tok);
    if (v === v) {
      out[offset + n++] = v;
      i = j;
      continue;
    }
    if (tok.includes("*")) {
      scanProblem = `overflow field ${JSON.stringify(tok)}`;
      break;
    }
    const parts = splitFusedField(tok);
    if (parts === null) {
      scanProblem = `cannot read field ${JSON.stringify(tok)}`;
      break;
    }
    // A fused token counts whole: if it holds more numbers than wanted, the rest is not blank.
    let k = 0;
    for (; k < parts.length && n < max; k++) out[offset + n++] = parts[k];
    i = j;
    if (k < parts.length) {
      scanRestBlank = false;
      return n;
    }
  }
  while (i < len && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
  scanRestBlank = i >= len;
  return n;
}

const E_FIELD = /[-+]?(?:\d+\.?\d*|\.\d+)[EeDd][-+]\d\d/y;

/**
 * Splits Fortran fields written without a separating blank. E-format fields end after a
 * two-digit exponent; F-format fields all carry as many decimals as the last one. Returns null
 * when the token does not split that way (it is then not trusted).
 */
export function splitFusedField(tok: string): number[] | null {
  const out: number[] = [];
  if (/[EeDd]/.test(tok)) {
    E_FIELD.lastIndex = 0;
    while (E_FIELD.lastIndex < tok.length) {
      const start = E_FIELD.lastIndex;
      const m = E_FIELD.exec(tok);
      if (m === null || m.index !== start) return null;
      out.push(Number(m[0].replace(/[Dd]/, "E")));
    }
    return out.length > 0 ? out : null;
  }
  const decimals = tok.length - tok.lastIndexOf(".") - 1;
  if (!tok.includes(".") || decimals === 0) return null;
  const field = new RegExp(`[-+]?\\d*\\.\\d{${decimals}}`, "y");
  while (field.lastIndex < tok.length) {
    const start = field.lastIndex;
    const m = field.exec(tok);
    if (m === null || m.index !== start) return null;
    out.push(Number(m[0]));
  }
  return out.length > 1 ? out : null;
}
