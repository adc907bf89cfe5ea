import { UsageError } from "../../core/errors.js";
import { DEFAULT_CONFIG_TYPE, DEFAULT_FRACTIONS, DEFAULT_HEAD, parseFractions, SPLITS } from "../../core/dataset/split.js";
import type { DatasetSummary, Gates } from "../../core/dataset/summary.js";
import { buildDataset } from "../../io/dataset.js";
import { helpText, oneOf, parseCommand, positiveNumber, type CommandSpec } from "../args.js";
import { Progress } from "../progress.js";


export const datasetSpec = {
  name: "dataset",
  summary: "Build train/valid/test extxyz files for MACE from VASP runs, split by run and frozen across rounds.",
  usage:
    "relabel dataset build --runs DIR... [--previous DATASET_DIR] -o OUT [--energy free|sigma0] [--frames all|final] " +
    "[--require-converged] [--head NAME] [--config-type NAME] [--fractions 0.8,0.1,0.1] [--seed N] [--max-force F] " +
    "[--energy-z Z] [--allow-mixed-settings] [--allow-empty-split] [--grow-test]",
  help: `Every run directory (a folder holding vasprun.xml or OUTCAR, or custodian's vasprun.xml.relax1.gz,
vasprun.xml.relax2.gz, ... of one job) below each --runs DIR is read, vasprun.xml first with OUTCAR as fallback
and cross-check; files may be compressed with gzip, xz or bzip2. A run's id is its path relative to the DIR it
was found under. Symbolic links to run directories are followed (the link's path is the id).

options:
      --runs DIR...          folders holding run directories (repeat --runs or list several DIRs)
      --previous DIR         an earlier dataset: its runs keep their split (from DIR/split.json)
  -o, --output OUT           the dataset directory to create (must not exist; written whole or not at all)
      --energy POLICY        REF_energy = free (TOTEN, force-consistent; default) or sigma0
      --frames WHICH         all ionic steps (default) or only the final one of each run
      --require-converged    drop steps whose SCF loop hit NELM (default: keep them, flagged scf_converged=F)
      --head NAME            info key head of every frame (default ${DEFAULT_HEAD}, the validated recipe's head)
      --config-type NAME     info key config_type of every frame (default ${DEFAULT_CONFIG_TYPE})
      --fractions T,V,E      train,valid,test fractions of runs (default 0.8,0.1,0.1)
      --seed N               seed of the split draw of new runs (default 0)
      --max-force F          drop frames with an atom's |F| above F eV/A (default 50)
      --energy-z Z           report frames whose energy per atom has robust |z| > Z in their composition (default 5)
      --allow-mixed-settings build even when runs differ in ENCUT, GGA (GGA = -- from the POTCAR family), METAGGA,
                             ISPIN, LASPH, PREC, IVDW, DFT+U or an element's pseudopotential (POTCAR title)
      --allow-empty-split    build even when valid or test has no frame (its file is then not written)
      --grow-test            with --previous: let new runs enter test by their draw (default: the test set is
                             frozen and new runs go to train/valid only)
  -h, --help                 show this help

Splits are by run, never by frame. A new run's split comes from sha256("<run id>\\n<seed>") read as a number in
[0, 1) and compared with the cumulative fractions, so adding runs never moves another run. With --previous, its
runs keep their split and the test set is frozen: new runs whose draw falls in test are spread over train and
valid, unless --grow-test.

Gates: duplicate structures (same candidate id; the first in previous-runs-first, then id order is kept, except
that within a job of several calculations a step repeated by the next calculation gives way to it), frames with
an atom's |F| above --max-force, and frames with missing or non-finite labels are dropped; duplicates whose labels
disagree with the kept frame's (> 1 meV/atom or > 0.05 eV/A in the largest |F|), energy outliers (robust z with
a MAD of at least 10 meV/atom), unconverged SCF steps (unless --require-converged) and elements new relative to
--previous are reported. Mixed DFT settings and an empty split are errors: nothing is written and the exit code
is 1. Skipped runs and steps a reader left out (a corrupt number) are warnings on stderr; a killed run's cut
last step, machine-learned steps and other expected findings are notes.

OUT holds train.extxyz, valid.extxyz, test.extxyz (REF_energy, REF_forces, REF_stress, head, config_type, ...),
split.json (run -> split, seed, fractions, fingerprints of the test runs and test file) and summary.json.

exit codes: 0 dataset written, 1 a gate error or unusable input (nothing written) or some input had problems
(unreadable runs or steps left out: the dataset is written from the rest; a run killed before its first complete
step is skipped without that), 2 usage error (OUT exists)`,
  options: {
    runs: { type: "string", multiple: true },
    previous: { type: "string" },
    output: { type: "string", short: "o" },
    energy: { type: "string" },
    frames: { type: "string" },
    "require-converged": { type: "boolean" },
    head: { type: "string" },
    "config-type": { type: "string" },
    fractions: { type: "string" },
    seed: { type: "string" },
    "max-force": { type: "string" },
    "energy-z": { type: "string" },
    "allow-mixed-settings": { type: "boolean" },
    "allow-empty-split": { type: "boolean" },
    "grow-test": { type: "boolean" },
  },
  positive: { "max-force": "number", "energy-z": "number" },
} satisfies CommandSpec;

