/**
 * Executors run stages on an execution host: `local` (detached bash processes on the bot host), `ssh+shell`
 * (detached processes on a workstation) and `ssh+slurm` (sbatch on a cluster login node). All three share the
 * same steps, composed from a Transport (local, or one SSH connection per host) and the scheduler's scripts.
 */
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { BackendName, ExecutorConfig, Resources, SshExecutorConfig } from "../core/exec/config.js";
import { parseStatusJson, type FileRecord, type StageMarkers } from "../core/exec/ledger.js";
import type { JobRef, QueryResult, SchedulerScripts } from "../core/exec/scheduler.js";
import {
  collectRole,
  expandRootScript,
  hashFilesScript,
  inspectScript,
  listFilesScript,
  parseFileList,
  parseInspectOutput,
  parseSha256sum,
  parseSubmitOutput,
  prepareUploadScript,
  remoteRootProblem,
  stageDirName,
  submitScript,
} from "../core/exec/scripts.js";
import { shellScripts } from "../core/exec/shell-jobs.js";
import { slurmScripts, submitRefusal } from "../core/exec/slurm.js";
import { ExecError } from "./errors.js";
import { keyFilePath, loadPrivateKey, sshOptions, SshTransport } from "./ssh.js";
import { sha256File } from "../io/open.js";
import type { StageFile } from "./stage.js";
import { LocalTransport, type RunResult, type Transport } from "./transport.js";

export interface UploadReport {
  uploaded: string[];
  skipped: string[];
}

export interface JobRequest {
  jobName: string;
  setup: string[];
  resources: Resources;
}

/** The scheduler refused a submission. `transient` ones (controller busy, QOS submit limits) may be retried later. */
export class SubmitRefused extends ExecError {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = "SubmitRefused";
  }
}

export interface Executor {
  readonly name: string;
  readonly backend: BackendName;
  /** user@host:port for the SSH backends, null for local. */
  readonly host: string | null;
  /** `<root>/<round>/<stage>-<hash12>`, absolute on the execution host. */
  stageDir(round: string, stage: string, hash: string): Promise<string>;
  /** Uploads the files whose sha256 differs on the host (one remote sha256sum call decides). */
  upload(localDir: string, files: StageFile[], remoteDir: string, onUploaded?: (file: StageFile) => void | Promise<void>): Promise<UploadReport>;
  /** Submits attempt n at most once: when the host has a record of it, that job is adopted instead. */
  submit(remoteDir: string, attempt: number, job: JobRequest): Promise<{ jobId: string; adopted: boolean }>;
  /** The host's record of attempt n's job id, if it was ever submitted. */
  findSubmitted(remoteDir: string, attempt: number): Promise<string | null>;
  /** One batched status query for all given jobs. */
  query(jobs: JobRef[]): Promise<QueryResult>;
  /** FINISHED, status.json and log tails of ended jobs, in one remote command. */
  inspect(jobs: JobRef[]): Promise<StageMarkers[]>;
  cancel(jobs: JobRef[]): Promise<void>;
  /** Files of a finished stage worth downloading, and its models (remote absolute paths), with sha256 computed remotely. */
  outputs(remoteDir: string): Promise<{ downloads: FileRecord[]; models: FileRecord[] }>;
  /** Downloads files (relative to remoteDir) into localDir and checks their sha256. */
  download(remoteDir: string, files: FileRecord[], localDir: string): Promise<void>;
}

const join = (...parts: string[]) => path.posix.join(...parts);

class StageExecutor implements Executor {
  readonly backend: BackendName;
  readonly host: string | null;
  private root: Promise<string> | null = null;

  constructor(
    readonly name: string,
    private readonly config: ExecutorConfig,
    private readonly transport: Transport,
    private readonly scripts: SchedulerScripts,
  ) {
    this.backend = config.backend;
    this.host = config.backend === "local" ? null : transport.label;
  }

  private async run(script: string, what: string): Promise<RunResult> {
    const result = await this.transport.run(script);
    if (result.code !== 0) throw new ExecError(`${this.transport.label}: ${what} failed: ${lastLine(result.stderr) || `exit code ${result.code}`}`);
    return result;
  }

  async stageDir(round: string, stage: string, hash: string): Promise<string> {
    this.root ??= this.run(expandRootScript(this.config.remote_root), "expanding remote_root").then((r) => {
      const root = r.stdout.replace(/\n$/, "");
      const problem = remoteRootProblem(root, this.backend === "ssh+slurm");
      if (problem) throw new ExecError(`${this.transport.label}: remote_root ${this.config.remote_root} expands to "${root}", ${problem}`);
      return root.replace(/\/+$/, "");
    });
    this.root.catch(() => (this.root = null));
    return join(await this.root, round, stageDirName(stage, hash));
  }

