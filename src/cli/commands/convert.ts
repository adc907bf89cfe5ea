import { existsSync, type WriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";
import { UsageError } from "../../core/errors.js";
import { writeExtxyzFrame } from "../../core/formats/extxyz.js";
import { readInputs, type InputReport } from "../../io/inputs.js";
import { helpText, oneOf, parseCommand, type CommandSpec } from "../args.js";
import { Progress } from "../progress.js";
import { counted } from "../../core/counted.js";
import { printInputReports } from "../report.js";

export const convertSpec = {
  name: "convert",
  summary: "Convert VASP runs and extxyz files into one extxyz file carrying MACE's REF_* labels.",
  usage: "relabel convert INPUT... -o OUT.extxyz|- [--energy free|sigma0] [--frames all|final]",
  help: `INPUT is an extxyz file, a vasprun.xml, an OUTCAR, a VASP run directory, or a folder holding run directories
and extxyz files (*.extxyz, *.xyz; those inside a run directory are not read).
A run directory is read from vasprun.xml, falling back to OUTCAR; when both exist they are cross-checked.
A folder custodian left from a job of several steps (vasprun.xml.relax1.gz, vasprun.xml.relax2.gz) is one run.
Files may be compressed with gzip, xz (through the xz program) or bzip2 (through bzip2). A non-self-consistent
calculation (ICHARG >= 10: a band structure on a fixed density) gives no frames; its run says why.

options:
  -o, --output FILE      where to write the extxyz: written to a temporary file beside it, renamed over FILE only
                         when at least one frame was converted; "-" writes to stdout (the summary goes to stderr)
      --energy POLICY    which energy becomes REF_energy: free (TOTEN, force-consistent; default) or sigma0
      --frames WHICH     all ionic steps (default) or only the final one of each run (extxyz files: every frame)
  -h, --help             show this help

Every VASP frame carries REF_energy, REF_free_energy, REF_energy_sigma0, REF_forces, REF_stress (when VASP
computed stress; Voigt xx yy zz yz xz xy, eV/A^3, ASE sign) and the info keys source, ionic_step, scf_steps,
nelm, scf_converged and vasp_version. Runs of the same name in different folders get ids long enough to differ.

An extxyz frame keeps its keys, but the labels ASE reads as calculator results move to the same REF_* keys:
with energy and free_energy (as ASE writes a DFT step: sigma->0 and TOTEN) REF_energy follows --energy and both are
kept as REF_energy_sigma0 and REF_free_energy; a lone energy (or free_energy) becomes REF_energy. The forces column
becomes REF_forces, stress (eV/A^3, ASE sign) REF_stress as 6 Voigt values, and without a stress a virial (eV) gives
REF_stress = -virial / cell volume. REF_* keys a frame already has are kept. Frames without an energy or forces are
written and counted in a note; a frame whose positions or cell hold nan or inf is left out, named by its line.

exit codes: 0 success, 1 some input had problems or gave no frame (each reported on stderr), 2 usage error`,
  options: {
    output: { type: "string", short: "o" },
    energy: { type: "string" },
    frames: { type: "string" },
  },
} satisfies CommandSpec;

export async function runConvert(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(convertSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(convertSpec));
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no INPUT given\nusage: ${convertSpec.usage}`);
  if (!values.output) throw new UsageError(`-o OUT.extxyz is required\nusage: ${convertSpec.usage}`);
  const energy = oneOf("energy", values.energy, ["free", "sigma0"] as const, "free");
  const frames = oneOf("frames", values.frames, ["all", "final"] as const, "all");

  const toStdout = values.output === "-";
  const out = toStdout ? null : path.resolve(values.output);
  if (out && (await stat(out).catch(() => null))?.isDirectory()) throw new UsageError(`-o ${values.output} is a folder: give the file to write (or - for stdout)`);
  const target = toStdout ? new StdoutTarget() : await FileTarget.open(out!);
  const reports: InputReport[] = [];
  const excluded: string[] = [];
  const progress = new Progress("convert");
  let written = 0;
  try {
    const exclude = out ? { file: out, onExcluded: (file: string) => excluded.push(file) } : undefined;
    for await (const event of readInputs(positionals, { energy, frames, exclude })) {
      if (event.type === "report") {
        reports.push(event.report);
        continue;
      }
      if (!(await target.write(writeExtxyzFrame(event.frame)))) break;
      written++;
      progress.update(`${written} frames, input ${reports.length + 1}/${positionals.length}`, reports.length / positionals.length);
    }
  } catch (err) {
    await target.abandon();
    throw err;
  } finally {
    progress.done();
  }
  await target.finish(written > 0);
  if (target.closedEarly) {
    process.stderr.write(`relabel convert: stdout was closed after ${counted(written, "frame")}; stopped\n`);
    return 1;
  }
  for (const file of excluded) process.stderr.write(`note: ${file}: not read: it is the output being written\n`);
  const problems = printInputReports(reports);
  const summary = toStdout ? process.stderr : process.stdout;
  const runs = reports.filter((r) => r.frames > 0).length;
  const where = toStdout ? "stdout" : values.output;
  if (written === 0) {
    const kept = out && existsSync(out) ? `${values.output} left as it was` : `${values.output} not written`;
    summary.write(`no frame converted from ${counted(reports.length, "input")}: ${toStdout ? "nothing written to stdout" : kept}\n`);
    return 1;
  }
  summary.write(`wrote ${counted(written, "frame")} from ${runs} of ${counted(reports.length, "input")} to ${where}${describeLabels(reports, energy)}\n`);
  return problems ? 1 : 0;
}

/** What the written frames' labels are, per kind of input: after the summary's counts. */
function describeLabels(reports: InputReport[], energy: "free" | "sigma0"): string {
  const sum = (extxyz: boolean) => reports.filter((r) => (r.kind === "extxyz") === extxyz).reduce((n, r) => n + r.frames, 0);
  const vasp = sum(false);
  const extxyz = sum(true);
  const policy = energy === "free" ? "free energy" : "sigma->0 energy";
  const parts = [
    vasp > 0 ? `${counted(vasp, "VASP step")} (REF_energy = ${policy})` : "",
    extxyz > 0 ? `${counted(extxyz, "extxyz frame")} (ASE's energy, forces and stress as REF_*; REF_energy = ${energy === "free" ? "free_energy" : "energy"} where a frame has both)` : "",
  ].filter(Boolean);
  return `: ${parts.join(", ")}`;
}

/** Where converted frames go. */
interface Target {
  /** False once nothing more can be written (stdout closed by its reader). */
  write(text: string): Promise<boolean>;
  /** Ends the output; a file output replaces OUT only when `keep`. */
  finish(keep: boolean): Promise<void>;
  /** Ends the output after an error: OUT stays as it was. */
  abandon(): Promise<void>;
  readonly closedEarly: boolean;
}

/** A temporary file beside OUT, renamed over it at the end: a failed or empty conversion leaves OUT as it was. */
class FileTarget implements Target {
  readonly closedEarly = false;
  private error: Error | null = null;

  private constructor(
    private readonly out: string,
    private readonly tmp: string,
    private readonly stream: WriteStream,
  ) {
    stream.on("error", (err) => (this.error = err));
  }

  static async open(out: string): Promise<FileTarget> {
    await mkdir(path.dirname(out), { recursive: true });
    const tmp = `${out}.partial-${process.pid}`;
    // Opened here so that a folder one cannot write to is an error now, not an unhandled stream event later.
    const handle = await open(tmp, "w");
    return new FileTarget(out, tmp, handle.createWriteStream());
  }

  async write(text: string): Promise<boolean> {
    if (this.error) throw this.error;
    if (!this.stream.write(text)) await once(this.stream, "drain");
    return true;
  }

  async finish(keep: boolean): Promise<void> {
    this.stream.end();
    if (!this.stream.writableFinished) await once(this.stream, "finish");
    if (this.error) throw this.error;
    try {
      if (keep) await rename(this.tmp, this.out);
    } finally {
      await rm(this.tmp, { force: true });
    }
  }

  async abandon(): Promise<void> {
    this.stream.destroy();
    await rm(this.tmp, { force: true });
  }
}

/** Waits until stdout drains or fails (events.once would reject on the failure, which onError already records). */
function stdoutReady(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      for (const event of ["drain", "error", "close"]) process.stdout.off(event, done);
      resolve();
    };
    for (const event of ["drain", "error", "close"]) process.stdout.once(event, done);
  });
}

/** Standard output, for `-o -`: a reader that stops early (`| head`) ends the conversion without an error trace. */
class StdoutTarget implements Target {
  closedEarly = false;
  private readonly onError = (): void => {
    this.closedEarly = true;
  };

  constructor() {
    process.stdout.on("error", this.onError);
  }

  async write(text: string): Promise<boolean> {
    if (this.closedEarly) return false;
    if (!process.stdout.write(text)) await stdoutReady();
    return !this.closedEarly;
  }

  async finish(): Promise<void> {
    process.stdout.off("error", this.onError);
  }

  async abandon(): Promise<void> {
    await this.finish();
  }
}
