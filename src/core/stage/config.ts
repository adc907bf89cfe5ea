/**
 * The one schema for stage configuration: the `--config` file of `relabel stage`, the object the GitHub App
 * passes, the key reference printed by `--help` and the `config` block of params.json. Training keys are
 * named exactly like the `mace_run_train` flags they set (`E0s`, not `e0s`: defect 2 of mace.md §4.2).
 */
import { z } from "zod";
import { InputError } from "../errors.js";
import { atomicNumber } from "../elements.js";
import { parseJsonFile } from "./json-error.js";
import { closestName } from "./suggest.js";

/** Foundation models MACE downloads by name (mace/calculators/foundations_models.py, 0.3.15); anything else is a file path. */
export const NAMED_FOUNDATION_MODELS = [
  "small", "medium", "large", "small-0b", "medium-0b", "small-0b2", "medium-0b2", "large-0b2", "medium-0b3",
  "medium-mpa-0", "small-omat-0", "medium-omat-0", "mace-matpes-pbe-0", "mace-matpes-r2scan-0", "mh-0", "mh-1",
  "small_off", "medium_off", "large_off", "mace_omol", "polar-1-s", "polar-1-m", "polar-1-l",
] as const;

/** Replay sets MACE downloads by name for `--pt_train_file`; anything else is a file path. */
export const NAMED_REPLAY_SETS = ["mp", "omat", "matpes_pbe", "matpes_r2scan"] as const;

export const E0S_KEYWORDS = ["estimated", "foundation", "average"] as const;

/** The head `foundation_head: "auto"` picks, and the named models known to have it (mace.md 4.1; MACE-MH heads). */
export const DEFAULT_FOUNDATION_HEAD = "omat_pbe";
export const MODELS_WITH_DEFAULT_HEAD = ["mh-0", "mh-1"] as const;

export const LOSSES = ["auto", "weighted", "stress", "virials", "huber", "universal", "ef", "forces_only"] as const;

const token = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "expected a name of letters, digits, '.', '_' or '-'");
const commandWord = z
  .string()
  .regex(/^[A-Za-z0-9_./+-]+$/, "expected one word: a command name or path (letters, digits, '_', '.', '/', '+', '-')");
const filePath = z
  .string()
  .min(1, "expected a file path")
  .refine((s) => !/[\0\n\r]/.test(s), "a file path cannot contain NUL or line breaks");

const E0S_EXPECTED = `expected "estimated", "foundation", "average", a path ending in .json, or an object {element: energy in eV}`;
const e0sText = z.string().refine((s) => (E0S_KEYWORDS as readonly string[]).includes(s) || s.endsWith(".json"), E0S_EXPECTED);
const e0sTable = z
  .record(z.string(), z.number())
  .refine((table) => Object.keys(table).every((k) => e0sKeyToZ(k) !== undefined), "keys must be element symbols or atomic numbers");

/** An E0s table key (`O` or `8`) as an atomic number. */
export function e0sKeyToZ(key: string): number | undefined {
  if (/^[1-9][0-9]{0,2}$/.test(key)) {
    const z = Number(key);
    return z <= 118 ? z : undefined;
  }
  return atomicNumber(key);
}

/** The element of each LAMMPS atom type, type 1 first (DP-GEN's type_map), for dumps without an element column. */
export const typeMapSchema = z.array(z.string().refine((s) => atomicNumber(s) !== undefined, "expected an element symbol such as Hf or O")).min(1);

export const EvalConfigSchema = z.strictObject({
  command: commandWord.default("mace_eval_configs"),
  model: filePath.nullable().default(null),
  head: token.default("Default"),
  batch_size: z.int().positive().default(64),
  pool: z.array(filePath).default([]),
  type_map: typeMapSchema.nullable().default(null),
  committee_models: z.array(filePath).default([]),
  /**
   * Also each structure's MACE descriptors for the dataset's splits and the pool, features for relabel rank: the mean
   * over its atoms (true), or each element's mean ("per-element").
   */
  descriptors: z.union([z.boolean(), z.literal("per-element")], { error: 'expected true (a mean over the atoms), "per-element" or false' }).default(false),
});