  async upload(localDir: string, files: StageFile[], remoteDir: string, onUploaded?: (file: StageFile) => void | Promise<void>): Promise<UploadReport> {
    const subdirs = [...new Set(files.map((f) => path.posix.dirname(f.path)).filter((d) => d !== "."))];
    const remote = parseSha256sum((await this.run(prepareUploadScript(remoteDir, subdirs, files.map((f) => f.path)), "preparing the stage directory")).stdout);
    const report: UploadReport = { uploaded: [], skipped: [] };
    for (const file of files) {
      if (remote.get(file.path) === file.sha256) {
        report.skipped.push(file.path);
        continue;
      }
      await this.transport.put(path.join(localDir, file.path), join(remoteDir, file.path), file.mode);
      report.uploaded.push(file.path);
      await onUploaded?.(file);
    }
    return report;
  }

  async submit(remoteDir: string, attempt: number, job: JobRequest): Promise<{ jobId: string; adopted: boolean }> {
    const spec = { dir: remoteDir, attempt, jobName: job.jobName, setup: job.setup, resources: job.resources };
    await this.transport.putText(join(remoteDir, ".relabel", `job-${attempt}.sh`), this.scripts.jobScript(spec), 0o755);
    const result = await this.transport.run(submitScript(remoteDir, attempt, this.scripts.launch(spec)));
    const parsed = parseSubmitOutput(result.stdout);
    if (result.code === 0 && parsed) return parsed;
    const refusal = submitRefusal(result.stderr);
    const why = refusal.reason || `exit code ${result.code}`;
    throw new SubmitRefused(`${this.transport.label}: ${this.backend === "ssh+slurm" ? "sbatch" : "starting the job"} refused ${job.jobName}: ${why}`, refusal.transient);
  }

  async findSubmitted(remoteDir: string, attempt: number): Promise<string | null> {
    const result = await this.run(submitScript(remoteDir, attempt, "", true), "looking up a submission");
    return parseSubmitOutput(result.stdout)?.jobId ?? null;
  }

  async query(jobs: JobRef[]): Promise<QueryResult> {
    if (jobs.length === 0) return { ok: true, statuses: new Map() };
    const result = await this.transport.run(this.scripts.queryScript(jobs));
    return this.scripts.parseQuery(result.stdout, jobs);
  }

  async inspect(jobs: JobRef[]): Promise<StageMarkers[]> {
    if (jobs.length === 0) return [];
    const items = jobs.map((j) => ({ dir: j.dir, outputFile: this.scripts.outputFile(j.jobId, j.attempt) }));
    const rows = parseInspectOutput((await this.run(inspectScript(items), "reading the stage markers")).stdout, jobs.length);
    return rows.map((row, i) => {
      if (!row) throw new ExecError(`${this.transport.label}: no answer about the stage directory ${jobs[i].dir}`);
      const { status, problem } = parseStatusJson(row.statusText);
      return { finished: row.finished, status, statusProblem: problem, stderrTail: row.stderrTail, outputTail: row.outputTail };
    });
  }

  async cancel(jobs: JobRef[]): Promise<void> {
    if (jobs.length === 0) return;
    const result = await this.transport.run(this.scripts.cancelScript(jobs));
    // scancel complains about jobs that already ended; that is not a failure to cancel.
    const complaints = result.stderr.split("\n").filter((l) => l.trim() && !/already completing or completed|Invalid job id/i.test(l));
    if (result.code !== 0 && complaints.length) throw new ExecError(`${this.transport.label}: cancelling failed: ${complaints[0].trim()}`);
  }

  async outputs(remoteDir: string): Promise<{ downloads: FileRecord[]; models: FileRecord[] }> {
    const listed = parseFileList((await this.run(listFilesScript(remoteDir), `listing ${remoteDir}`)).stdout);
    const wanted = listed.filter((f) => collectRole(f.path) !== null);
    const sums = wanted.length ? parseSha256sum((await this.run(hashFilesScript(remoteDir, wanted.map((f) => f.path)), "hashing outputs")).stdout) : new Map<string, string>();
    const record = (f: { path: string; bytes: number }, p: string): FileRecord => {
      const sha256 = sums.get(f.path);
      if (!sha256) throw new ExecError(`${this.transport.label}: no sha256 for ${join(remoteDir, f.path)}`);
      return { path: p, sha256, bytes: f.bytes };
    };
    return {
      downloads: wanted.filter((f) => collectRole(f.path) === "download").map((f) => record(f, f.path)),
      models: wanted.filter((f) => collectRole(f.path) === "model").map((f) => record(f, join(remoteDir, f.path))),
    };
  }

  async download(remoteDir: string, files: FileRecord[], localDir: string): Promise<void> {
    for (const file of files) {
      const local = path.join(localDir, ...file.path.split("/"));
      await this.transport.get(join(remoteDir, file.path), local);
      const sha256 = await sha256File(local);
      if (sha256 !== file.sha256) throw new ExecError(`${local}: sha256 ${sha256} differs from ${file.sha256} on ${this.transport.label} (changed while downloading?)`);
    }
  }
}

function transportKey(config: SshExecutorConfig): string {
  return `${config.user}@${config.host}:${config.port} ${config.host_key}`;
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() ?? "";
}

