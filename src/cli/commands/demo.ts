import { fileURLToPath } from "node:url";
import path from "node:path";
import { helpText, parseCommand, type CommandSpec } from "../args.js";
import { runConvert } from "./convert.js";
import { runInspect } from "./inspect.js";

export const demoSpec = {
  name: "demo",
  summary: "Run relabel-loop on the bundled real sample data (VASP runs and an extxyz file) and show the results.",
  usage: "relabel demo [-o DIR]",
  help: `Converts the bundled VASP runs and extxyz file (examples/sample-data, see its PROVENANCE.md) into one
labelled extxyz file, then inspects it. Nothing is simulated: every number comes from the real files.

options:
  -o, --output DIR   where to write (default: demo-out)
  -h, --help         show this help`,
  options: { output: { type: "string", short: "o" } },
} satisfies CommandSpec;

export const SAMPLE_DATA = fileURLToPath(new URL("../../../examples/sample-data", import.meta.url));

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseCommand(demoSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(demoSpec));
    return 0;
  }
  const outDir = values.output ?? "demo-out";
  const labels = path.join(outDir, "sample-labels.extxyz");
  const vasp = path.relative(process.cwd(), path.join(SAMPLE_DATA, "vasp")) || ".";
  process.stdout.write(`== 1. relabel convert ${vasp} -o ${labels}\n`);
  process.stdout.write("   (the killed, SCF-unconverged and ML force-field runs are there on purpose: watch what is kept and why)\n");
  const convertCode = await runConvert([vasp, "-o", labels]);
  process.stdout.write(`\n== 2. relabel inspect ${labels}\n`);
  const inspectCode = await runInspect([labels]);
  process.stdout.write(`\nartifacts:\n  labelled frames (extxyz, MACE REF_* keys): ${labels}\n  sample inputs and their provenance:        ${path.relative(process.cwd(), SAMPLE_DATA)}\n`);
  return Math.max(convertCode, inspectCode);
}
