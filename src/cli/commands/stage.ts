import { readFile } from "node:fs/promises";
import path from "node:path";
import { UsageError } from "../../core/errors.js";
import { SAFE_NAME } from "../../core/exec/config.js";
import { configReference, parseStageConfig, parseStageConfigText } from "../../core/stage/config.js";
import { fileError } from "../../io/open.js";
import { buildStage } from "../../io/stage.js";
import { helpText, parseCommand, type CommandSpec } from "../args.js";
import { SOFTWARE } from "../../version.js";
import { isRepoConfig, loadRepoConfig } from "../repo-config.js";

export const stageSpec = {
  name: "stage",
  summary: "Render a self-contained MACE train or eval stage directory (run.sh, params.json, data, assets).",
  usage: "relabel stage train|eval --dataset DIR -o STAGE [--config FILE.json|relabel.yml] [--model FILE] [--round N]",
  help: `train renders a mace_run_train fine-tuning run (the validated recipe: mh-1/omat_pbe, multihead replay,
1/10/1 loss weights, 25 epochs, batch 4, lr 1e-4, float32, seed 42); eval renders mace_eval_configs runs on the
dataset's test.extxyz and, with eval.pool, on the candidate pool once per committee model; with eval.descriptors,
also each structure's mean MACE descriptors for every split and the pool (the features of relabel rank --features).

options:
      --dataset DIR      a dataset built by 'relabel dataset build' (summary.json, train/valid/test.extxyz)
  -o, --output STAGE     the stage directory to create (must not exist or be empty; never overwritten)
      --config FILE      JSON object of settings (keys below; relative paths are relative to FILE), or a data
                         repo's .github/relabel.yml, whose stage: section is used (paths relative to the repo)
      --model FILE       eval: the trained model to evaluate (overrides eval.model)
      --round N          the round the stage belongs to, written into stage.json for 'relabel submit'
                         (letters, digits, . _ -; not part of the stage hash)
  -h, --help             show this help

The stage holds the dataset files (data/), every local file the config names (assets/, models/, pool/),
params.json, run.sh and stage.json (SHA-256 of every other file and the stage hash). A missing local file
stops the command before anything is written. Named foundation models and replay sets (mh-1, omat) are
downloaded by MACE at run time: on an offline cluster give local files instead.
Warnings (stderr; the stage is still written): foundation_head omat_pbe named for a model other than mh-0/mh-1,
and config_type=IsolatedAtom one-atom frames in train.extxyz (MACE takes E0s from them instead of --E0s).
params.json records the loss asked for and the one MACE trains with (universal in multihead fine-tuning).
run.sh runs from any directory, writes status.json, logs/stdout.log, logs/stderr.log and FINISHED on success,
and exits with MACE's exit code. committee K > 1 renders member-0..K-1 (seeds seed..seed+K-1) sharing data/
and assets/, and a run.sh that runs them in turn.

config keys (default, meaning):
${configReference()}

exit codes: 0 success, 1 bad input (dataset, config or a referenced file), 2 usage error`,
  options: {
    dataset: { type: "string" },
    output: { type: "string", short: "o" },
    config: { type: "string" },
    model: { type: "string" },
    round: { type: "string" },
  },
} satisfies CommandSpec;

export async function runStage(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(stageSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(stageSpec));
    return 0;
  }
  const usage = `\nusage: ${stageSpec.usage}`;
  const [kind, ...extra] = positionals;
  if (kind !== "train" && kind !== "eval") throw new UsageError(`expected the stage kind train or eval${kind === undefined ? "" : ` (got "${kind}")`}${usage}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"${usage}`);
  if (!values.dataset) throw new UsageError(`--dataset DIR is required${usage}`);
  if (!values.output) throw new UsageError(`-o STAGE is required${usage}`);
  if (values.round !== undefined && !SAFE_NAME.test(values.round)) throw new UsageError(`--round must be letters, digits, . _ - (got "${values.round}")${usage}`);
  if (values.model !== undefined && kind !== "eval") throw new UsageError(`--model belongs to the eval stage (train takes foundation_model in the config)${usage}`);

  let config;
  let configSource = "defaults";
  let baseDir = process.cwd();
  if (values.config !== undefined) {
    configSource = values.config;
    baseDir = path.dirname(path.resolve(values.config));
    if (isRepoConfig(values.config)) {
      config = (await loadRepoConfig(values.config)).stage;
      // Paths in a data repo's .github/relabel.yml are relative to the repository root.
      if (path.basename(baseDir) === ".github") baseDir = path.dirname(baseDir);
    } else {
      let text: string;
      try {
        text = await readFile(values.config, "utf8");
      } catch (err) {
        throw fileError(values.config, err, "a JSON config file");
      }
      config = parseStageConfigText(text, values.config);
    }
  } else {
    config = parseStageConfig({}, configSource);
  }
  if (values.model !== undefined) config.eval.model = path.resolve(values.model);

  const stage = await buildStage({ kind, datasetDir: values.dataset, outDir: values.output, config, configSource, baseDir, version: SOFTWARE.version, round: values.round ?? null });
  const bytes = stage.files.reduce((sum, f) => sum + f.bytes, 0);
  for (const note of stage.notes) process.stdout.write(`note: ${note}\n`);
  for (const warning of stage.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`rendered ${kind} stage ${values.output}: ${stage.files.length} files (${formatBytes(bytes)}) and stage.json, sha256 ${stage.sha256}\n`);
  return 0;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