const NAME_RE = /^[A-Za-z0-9_.+-]+$/;

function name(flag: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (!NAME_RE.test(value)) throw new UsageError(`--${flag} must be letters, digits or _ . + - (got "${value}")`);
  return value;
}

function seedOf(value: string | undefined): number {
  if (value === undefined) return 0;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--seed must be a non-negative integer (got "${value}")`);
  return Number(value);
}

function gateLine(name: keyof Gates, gates: Gates): string {
  const pad = name.padEnd(16);
  switch (name) {
    case "scf_unconverged": {
      const g = gates.scf_unconverged;
      if (g.frames === 0) return `${pad}pass`;
      return `${pad}${g.frames} frame(s) ${g.action === "drop" ? "dropped" : "kept, flagged scf_converged=F"}, e.g. ${g.examples[0].run} step ${g.examples[0].ionic_step} (${g.examples[0].scf_steps} of NELM ${g.examples[0].nelm})`;
    }
    case "missing_labels": {
      const g = gates.missing_labels;
      return g.frames === 0 ? `${pad}pass` : `${pad}${g.frames} frame(s) dropped, e.g. ${g.examples[0].run} step ${g.examples[0].ionic_step} lacks ${g.examples[0].missing.join(", ")}`;
    }
    case "force_outliers": {
      const g = gates.force_outliers;
      if (g.frames === 0) return `${pad}pass (max |F| <= ${g.max_force} eV/A)`;
      return `${pad}${g.frames} frame(s) dropped with |F| > ${g.max_force} eV/A, e.g. ${g.examples[0].run} step ${g.examples[0].ionic_step}: ${g.examples[0].max_force.toFixed(2)} eV/A`;
    }
    case "duplicates": {
      const g = gates.duplicates;
      if (g.frames === 0) return `${pad}pass`;
      const e = g.examples[0];
      const kept = e.superseded ? `its later calculation's step ${e.first_seen.ionic_step} (kept)` : `${e.first_seen.run} step ${e.first_seen.ionic_step}`;
      return `${pad}${g.frames} frame(s) dropped, e.g. ${e.run} step ${e.ionic_step} repeats ${kept}`;
    }
    case "label_conflicts": {
      const g = gates.label_conflicts;
      if (g.frames === 0) return `${pad}pass`;
      return `${pad}${g.frames} dropped duplicate(s) disagree with the kept frame by > ${g.energy_tolerance * 1000} meV/atom or > ${g.force_tolerance} eV/A max |F| (warnings below)`;
    }
    case "energy_outliers": {
      const g = gates.energy_outliers;
      const tested = `${g.compositions_tested} composition(s) tested, ${g.compositions_untested} with < 3 frames`;
      return g.frames === 0 ? `${pad}pass (${tested})` : `${pad}${g.frames} frame(s) reported, kept (${tested})`;
    }
    case "new_elements": {
      const g = gates.new_elements;
      return g.status === "not-checked" ? `${pad}not checked (no --previous)` : g.elements.length ? `${pad}new: ${g.elements.join(", ")}` : `${pad}pass`;
    }
    case "mixed_settings": {
      const g = gates.mixed_settings;
      return g.mixed.length === 0 ? `${pad}pass` : `${pad}${g.status}: ${g.mixed.join(", ")}`;
    }
    case "empty_splits": {
      const g = gates.empty_splits;
      return g.empty.length === 0 ? `${pad}pass` : `${pad}${g.status}: ${g.empty.join(", ")} empty`;
    }
  }
}

