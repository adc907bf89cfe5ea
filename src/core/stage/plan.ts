/**
 * What a stage directory holds, decided without touching the file system: which files are copied from where,
 * the text of run.sh and params.json, and notes for the user. The shell (src/io/stage.ts) checks that every
 * local file exists before calling planStage, copies, and hashes.
 *
 * Layout (paths relative to the stage directory):
 *   data/           the dataset's split files and summary.json
 *   assets/         foundation/<file>, replay/<file> and E0s.json when they are local files
 *   models/         eval: test.model and member-K.model
 *   pool/pool.extxyz  eval: the candidate pool files, concatenated in the order given
 *   run.sh, params.json           one run (train with committee 1, eval)
 *   member-K/run.sh, params.json  train committee member K, reading ../data and ../assets; run.sh runs them all
 *   stage.json      file hashes and the stage hash (written last by the shell)
 */
import { InputError } from "../errors.js";
import { NAMED_FOUNDATION_MODELS, NAMED_REPLAY_SETS, TRAIN_STAGE_KEYS, EVAL_STAGE_KEYS, foundationHead, type StageConfig } from "./config.js";
import type { DatasetSummary, SplitFile } from "./dataset.js";
import type { StageE0s } from "./e0s.js";
import { stableJson } from "../json.js";
import { renderCommitteeScript, renderRunScript } from "./render.js";

export type StageKind = "train" | "eval";

export type AssetRole = "foundation_model" | "pt_train_file" | "E0s" | "model" | "committee_model" | "pool";

/** A config value naming a local file that must be copied into the stage. */
export interface AssetRef {
  /** The config key, e.g. `foundation_model` or `eval.pool[1]`, for messages and for StageSources.assets. */
  key: string;
  role: AssetRole;
  value: string;
}

export function isNamedFoundationModel(value: string): boolean {
  return (NAMED_FOUNDATION_MODELS as readonly string[]).includes(value);
}

export function isNamedReplaySet(value: string): boolean {
  return (NAMED_REPLAY_SETS as readonly string[]).includes(value);
}

/** Checks the rules that depend on the stage kind; `source` names the config in errors. */
export function checkStageConfig(kind: StageKind, config: StageConfig, source: string): void {
  if (kind !== "eval") return;
  if (config.eval.model === null) {
    throw new InputError(source, "eval.model", "the eval stage needs the trained model: set eval.model or pass --model FILE");
  }
  if (config.device !== "cuda" && config.device !== "cpu") {
    throw new InputError(source, "device", `mace_eval_configs runs on cuda or cpu, not ${config.device}`);
  }
  if (config.eval.committee_models.length > 0 && config.eval.pool.length === 0) {
    throw new InputError(source, "eval.committee_models", "committee models predict the candidate pool, but eval.pool is empty");
  }
}

/** The local files a stage of this kind references through its config, in the order run.sh uses them. */
export function localAssetRefs(kind: StageKind, config: StageConfig): AssetRef[] {
  const refs: AssetRef[] = [];
  if (kind === "train") {
    if (!isNamedFoundationModel(config.foundation_model)) refs.push({ key: "foundation_model", role: "foundation_model", value: config.foundation_model });
    if (config.multiheads_finetuning && !isNamedReplaySet(config.pt_train_file)) {
      refs.push({ key: "pt_train_file", role: "pt_train_file", value: config.pt_train_file });
    }
    if (typeof config.E0s === "string" && config.E0s.endsWith(".json")) refs.push({ key: "E0s", role: "E0s", value: config.E0s });
    return refs;
  }
  if (config.eval.model !== null) refs.push({ key: "eval.model", role: "model", value: config.eval.model });
  config.eval.committee_models.forEach((value, i) => refs.push({ key: `eval.committee_models[${i}]`, role: "committee_model", value }));
  config.eval.pool.forEach((value, i) => refs.push({ key: `eval.pool[${i}]`, role: "pool", value }));
  return refs;
}

export interface StageSources {
  /** Absolute paths of the dataset's split files and of its summary.json. */
  dataset: Partial<Record<SplitFile, string>> & { "summary.json": string };
  /** Absolute path of every AssetRef, by its key. */
  assets: ReadonlyMap<string, string>;
  /** The stage's E0s file when E0s is a JSON file or an object. */
  e0s?: StageE0s;
}

/**
 * A file of the stage: a byte-for-byte copy, extxyz files joined into one (`join`: gzip ones gunzipped, each
 * ending with a newline), or text.
 */
export type PlannedFile = { path: string; from: string[]; join?: "extxyz" } | { path: string; text: string };

