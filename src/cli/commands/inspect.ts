import { UsageError } from "../../core/errors.js";
import { summarizeFrame, type FrameSummary } from "../../core/frame-summary.js";
import { readInputs, type InputReport } from "../../io/inputs.js";
import { helpText, oneOf, parseCommand, type CommandSpec } from "../args.js";
import { counted } from "../../core/counted.js";
import { printInputReports } from "../report.js";

export const inspectSpec = {
  name: "inspect",
  summary: "Show every frame of extxyz files, VASP outputs or run directories, then what each input left out and why.",
  usage: "relabel inspect PATH... [--json] [--energy free|sigma0]",
  help: `Prints one line per frame: source (the run a labelled frame came from, else the file), frame index (the
ionic step for labelled frames), natoms, formula, REF_energy, free and sigma->0 energies (eV), max |force| (eV/A),
Voigt stress (eV/A^3) and pbc. Then, per input, skipped steps, truncation and other findings. PATH is read as
relabel convert reads INPUT (a folder: its run directories and extxyz files), extxyz labels shown as convert
writes them.

options:
      --json             JSON Lines on stdout instead: {"type":"frame",...} per frame, {"type":"input",...} per input
                         (its "kind": extxyz, vasprun, outcar, rundir, or missing / unrecognised with a problem)
      --energy POLICY    which energy a VASP frame shows as REF_energy: free (default) or sigma0
  -h, --help             show this help

exit codes: 0 success, 1 some input had problems or gave no frame, 2 usage error`,
  options: {
    json: { type: "boolean" },
    energy: { type: "string" },
  },
} satisfies CommandSpec;

function num(x: number | null, digits: number): string {
  return x === null ? "-" : x.toFixed(digits);
}

function frameLine(source: string, index: number, s: FrameSummary): string {
  const pbc = s.pbc.map((p) => (p ? "T" : "F")).join("");
  const stress = s.stress ? s.stress.map((x) => x.toFixed(5)).join(" ") : "-";
  const flag = s.scfConverged === false ? "  SCF-unconverged" : "";
  return `${source}  #${index}  ${s.natoms} atoms  ${s.formula}  E=${num(s.energy, 6)}  Efree=${num(s.freeEnergy, 6)}  E0=${num(s.energySigma0, 6)}  max|F|=${num(s.maxForce, 4)}  stress=[${stress}]  pbc=${pbc}${flag}\n`;
}

export async function runInspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(inspectSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(inspectSpec));
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no PATH given\nusage: ${inspectSpec.usage}`);
  const energy = oneOf("energy", values.energy, ["free", "sigma0"] as const, "free");
  const reports: InputReport[] = [];
  for await (const event of readInputs(positionals, { energy, frames: "all" })) {
    if (event.type === "report") {
      reports.push(event.report);
      if (values.json) process.stdout.write(JSON.stringify({ type: "input", ...event.report }) + "\n");
      continue;
    }
    const summary = summarizeFrame(event.frame);
    // A frame written by convert remembers its run and ionic step; show those rather than the file's frame number.
    const origin = event.frame.info.get("source");
    const step = event.frame.info.get("ionic_step");
    const source = origin?.kind === "string" ? origin.value : event.source;
    const index = origin?.kind === "string" && step?.kind === "int" ? step.value : event.index;
    process.stdout.write(values.json ? JSON.stringify({ type: "frame", file: event.source, frame: event.index, source, index, ...summary }) + "\n" : frameLine(source, index, summary));
  }
  const problems = printInputReports(reports);
  if (!values.json) {
    const frames = reports.reduce((n, r) => n + r.frames, 0);
    process.stdout.write(`${counted(frames, "frame")} from ${counted(reports.length, "input")}${problems ? "; some inputs had problems or gave no frame (see stderr)" : ""}\n`);
  }
  return problems ? 1 : 0;
}
