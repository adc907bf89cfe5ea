/**
 * The git ledger: the data repo (GitHub, or a local bare repo for the demo and tests) as the record of every
 * round. One bare clone per remote under the caller's workdir; no working tree is ever checked out.
 *
 * Every write is a compare-and-swap on a branch: fetch, build the commit on the branch tip, push without force.
 * A push that loses a race (another process pushed first) is retried after a fetch, with the change re-applied
 * on the new tip (a rebase that re-reads what it depends on: the next round number, the lock file, the event
 * log), a bounded number of times with jittered backoff. Writes from one process are also serialised per clone.
 *
 * Git LFS (lfs.ts): exports write an LFS file's content; commits store a file that .gitattributes routes to LFS
 * in the remote's LFS store and commit its pointer.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, chmod, copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { LedgerError, scrubSecrets } from "./errors.js";
import { fastImportStream } from "./fast-import.js";
import { checkFileSizes, checkRepoPath, prepareFiles, type LedgerFile, type PathGuard, type PreparedFile } from "./files.js";
import { credentialsRefused, GitFailure, GitRunner, oneLine, type RemoteAuth } from "./git.js";
import { LfsObjects, lfsPointerFor, parseLfsPointer, type LfsFile } from "./lfs.js";
import { KeyedMutex } from "./mutex.js";
import {
  dedupeKeys,
  eventKeys,
  EVENTS_PATH,
  formatEvent,
  formatLock,
  highestRound,
  lockPath,
  parseLock,
  roundDirName,
  type LedgerEvent,
  type RoundLock,
} from "./records.js";

export type { LedgerFile, PathGuard } from "./files.js";
export type { LedgerEvent, RoundLock } from "./records.js";

export interface LedgerOptions {
  /** The data repo: a local path, a file:// URL, or an https URL without credentials (use `auth`). */
  remote: string;
  /** Directory for the bare clone (`<workdir>/<name>-<hash>.git`, reused by later opens). */
  workdir: string;
  /** Author and committer of the ledger's commits; set as user.name/user.email in the clone. */
  author: { name: string; email: string };
  /** Git LFS objects cached in the clone and not used for this many days are removed at open (default 30). */
  lfsCacheDays?: number;
  /**
   * Returns a token (e.g. a GitHub installation token) for https remotes; called before each fetch/push, and once
   * more with the token the remote refused, if it refused one (see RemoteAuth).
   */
  auth?: RemoteAuth;
  /** Default branch when the remote does not name one (an empty repository). */
  defaultBranch?: string;
  /** Push attempts before giving up on a race (default 10). */
  maxAttempts?: number;
  /** Clock for commit, event and lock times (tests). */
  now?: () => Date;
}

export interface CommitOptions {
  /** Branch to write (default: the default branch); created from `base` when missing. */
  branch?: string;
  /** Branch name or sha a missing `branch` starts from (default: the default branch). */
  base?: string;
  message: string;
  files: readonly LedgerFile[];
  /** Refuses paths of frozen steps; checked before any git work. */
  guard?: PathGuard;
  /**
   * Hears the sha of each commit about to be pushed (again after a lost race), before the push: a caller killed
   * during the push can tell its own commit on the remote from anyone else's afterwards.
   */
  beforePush?: (sha: string) => Promise<void>;
}

export interface LedgerEntry {
  /** Full repository path. */
  path: string;
  /** Last path segment. */
  name: string;
  type: "file" | "dir" | "link" | "submodule";
}

export type LockResult =
  | { ok: true; commit: string; /** The lock written, for releasing exactly it (releaseLock's `only`). */ lock: RoundLock }
  | ({ ok: false } & RoundLock);

/** What one attempt of a write decides, given the branch tip it starts from. */
type Attempt<R> =
  | { kind: "files"; files: PreparedFile[]; message: string; skipIfUnchanged?: boolean }
  | { kind: "sha"; sha: string }
  | { kind: "stop"; value: R };

type Outcome<R> = { kind: "pushed"; sha: string } | { kind: "stopped"; value: R };

/** Serialises writes per clone directory within this process. */
const clones = new KeyedMutex();

const REMOTE_PREFIX = "refs/remotes/origin/";