export interface StagePlan {
  kind: StageKind;
  files: PlannedFile[];
  /** Things the user should know (run-time downloads, MACE overriding a flag, ...), one line each. */
  notes: string[];
}

export interface PlanOptions {
  kind: StageKind;
  config: StageConfig;
  summary: DatasetSummary;
  sources: StageSources;
  /** relabel-loop's version, recorded in params.json. */
  version: string;
}

export function planStage(options: PlanOptions): StagePlan {
  return options.kind === "train" ? planTrain(options) : planEval(options);
}

/** The last path segment, restricted to characters that need no quoting anywhere. */
function stageFileName(file: string): string {
  const base = file.split(/[\\/]/).filter((s) => s !== "").pop() ?? "";
  const safe = base.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[.-]/, "_");
  return safe === "" ? "file" : safe;
}

function fileName(file: string): string {
  return file.split(/[\\/]/).filter((s) => s !== "").pop() ?? file;
}

function pick<K extends string>(config: Record<string, unknown>, keys: readonly K[]): Record<K, unknown> {
  const out = {} as Record<K, unknown>;
  for (const k of keys) out[k] = config[k];
  return out;
}

function planTrain({ config, summary, sources, version }: PlanOptions): StagePlan {
  const files: PlannedFile[] = datasetFiles(summary.files, sources);
  const notes: string[] = [];
  // Paths (relative to the stage directory) of the files copied in, by config key, and their provenance.
  const copied: Partial<Record<"foundation_model" | "pt_train_file" | "E0s", string>> = {};
  const assetInfo: Record<string, Record<string, unknown>> = {};
  if (!isNamedFoundationModel(config.foundation_model)) {
    copied.foundation_model = `assets/foundation/${stageFileName(config.foundation_model)}`;
    files.push({ path: copied.foundation_model, from: [sources.assets.get("foundation_model")!] });
    assetInfo.foundation_model = { path: copied.foundation_model, source_name: fileName(config.foundation_model) };
  } else {
    notes.push(`foundation_model ${config.foundation_model} is downloaded by MACE at run time (~/.cache/mace): offline clusters need a local file`);
  }
  if (config.multiheads_finetuning) {
    if (!isNamedReplaySet(config.pt_train_file)) {
      copied.pt_train_file = `assets/replay/${stageFileName(config.pt_train_file)}`;
      files.push({ path: copied.pt_train_file, from: [sources.assets.get("pt_train_file")!] });
      assetInfo.pt_train_file = { path: copied.pt_train_file, source_name: fileName(config.pt_train_file) };
    } else {
      notes.push(`pt_train_file ${config.pt_train_file} is downloaded by MACE at run time: offline clusters fail (mace#724); set pt_train_file to a local replay file`);
    }
    notes.push("in multihead fine-tuning MACE (0.3.15) replaces --loss by universal (energy, forces and stress)");
  }
  if (typeof config.E0s !== "string" || config.E0s.endsWith(".json")) {
    const e0s = sources.e0s!;
    copied.E0s = "assets/E0s.json";
    files.push({ path: copied.E0s, text: e0s.text });
    assetInfo.E0s = { path: copied.E0s, source_name: typeof config.E0s === "string" ? fileName(config.E0s) : null, dropped_elements: e0s.dropped };
    if (e0s.dropped.length > 0) notes.push(`E0s: left out atomic numbers ${e0s.dropped.join(", ")}, absent from the dataset (mace#605)`);
  }
  if (!summary.files.includes("valid.extxyz")) {
    notes.push("the dataset has no valid.extxyz: MACE splits off a random 10% of train.extxyz by seed (different per committee member)");
  }
  if (summary.energy === "sigma0") notes.push("the dataset's REF_energy is the sigma->0 energy while its forces follow the free energy");
  const loss = config.loss === "auto" ? (summary.stressFrames > 0 ? "stress" : "weighted") : config.loss;
  // What MACE trains with: in multihead mode run_train.py (0.3.15) replaces --loss by universal, which also turns
  // stress on and uses the energy/forces/stress weights. run.sh keeps --loss as requested.
  const lossRecord = config.multiheads_finetuning
    ? { loss_requested: loss, loss_used: "universal", loss_note: "MACE replaces --loss by universal in multihead fine-tuning" }
    : { loss_requested: loss, loss_used: loss };

  const members = Array.from({ length: config.committee }, (_, k) => k);
  const prefix = config.committee === 1 ? "" : "../";
  const stageInputs = [...summary.files.map((f) => `data/${f}`), ...Object.values(copied)];
  // A config value as the run sees it: the copied file relative to the run directory, else the name as given.
  const resolved = {
    foundation_model: copied.foundation_model === undefined ? config.foundation_model : prefix + copied.foundation_model,
    pt_train_file: copied.pt_train_file === undefined ? config.pt_train_file : prefix + copied.pt_train_file,
    E0s: copied.E0s === undefined ? config.E0s : prefix + copied.E0s,
  };
  const assets: Record<string, unknown> = {};
  for (const [key, info] of Object.entries(assetInfo)) assets[key] = { ...info, path: prefix + String(info.path) };
  for (const k of members) {
    const seed = config.seed + k;
    const argv = trainArgv(config, summary, { seed, dataDir: `${prefix}data`, foundationModel: resolved.foundation_model, replay: resolved.pt_train_file, e0s: String(resolved.E0s), loss });
    const dir = config.committee === 1 ? "" : `member-${k}/`;
    const params = {
      schema: "relabel-loop/stage-params/1",
      relabel_version: version,
      kind: "train",
      paths: "relative to this file's directory",
      member: { index: k, of: config.committee, seed },
      config: { ...pick(config, TRAIN_STAGE_KEYS), ...resolved },
      dataset: datasetRecord(summary),
      derived: { atomic_numbers: summary.atomicNumbers, foundation_head: foundationHead(config), ...lossRecord },
      assets,
      commands: [argv],
    };
    files.push(
      { path: `${dir}run.sh`, text: renderRunScript({ kind: "train", inputs: stageInputs.map((p) => prefix + p), outputDirs: [], commands: [argv] }) },
      { path: `${dir}params.json`, text: stableJson(params) },
    );
  }
  if (config.committee > 1) files.push({ path: "run.sh", text: renderCommitteeScript(members.map((k) => `member-${k}`)) });
  return { kind: "train", files, notes };
}

