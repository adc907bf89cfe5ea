/**
 * XDATCAR, VASP's trajectory file: the positions of every ionic step, machine-learned force-field steps included
 * (pure and incremental: text in, frames out).
 *
 * VASP 5 and later write a header (comment, scale, three lattice vectors, species, counts), then for each step a
 * "Direct configuration=     N" line and N_atoms fractional positions. Runs whose cell changes (NpT MD) write the
 * header again before every step. Each step is read as the POSCAR that its header and positions make
 * (parsePoscar), so scale factors and species follow the POSCAR rules; errors name the XDATCAR's own lines.
 * A file that ends inside a step (a run that was killed) gives the steps before it, and says where it was cut.
 */
import { InputError } from "../errors.js";
import { LineFrameParser } from "../formats/line-frames.js";
import type { Frame } from "../structure.js";
import { parsePoscar } from "./poscar.js";

const CONFIGURATION = /^\s*(direct|cartesian)?\s*configuration/i;

interface Header {
  lines: string[];
  /** 1-based line number of its first line. */
  first: number;
  natoms: number;
}

interface Step {
  /** The configuration line, its line number, and the position lines so far (from line `lineNo + 1`). */
  line: string;
  lineNo: number;
  positions: string[];
}

export class XdatcarParser extends LineFrameParser {
  private header: Header | null = null;
  /** Header lines read since the last step (a new header, for runs whose cell changes). */
  private collected: string[] = [];
  private collectedFirst = 0;
  private step: Step | null = null;
  private steps = 0;

  constructor(private readonly file: string) {
    super();
  }

  /** The last steps, and where the file was cut when it ends inside a step or a header (null when it does not). */
  end(): { frames: Frame[]; truncated: string | null } {
    this.flush();
    let truncated: string | null = null;
    if (this.step) truncated = `line ${this.lineNo}: the file ends inside step ${this.steps + 1} (${this.step.positions.length} of ${this.header!.natoms} positions; dropped)`;
    else if (this.collected.length > 0 && this.header) truncated = `line ${this.lineNo}: the file ends inside the header of step ${this.steps + 1}`;
    if (this.header === null && this.steps === 0) throw new InputError(this.file, undefined, "no configuration found, expected an XDATCAR (a POSCAR-like header, then \"Direct configuration=\" blocks)");
    return { frames: this.take(), truncated };
  }

  protected line(text: string): void {
    if (this.step) {
      this.step.positions.push(text);
      if (this.step.positions.length === this.header!.natoms) this.finishStep();
      return;
    }
    if (CONFIGURATION.test(text)) {
      if (this.collected.length > 0) this.header = this.newHeader();
      if (this.header === null) throw new InputError(this.file, this.lineNo, "a configuration line before the header (comment, scale, lattice, species, counts)");
      this.step = { line: text, lineNo: this.lineNo, positions: [] };
      return;
    }
    if (this.collected.length === 0) {
      // Blank lines between steps; the file's first line is the comment, which may be blank.
      if (text.trim() === "" && this.header !== null) return;
      this.collectedFirst = this.lineNo;
    }
    this.collected.push(text);
  }

  private newHeader(): Header {
    const lines = this.collected;
    this.collected = [];
    const counts = (lines[lines.length - 1] ?? "").trim().split(/\s+/);
    let natoms = 0;
    for (const token of counts) {
      if (!/^\d+$/.test(token)) break;
      natoms += Number(token);
    }
    if (natoms === 0) throw new InputError(this.file, this.collectedFirst + lines.length - 1, `expected the atom counts before the configuration line, found "${lines[lines.length - 1]}"`);
    return { lines, first: this.collectedFirst, natoms };
  }

  private finishStep(): void {
    const header = this.header!;
    const step = this.step!;
    this.step = null;
    this.steps++;
    const mode = /^\s*cartesian/i.test(step.line) ? "Cartesian" : "Direct";
    const text = `${header.lines.join("\n")}\n${mode}\n${step.positions.join("\n")}\n`;
    try {
      this.ready.push(parsePoscar(text, { file: this.file }).frame);
    } catch (err) {
      if (!(err instanceof InputError) || typeof err.where !== "number") throw err;
      // Lines of the POSCAR made here, back to the XDATCAR's: header, configuration line, positions.
      const at = err.where;
      const line = at <= header.lines.length ? header.first + at - 1 : at === header.lines.length + 1 ? step.lineNo : step.lineNo + at - header.lines.length - 1;
      throw new InputError(this.file, line, `step ${this.steps}: ${err.detail}`);
    }
  }
}
