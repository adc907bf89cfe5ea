/**
 * `.github/relabel.yml`: the GitHub App's configuration, read from the data repo's default branch. The stage and
 * executor parts are the schemas the CLI uses (one source of truth); the `executor`/`executors` keys sit at the
 * top level exactly as in the CLI's relabel.json, so one file serves both. Every object is strict: an unknown key
 * anywhere becomes a problem naming its path, the keys valid there and the closest one.
 */
import { z } from "zod";
import { DEFAULT_CONFIG_TYPE, DEFAULT_FRACTIONS, DEFAULT_HEAD, parseFractions } from "../dataset/split.js";
import { executionConfigSchema } from "../exec/config.js";
import { DEFAULT_BINS, DEFAULT_R_MAX, MAX_BINS, type DescriptorKind } from "../select/descriptors.js";
import { DEFAULT_FEATURES_KEY } from "../select/frame-features.js";
import { DEFAULT_TRUST_EXCLUSION, parseTrustWindow, TRUST_LEVEL_NAMES, type DisagreementKind } from "../select/disagreement.js";
import type { ScalingMode } from "../select/scaling.js";
import { StageConfigSchema, typeMapSchema } from "../stage/config.js";
import { closestName } from "../stage/suggest.js";
import { elementProblem } from "../elements.js";
import { ldauProblem } from "../vasp/incar.js";
import { DEFAULT_VACUUM } from "../vasp/poscar.js";
import { potcarSymbolProblem } from "../vasp/potcar.js";

export const CONFIG_FILE = ".github/relabel.yml";

/** A path inside the data repo: relative, forward slashes, no `..`, nothing under .git; folders may end in "/". */
export const repoPathSchema = z
  .string()
  .min(1, "expected a path inside the repository")
  .refine((p) => !/[\0\n\r\\]/.test(p), "a repository path cannot contain NUL, line breaks or backslashes")
  .refine((p) => !p.startsWith("/"), "expected a path relative to the repository root (no leading /)")
  .refine((p) => p.replace(/\/$/, "").split("/").every((part) => part !== ".." && part !== ""), "expected a plain path without '..' or empty parts")
  .refine((p) => p !== ".git" && !p.startsWith(".git/"), "paths under .git are not repository files");

/** A key naming an element (or, with `wildcard`, "*" for every other element). */
function elementKey(wildcard: boolean) {
  return z.string().refine((s) => elementProblem(s, wildcard) === null, wildcard ? 'expected an element symbol such as Fe, or "*"' : "expected an element symbol such as Fe");
}

/** DFT+U of one element: L (-1 for none), U and J in eV. */
const dftUSchema = z.strictObject({ l: z.number(), u: z.number(), j: z.number().default(0) }).superRefine((v, ctx) => {
  const problem = ldauProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["l"] });
});

/** GitHub label names are at most 50 characters. */
const labelName = z.string().min(1, "expected a label name").max(50, "GitHub label names are at most 50 characters");

/** GitHub logins: letters, digits and single hyphens, at most 39 characters. */
export const loginSchema = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/, "expected a GitHub login");

const nonNegative = z.number().nonnegative("expected a weight >= 0");

/** Ranking weights: score = div * nearest-distance + dis * committee disagreement (docs/mace.md section 6). */
export const weightsSchema = z
  .strictObject({ div: nonNegative.default(1), dis: nonNegative.default(1) })
  .refine((w) => w.div > 0 || w.dis > 0, "the weights div and dis cannot both be 0");
export type Weights = z.output<typeof weightsSchema>;

/**
 * `div=1,dis=2` (as typed in a command or the issue form) to {div, dis}; a missing weight keeps its default.
 * Returns the reason as a string when the text is malformed.
 */
export function parseWeightsText(text: string): Weights | string {
  const raw: Record<string, number> = {};
  for (const part of text.split(",").map((p) => p.trim())) {
    const match = /^([A-Za-z_]+)\s*=\s*(\S+)$/.exec(part);
    const value = match ? Number(match[2]) : NaN;
    if (!match || !Number.isFinite(value)) return `expected weights as div=W,dis=W (got "${text}")`;
    raw[match[1]] = value;
  }
  const result = weightsSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === "unrecognized_keys") return `unknown weight "${issue.keys[0]}": expected div and/or dis (e.g. div=1,dis=2)`;
  return `${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}`;
}