interface TrainArgvValues {
  seed: number;
  /** The dataset directory relative to the run directory. */
  dataDir: string;
  foundationModel: string;
  replay: string;
  e0s: string;
  loss: string;
}

function trainArgv(config: StageConfig, summary: DatasetSummary, v: TrainArgvValues): string[] {
  const argv = [
    config.train_command,
    `--name=${config.name}`,
    `--seed=${v.seed}`,
    `--device=${config.device}`,
    `--default_dtype=${config.default_dtype}`,
    "--work_dir=.",
    "--log_dir=logs",
    "--model_dir=.",
    "--checkpoints_dir=checkpoints",
    "--results_dir=results",
  ];
  const flagOf: Record<SplitFile, string> = { "train.extxyz": "train_file", "valid.extxyz": "valid_file", "test.extxyz": "test_file" };
  for (const f of summary.files) argv.push(`--${flagOf[f]}=${v.dataDir}/${f}`);
  argv.push(`--energy_key=${config.energy_key}`, `--forces_key=${config.forces_key}`, `--stress_key=${config.stress_key}`);
  argv.push(`--foundation_model=${v.foundationModel}`);
  const head = foundationHead(config);
  if (head !== null) argv.push(`--foundation_head=${head}`);
  argv.push(`--multiheads_finetuning=${config.multiheads_finetuning ? "True" : "False"}`);
  if (config.multiheads_finetuning) {
    argv.push(
      `--pt_train_file=${v.replay}`,
      `--num_samples_pt=${config.num_samples_pt}`,
      `--filter_type_pt=${config.filter_type_pt}`,
      `--subselect_pt=${config.subselect_pt}`,
      `--weight_pt_head=${config.weight_pt_head}`,
      // Without it MACE silently resets lr to 1e-4 and the EMA decay to 0.99999 in multihead mode.
      "--force_mh_ft_lr=True",
    );
  }
  argv.push(
    `--atomic_numbers=[${summary.atomicNumbers.join(", ")}]`,
    `--E0s=${v.e0s}`,
    `--loss=${v.loss}`,
    `--energy_weight=${config.energy_weight}`,
    `--forces_weight=${config.forces_weight}`,
    `--stress_weight=${config.stress_weight}`,
    `--max_num_epochs=${config.max_num_epochs}`,
    `--batch_size=${config.batch_size}`,
    `--lr=${config.lr}`,
  );
  if (config.ema) argv.push("--ema", `--ema_decay=${config.ema_decay}`);
  if (config.restart_latest) argv.push("--restart_latest");
  return argv;
}

