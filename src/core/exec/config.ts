/**
 * Executor configuration: where MACE stages run (this host, a workstation over SSH, or Slurm over SSH) and with
 * which resources. One zod schema serves the CLI's JSON file, `.github/relabel.yml` and the docs; unknown keys
 * are refused with a suggestion.
 */
import { z } from "zod";
import { APP_SECRET_VARIABLES, isAppSecretVariable } from "../app-secrets.js";
import { closestName } from "../stage/suggest.js";

export const BACKENDS = ["local", "ssh+shell", "ssh+slurm"] as const;
export type BackendName = (typeof BACKENDS)[number];

export const STAGE_KINDS = ["train", "eval"] as const;
export type StageKind = (typeof STAGE_KINDS)[number];

/** Names that become path components or job names: no slashes, spaces or shell metacharacters. */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Seconds in a Slurm time limit: "M", "M:S", "H:M:S", "D-H", "D-H:M" or "D-H:M:S"; null when malformed.
 */
export function slurmTimeSeconds(text: string): number | null {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text);
  if (!m) return null;
  const [, days, a, b, c] = m;
  const n = (s: string | undefined) => (s === undefined ? 0 : Number(s));
  if (days !== undefined) return ((n(days) * 24 + n(a)) * 60 + n(b)) * 60 + n(c);
  if (c !== undefined) return (n(a) * 60 + n(b)) * 60 + n(c);
  if (b !== undefined) return n(a) * 60 + n(b);
  return n(a) * 60;
}

/**
 * sbatch options that would break tracking: job ids of arrays ("<id>_<index>"), another cluster (squeue/sacct/scancel
 * ask the default one), sbatch waiting for the job or submitting nothing, and our own output file. sbatch takes
 * any unambiguous abbreviation of a long option, so prefixes count too.
 */
const UNTRACKED_SBATCH_OPTIONS: Record<string, string> = {
  array: "--array (job arrays)",
  clusters: "--clusters (another cluster)",
  wait: "--wait (sbatch would block until the job ends)",
  "test-only": "--test-only (submits nothing)",
  output: "--output (relabel-loop reads the job's output from logs/slurm-<id>.out)",
  error: "--error (relabel-loop reads the job's output from logs/slurm-<id>.out)",
};

/** What an sbatch option would break, or null. */
export function untrackedSbatchOption(option: string): string | null {
  const name = /^--([a-z0-9-]+)/.exec(option)?.[1];
  if (!name) return null;
  const hit = Object.keys(UNTRACKED_SBATCH_OPTIONS).find((full) => full.startsWith(name));
  return hit ? UNTRACKED_SBATCH_OPTIONS[hit] : null;
}

const word = (what: string) => z.string().regex(SAFE_NAME, `expected a ${what} name (letters, digits, . _ -)`);