/** The human-readable account of a build, for stdout. */
export function renderReport(summary: DatasetSummary): string {
  const lines: string[] = [];
  const r = summary.reading;
  lines.push(`runs: ${r.runs_found} found, ${r.runs_used} used, ${r.runs_skipped.length} skipped; ${r.steps_read} DFT steps read`);
  lines.push(`split   frames    runs     atoms`);
  for (const s of SPLITS) {
    const c = summary.splits[s];
    lines.push(`${s.padEnd(5)} ${String(c.frames).padStart(8)} ${String(c.runs).padStart(7)} ${String(c.atoms).padStart(9)}`);
  }
  lines.push(`elements: ${summary.elements.join(" ") || "none"}; frames with REF_stress: ${summary.labels.stress_frames} of ${summary.labels.frames}`);
  lines.push("gates:");
  for (const gate of Object.keys(summary.gates) as Array<keyof Gates>) lines.push(`  ${gateLine(gate, summary.gates)}`);
  return `${lines.join("\n")}\n`;
}

export async function runDataset(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(datasetSpec, argv);
  const [sub, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(helpText(datasetSpec));
    return 0;
  }
  if (sub !== "build") throw new UsageError(`${sub === undefined ? "no subcommand given" : `unknown subcommand "${sub}"`}; expected build\nusage: ${datasetSpec.usage}`);
  const runRoots = [...(values.runs ?? []), ...rest];
  if (values.runs === undefined) {
    const hint = rest.length > 0 ? ` (to build from ${rest.join(" ")}, write --runs ${rest.join(" ")})` : "";
    throw new UsageError(`--runs DIR is required${hint}\nusage: ${datasetSpec.usage}`);
  }
  if (!values.output) throw new UsageError(`-o OUT is required\nusage: ${datasetSpec.usage}`);
  if (values["grow-test"] && !values.previous) throw new UsageError("--grow-test only applies with --previous (a first build draws all three splits)");
  let fractions = DEFAULT_FRACTIONS;
  if (values.fractions !== undefined) {
    try {
      fractions = parseFractions(values.fractions);
    } catch (err) {
      throw new UsageError(`--fractions: ${(err as Error).message}`);
    }
  }

  const progress = new Progress("dataset");
  let result;
  try {
    result = await buildDataset({
      runRoots,
      previous: values.previous ?? null,
      out: values.output,
      energy: oneOf("energy", values.energy, ["free", "sigma0"] as const, "free"),
      frames: oneOf("frames", values.frames, ["all", "final"] as const, "all"),
      requireConverged: values["require-converged"] ?? false,
      head: name("head", values.head, DEFAULT_HEAD),
      configType: name("config-type", values["config-type"], DEFAULT_CONFIG_TYPE),
      fractions,
      seed: seedOf(values.seed),
      maxForce: positiveNumber("max-force", values["max-force"]) ?? 50,
      energyZ: positiveNumber("energy-z", values["energy-z"]) ?? 5,
      allowMixedSettings: values["allow-mixed-settings"] ?? false,
      allowEmptySplit: values["allow-empty-split"] ?? false,
      growTest: values["grow-test"] ?? false,
      onProgress: (done, total, frames) => progress.update(`${frames} frames, run ${done}/${total}`, done / total),
    });
  } finally {
    progress.done();
  }
  const { summary } = result;
  process.stdout.write(renderReport(summary));
  for (const n of result.notes) process.stderr.write(`note: run ${n.run}: ${n.note}\n`);
  for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const e of result.errors) process.stderr.write(`error: ${e}\n`);
  if (!result.written) {
    process.stderr.write(`error: nothing written to ${values.output}\n`);
    return 1;
  }
  const energy = summary.options.energy === "free" ? "free energy" : "sigma->0 energy";
  process.stdout.write(
    `wrote ${values.output}: ${summary.files.join(", ")}, split.json, summary.json (REF_energy = ${energy}, head ${summary.options.head}); ` +
      `test fingerprint ${summary.fingerprint.test_content.slice(0, 12)}\n`,
  );
  const { runs, steps } = result.problems;
  if (runs + steps === 0) return 0;
  const what = [runs ? `${runs} run(s) unreadable` : "", steps ? `${steps} step(s) left out` : ""].filter(Boolean).join(", ");
  process.stderr.write(`error: some input had problems (${what}, see the warnings above); the dataset holds the rest\n`);
  return 1;
}