export const StageConfigSchema = z
  .strictObject({
    name: token.default("relabel"),
    seed: z.int().nonnegative().default(42),
    committee: z.int().min(1).max(64).default(1),
    device: z.enum(["cuda", "cpu", "mps", "xpu"]).default("cuda"),
    default_dtype: z.enum(["float32", "float64"]).default("float32"),
    energy_key: token.default("REF_energy"),
    forces_key: token.default("REF_forces"),
    stress_key: token.default("REF_stress"),
    train_command: commandWord.default("mace_run_train"),
    foundation_model: filePath.default("mh-1"),
    foundation_head: token.nullable().default("auto"),
    multiheads_finetuning: z.boolean().default(true),
    pt_train_file: filePath.default("omat"),
    num_samples_pt: z.int().positive().default(50000),
    filter_type_pt: z.enum(["none", "combinations", "inclusive", "exclusive"]).default("combinations"),
    subselect_pt: z.enum(["fps", "random"]).default("fps"),
    weight_pt_head: z.number().nonnegative().default(1),
    E0s: z
      .union([e0sText, e0sTable], { error: E0S_EXPECTED })
      .default("estimated"),
    loss: z.enum(LOSSES).default("auto"),
    energy_weight: z.number().nonnegative().default(1),
    forces_weight: z.number().nonnegative().default(10),
    stress_weight: z.number().nonnegative().default(1),
    max_num_epochs: z.int().positive().default(25),
    batch_size: z.int().positive().default(4),
    lr: z.number().positive().default(1e-4),
    ema: z.boolean().default(true),
    ema_decay: z.number().gt(0).lt(1).default(0.99999),
    restart_latest: z.boolean().default(true),
    eval: EvalConfigSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.E0s === "average" && c.multiheads_finetuning) {
      ctx.addIssue({
        code: "custom",
        path: ["E0s"],
        message: `"average" cannot be used with multiheads_finetuning (MACE refuses it): use "estimated", "foundation" or a JSON file, or set multiheads_finetuning to false`,
      });
    }
  });

export type StageConfig = z.output<typeof StageConfigSchema>;
export type EvalConfig = StageConfig["eval"];
/** What a config file or the App may pass: every key optional. */
export type StageConfigInput = z.input<typeof StageConfigSchema>;

export const TOP_LEVEL_KEYS = Object.keys(StageConfigSchema.shape) as (keyof StageConfig)[];
export const EVAL_KEYS = Object.keys(EvalConfigSchema.shape) as (keyof EvalConfig)[];

/** Keys that shape a train stage, and those that shape an eval stage (params.json records only these). */
export const TRAIN_STAGE_KEYS = TOP_LEVEL_KEYS.filter((k) => k !== "eval");
export const EVAL_STAGE_KEYS = ["device", "default_dtype", "energy_key", "forces_key", "stress_key"] as const;

/** One line per key for `--help`; typed so that a key without documentation fails the type check. */
export const CONFIG_KEY_DOCS: Record<Exclude<keyof StageConfig, "eval"> | `eval.${keyof EvalConfig}`, string> = {
  name: "MACE --name: outputs are tagged <name>_run-<seed>, the model is <name>.model",
  seed: "MACE --seed; committee member k uses seed + k",
  committee: "number of train members (member-0 ... member-K-1), seeds seed, seed+1, ...",
  device: "cuda, cpu, mps or xpu (mace_eval_configs takes cuda or cpu only)",
  default_dtype: "float32 or float64, for training and evaluation",
  energy_key: "info key of the reference energy",
  forces_key: "per-atom column of the reference forces",
  stress_key: "info key of the reference stress",
  train_command: "the training executable",
  foundation_model: "a named MACE model (downloaded at run time) or a local file (copied into the stage)",
  foundation_head: "head of a multi-head foundation model to fine-tune; auto: omat_pbe for mh-0/mh-1, none for other models; null to omit",
  multiheads_finetuning: "fine-tune with a replay head (pt_head)",
  pt_train_file: "replay data: mp, omat, matpes_pbe, matpes_r2scan (downloaded at run time) or a local file (copied)",
  num_samples_pt: "replay frames kept",
  filter_type_pt: "replay filter: none, combinations, inclusive, exclusive",
  subselect_pt: "replay subselection: fps or random",
  weight_pt_head: "loss weight of the replay head",
  E0s: "estimated, foundation, average (not with multihead), a .json file or an object {element: eV} (copied as assets/E0s.json)",
  loss: "auto (stress when the dataset has stress labels, else weighted) or a MACE loss name",
  energy_weight: "energy loss weight",
  forces_weight: "forces loss weight",
  stress_weight: "stress loss weight",
  max_num_epochs: "epochs",
  batch_size: "training batch size",
  lr: "learning rate (honoured in multihead mode through --force_mh_ft_lr True)",
  ema: "exponential moving average of the weights",
  ema_decay: "EMA decay",
  restart_latest: "resume from the newest checkpoint when run.sh is run again",
  "eval.command": "the evaluation executable",
  "eval.model": "the trained model to evaluate on test.extxyz (a local file, copied in; or --model)",
  "eval.head": "model head for mace_eval_configs --head (Default: the fine-tuning head of a model trained without --heads)",
  "eval.batch_size": "evaluation batch size",
  "eval.pool": "candidate pool files (extxyz, gzipped or not, ASE .traj or LAMMPS text dumps), joined into pool/pool.extxyz and predicted by every committee model",
  "eval.type_map": "the element of each LAMMPS atom type in eval.pool's dumps, type 1 first (for dumps without an element column)",
  "eval.committee_models": "models for the pool predictions (default: eval.model), predictions/pool.member-K.extxyz",
  "eval.descriptors": "also each structure's MACE descriptors (invariant; true: mean over its atoms, per-element: each element's mean) from eval.model in predictions/train|valid|test.extxyz and from member 0 in the pool's, for relabel rank --features",
};