export const resourcesSchema = z.strictObject({
  /** One partition, or several separated by commas (Slurm starts the job in whichever can run it first). */
  partition: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*(,[A-Za-z0-9][A-Za-z0-9._-]*)*$/, "expected a partition name or a comma-separated list (letters, digits, . _ -)")
    .optional(),
  account: word("account").optional(),
  qos: word("QOS").optional(),
  /** GPUs per job: a count, or "type:count" (becomes --gres=gpu:<value>). */
  gpus: z.union([z.number().int().positive(), z.string().regex(/^[A-Za-z0-9_.-]+:\d+$/, 'expected a count or "type:count"')]).optional(),
  /** Wall-clock limit in Slurm's format; the shell backends enforce it with `timeout`. */
  time: z
    .string()
    .refine((t) => (slurmTimeSeconds(t) ?? 0) > 0, 'expected a Slurm time limit such as "90", "04:00:00" or "1-12:00:00"')
    .optional(),
  cpus: z.number().int().positive().optional(),
  memory: z.string().regex(/^\d+[KMGT]?$/, 'expected a Slurm memory size such as "32G"').optional(),
  /** Further sbatch options, one per entry, e.g. "--constraint=a100". */
  sbatch_options: z
    .array(
      z
        .string()
        .regex(/^--[a-z][a-z0-9-]*(=(?:[^\s"]|"[^"\n\r]*")+)?$/, 'expected one sbatch option such as "--constraint=a100" (a value with spaces in double quotes)')
        .superRefine((o, ctx) => {
          const why = untrackedSbatchOption(o);
          if (why) ctx.addIssue({ code: "custom", message: `${why} is not supported: relabel-loop could not track the job` });
        }),
    )
    .optional(),
});
export type Resources = z.infer<typeof resourcesSchema>;

const setupLines = z.array(z.string().regex(/^[^\n\r]*$/, "expected one shell line per entry"));

export const stageOverrideSchema = z.strictObject({
  resources: resourcesSchema.optional(),
  /** Replaces the executor's setup lines for this stage kind. */
  setup: setupLines.optional(),
});

/** A remote path: absolute, or starting with ~/ or $VAR (expanded by the remote shell); it ends up unquoted in #SBATCH lines. */
const remoteRoot = z
  .string()
  .regex(/^(\/|~\/|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)[^\s"'`\\]*$/, 'expected an absolute path, "~/..." or "$VAR/..." without spaces or quotes')
  .refine((p) => !p.includes("$(") && !/(^|\/)\.\.(\/|$)/.test(p), "expected a plain path without $(...) or ..");

const common = {
  remote_root: remoteRoot,
  /** Shell lines run before the stage, e.g. "module load cuda/12.1" or "conda activate mace". */
  setup: setupLines.default([]),
  resources: resourcesSchema.default({}),
  overrides: z.strictObject({ train: stageOverrideSchema.optional(), eval: stageOverrideSchema.optional() }).default({}),
  /** Submit a failed job once more (never a cancelled one). */
  resubmit: z.boolean().default(false),
  /** Seconds between polls in `relabel jobs --watch`; sites ask for 30-60 s. */
  poll_interval: z.number().positive().default(30),
};

export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** An environment variable name, never one of the GitHub App's own credentials (a repo config must not reach them). */
const keyVariable = (holding: string) =>
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name")
    .refine((name) => !isAppSecretVariable(name), `expected a variable holding ${holding}, not one of the GitHub App's own (${APP_SECRET_VARIABLES.join(", ")})`);

const connection = {
  host: z.string().regex(/^[A-Za-z0-9._:-]+$/, "expected a host name or address"),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, "expected a user name"),
  /** The server's host key fingerprint as `ssh-keygen -lf` prints it; any other key is refused. */
  host_key: z.string().regex(FINGERPRINT, 'expected "SHA256:" followed by 43 base64 characters (ssh-keyscan -p PORT HOST | ssh-keygen -lf -)'),
  /** Private key file outside the repository: an absolute path or ~/... */
  private_key_file: z
    .string()
    .regex(/^(\/|~\/)/, "expected an absolute path or ~/...: keys never come from the repository")
    .optional(),
  /** Name of an environment variable holding the private key (PEM or OpenSSH format). */
  private_key_env: keyVariable("the SSH key").optional(),
  /** Name of an environment variable holding the passphrase of a protected private key. */
  private_key_passphrase_env: keyVariable("the SSH key's passphrase").optional(),
  keepalive_interval: z.number().positive().default(15),
  connect_timeout: z.number().positive().default(20),
  /** Seconds to keep reconnecting after an established connection drops. */
  reconnect_timeout: z.number().nonnegative().default(120),
};

const oneKey = (c: { private_key_file?: string; private_key_env?: string }) =>
  (c.private_key_file === undefined) !== (c.private_key_env === undefined);
const oneKeyMessage = { message: "give exactly one of private_key_file and private_key_env", path: ["private_key_file"] };

export const localExecutorSchema = z.strictObject({ backend: z.literal("local"), ...common });
export const sshShellExecutorSchema = z.strictObject({ backend: z.literal("ssh+shell"), ...connection, ...common });
export const sshSlurmExecutorSchema = z.strictObject({ backend: z.literal("ssh+slurm"), ...connection, ...common });

export const executorConfigSchema = z
  .discriminatedUnion("backend", [localExecutorSchema, sshShellExecutorSchema, sshSlurmExecutorSchema])
  .refine((c) => c.backend === "local" || oneKey(c), oneKeyMessage);
export type ExecutorConfig = z.infer<typeof executorConfigSchema>;
export type SshExecutorConfig = Extract<ExecutorConfig, { backend: "ssh+shell" | "ssh+slurm" }>;

/** The `executor`/`executors` part of relabel.json / .github/relabel.yml; other top-level keys are left to their owners. */
export const executionConfigSchema = z
  .object({
    /** Name of the executor used when none is given. */
    executor: word("executor").optional(),
    executors: z.record(z.string().regex(SAFE_NAME, "expected an executor name (letters, digits, . _ -)"), executorConfigSchema).default({}),
  })
  .refine((c) => c.executor === undefined || c.executor in c.executors, { message: "names no entry of executors", path: ["executor"] });
export type ExecutionConfig = z.infer<typeof executionConfigSchema>;

/** Setup lines and resources for one stage kind: the kind's override wins key by key. */
export function stageSettings(config: ExecutorConfig, kind: StageKind): { setup: string[]; resources: Resources } {
  const override = config.overrides[kind];
  return {
    setup: override?.setup ?? config.setup,
    resources: { ...config.resources, ...override?.resources },
  };
}

/** Keys an object at `path` of the execution config accepts, for "did you mean" hints. */
function knownKeys(path: readonly PropertyKey[], data: unknown): string[] {
  const last = path.at(-1);
  const parent = path.at(-2);
  if (path.length === 0) return ["executor", "executors"];
  if (last === "resources") return Object.keys(resourcesSchema.shape);
  if (last === "overrides") return [...STAGE_KINDS];
  if (parent === "overrides") return Object.keys(stageOverrideSchema.shape);
  if (path.length === 2 && path[0] === "executors") {
    const backend = (at(data, path) as { backend?: unknown } | undefined)?.backend;
    const schema = backend === "local" ? localExecutorSchema : backend === "ssh+shell" ? sshShellExecutorSchema : sshSlurmExecutorSchema;
    return Object.keys(schema.shape);
  }
  return [];
}

function at(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const k of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

export interface ConfigProblem {
  /** Dotted path of the offending value, e.g. "executors.hpc.resources.time". */
  where: string;
  message: string;
}

/** Validates an execution config; the first problem is described in one line. */
export function parseExecutionConfig(data: unknown): { ok: true; config: ExecutionConfig } | { ok: false; problem: ConfigProblem } {
  const result = executionConfigSchema.safeParse(data);
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, problem: describeIssue(result.error.issues[0], data) };
}

/** Validates one executor entry (as stored in jobs.json). */
export function parseExecutorConfig(data: unknown, where: string): { ok: true; config: ExecutorConfig } | { ok: false; problem: ConfigProblem } {
  const result = executorConfigSchema.safeParse(data);
  if (result.success) return { ok: true, config: result.data };
  const problem = describeIssue(result.error.issues[0], { executors: { [where]: data } }, ["executors", where]);
  return { ok: false, problem };
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown, prefix: PropertyKey[] = []): ConfigProblem {
  const path = [...prefix, ...issue.path];
  const where = path.map(String).join(".") || "(top level)";
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(path, data);
    const key = issue.keys[0];
    const guess = closestName(key, known);
    const hint = guess ? ` (did you mean "${guess}"?)` : known.length ? ` (expected one of: ${known.join(", ")})` : "";
    return { where, message: `unknown key "${key}"${hint}` };
  }
  if (issue.code === "invalid_union" && "discriminator" in issue && issue.discriminator) {
    return { where, message: `expected one of ${BACKENDS.map((b) => `"${b}"`).join(", ")}` };
  }
  if (issue.code === "invalid_type" && at(data, path) === undefined) return { where, message: "is required" };
  return { where, message: issue.message.replace(/^Invalid input: /, "") };
}
