import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";
import { UsageError } from "../../core/errors.js";
import { writeExtxyzFrame } from "../../core/formats/extxyz.js";
import { readInputs, type InputReport } from "../../io/inputs.js";
import { helpText, oneOf, parseCommand, type CommandSpec } from "../args.js";
import { Progress } from "../progress.js";
import { printInputReports } from "../report.js";

export const convertSpec = {
  name: "convert",
  summary: "Convert VASP runs and extxyz files into one extxyz file carrying MACE's REF_* labels.",
  usage: "relabel convert INPUT... -o OUT.extxyz [--energy free|sigma0] [--frames all|final]",
  help: `INPUT is an extxyz file, a vasprun.xml, an OUTCAR, a VASP run directory or a tree of run directories.
A run directory is read from vasprun.xml, falling back to OUTCAR; when both exist they are cross-checked.
A folder custodian left from a job of several steps (vasprun.xml.relax1.gz, vasprun.xml.relax2.gz) is one run.
Files may be compressed with gzip, xz (through the xz program) or bzip2 (through bzip2). A non-self-consistent
calculation (ICHARG >= 10: a band structure on a fixed density) gives no frames; its run says why.

options:
  -o, --output FILE      where to write the extxyz (written to a temporary file, then renamed)
      --energy POLICY    which energy becomes REF_energy: free (TOTEN, force-consistent; default) or sigma0
      --frames WHICH     all ionic steps (default) or only the final one of each run
  -h, --help             show this help

Every VASP frame carries REF_energy, REF_free_energy, REF_energy_sigma0, REF_forces, REF_stress (when VASP
computed stress; Voigt xx yy zz yz xz xy, eV/A^3, ASE sign) and the info keys source, ionic_step, scf_steps,
nelm, scf_converged and vasp_version.

exit codes: 0 success, 1 some input had problems (each reported on stderr), 2 usage error`,
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

  const out = path.resolve(values.output);
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.partial-${process.pid}`;
  const stream = createWriteStream(tmp);
  const reports: InputReport[] = [];
  const progress = new Progress("convert");
  let written = 0;
  try {
    for await (const event of readInputs(positionals, { energy, frames })) {
      if (event.type === "report") {
        reports.push(event.report);
        continue;
      }
      if (!stream.write(writeExtxyzFrame(event.frame))) await once(stream, "drain");
      written++;
      progress.update(`${written} frames, input ${reports.length + 1}/${positionals.length}`, reports.length / positionals.length);
    }
    stream.end();
    await once(stream, "finish");
    await rename(tmp, out);
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  } finally {
    progress.done();
  }
  const problems = printInputReports(reports);
  const runs = reports.filter((r) => r.frames > 0).length;
  process.stdout.write(`wrote ${written} frames from ${runs} of ${reports.length} inputs to ${values.output} (REF_energy = ${energy === "free" ? "free energy" : "sigma->0 energy"})\n`);
  return problems ? 1 : 0;
}