/** Committee for the disagreement term: none, two or more prediction files in the repo, or the previous round's models. */
export const committeeSchema = z.union(
  [z.literal("none"), z.literal("previous-round"), z.strictObject({ files: z.array(repoPathSchema).min(2, "a committee needs at least 2 prediction files") })],
  { error: 'expected "none", "previous-round" or {files: [two or more prediction files]}' },
);
export type Committee = z.output<typeof committeeSchema>;

const DESCRIPTORS = ["baseline", "element-pairs"] as const satisfies readonly DescriptorKind[];
const SCALINGS = ["standard", "none"] as const satisfies readonly ScalingMode[];
const DISAGREEMENTS = ["energy", "force"] as const satisfies readonly DisagreementKind[];

const infoName = z.string().regex(/^[A-Za-z0-9_.+-]+$/, "expected letters, digits or _ . + -");

const perElementFeatures = z.boolean().default(false).describe("a block per element (its mean descriptor times its atom fraction) instead of one mean");

/** Ranking settings: what `relabel rank` takes; the round issue and `/relabel rank` may override select and weights. */
export const selectionConfigSchema = z.strictObject({
  select: z.int().min(1, "expected a selection size of at least 1").max(100_000).default(8),
  weights: weightsSchema.prefault({}),
  descriptor: z.enum(DESCRIPTORS).default("baseline"),
  /** Features per structure from extxyz files in the repository (mace_eval_configs --return_descriptors), instead of the descriptor. */
  features: z
    .union(
      [
        z.literal("previous-round"),
        z.strictObject({
          model: z.literal("previous-round", { error: 'expected "previous-round" (the only model features are computed with)' }),
          per_element: perElementFeatures,
        }),
        z.strictObject({
          files: z.array(repoPathSchema).min(1, "expected extxyz files of features: the pool's and datasets/current's structures"),
          key: infoName.default(DEFAULT_FEATURES_KEY),
          per_element: perElementFeatures,
        }),
      ],
      { error: 'expected "previous-round", {model: previous-round, per_element: true} or {files: [extxyz files of features], key: MACE_descriptors}' },
    )
    .nullable()
    .default(null)
    .describe(
      'features per structure instead of the descriptor: "previous-round" (the MACE descriptors of the previous round\'s model, computed in a pool-eval stage before the ranking; the first round ranks by the descriptor; {model: previous-round, per_element: true} for a block per element) or extxyz files in this repository (mace_eval_configs --return_descriptors outputs) for the pool and datasets/current\'s structures',
    ),
  scaling: z.enum(SCALINGS).default("standard"),
  bins: z.int().min(1).max(MAX_BINS).default(DEFAULT_BINS),
  rmax: z.number().positive("expected a cutoff radius in Angstrom above 0").default(DEFAULT_R_MAX),
  disagreement: z.enum(DISAGREEMENTS).default("energy"),
  /** LO:HI in the disagreement's unit; candidates outside are left out (DP-GEN trust levels). */
  force_trust: z
    .string()
    .refine((text) => {
      try {
        parseTrustWindow(text);
        return true;
      } catch {
        return false;
      }
    }, 'expected a trust window "LO:HI" with 0 <= LO < HI (e.g. "0.05:0.3")')
    .nullable()
    .default(null),
  /** LAMMPS dumps in the pool without an element column: the element of each atom type, type 1 first. */
  type_map: typeMapSchema.nullable().default(null),
  /** Which trust levels of force_trust are never selected (DP-GEN leaves out both). */
  trust_exclude: z
    .array(z.enum(TRUST_LEVEL_NAMES))
    .refine((levels) => new Set(levels).size === levels.length, "expected each trust level at most once")
    .default([...DEFAULT_TRUST_EXCLUSION]),
});
export type SelectionConfig = z.output<typeof selectionConfigSchema>;

/**
 * selection.features from the previous round's model ("previous-round", or {model: previous-round, per_element}):
 * whether per element; null for the descriptor or files. Also for the selection parameters a round manifest recorded.
 */
