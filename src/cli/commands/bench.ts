import path from "node:path";
import { buildBench } from "../../core/bench/bench.js";
import { labelKeys } from "../../core/bench/labels.js";
import { UsageError } from "../../core/errors.js";
import { readBenchFrames, readDatasetSummary, readPreviousBench, readTrainingRuns, writeBenchDir } from "../../io/bench.js";
import { helpText, parseCommand, type CommandSpec } from "../args.js";
import { sha256File } from "../../io/open.js";

export const benchSpec = {
  name: "bench",
  summary: "Benchmark MACE predictions against reference labels; compare with the previous round.",
  usage: "relabel bench --pred PRED.extxyz [--ref DATASET/test.extxyz] [--previous PREV_BENCH_DIR] [--train-log DIR_OR_FILE...] -o OUT",
  help: `PRED.extxyz is mace_eval_configs output (MACE_energy, MACE_forces, optionally MACE_stress). Predictions are
paired with references by structure identity (any frame order; unmatched frames are reported, never dropped).
Without --ref the references are the REF_* keys inside PRED.extxyz and the dataset identity is unknown.

options:
      --pred FILE            predictions (extxyz, plain or gzip)
      --ref FILE             reference frames, normally DATASET/test.extxyz; summary.json next to it gives the test
                             fingerprint, energy policy and head
      --previous DIR         the previous round's bench directory (or its metrics.json): adds changes, and warns
                             when test set, energy policy or head differ
      --train-log PATH...    MACE logs (<tag>.log), results files (<tag>_train.txt) or directories holding them
  -o, --output DIR           output directory (new or empty; never written over)
      --pred-prefix P        prediction keys P+energy, P+forces, P+stress (default MACE_)
      --ref-prefix P         reference keys P+energy, P+forces, P+stress (default REF_)
      --pred-energy-key K, --pred-forces-key K, --pred-stress-key K
      --ref-energy-key K, --ref-forces-key K, --ref-stress-key K
                             explicit key names (e.g. --ref-energy-key energy_xtb --ref-forces-key forces_xtb)
  -h, --help                 show this help

writes: metrics.json, per_config.csv (one row per frame), report.md, parity_energy.svg, parity_forces.svg,
parity_stress.svg (with stress), learning_curve.svg (with --train-log)

units: meV/atom, meV/A, meV/A^3; forces pooled over components, stress over the 9 tensor components.

exit codes: 0 success (warnings on stderr and at the top of report.md), 1 input problem, 2 usage error`,
  options: {
    pred: { type: "string" },
    ref: { type: "string" },
    previous: { type: "string" },
    "train-log": { type: "string", multiple: true },
    output: { type: "string", short: "o" },
    "pred-prefix": { type: "string" },
    "ref-prefix": { type: "string" },
    "pred-energy-key": { type: "string" },
    "pred-forces-key": { type: "string" },
    "pred-stress-key": { type: "string" },
    "ref-energy-key": { type: "string" },
    "ref-forces-key": { type: "string" },
    "ref-stress-key": { type: "string" },
  },
} satisfies CommandSpec;

/**
 * Values after `--train-log X` that are not options belong to it (`--train-log a.log b_train.txt`); other bare
 * arguments are usage errors. Every option of this command except --help takes a value.
 */
function extraTrainLogs(argv: string[]): string[] {
  const extra: string[] = [];
  let collecting = false;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i];
    if (t === "--train-log") {
      i++;
      collecting = true;
    } else if (t.startsWith("--train-log=")) {
      collecting = true;
    } else if (t.startsWith("-") && t !== "-") {
      collecting = false;
      const takesValue = t !== "--help" && t !== "-h" && !t.includes("=") && !(t.startsWith("-") && !t.startsWith("--") && t.length > 2);
      if (takesValue) i++;
    } else if (collecting) {
      extra.push(t);
    } else {
      throw new UsageError(`unexpected argument "${t}"\nusage: ${benchSpec.usage}`);
    }
  }
  return extra;
}

export async function runBench(argv: string[]): Promise<number> {
  const { values } = parseCommand(benchSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(benchSpec));
    return 0;
  }
  const trainLogs = [...(values["train-log"] ?? []), ...extraTrainLogs(argv)];
  if (!values.pred) throw new UsageError(`--pred PRED.extxyz is required\nusage: ${benchSpec.usage}`);
  if (!values.output) throw new UsageError(`-o OUT is required\nusage: ${benchSpec.usage}`);
  if (values.previous && path.resolve(values.previous) === path.resolve(values.output)) {
    throw new UsageError("--previous and -o name the same directory; write each round to its own directory");
  }
  const predPrefix = values["pred-prefix"] ?? "MACE_";
  const refPrefix = values["ref-prefix"] ?? "REF_";
  const predKeys = labelKeys(predPrefix, {
    energy: values["pred-energy-key"],
    forces: values["pred-forces-key"],
    stress: values["pred-stress-key"],
  });
  const refKeys = labelKeys(refPrefix, {
    energy: values["ref-energy-key"],
    forces: values["ref-forces-key"],
    stress: values["ref-stress-key"],
  });
  if (values.ref === undefined && predKeys.energy === refKeys.energy) {
    throw new UsageError(`without --ref the prediction and reference energy keys must differ (both are ${predKeys.energy})`);
  }

  const refFile = values.ref ?? null;
  const { pred, ref } = await readBenchFrames(values.pred, refFile, { predKeys, refKeys, refPrefix });
  const summary = refFile ? await readDatasetSummary(refFile) : null;
  const refFileSha256 = summary && Object.keys(summary.sha256).length > 0 ? await sha256File(refFile!) : null;
  const previous = values.previous ? await readPreviousBench(values.previous) : null;
  const training = await readTrainingRuns(trainLogs);
  const result = buildBench({ predFile: values.pred, refFile, pred, ref, predKeys, refKeys, summary, refFileSha256, previous, training });
  await writeBenchDir(values.output, result.files);

  for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
  const o = result.metrics.overall;
  const c = result.metrics.counts;
  const parts = [`E RMSE ${o.energy_per_atom!.rmse.toFixed(2)} meV/atom`];
  if (o.forces) parts.push(`F RMSE ${o.forces.rmse.toFixed(1)} meV/A`);
  if (o.stress) parts.push(`stress RMSE ${o.stress.rmse.toFixed(2)} meV/A^3`);
  process.stdout.write(`paired ${c.paired_frames} frames (${c.paired_atoms} atoms): ${parts.join(", ")}; wrote ${path.join(values.output, "report.md")}\n`);
  return 0;
}
