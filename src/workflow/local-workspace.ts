/**
 * A local workspace: the App's round workflow without GitHub, kept across commands (`relabel round`, and the
 * folder `relabel demo` leaves). `DIR/workspace.json` names the data repository (the ledger); `DIR/state` holds the
 * ledger's clone, rendered stages, job files and runs; `DIR/forge` the issues, pull requests, comments and check
 * runs (forge.json, and Markdown for people). One command works in a workspace at a time (`DIR/.lock`).
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { simpleGit } from "simple-git";
import { z } from "zod";
import { UsageError } from "../core/errors.js";
import { readJsonFile } from "../io/json-file.js";
import { takePidLock } from "../io/pid-lock.js";
import { isRemoteUrl, Ledger } from "../ledger/ledger.js";
import { eventKeys, EVENTS_PATH } from "../ledger/records.js";
import { SOFTWARE } from "../version.js";
import { startInstance } from "./instance.js";
import { LocalForge } from "./local-forge.js";
import { RoundWorkflow, type Actor, type RecordedOutcome } from "./round.js";

export const WORKSPACE_FILE = "workspace.json";
/** The bare repository `relabel round init` makes when no data repository is named. */
export const WORKSPACE_REPO = "data-repo.git";
const LOCK_FILE = ".lock";

const recordSchema = z.object({
  /** The data repository: a path relative to the workspace, an absolute path, or a URL git can fetch and push. */
  remote: z.string().min(1),
  /** Shown as the repository's name in threads. */
  repo: z.string().min(1),
});
export type WorkspaceRecord = z.infer<typeof recordSchema>;

/**
 * Writes DIR/workspace.json (unless `o.write` is false: the caller writes it with writeWorkspaceRecord when the rest
 * is in place); an absent `remote` makes an empty bare repository DIR/data-repo.git (default branch main).
 */
export async function createWorkspace(dir: string, remote?: string, o: { write?: boolean } = {}): Promise<WorkspaceRecord> {
  await mkdir(dir, { recursive: true });
  let record: WorkspaceRecord;
  if (remote === undefined) {
    const bare = path.join(dir, WORKSPACE_REPO);
    await mkdir(bare, { recursive: true });
    await simpleGit({ baseDir: bare }).init(true, ["--initial-branch=main", "--quiet"]);
    record = { remote: WORKSPACE_REPO, repo: "local/data-repo" };
  } else {
    if (/^[^/:]+@[^/:]+:/.test(remote)) throw new UsageError(`--repo ${remote}: write an SSH remote as ssh://user@host/path, not in scp form`);
    const name = path.basename(remote.replace(/\/+$/, "")).replace(/\.git$/, "") || "data-repo";
    record = { remote: isRemoteUrl(remote) ? remote : path.resolve(remote), repo: `local/${name}` };
  }
  if (o.write !== false) await writeWorkspaceRecord(dir, record);
  return record;
}

export async function writeWorkspaceRecord(dir: string, record: WorkspaceRecord): Promise<void> {
  await writeFile(path.join(dir, WORKSPACE_FILE), `${JSON.stringify(record, null, 2)}\n`);
}

export async function readWorkspaceRecord(dir: string): Promise<WorkspaceRecord> {
  const record = await readJsonFile(path.join(dir, WORKSPACE_FILE), recordSchema, 'a relabel workspace record ({"remote": "...", "repo": "..."})');
  if (record === null) throw new UsageError(`${dir} is not a relabel workspace (no ${WORKSPACE_FILE}): 'relabel round init -w ${dir}' makes one`);
  return record;
}

export interface Workspace {
  dir: string;
  record: WorkspaceRecord;
  /** The data repository's path or URL, resolved. */
  remote: string;
  ledger: Ledger;
  forge: LocalForge;
  workflow: RoundWorkflow;
  stateDir: string;
  /** The person at the keyboard, as the workflow's events name them. */
  me: Actor;
  /** What the workflow logged as warnings and errors during this command. */
  messages: string[];
  /** The outcomes the workflow recorded during this command, in order. */
  outcomes: RecordedOutcome[];
  /** Frees the workspace for the next command. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** How comments show a committed file (default: its path and commit). */
  link?: (file: string, sha: string) => string;
  /** Submit the train stage when a results PR is merged (the App's behaviour; default true). */
  autoSubmit?: boolean;
  /** Author of the ledger's commits (default: RELABEL_GIT_NAME/RELABEL_GIT_EMAIL, else git's own identity). */
  author?: { name: string; email: string };
  /** The workspace's record, when DIR/workspace.json is not written yet (init writes it last). */
  record?: WorkspaceRecord;
}