export function previousRoundFeatures(features: SelectionConfig["features"] | undefined): { perElement: boolean } | null {
  if (features === "previous-round") return { perElement: false };
  return typeof features === "object" && features !== null && "model" in features ? { perElement: features.per_element } : null;
}

const fractionsSchema = z
  .strictObject({ train: z.number(), valid: z.number(), test: z.number() })
  .superRefine((f, ctx) => {
    try {
      parseFractions(`${f.train},${f.valid},${f.test}`);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  });

/** Dataset rebuild settings: the options of `relabel dataset build`. */
export const datasetConfigSchema = z.strictObject({
  fractions: fractionsSchema.default(DEFAULT_FRACTIONS),
  seed: z.int().nonnegative().default(0),
  energy: z.enum(["free", "sigma0"]).default("free"),
  head: infoName.default(DEFAULT_HEAD),
  config_type: infoName.default(DEFAULT_CONFIG_TYPE),
  frames: z.enum(["all", "final"]).default("all"),
  require_converged: z.boolean().default(false),
  max_force: z.number().positive("expected a force in eV/A above 0").default(50),
  energy_z: z.number().positive().default(5),
  allow_mixed_settings: z.boolean().default(false),
});
export type DatasetConfig = z.output<typeof datasetConfigSchema>;

export const relabelConfigSchema = executionConfigSchema
  .safeExtend({
    round_label: labelName.default("al-round").describe("label that marks a round issue"),
    results_label: labelName.default("labeled-results").describe("label that marks a results pull request"),
    pool: z
      .strictObject({ paths: z.array(repoPathSchema).default([]) })
      .prefault({})
      .describe("candidate pools used when a round issue names none"),
    selection: selectionConfigSchema.prefault({}).describe("ranking settings (relabel rank)"),
    committee: committeeSchema.default("none").describe("committee for the disagreement term when the round issue does not choose one"),
    dataset: datasetConfigSchema.prefault({}).describe("dataset rebuild settings (relabel dataset build)"),
    stage: StageConfigSchema.prefault({}).describe("MACE training and evaluation stages (relabel stage)"),
    /** INCAR/KPOINTS in the repo, copied beside each selected POSCAR. */
    vasp_templates: z
      .strictObject({
        incar: repoPathSchema.nullable().default(null),
        kpoints: repoPathSchema.nullable().default(null),
        vacuum: z.number().positive().default(DEFAULT_VACUUM).describe("Angstrom between periodic copies of a selected structure without a cell (a molecule): its POSCAR puts it in a cubic box"),
        magmom: z
          .union([z.literal("pool"), z.record(elementKey(true), z.number())], { error: 'expected moments per element such as {Fe: 5, "*": 0.6}, or "pool"' })
          .nullable()
          .default(null)
          .describe('each pick\'s MAGMOM, in its POSCAR\'s order: its own initial_magmoms when the pool gives them, else per element ("*" for every other element, else VASP\'s default 1); "pool" for no per-element values'),
        ldau: z
          .record(elementKey(false), dftUSchema)
          .nullable()
          .default(null)
          .describe("DFT+U per element (L, U and J in eV), written as each pick's LDAUL/LDAUU/LDAUJ in its POSCAR's order"),
        potcar_symbols: z
          .record(elementKey(false), z.string())
          .superRefine((symbols, ctx) => {
            for (const [element, symbol] of Object.entries(symbols)) {
              const problem = potcarSymbolProblem(element, symbol);
              if (problem) ctx.addIssue({ code: "custom", message: problem, path: [element] });
            }
          })
          .nullable()
          .default(null)
          .describe("potential name per element (Fe: Fe_pv; others by their symbol): each pick gets a POTCAR.spec listing them in its POSCAR's order, for the cluster to assemble the POTCAR; {} for plain names"),
      })
      .refine((t) => t.incar !== null || (t.magmom === null && t.ldau === null), { message: "magmom and ldau are written into each pick's INCAR: set incar too", path: ["incar"] })
      .prefault({})
      .describe("INCAR and KPOINTS in the repository, copied beside every selected POSCAR (the INCAR with per-element MAGMOM and DFT+U), and the box of structures without a cell"),
    commands: z
      .strictObject({
        /** Logins allowed to run commands, on top of needing write access; null lets every writer run them. */
        allowlist: z.array(loginSchema).min(1, "an empty allowlist would let nobody run commands: leave the key out to allow everyone with write access").nullable().default(null),
      })
      .prefault({})
      .describe("who may run /relabel commands"),
    poll_seconds: z.int().min(30, "poll at most every 30 seconds").default(300).describe("seconds between polls of open jobs (and of merges the App did not hear of: selection PRs in review, results PRs while a round waits for labels)"),
    comment_pacing_ms: z.int().nonnegative().max(60_000).default(1000).describe("pause between comments, in milliseconds"),
  })
  .strict();
export type RelabelConfig = z.output<typeof relabelConfigSchema>;

export interface ConfigProblem {
  /** Dotted path of the offending key or value, e.g. "dataset.fractons"; "" for the whole file. */
  path: string;
  message: string;
  /** For an unknown key: the valid key it most likely meant. */
  suggestion?: string;
}

export type ConfigResult = { ok: true; config: RelabelConfig } | { ok: false; file: string; problems: ConfigProblem[] };

/** Validates the parsed YAML of `file` (null or undefined = an empty file: all defaults). */
export function parseRelabelConfig(yamlObject: unknown, file: string = CONFIG_FILE): ConfigResult {
  const input = yamlObject ?? {};
  if (typeof input !== "object" || Array.isArray(input)) {
    return { ok: false, file, problems: [{ path: "", message: `expected a mapping of settings (key: value lines), got ${describeValue(input)}` }] };
  }
  // Probot's `_extends` would pull settings (executors, setup lines) from another file or repository.
  const { _extends: _refused, ...own } = input as Record<string, unknown>;
  const refused: ConfigProblem[] = "_extends" in input ? [{ path: "_extends", message: `is not supported: relabel-loop reads no settings from other files or repositories; copy the ones you need into ${file}` }] : [];
  const result = relabelConfigSchema.safeParse(own);
  if (result.success && refused.length === 0) return { ok: true, config: result.data };
  return { ok: false, file, problems: [...refused, ...(result.success ? [] : result.error.issues.flatMap((issue) => describeIssue(issue, own)))] };
}

/** The defaults every key takes when the file is empty or absent. */
export function defaultRelabelConfig(): RelabelConfig {
  return relabelConfigSchema.parse({});
}

/** Markdown for the one issue comment that explains why the config was refused. */
export function renderConfigProblems(problems: readonly ConfigProblem[], file: string = CONFIG_FILE): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = [
    `**relabel-loop cannot use \`${file}\`** (${count}; read from the default branch). Nothing was started.`,
    "",
    ...problems.map((p) => `- ${p.path === "" ? "the file" : `\`${p.path}\``}: ${p.message}`),
    "",
    `Fix the file on the default branch and try again. The key reference is \`templates/relabel.yml\` in relabel-loop; ` +
      "editors that read JSON Schema can check the file with `templates/relabel.schema.json`.",
  ];
  return `${lines.join("\n")}\n`;
}