/**
 * Messages of a push that lost a race: `[rejected]` (fetch first, non-fast-forward: our tip was stale) or a
 * concurrent ref update on the remote. `[remote rejected] (pre-receive hook declined)`, e.g. a protected
 * branch, is not a race and is not retried.
 */
const PUSH_RACE = /\[rejected\]|cannot lock ref|failed to update ref|incorrect old value/;

/** A remote written as a URL (https://, file://, ssh://); anything else is a path. */
export const isRemoteUrl = (remote: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(remote);

export class Ledger {
  private retries = 0;

  private constructor(
    private readonly git: GitRunner,
    /** The bare clone. */
    readonly dir: string,
    private readonly lfs: LfsObjects,
    private branchName: string,
    private readonly author: { name: string; email: string },
    private readonly maxAttempts: number,
    private readonly now: () => Date,
  ) {}

  static async open(options: LedgerOptions): Promise<Ledger> {
    const { author } = options;
    for (const value of [author.name, author.email]) {
      if (value === "" || /[<>\n\r\0]/.test(value)) {
        throw new LedgerError("git", `invalid author ${JSON.stringify(value)}: must be non-empty, without <, > or newlines`);
      }
    }
    const isUrl = isRemoteUrl(options.remote);
    if (isUrl && /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(options.remote)) {
      // A token in the URL would be written to the clone's config; tokens also expire, auth() is asked each time.
      throw new LedgerError("git", `remote ${scrubSecrets(options.remote)} has credentials in its URL: pass the token through the auth option instead`);
    }
    const remote = isUrl ? options.remote : path.resolve(options.remote);
    const workdir = path.resolve(options.workdir);
    const slug = (path.basename(remote.replace(/\/+$/, "")).replace(/\.git$/, "").replace(/[^A-Za-z0-9._-]/g, "_") || "repo").slice(0, 40);
    const hash = createHash("sha256").update(remote).digest("hex").slice(0, 12);
    const dir = path.join(workdir, `${slug}-${hash}.git`);
    const git = new GitRunner(dir, remote, options.auth);

    await clones.run(dir, async () => {
      if (!existsSync(path.join(dir, "HEAD"))) {
        await mkdir(dir, { recursive: true });
        await git.run(["init", "--bare"]);
        // One file append instead of four silent `git config` processes.
        await appendFile(
          path.join(dir, "config"),
          `[remote "origin"]\n\turl = ${configValue(remote)}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n` +
            `[user]\n\tname = ${configValue(author.name)}\n\temail = ${configValue(author.email)}\n`,
        );
      } else {
        const current = await git.run(["config", "--local", "--get-regexp", "^user\\.(name|email)$"]).catch(() => "");
        if (current !== `user.name ${author.name}\nuser.email ${author.email}\n`) {
          await git.run(["config", "user.name", author.name]);
          await git.run(["config", "user.email", author.email]);
        }
      }
    });
    const lfs = new LfsObjects(dir, remote, git);
    await lfs.prune(options.lfsCacheDays ?? 30);
    const ledger = new Ledger(git, dir, lfs, options.defaultBranch ?? "main", author, options.maxAttempts ?? 10, options.now ?? (() => new Date()));
    const symref = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(await ledger.network(["ls-remote", "--symref", "origin", "HEAD"]));
    if (symref) ledger.branchName = symref[1];
    await ledger.sync();
    return ledger;
  }

  /** Pushes that lost a race and were retried since open (for logs and measurements). */
  get pushRetries(): number {
    return this.retries;
  }

  /** The remote's default branch (from its HEAD), where events, locks and round numbers are committed. */
  get defaultBranch(): string {
    return this.branchName;
  }

  /** Fetches every branch; returns the default branch's tip (null for an empty remote). */
  async sync(): Promise<string | null> {
    return clones.run(this.dir, async () => (await this.fetchTips()).get(this.defaultBranch) ?? null);
  }

  /** The tip of `branch` (default: the default branch) as of the last sync or write; null when absent. */
  async head(branch: string = this.defaultBranch): Promise<string | null> {
    checkBranchName(branch);
    return (await this.tips()).get(branch) ?? null;
  }

  /**
   * A file's content at `ref` (branch name, sha or full ref; default: the default branch); null when absent. A file
   * kept in Git LFS gives its content, as exportTree does.
   */
  async read(file: string, ref?: string): Promise<Buffer | null> {
    checkRepoPath(file);
    const [result] = await this.git.catBatch([`${this.resolveRef(ref)}:${file}`]);
    if (result.type !== "blob") return null;
    const pointer = parseLfsPointer(result.content!);
    if (pointer === null) return result.content;
    const objects = await this.lfs.fetch([{ path: file, pointer }]);
    return readFile(objects.get(pointer.oid)!);
  }

  /** Entries directly under `dir` ("" = the root) at `ref`; with `recursive`, every file below it. */
  async list(dir: string, ref?: string, options: { recursive?: boolean } = {}): Promise<LedgerEntry[]> {
    const prefix = dir.replace(/\/+$/, "");
    if (prefix !== "") checkRepoPath(prefix);
    const args = ["ls-tree", "-z", ...(options.recursive ? ["-r"] : []), this.resolveRef(ref), ...(prefix === "" ? [] : ["--", `${prefix}/`])];
    const out = await this.git.run(args).catch((err) => this.rethrow(err, `cannot list ${dir || "/"} at ${ref ?? this.defaultBranch}`));
    return parseLsTree(out).map((e) => ({ path: e.path, name: path.posix.basename(e.path), type: entryType(e.mode) }));
  }

  /**
   * Writes `files` on `branch` in one commit and pushes it; returns the commit sha (the unchanged tip when the
   * files already hold this content). Retries lost push races; fails with "conflict" when another writer changed
   * one of these files meanwhile.
   */
  async commit(options: CommitOptions): Promise<string> {
    const branch = options.branch ?? this.defaultBranch;
    checkBranchName(branch);
    const prepared = prepareFiles(options.files, options.guard);
    const lfs = new LfsRouting(prepared);
    // Uploads can take minutes, so they run before the clone's lock, for the routing at the branch's last known tip.
    // Each attempt reads the routing at its own tip again; only a file it newly routes is uploaded under the lock.
    const near = (await this.head(branch)) ?? (options.base !== undefined ? this.resolveRef(options.base) : await this.head());
    const nearRouted = near === null ? null : await clones.run(this.dir, () => this.lfsRoutedAmong(near, lfs.candidates));
    if (nearRouted !== null) await this.lfs.upload(lfs.toUpload(nearRouted));
    let firstTip: string | null | undefined;
    const outcome = await this.transact<never>(branch, options.base, async (tip) => {
      const routed = tip === null ? new Set<string>() : tip === near && nearRouted !== null ? nearRouted : await this.lfsRoutedAmong(tip, lfs.candidates);
      await this.lfs.upload(lfs.toUpload(routed));
      const files = lfs.committed(routed);
      if (firstTip === undefined) firstTip = tip;
      else if (firstTip !== null && tip !== null && tip !== firstTip) await this.checkUntouched(branch, files, firstTip, tip);
      return { kind: "files", files, message: options.message, skipIfUnchanged: true };
    }, options.beforePush);
    return pushedSha(outcome);
  }

  /**
   * Deletes `branch` on the remote only while its tip is still `sha` (a lease); false when it has moved since or is
   * gone. The default branch is never deleted.
   */
  async deleteBranch(branch: string, sha: string): Promise<boolean> {
    checkBranchName(branch);
    if (branch === this.defaultBranch) throw new LedgerError("invalid-path", `${branch} is the default branch; it is never deleted`);
    return clones.run(this.dir, async () => {
      try {
        await this.network(["push", "--porcelain", `--force-with-lease=refs/heads/${branch}:${sha}`, "origin", `:refs/heads/${branch}`]);
      } catch (err) {
        if (!(err instanceof LedgerError && (PUSH_RACE.test(err.message) || /remote ref does not exist/.test(err.message)))) throw err;
        return false;
      } finally {
        await this.fetchTips();
      }
      return true;
    });
  }

  /** Appends one line to ledger/events.jsonl on the default branch; returns the commit sha. */
  async appendEvent(event: LedgerEvent): Promise<string> {
    return pushedSha(await this.transact<never>(this.defaultBranch, undefined, (tip) => this.eventAttempt(tip, event)));
  }

  /**
   * Appends `event` unless its delivery id or comment key is already in the log, atomically across processes:
   * of several deliveries of the same webhook, exactly one gets a sha; the others get null.
   */
  async appendEventOnce(event: LedgerEvent): Promise<string | null> {
    const keys = dedupeKeys(event);
    if (keys.length === 0) throw new LedgerError("invalid-record", "appendEventOnce needs a delivery id or a comment key");
    const outcome = await this.transact<null>(this.defaultBranch, undefined, async (tip) => {
      const recorded = eventKeys((await this.readAt(tip, EVENTS_PATH))?.toString("utf8") ?? "");
      if (keys.some((k) => recorded.has(k))) return { kind: "stop", value: null };
      return this.eventAttempt(tip, event);
    });
    return outcome.kind === "pushed" ? outcome.sha : outcome.value;
  }

  /** Whether a delivery id or comment key is in ledger/events.jsonl (as of the last sync or write). */
  async seen(key: string): Promise<boolean> {
    const text = (await this.read(EVENTS_PATH))?.toString("utf8") ?? "";
    return eventKeys(text).has(key);
  }

  /**
   * Takes the lock of `round` (commits ledger/locks/NNNN.json); exactly one of concurrent callers wins. `instance`
   * names the process taking it, when it can tell.
   */
  async acquireLock(round: number, holder: string, reason: string, delivery: string | null, instance?: string): Promise<LockResult> {
    const file = lockPath(round);
    let lock: RoundLock | undefined;
    const outcome = await this.transact<LockResult>(this.defaultBranch, undefined, async (tip) => {
      const existing = await this.readAt(tip, file);
      if (existing !== null) return { kind: "stop", value: { ok: false, ...parseLock(existing.toString("utf8"), file) } };
      lock = { holder, reason, since: this.now().toISOString(), delivery, ...(instance === undefined ? {} : { instance }) };
      return { kind: "files", files: [{ path: file, content: Buffer.from(formatLock(lock)), executable: false }], message: `Lock round ${round}: ${holder}, ${reason}` };
    });
    return outcome.kind === "pushed" ? { ok: true, commit: outcome.sha, lock: lock! } : outcome.value;
  }

  /** The current lock of `round` on the default branch, or null. */
  async readLock(round: number): Promise<RoundLock | null> {
    const file = lockPath(round);
    const content = await this.read(file);
    return content === null ? null : parseLock(content.toString("utf8"), file);
  }

  /**
   * Removes the lock of `round`; returns the commit sha, or null when the round was not locked (or, with
   * `only`, when its lock is another than that one: taken again since it was read).
   */
  async releaseLock(round: number, only?: RoundLock): Promise<string | null> {
    const file = lockPath(round);
    const outcome = await this.transact<null>(this.defaultBranch, undefined, async (tip) => {
      const existing = await this.readAt(tip, file);
      if (existing === null) return { kind: "stop", value: null };
      if (only && formatLock(parseLock(existing.toString("utf8"), file)) !== formatLock(only)) return { kind: "stop", value: null };
      return { kind: "files", files: [{ path: file, content: null, executable: false }], message: `Unlock round ${round}` };
    });
    return outcome.kind === "pushed" ? outcome.sha : outcome.value;
  }

  /**
   * Allocates the next round number by committing `rounds/NNNN/round.json` (content from `manifest`, default
   * `{"round": N}`) on the default branch; a process that loses the push race retries with the next number.
   */
  async nextRoundNumber(manifest?: (round: number) => string | Buffer): Promise<{ round: number; commit: string }> {
    let round = 0;
    const outcome = await this.transact<never>(this.defaultBranch, undefined, async (tip) => {
      const names = tip === null ? [] : (await this.list("rounds", tip)).map((e) => e.name);
      round = highestRound(names) + 1;
      const content = manifest ? manifest(round) : `${JSON.stringify({ round })}\n`;
      const [file] = prepareFiles([{ path: `rounds/${roundDirName(round)}/round.json`, content }]);
      return { kind: "files", files: [file], message: `Round ${round}: allocate` };
    });
    return { round, commit: pushedSha(outcome) };
  }

  /**
   * Merges `branch` into the default branch with a merge commit (the local flow's "merge the PR"); returns its
   * sha, or the default branch's tip when `branch` is already merged. Refuses conflicts and guarded paths.
   */
  async mergeBranch(branch: string, message: string, options: { guard?: PathGuard } = {}): Promise<string> {
    checkBranchName(branch);
    const outcome = await this.transact<string>(this.defaultBranch, undefined, async (tip, tips) => {
      const branchTip = tips.get(branch);
      if (branchTip === undefined) throw new LedgerError("not-found", `cannot merge ${branch}: no such branch on the remote`);
      if (tip === null) throw new LedgerError("not-found", `cannot merge ${branch}: ${this.defaultBranch} does not exist`);
      const mergeBase = await this.git.run(["merge-base", tip, branchTip]).catch((err) => this.rethrow(err, `cannot merge ${branch}: no history in common with ${this.defaultBranch}`));
      if (mergeBase.trim() === branchTip) return { kind: "stop", value: tip };
      const tree = await this.mergeTree(branch, tip, branchTip);
      if (options.guard) {
        const changed = splitZ(await this.git.run(["diff-tree", "-r", "--name-only", "-z", tip, tree]));
        prepareFiles(changed.map((p) => ({ path: p, content: null })), options.guard);
      }
      const identity = ["-c", `user.name=${this.author.name}`, "-c", `user.email=${this.author.email}`];
      const sha = (await this.git.run([...identity, "commit-tree", tree, "-p", tip, "-p", branchTip, "-m", message])).trim();
      return { kind: "sha", sha };
    });
    return outcome.kind === "pushed" ? outcome.sha : outcome.value;
  }

  /**
   * Writes the files under `paths` (files or directories; none = the whole tree) at `ref` into `dir`, keeping
   * their repository paths and executable bits; returns the repository paths written. A file kept in Git LFS is
   * written with its content, fetched from the remote's LFS store (and cached in the clone). Symlinks and
   * submodules are refused: the engine reads only regular files from the ledger.
   */
  async exportTree(ref: string, dir: string, paths: readonly string[]): Promise<string[]> {
    const specs = paths.map((p) => p.replace(/\/+$/, ""));
    specs.forEach(checkRepoPath);
    const out = await this.git
      .run(["ls-tree", "-r", "-z", this.resolveRef(ref), ...(specs.length ? ["--", ...specs] : [])])
      .catch((err) => this.rethrow(err, `cannot export from ${ref}`));
    const entries = parseLsTree(out);
    for (const e of entries) {
      checkRepoPath(e.path);
      const type = entryType(e.mode);
      if (type !== "file") throw new LedgerError("invalid-path", `${e.path} at ${ref} is a ${type === "link" ? "symbolic link" : "submodule"}; only regular files can be exported`, [e.path]);
    }
    const blobs = await this.git.catBatch(entries.map((e) => e.oid));
    const inLfs: LfsFile[] = [];
    entries.forEach((e, i) => {
      const pointer = parseLfsPointer(blobs[i].content!);
      if (pointer !== null) inLfs.push({ path: e.path, pointer });
    });
    // No clone lock: a download can take minutes, and each object lands by an atomic rename.
    const objects = await this.lfs.fetch(inLfs);
    const pointers = new Map(inLfs.map((f) => [f.path, f.pointer.oid]));
    const root = path.resolve(dir);
    const made = new Set<string>();
    for (let i = 0; i < entries.length; i++) {
      const target = path.join(root, entries[i].path);
      const parent = path.dirname(target);
      if (!made.has(parent)) {
        await mkdir(parent, { recursive: true });
        made.add(parent);
      }
      const executable = entries[i].mode === "100755";
      const oid = pointers.get(entries[i].path);
      if (oid === undefined) await writeFile(target, blobs[i].content!, { mode: executable ? 0o755 : 0o644 });
      else await copyFile(objects.get(oid)!, target);
      if (executable) await chmod(target, 0o755);
    }
    return entries.map((e) => e.path);
  }

  /** Which of `paths` the .gitattributes files at `ref` (default: the default branch) route to Git LFS. */
  async routesToLfs(paths: readonly string[], ref?: string): Promise<Set<string>> {
    paths.forEach(checkRepoPath);
    const tip = ref === undefined ? await this.head() : ref;
    if (tip === null) return new Set();
    return clones.run(this.dir, () => this.lfsRouted(this.resolveRef(tip), paths));
  }

  /** Deletes the clone (the remote is untouched). */
  async dispose(): Promise<void> {
    await clones.run(this.dir, () => rm(this.dir, { recursive: true, force: true }));
  }

  /** The fetch + build + push loop shared by every write. */
  private async transact<R>(
    branch: string,
    base: string | undefined,
    attempt: (tip: string | null, tips: Map<string, string>) => Promise<Attempt<R>>,
    beforePush?: (sha: string) => Promise<void>,
  ): Promise<Outcome<R>> {
    return clones.run(this.dir, async () => {
      for (let n = 1; ; n++) {
        const tips = await this.fetchTips();
        const existing = tips.get(branch) ?? null;
        const tip = existing ?? (await this.startPoint(branch, base, tips));
        const next = await attempt(tip, tips);
        if (next.kind === "stop") return { kind: "stopped", value: next.value };
        let sha: string;
        if (next.kind === "sha") sha = next.sha;
        else {
          checkFileSizes(next.files);
          sha = await this.importCommit(tip, next.files, next.message);
          if (next.skipIfUnchanged && tip !== null && (await this.sameTree(sha, tip))) {
            if (existing !== null) return { kind: "pushed", sha: tip };
            sha = tip; // a new branch with nothing to add: create it at its start point
          }
        }
        await beforePush?.(sha);
        try {
          await this.network(["push", "--porcelain", "origin", `${sha}:refs/heads/${branch}`]);
          return { kind: "pushed", sha };
        } catch (err) {
          const lostRace = err instanceof LedgerError && PUSH_RACE.test(err.message);
          if (!lostRace) throw err;
          if (n >= this.maxAttempts) {
            throw new LedgerError("push-rejected", `push to ${branch} was rejected on all ${n} attempts (other writers kept moving it); giving up: ${err.message}`);
          }
          this.retries++;
          await sleep(Math.random() * Math.min(1000, 20 * 2 ** n));
        }
      }
    });
  }

  /** Which of `files` the .gitattributes files at `tip` route to Git LFS (none to ask about: no git work). */
  private async lfsRoutedAmong(tip: string, files: readonly PreparedFile[]): Promise<Set<string>> {
    return files.length === 0 ? new Set() : this.lfsRouted(tip, files.map((f) => f.path));
  }

  /** Which of `paths` the .gitattributes files at `tip` give `filter=lfs`, as git itself reads them. */
  private async lfsRouted(tip: string, paths: readonly string[]): Promise<Set<string>> {
    const listing = await this.git.run(["ls-tree", "-r", "--name-only", "-z", tip]);
    if (!listing.split("\0").some((p) => p === ".gitattributes" || p.endsWith("/.gitattributes"))) return new Set();
    // check-attr reads a bare repository's attributes from an index: one made from the tip for this question (no
    // other ledger operation uses an index, and the clone's lock is held), removed after.
    await this.git.run(["read-tree", tip]);
    try {
      const out = await this.git.run(["check-attr", "--cached", "-z", "--stdin", "filter"], paths.map((p) => `${p}\0`).join(""));
      const fields = out.split("\0");
      const routed = new Set<string>();
      for (let i = 0; i + 2 < fields.length; i += 3) if (fields[i + 2] === "lfs") routed.add(fields[i]);
      return routed;
    } finally {
      await rm(path.join(this.dir, "index"), { force: true });
    }
  }

  /** Where a missing branch starts: `base`, else the default branch (null: a root commit). */
  private async startPoint(branch: string, base: string | undefined, tips: Map<string, string>): Promise<string | null> {
    if (base === undefined) return branch === this.defaultBranch ? null : (tips.get(this.defaultBranch) ?? null);
    const known = tips.get(base);
    if (known !== undefined) return known;
    const out = await this.git
      .run(["rev-parse", "--verify", "--end-of-options", `${this.resolveRef(base)}^{commit}`])
      .catch((err) => this.rethrow(err, `cannot start ${branch} from ${base}: no such branch or commit`, "not-found"));
    return out.trim();
  }

  private async importCommit(parent: string | null, files: readonly PreparedFile[], message: string): Promise<string> {
    const stream = Buffer.concat(fastImportStream({ parent, files, message, author: this.author, when: this.now() }));
    const out = await this.git.run(["fast-import", "--quiet", "--force", "--done"], stream).catch((err) => this.rethrow(err, "cannot write the commit"));
    return out.trim();
  }

  private async sameTree(a: string, b: string): Promise<boolean> {
    const [ta, tb] = (await this.git.run(["rev-parse", `${a}^{tree}`, `${b}^{tree}`])).trim().split("\n");
    return ta === tb;
  }

  /** Rebase check: none of `files` may have changed between `from` and `to` unless `to` already holds our content. */
  private async checkUntouched(branch: string, files: readonly PreparedFile[], from: string, to: string): Promise<void> {
    const results = await this.git.catBatch(files.flatMap((f) => [`${from}:${f.path}`, `${to}:${f.path}`]));
    const changed = files.filter((f, i) => {
      const before = results[2 * i];
      const after = results[2 * i + 1];
      if (before.oid === after.oid) return false;
      const ours = f.content;
      return !(ours === null ? after.type === null : after.type === "blob" && after.content!.equals(ours));
    });
    if (changed.length > 0) {
      const names = changed.map((f) => f.path);
      throw new LedgerError("conflict", `${names.join(", ")} changed on ${branch} (now ${to.slice(0, 10)}) while this commit was being pushed; re-read and retry`, names);
    }
  }

  private async mergeTree(branch: string, ours: string, theirs: string): Promise<string> {
    try {
      return (await this.git.run(["merge-tree", "--write-tree", "--name-only", "-z", ours, theirs])).split("\0")[0].trim();
    } catch (err) {
      if (err instanceof GitFailure && err.exitCode === 1) {
        // Exit 1 = conflicts: stdout is the tree, the conflicted paths, an empty entry, then messages.
        const fields = err.stdout.split("\0");
        const conflicted = [...new Set(fields.slice(1, fields.indexOf("", 1)))];
        throw new LedgerError("merge-conflict", `cannot merge ${branch} into ${this.defaultBranch}: both sides changed ${conflicted.join(", ")}; resolve it on ${branch} first`, conflicted);
      }
      return this.rethrow(err, `cannot merge ${branch}`);
    }
  }

  /** `fetch --prune` then the remote-tracking tips, by branch name. */
  private async fetchTips(): Promise<Map<string, string>> {
    // -v: simple-git waits 50 ms more after a process that printed nothing.
    await this.network(["fetch", "-v", "--prune", "origin"]);
    return this.tips();
  }

  private async tips(): Promise<Map<string, string>> {
    const out = await this.git.run(["for-each-ref", "--format=%(objectname) %(refname)", REMOTE_PREFIX]);
    const tips = new Map<string, string>();
    for (const line of out.split("\n")) {
      const space = line.indexOf(" ");
      if (space > 0 && line.startsWith(REMOTE_PREFIX, space + 1)) tips.set(line.slice(space + 1 + REMOTE_PREFIX.length), line.slice(0, space));
    }
    tips.delete("HEAD");
    return tips;
  }

  private async readAt(tip: string | null, file: string): Promise<Buffer | null> {
    if (tip === null) return null;
    const [result] = await this.git.catBatch([`${tip}:${file}`]);
    return result.type === "blob" ? result.content : null;
  }

  private async eventAttempt(tip: string | null, event: LedgerEvent): Promise<Attempt<never>> {
    const log = (await this.readAt(tip, EVENTS_PATH)) ?? Buffer.alloc(0);
    const separator = log.length > 0 && log[log.length - 1] !== 0x0a ? "\n" : "";
    const line = formatEvent(event, this.now().toISOString());
    const content = Buffer.concat([log, Buffer.from(separator + line, "utf8")]);
    return { kind: "files", files: prepareFiles([{ path: EVENTS_PATH, content }]), message: `Event: ${event.event} ${event.outcome}`.slice(0, 200) };
  }

  private resolveRef(ref: string | undefined): string {
    if (ref === undefined) return REMOTE_PREFIX + this.defaultBranch;
    if (/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(ref)) return ref;
    if (ref.startsWith("refs/")) {
      checkBranchName(ref.slice(5));
      return ref;
    }
    checkBranchName(ref);
    return REMOTE_PREFIX + ref;
  }

  private async network(args: string[]): Promise<string> {
    return this.git.network(args).catch((err) => {
      const refused = err instanceof GitFailure && credentialsRefused(err.stderr);
      return this.rethrow(err, `git ${args[0]} with the remote failed${refused ? " (credentials missing or refused)" : ""}`);
    });
  }

  /** Turns a git failure into a one-line LedgerError (GitFailure text is already scrubbed). */
  private rethrow(err: unknown, context: string, code: "git" | "not-found" = "git"): never {
    if (err instanceof LedgerError) throw err;
    if (err instanceof GitFailure && /Not a valid object name|Needed a single revision|unknown revision/.test(err.stderr)) code = "not-found";
    // Both streams: `push --porcelain` reports the refused ref ("! … [rejected] (fetch first)") on stdout.
    const detail = err instanceof GitFailure ? oneLine(`${err.stdout}\n${err.stderr}`) : this.git.scrub(String((err as Error)?.message ?? err));
    throw new LedgerError(code, `${context}: ${detail}`);
  }
}

function pushedSha(outcome: Outcome<never>): string {
  if (outcome.kind !== "pushed") throw new Error("unreachable: a write without a stop condition stopped");
  return outcome.sha;
}

/** Branch names the ledger accepts: git's rules, minus anything that could read as an option. */
export function checkBranchName(name: string): void {
  const ok =
    /^[A-Za-z0-9._/-]+$/.test(name) &&
    !name.startsWith("-") &&
    !name.startsWith("/") &&
    !name.endsWith("/") &&
    !name.endsWith(".lock") &&
    !name.includes("..") &&
    !name.includes("//") &&
    !name.split("/").some((s) => s.startsWith("."));
  if (!ok) throw new LedgerError("invalid-path", `invalid branch or ref name ${JSON.stringify(name)}`);
}

/** A git config value in double quotes (so #, ; and spaces survive). */
function configValue(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

interface TreeEntry {
  mode: string;
  oid: string;
  path: string;
}

/** Parses `ls-tree -z`: `<mode> <type> <oid>\t<path>\0`. */
function parseLsTree(out: string): TreeEntry[] {
  return splitZ(out).map((record) => {
    const tab = record.indexOf("\t");
    const [mode, , oid] = record.slice(0, tab).split(" ");
    return { mode, oid, path: record.slice(tab + 1) };
  });
}

function splitZ(out: string): string[] {
  return out.split("\0").filter((s) => s !== "");
}

function entryType(mode: string): LedgerEntry["type"] {
  if (mode === "040000") return "dir";
  if (mode === "120000") return "link";
  if (mode === "160000") return "submodule";
  return "file";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The files of one commit as Git LFS sees them: which could go to LFS (content that is not a pointer already), their
 * pointers (hashed once, however many attempts the commit takes), and the files as committed for a given routing.
 */
class LfsRouting {
  readonly candidates: PreparedFile[];
  private readonly pointers = new Map<string, ReturnType<typeof lfsPointerFor>>();
  /** Paths handed out for upload (a failed upload fails the commit, so handing out counts as done). */
  private readonly uploaded = new Set<string>();

  constructor(private readonly files: readonly PreparedFile[]) {
    this.candidates = files.filter((f) => f.content !== null && parseLfsPointer(f.content) === null);
  }

  private pointer(file: PreparedFile): ReturnType<typeof lfsPointerFor> {
    let p = this.pointers.get(file.path);
    if (p === undefined) this.pointers.set(file.path, (p = lfsPointerFor(file.content!)));
    return p;
  }

  /** The routed files not handed out for upload before, with their content and pointer. */
  toUpload(paths: ReadonlySet<string>): Array<LfsFile & { content: Buffer }> {
    const fresh = this.candidates.filter((f) => paths.has(f.path) && !this.uploaded.has(f.path));
    fresh.forEach((f) => this.uploaded.add(f.path));
    return fresh.map((f) => ({ path: f.path, pointer: this.pointer(f).pointer, content: f.content! }));
  }

  /** The files as committed: the routed ones replaced by their pointers. */
  committed(paths: ReadonlySet<string>): PreparedFile[] {
    return this.files.map((f) => (paths.has(f.path) && f.content !== null && this.candidates.includes(f) ? { ...f, content: this.pointer(f).text } : f));
  }
}