/**
 * Opens the workspace for one command. Stages may run on this host (the local backend), as with `relabel submit`:
 * the workflow runs what the data repository's config says, on this machine, for the person who runs it.
 */
export async function openWorkspace(dir: string, o: OpenOptions = {}): Promise<Workspace> {
  const record = o.record ?? (await readWorkspaceRecord(dir));
  const release = await holdWorkspace(dir);
  try {
    const stateDir = path.join(dir, "state");
    const remote = isRemoteUrl(record.remote) ? record.remote : path.resolve(dir, record.remote);
    const ledger = await Ledger.open({ remote, workdir: path.join(stateDir, "ledger"), author: o.author ?? (await gitAuthor()) });
    let workflow: RoundWorkflow | undefined;
    const me: Actor = { login: userInfo().username || "you", isBot: false };
    const numbersInUse = async () => Math.max(0, ...(await workflow!.manifests()).flatMap((m) => [m.issue, m.prs.selection ?? 0, m.prs.results ?? 0]), ...(await claimedNumbers(ledger)));
    const claimNumber = async (number: number) => (await ledger.appendEventOnce({ actor: me.login, delivery: null, event: THREAD_EVENT, command: null, outcome: `thread #${number} opened in a relabel round workspace`, comment: threadKey(number) })) !== null;
    const forge = await LocalForge.load({ dir: path.join(dir, "forge"), ledger, repo: record.repo, link: o.link ?? ((file, sha) => `${file} at ${sha.slice(0, 12)}`), numbersInUse, claimNumber });
    const messages: string[] = [];
    const outcomes: RecordedOutcome[] = [];
    workflow = new RoundWorkflow({
      forge,
      ledger,
      stateDir,
      software: SOFTWARE,
      log: { info: () => undefined, warn: (m) => messages.push(m), error: (m) => messages.push(m) },
      autoSubmit: o.autoSubmit ?? true,
      instance: await startInstance(stateDir),
      allowLocalExecutor: true,
      onRecord: (o) => outcomes.push(o),
    });
    return { dir, record, remote, ledger, forge, workflow, stateDir, me, messages, outcomes, close: release };
  } catch (err) {
    await release();
    throw err;
  }
}

/**
 * Thread numbers are claimed in the data repository's event log (a dedupe key per number, which appendEventOnce
 * grants to one writer only): workspaces on one repository never give two threads the same number.
 */
const THREAD_EVENT = "local-thread";
const threadKey = (number: number) => `local-thread:${number}`;

/** The thread numbers workspaces have claimed in the event log, as last fetched. */
async function claimedNumbers(ledger: Ledger): Promise<number[]> {
  const log = await ledger.read(EVENTS_PATH);
  if (log === null) return [];
  return [...eventKeys(log.toString("utf8"))].flatMap((key) => {
    const claimed = /^local-thread:(\d+)$/.exec(key);
    return claimed === null ? [] : [Number(claimed[1])];
  });
}

/** One command per workspace: a second one is refused at once rather than queued behind a poll that may wait for hours. */
const holdWorkspace = (dir: string) =>
  takePidLock(path.join(dir, LOCK_FILE), 0, (holder) => new UsageError(`${dir} is in use by another relabel command (pid ${holder ?? "?"}); run this one when it has ended`));

/** The ledger's commits are authored by the person: RELABEL_GIT_NAME/RELABEL_GIT_EMAIL, else git's own identity. */
async function gitAuthor(): Promise<{ name: string; email: string }> {
  const gitConfig = (key: string) =>
    promisify(execFile)("git", ["config", "--get", key]).then(
      (r) => r.stdout.trim(),
      () => "",
    );
  const name = process.env.RELABEL_GIT_NAME || (await gitConfig("user.name")) || userInfo().username || "relabel";
  const email = process.env.RELABEL_GIT_EMAIL || (await gitConfig("user.email")) || `${name.replace(/[^A-Za-z0-9._-]/g, "_")}@localhost`;
  return { name, email };
}