/** The JSON Schema of relabel.yml (what editors validate against), generated from the zod schema. */
export function relabelJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(relabelConfigSchema, { io: "input", target: "draft-2020-12" });
  return { ...schema, title: "relabel-loop .github/relabel.yml", description: "Configuration of the relabel-loop GitHub App" };
}

/** The bytes of templates/relabel.schema.json. */
export function relabelJsonSchemaText(): string {
  return `${JSON.stringify(relabelJsonSchema(), null, 2)}\n`;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): ConfigProblem[] {
  const where = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const valid = keysAt(relabelConfigSchema, issue.path, data);
    return issue.keys.map((key) => {
      const suggestion = closestName(key, valid);
      const guess = suggestion === undefined ? "" : ` (did you mean \`${suggestion}\`?)`;
      return {
        path: where === "" ? key : `${where}.${key}`,
        message: `unknown key${guess}; expected one of: ${valid.map((k) => `\`${k}\``).join(", ")}`,
        ...(suggestion === undefined ? {} : { suggestion }),
      };
    });
  }
  if (issue.code === "invalid_type" && valueAt(data, issue.path) === undefined) return [{ path: where, message: `is required (expected ${issue.expected})` }];
  if (issue.code === "invalid_type") return [{ path: where, message: `expected ${issue.expected}, got ${describeValue(valueAt(data, issue.path))}` }];
  // A record's key (an element, an executor name): its own check's message, not zod's "Invalid key in record".
  if (issue.code === "invalid_key" && issue.issues.length > 0) return [{ path: where, message: issue.issues[0].message }];
  if (issue.code === "invalid_union" && "discriminator" in issue && issue.discriminator) {
    return [{ path: where, message: issue.message.replace(/^Invalid discriminator value\. Expected /i, "expected one of ") }];
  }
  if (issue.code === "invalid_union") {
    // The one option whose kind of value was given (a mapping, not "pool") says what is wrong inside it; of several
    // mappings, the one whose keys were given.
    let matched = issue.errors.filter((branch) => !branch.every((i) => i.path.length === 0 && (i.code === "invalid_type" || i.code === "invalid_value")));
    if (matched.length > 1) matched = matched.filter((branch) => !branch.some((i) => i.code === "unrecognized_keys"));
    if (matched.length === 1) return matched[0].flatMap((i) => describeIssue({ ...i, path: [...issue.path, ...i.path] }, data));
  }
  return [{ path: where, message: issue.message.replace(/^Invalid input: /, "").replace(/^Invalid option: /, "") }];
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) value = value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

type AnyDef = { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; shape?: Record<string, z.core.$ZodType> } & Record<string, unknown>;

/** The object keys the schema accepts at `path`, walking through wrappers, records, arrays and unions. */
function keysAt(schema: z.core.$ZodType, path: readonly PropertyKey[], data: unknown): string[] {
  const def = schema._zod.def as unknown as AnyDef;
  if (def.innerType) return keysAt(def.innerType, path, data);
  if (def.type === "pipe" && def.in) return keysAt(def.in, path, data);
  if (def.type === "union") {
    const options = def.options as z.core.$ZodType[];
    const discriminator = def.discriminator as string | undefined;
    const here = valueAt(data, []);
    const matching = options.filter((option) => {
      const optionDef = option._zod.def as unknown as AnyDef;
      if (optionDef.type !== "object") return false;
      if (discriminator === undefined || here === null || typeof here !== "object") return true;
      const literal = (optionDef.shape?.[discriminator]?._zod.def as unknown as AnyDef | undefined)?.values as unknown[] | undefined;
      return literal?.includes((here as Record<string, unknown>)[discriminator]) ?? true;
    });
    return [...new Set(matching.flatMap((option) => keysAt(option, path, data)))];
  }
  if (path.length === 0) return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
  const [head, ...rest] = path;
  const child = valueAt(data, [head]);
  if (def.type === "object" && def.shape && typeof head === "string" && head in def.shape) return keysAt(def.shape[head], rest, child);
  if (def.type === "record") return keysAt(def.valueType as z.core.$ZodType, rest, child);
  if (def.type === "array") return keysAt(def.element as z.core.$ZodType, rest, child);
  return [];
}

/**
 * A dataset gate's advice as a round's user can follow it: `relabel dataset build` names its command-line options,
 * which the App's rebuild takes from `.github/relabel.yml` instead (and it never builds with an empty split).
 */
export function asRoundAdvice(message: string): string {
  return message
    .replace("pass --allow-mixed-settings to build anyway", `set dataset.allow_mixed_settings: true in ${CONFIG_FILE} to build anyway`)
    .replace("(allowed by --allow-mixed-settings)", "(allowed by dataset.allow_mixed_settings)")
    .replace("add runs, try another --seed, or pass --allow-empty-split to build without it", `add runs, or try another dataset.seed in ${CONFIG_FILE}`)
    .replace("(pass --require-converged to drop them)", `(dataset.require_converged: true in ${CONFIG_FILE} drops them)`)
    .replace("new runs enter test only with --grow-test", "new runs never enter the test split of a round's rebuild");
}