/** What a pool may open. The CLI allows everything; the App narrows it, since its configs come from data repos. */
export interface ExecutorPolicy {
  /** When set, the local backend (stages on this very host) is refused; this says what to configure instead. */
  localRefused?: string;
  /** Files never used as SSH keys (the App's own private key), compared by real path and by inode. */
  refusedKeyFiles?: readonly string[];
  /**
   * When set, only the SSH keys the operator offers: variables named SSH_KEY_VARIABLE_PREFIX*, and files in `dir`
   * (none when null). Without it, a data repo's config could use any key of the App's host, against any host.
   */
  offeredKeys?: { dir: string | null };
}

/** The names of the variables an App's operator offers SSH keys (and their passphrases) in. */
export const SSH_KEY_VARIABLE_PREFIX = "RELABEL_SSH_";

/**
 * Throws an ExecError when the policy forbids an executor; checked before anything runs on this host, before a
 * transport is shared or opened, and before any key is read.
 */
export async function checkPolicy(name: string, config: ExecutorConfig, policy: ExecutorPolicy): Promise<void> {
  if (config.backend === "local") {
    if (policy.localRefused !== undefined) throw new ExecError(`executor "${name}" (backend local) would run stages on this host, which is not allowed: ${policy.localRefused}`);
    return;
  }
  if (config.private_key_file !== undefined) {
    const file = keyFilePath(config.private_key_file);
    for (const refused of policy.refusedKeyFiles ?? []) {
      if (await sameFile(file, refused)) {
        throw new ExecError(`executors.${name}.private_key_file: ${config.private_key_file} is the GitHub App's own private key; expected the SSH key for ${config.user}@${config.host}`);
      }
    }
  }
  if (policy.offeredKeys) await checkOfferedKey(name, config, policy.offeredKeys.dir);
}

/**
 * Opens executors by name and shares one transport per host between them: one SSH connection for all executors
 * that reach the same user@host:port.
 */
export class ExecutorPool {
  private readonly executors = new Map<string, Promise<Executor>>();
  private readonly transports = new Map<string, Promise<Transport>>();

  constructor(private readonly policy: ExecutorPolicy = {}) {}

  get(name: string, config: ExecutorConfig): Promise<Executor> {
    let executor = this.executors.get(name);
    if (!executor) {
      executor = this.open(name, config);
      this.executors.set(name, executor);
      executor.catch(() => this.executors.delete(name));
    }
    return executor;
  }

  /** The transport an SSH executor config uses, if one was opened (for connection statistics). */
  async transportFor(config: ExecutorConfig): Promise<Transport | undefined> {
    return config.backend === "local" ? undefined : this.transports.get(transportKey(config));
  }

  private async open(name: string, config: ExecutorConfig): Promise<Executor> {
    await checkPolicy(name, config, this.policy);
    if (config.backend === "local") return new StageExecutor(name, config, new LocalTransport(), shellScripts(false));
    const key = transportKey(config);
    let transport = this.transports.get(key);
    if (!transport) {
      transport = loadPrivateKey(config).then((privateKey) => new SshTransport(sshOptions(config, privateKey)));
      this.transports.set(key, transport);
      transport.catch(() => this.transports.delete(key));
    }
    const scripts = config.backend === "ssh+slurm" ? slurmScripts : shellScripts(true);
    return new StageExecutor(name, config, await transport, scripts);
  }

  async close(): Promise<void> {
    const transports = await Promise.allSettled(this.transports.values());
    this.transports.clear();
    this.executors.clear();
    await Promise.all(transports.map((t) => (t.status === "fulfilled" ? t.value.close() : undefined)));
  }
}

async function checkOfferedKey(name: string, config: SshExecutorConfig, dir: string | null): Promise<void> {
  for (const field of ["private_key_env", "private_key_passphrase_env"] as const) {
    const variable = config[field];
    if (variable !== undefined && !variable.startsWith(SSH_KEY_VARIABLE_PREFIX)) {
      throw new ExecError(`executors.${name}.${field}: ${variable} is not offered to data repositories; this App reads SSH keys and passphrases only from variables named ${SSH_KEY_VARIABLE_PREFIX}*`);
    }
  }
  if (config.private_key_file === undefined) return;
  if (dir === null) {
    throw new ExecError(`executors.${name}.private_key_file: this App offers no key files (its operator set no RELABEL_SSH_KEY_DIR); name a ${SSH_KEY_VARIABLE_PREFIX}* variable in private_key_env instead`);
  }
  const [file, folder] = await Promise.all([realpath(keyFilePath(config.private_key_file)).catch(() => null), realpath(dir).catch(() => path.resolve(dir))]);
  if (file === null || path.relative(folder, file).startsWith("..") || path.isAbsolute(path.relative(folder, file))) {
    throw new ExecError(`executors.${name}.private_key_file: ${config.private_key_file} is not a file in the App's key folder (RELABEL_SSH_KEY_DIR)`);
  }
}

/** The same file by real path, or by device and inode (a hard link); a file that cannot be looked at is not. */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([realpath(a).catch(() => path.resolve(a)), realpath(b).catch(() => path.resolve(b))]);
  if (ra === rb) return true;
  const [sa, sb] = await Promise.all([stat(a).catch(() => null), stat(b).catch(() => null)]);
  return sa !== null && sb !== null && sa.dev === sb.dev && sa.ino === sb.ino;
}