function datasetFiles(files: readonly SplitFile[], sources: StageSources): PlannedFile[] {
  return [
    // Read as extxyz, so that a split kept gzipped (train.extxyz.gz in a data repository) arrives plain.
    ...files.map((f) => ({ path: `data/${f}`, from: [sources.dataset[f]!], join: "extxyz" as const })),
    { path: "data/summary.json", from: [sources.dataset["summary.json"]] },
  ];
}

function datasetRecord(summary: DatasetSummary): Record<string, unknown> {
  return {
    energy: summary.energy,
    head: summary.head,
    elements: summary.elements,
    stress_frames: summary.stressFrames,
    files: summary.files,
    test_membership: summary.testMembership,
    test_content: summary.testContent,
  };
}

function planEval({ config, summary, sources, version }: PlanOptions): StagePlan {
  if (!summary.files.includes("test.extxyz")) {
    throw new InputError(sources.dataset["summary.json"], undefined, "the dataset has no test.extxyz: the eval stage predicts the held-out test split");
  }
  const ev = config.eval;
  // With descriptors, the labelled set's (every split) are written too: rank --features needs them to seed from.
  const splits: SplitFile[] = ev.descriptors ? summary.files : ["test.extxyz"];
  const files: PlannedFile[] = datasetFiles(splits, sources);
  const testModel = "models/test.model";
  files.push({ path: testModel, from: [sources.assets.get("eval.model")!] });
  const assetInfo: Record<string, unknown> = { model: { path: testModel, source_name: fileName(ev.model!) } };
  const common = [
    `--head=${ev.head}`,
    `--device=${config.device}`,
    `--default_dtype=${config.default_dtype}`,
    `--batch_size=${ev.batch_size}`,
    "--info_prefix=MACE_",
  ];
  const stress = summary.stressFrames > 0 ? ["--compute_stress"] : [];
  // One vector (or one per element) per structure: what rank --features averages per-atom descriptors into anyway,
  // at a fraction of the size.
  const descriptors = ev.descriptors ? ["--return_descriptors", `--descriptor_aggregation_method=${ev.descriptors === "per-element" ? "per_element_mean" : "mean"}`] : [];
  const commands = [[ev.command, "--configs=data/test.extxyz", `--model=${testModel}`, "--output=predictions/test.extxyz", ...common, ...stress, ...descriptors]];
  for (const split of splits.filter((f) => f !== "test.extxyz")) {
    commands.push([ev.command, `--configs=data/${split}`, `--model=${testModel}`, `--output=predictions/${split}`, ...common, ...descriptors]);
  }
  const inputs = [...splits.map((f) => `data/${f}`), testModel];
  let poolModels: string[] = [];
  if (ev.pool.length > 0) {
    const pool = "pool/pool.extxyz";
    files.push({ path: pool, from: ev.pool.map((_, i) => sources.assets.get(`eval.pool[${i}]`)!), join: "extxyz" });
    assetInfo.pool = { path: pool, source_names: ev.pool.map(fileName) };
    inputs.push(pool);
    if (ev.committee_models.length === 0) {
      poolModels = [testModel];
    } else {
      poolModels = ev.committee_models.map((_, k) => `models/member-${k}.model`);
      poolModels.forEach((model, k) => files.push({ path: model, from: [sources.assets.get(`eval.committee_models[${k}]`)!] }));
      inputs.push(...poolModels);
      assetInfo.committee_models = ev.committee_models.map((value, k) => ({ path: poolModels[k], source_name: fileName(value) }));
    }
    poolModels.forEach((model, k) => {
      commands.push([ev.command, `--configs=${pool}`, `--model=${model}`, `--output=predictions/pool.member-${k}.extxyz`, ...common, ...(k === 0 ? descriptors : [])]);
    });
  }
  const params = {
    schema: "relabel-loop/stage-params/1",
    relabel_version: version,
    kind: "eval",
    paths: "relative to this file's directory",
    config: {
      ...pick(config, EVAL_STAGE_KEYS),
      eval: { ...ev, model: testModel, pool: ev.pool.length > 0 ? ["pool/pool.extxyz"] : [], committee_models: ev.committee_models.map((_, k) => poolModels[k]) },
    },
    dataset: datasetRecord(summary),
    derived: { compute_stress: stress.length > 0, outputs: [...splits.map((f) => `predictions/${f}`), ...poolModels.map((_, k) => `predictions/pool.member-${k}.extxyz`)] },
    assets: assetInfo,
    commands,
  };
  files.push(
    { path: "run.sh", text: renderRunScript({ kind: "eval", inputs, outputDirs: ["predictions"], commands }) },
    { path: "params.json", text: stableJson(params) },
  );
  return { kind: "eval", files, notes: [] };
}