/**
 * The --foundation_head a train stage passes, null for none. Other models lack omat_pbe: MACE's named-model loader
 * then falls back to the last head and a local file without it fails, so "auto" names it only for mh-0/mh-1.
 */
export function foundationHead(config: Pick<StageConfig, "foundation_model" | "foundation_head">): string | null {
  if (config.foundation_head !== "auto") return config.foundation_head;
  return hasDefaultHead(config.foundation_model) ? DEFAULT_FOUNDATION_HEAD : null;
}

function hasDefaultHead(model: string): boolean {
  return (MODELS_WITH_DEFAULT_HEAD as readonly string[]).includes(model);
}

/** One line when the config names omat_pbe explicitly for a model not known to have that head. */
export function foundationHeadWarning(config: Pick<StageConfig, "foundation_model" | "foundation_head">, source: string): string | undefined {
  if (config.foundation_head !== DEFAULT_FOUNDATION_HEAD || hasDefaultHead(config.foundation_model)) return undefined;
  return `${source}: foundation_head ${DEFAULT_FOUNDATION_HEAD} is a head of ${MODELS_WITH_DEFAULT_HEAD.join("/")}, and foundation_model ${config.foundation_model} may not have it (MACE then uses another head or stops): name that model's head, or set foundation_head to auto or null`;
}

/** Validates a config object (parsed from a JSON file, or passed by the App); errors name the source and each bad key. */
export function parseStageConfig(input: unknown, source: string): StageConfig {
  const result = StageConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") return unknownKeyMessage(issue.keys, issue.path.length === 0 ? "" : `${where}.`);
    return `${where === "" ? "config" : where}: ${issue.message}`;
  });
  throw new InputError(source, undefined, problems.join("; "));
}

function unknownKeyMessage(keys: string[], prefix: string): string {
  const valid = prefix === "" ? TOP_LEVEL_KEYS : EVAL_KEYS;
  const unknown = keys.map((key) => {
    const guess = closestName(key, valid);
    return `unknown key "${prefix}${key}"${guess === undefined ? "" : ` (did you mean "${prefix}${guess}"?)`}`;
  });
  return `${unknown.join(", ")}; valid keys: ${valid.map((k) => prefix + k).join(", ")}`;
}

/** Parses a config file's text (JSON); a syntax error names the line. */
export function parseStageConfigText(text: string, source: string): StageConfig {
  const value = parseJsonFile(text, source, "stage configs are JSON objects");
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(source, 1, "expected a JSON object of stage settings");
  }
  return parseStageConfig(value, source);
}

/** The key reference for `--help`: every key with its default and what it sets. */
export function configReference(): string {
  const defaults = StageConfigSchema.parse({});
  const rows: [string, string, string][] = [];
  for (const key of TRAIN_STAGE_KEYS) rows.push([key, JSON.stringify(defaults[key]), CONFIG_KEY_DOCS[key]]);
  for (const key of EVAL_KEYS) rows.push([`eval.${key}`, JSON.stringify(defaults.eval[key]), CONFIG_KEY_DOCS[`eval.${key}`]]);
  const keyWidth = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([k, v, doc]) => `  ${k.padEnd(keyWidth)}  ${v.padEnd(valueWidth)}  ${doc}`).join("\n");
}
