/**
 * The Forge on GitHub: Octokit REST calls with an installation token (issues, comments, reactions, labels, pull
 * requests, check runs, collaborator permission) and `.github/relabel.yml`, read from the data repo's default
 * branch only (never from another repository: the file names the commands executors run).
 */
import type { ProbotOctokit } from "probot";
import { parse as parseYaml } from "yaml";
import { fitComment } from "../core/app/markdown.js";
import { CONFIG_FILE } from "../core/app/config.js";
import { CHECK_TEXT_LIMIT, clip, clipBytes, ThreadGoneError, type CheckRunUpdate, type CommentInfo, type ConfigFile, type Forge, type IssueInfo, type Permission, type PullRequestInfo, type Reaction } from "./forge.js";
import type { Pacer } from "./pacer.js";

const PERMISSIONS = new Set<Permission>(["admin", "write", "read", "none"]);
/** The `permission` GitHub reports for each repository role. */
const ROLE_BASE: Partial<Record<string, Permission>> = { admin: "admin", maintain: "write", write: "write", triage: "read", read: "read" };

/** The GitHub App itself (GET /app): its comments are the ones by `<slug>[bot]`. */
export interface AppIdentity {
  id: number;
  slug: string;
}

export interface GitHubForgeOptions {
  octokit: ProbotOctokit;
  /** Asked for when a sticky comment is looked up (cached by the caller). */
  app: () => Promise<AppIdentity>;
  owner: string;
  repo: string;
  /** From the webhook payload when known; asked for otherwise. */
  defaultBranch?: string;
  /** Comments are paced per installation. */
  pacer: Pacer;
  /** Web address of the repository host, for links in comments (https://github.com). */
  webUrl?: string;
  /** Shared by the repository's forges across events and poller ticks (the App keeps one per repository). */
  cache?: RepoCache;
}

/**
 * What a repository's forges remember between events and ticks: its default branch (as the ledger does, once per
 * process; webhook payloads refresh it) and the config file as last read, with its ETag, so that reading it again
 * is one conditional request that GitHub answers 304 while the file is unchanged.
 */
export interface RepoCache {
  defaultBranch?: string;
  config?: { branch: string; etag: string; file: ConfigFile };
}

interface PullPayload {
  number: number;
  title: string;
  state: string;
  merged?: boolean | null;
  /** The only sign of a merge in a listed pull request (the list leaves `merged` out). */
  merged_at?: string | null;
  merge_commit_sha?: string | null;
  updated_at?: string;
  user?: { login: string } | null;
  labels?: Array<{ name?: string } | string>;
  head: { ref: string; sha: string; repo?: { full_name: string } | null };
  base: { ref: string; repo: { full_name: string } };
}

/**
 * The pull requests a rerequested check run or suite is for: the ones the event lists, or, since GitHub lists none
 * whose head branch is in a fork, the open pull requests whose head is the check's commit.
 */
export async function pullRequestsOfCheck(octokit: ProbotOctokit, repo: { owner: string; repo: string }, listed: ReadonlyArray<{ number: number }>, sha: string): Promise<number[]> {
  if (listed.length > 0) return listed.map((pr) => pr.number);
  const open = await octokit.paginate(octokit.rest.pulls.list, { ...repo, state: "open", per_page: 100 });
  return open.filter((pr) => pr.head.sha === sha).map((pr) => pr.number);
}

/** A pull request as the workflow sees it, from the REST answer or a webhook payload (the same shape). */
export function pullRequestInfo(pr: PullPayload): PullRequestInfo {
  return {
    number: pr.number,
    title: pr.title,
    state: pr.state === "closed" ? "closed" : "open",
    merged: pr.merged === true || (pr.merged_at ?? null) !== null,
    mergeCommitSha: pr.merge_commit_sha ?? null,
    author: pr.user?.login ?? "ghost",
    labels: (pr.labels ?? []).map((l) => (typeof l === "string" ? l : (l.name ?? ""))).filter((l) => l !== ""),
    head: { ref: pr.head.ref, sha: pr.head.sha, fork: pr.head.repo?.full_name !== pr.base.repo.full_name },
    base: { ref: pr.base.ref },
  };
}

export class GitHubForge implements Forge {
  readonly repo: string;
  private readonly octokit: ProbotOctokit;
  private readonly app: () => Promise<AppIdentity>;
  private readonly owner: string;
  private readonly name: string;
  private readonly cache: RepoCache;
  private readonly pacer: Pacer;
  private readonly webUrl: string;

  constructor(o: GitHubForgeOptions) {
    this.octokit = o.octokit;
    this.app = o.app;
    this.owner = o.owner;
    this.name = o.repo;
    this.repo = `${o.owner}/${o.repo}`;
    this.cache = o.cache ?? {};
    if (o.defaultBranch) this.cache.defaultBranch = o.defaultBranch;
    this.pacer = o.pacer;
    this.webUrl = (o.webUrl ?? "https://github.com").replace(/\/+$/, "");
  }

  private get ids() {
    return { owner: this.owner, repo: this.name };
  }

  async defaultBranch(): Promise<string> {
    this.cache.defaultBranch ??= (await this.octokit.rest.repos.get(this.ids)).data.default_branch;
    return this.cache.defaultBranch;
  }

  /**
   * Runs a call about one issue or pull request; a 410 (deleted), or a 404 while the repository itself still
   * answers (moved away), becomes a ThreadGoneError. Any other failure is the call's own.
   */
  private async onThread<T>(thread: number, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 410) throw new ThreadGoneError(thread, status, this.repo);
      if (status === 404 && (await this.octokit.rest.repos.get(this.ids).then(() => true, () => false))) throw new ThreadGoneError(thread, status, this.repo);
      throw err;
    }
  }

  async issue(number: number): Promise<IssueInfo> {
    const { data } = await this.onThread(number, () => this.octokit.rest.issues.get({ ...this.ids, issue_number: number }));
    return {
      number: data.number,
      title: data.title,
      body: data.body ?? "",
      labels: data.labels.map((l) => (typeof l === "string" ? l : (l.name ?? ""))).filter((l) => l !== ""),
      author: data.user?.login ?? "ghost",
      isPullRequest: data.pull_request != null,
    };
  }

  async loadConfig(): Promise<ConfigFile> {
    const branch = await this.defaultBranch();
    const cached = this.cache.config?.branch === branch ? this.cache.config : undefined;
    let answer: unknown;
    let etag: string | undefined;
    try {
      const res = await this.octokit.rest.repos.getContent({ ...this.ids, path: CONFIG_FILE, ref: branch, ...(cached ? { headers: { "if-none-match": cached.etag } } : {}) });
      answer = res.data;
      etag = res.headers.etag;
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 304 && cached) {
        this.applyPacing(cached.file.data);
        return cached.file;
      }
      if (status === 404) return { found: false, data: null };
      return { found: true, data: null, error: `${CONFIG_FILE}: could not be read from the default branch (${(err as Error).message.split("\n")[0]})`, ...(status ? { status } : {}) };
    }
    const file = this.configFrom(answer);
    // The result depends on the file's bytes alone: the same ETag gives the same answer.
    if (etag) this.cache.config = { branch, etag, file };
    else delete this.cache.config;
    this.applyPacing(file.data);
    return file;
  }

  private configFrom(answer: unknown): ConfigFile {
    const file = answer as { type?: string; encoding?: string; content?: string };
    if (Array.isArray(answer) || file.type !== "file") return { found: true, data: null, error: `${CONFIG_FILE}: expected a file, found a ${Array.isArray(answer) ? "folder" : (file.type ?? "non-file")}` };
    // Files over 1 MB come without content (encoding "none").
    if (file.encoding !== "base64") return { found: true, data: null, error: `${CONFIG_FILE}: expected a settings file under 1 MB` };
    let data: unknown;
    try {
      data = parseYaml(Buffer.from(file.content ?? "", "base64").toString("utf8"));
    } catch (err) {
      return { found: true, data: null, error: `${CONFIG_FILE}: not valid YAML (${(err as Error).message.split("\n")[0]})` };
    }
    return { found: true, data };
  }

  private applyPacing(data: unknown): void {
    const pacing = (data as { comment_pacing_ms?: unknown } | null)?.comment_pacing_ms;
    if (typeof pacing === "number" && pacing >= 0) this.pacer.intervalMs = pacing;
  }

  async permission(login: string): Promise<Permission> {
    try {
      const { data } = await this.octokit.rest.repos.getCollaboratorPermissionLevel({ ...this.ids, username: login });
      const permission = PERMISSIONS.has(data.permission as Permission) ? (data.permission as Permission) : "none";
      // `permission` says only admin, write, read or none (maintain counts as write, triage as read); role_name has
      // the role itself, taken only where it agrees with `permission`, so that it never changes who may write.
      const role = (data as { role_name?: string }).role_name as Permission | undefined;
      return role !== undefined && ROLE_BASE[role] === permission ? role : permission;
    } catch (err) {
      // Not a collaborator (or an unknown login): no permission.
      if ((err as { status?: number }).status === 404) return "none";
      throw err;
    }
  }

  async react(target: { issue: number } | { comment: number }, reaction: Reaction): Promise<void> {
    if ("issue" in target) await this.onThread(target.issue, () => this.octokit.rest.reactions.createForIssue({ ...this.ids, issue_number: target.issue, content: reaction }));
    else await this.octokit.rest.reactions.createForIssueComment({ ...this.ids, comment_id: target.comment, content: reaction });
  }

  async comment(issue: number, body: string): Promise<number> {
    let id = 0;
    for (const part of fitComment(body)) {
      await this.pacer.wait();
      id = (await this.onThread(issue, () => this.octokit.rest.issues.createComment({ ...this.ids, issue_number: issue, body: part }))).data.id;
    }
    return id;
  }

  async upsertComment(issue: number, marker: string, render: (previous: string | null) => string): Promise<number> {
    const app = await this.app();
    const comments = await this.onThread(issue, () => this.octokit.paginate(this.octokit.rest.issues.listComments, { ...this.ids, issue_number: issue, per_page: 100 }));
    const existing = comments.filter((c) => byApp(c, app)).map((c) => ({ id: c.id, body: c.body ?? "" })).find((c) => c.body.includes(marker));
    const text = render(existing?.body ?? null);
    if (!text.includes(marker)) throw new Error(`a sticky comment body must hold its marker ${marker}`);
    if (existing) {
      await this.octokit.rest.issues.updateComment({ ...this.ids, comment_id: existing.id, body: text });
      return existing.id;
    }
    await this.pacer.wait();
    return (await this.onThread(issue, () => this.octokit.rest.issues.createComment({ ...this.ids, issue_number: issue, body: text }))).data.id;
  }

  async listComments(issue: number): Promise<CommentInfo[]> {
    const comments = await this.onThread(issue, () => this.octokit.paginate(this.octokit.rest.issues.listComments, { ...this.ids, issue_number: issue, per_page: 100 }));
    return comments.map((c) => ({ id: c.id, body: c.body ?? "", author: c.user?.login ?? "ghost" }));
  }

  async openPullRequest(o: { head: string; base: string; title: string; body: string; labels?: string[] }): Promise<number> {
    const open = await this.octokit.rest.pulls.list({ ...this.ids, head: `${this.owner}:${o.head}`, base: o.base, state: "open" });
    let number = open.data[0]?.number;
    if (number === undefined) {
      number = (await this.octokit.rest.pulls.create({ ...this.ids, head: o.head, base: o.base, title: o.title, body: o.body })).data.number;
    }
    if (o.labels?.length) await this.addLabels(number, o.labels);
    return number;
  }

  async pullRequest(number: number): Promise<PullRequestInfo> {
    const { data } = await this.onThread(number, () => this.octokit.rest.pulls.get({ ...this.ids, pull_number: number }));
    return pullRequestInfo(data as PullPayload);
  }

  async mergedPullRequests(label: string, since: string): Promise<PullRequestInfo[]> {
    // Closed pull requests, last updated first, page after page until they were last updated before `since`.
    const sinceMs = Date.parse(since);
    const recent = (pr: PullPayload): boolean => pr.updated_at === undefined || !(Date.parse(pr.updated_at) < sinceMs);
    const closed = await this.octokit.paginate(
      this.octokit.rest.pulls.list,
      { ...this.ids, state: "closed", sort: "updated", direction: "desc", per_page: 100 },
      (response, done) => {
        const page = response.data as PullPayload[];
        if (page.length === 0 || !recent(page[page.length - 1])) done();
        return page.filter(recent);
      },
    );
    return closed.map(pullRequestInfo).filter((pr) => pr.merged && pr.labels.includes(label));
  }

  async addLabels(issue: number, labels: string[]): Promise<void> {
    await this.onThread(issue, () => this.octokit.rest.issues.addLabels({ ...this.ids, issue_number: issue, labels }));
  }

  async createCheckRun(o: { name: string; headSha: string } & CheckRunUpdate): Promise<number> {
    const { data } = await this.octokit.rest.checks.create({ ...this.ids, name: o.name, head_sha: o.headSha, ...checkFields(o) });
    return data.id;
  }

  async updateCheckRun(id: number, update: CheckRunUpdate): Promise<void> {
    await this.octokit.rest.checks.update({ ...this.ids, check_run_id: id, ...checkFields(update) });
  }

  async closeIssue(issue: number): Promise<void> {
    await this.onThread(issue, () => this.octokit.rest.issues.update({ ...this.ids, issue_number: issue, state: "closed", state_reason: "completed" }));
  }

  fileLink(path: string, sha: string): string {
    return `${this.webUrl}/${this.repo}/blob/${sha}/${encodePath(path)}`;
  }

  imageLink(path: string, sha: string): string {
    // ?raw=true serves the file itself, which GitHub renders as an image in comments.
    return `${this.fileLink(path, sha)}?raw=true`;
  }
}

/**
 * Anyone can write the hidden marker into a comment, and a comment stays its author's to edit: only the App's own
 * count. `<slug>[bot]` cannot be a person's login; where GitHub names the app that posted it, that must be ours too.
 */
function byApp(c: { user?: { login: string; type?: string } | null; performed_via_github_app?: { id: number } | null }, app: AppIdentity): boolean {
  return c.user?.type === "Bot" && c.user.login === `${app.slug}[bot]` && (c.performed_via_github_app == null || c.performed_via_github_app.id === app.id);
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

function checkFields(u: CheckRunUpdate) {
  return {
    status: u.status,
    ...(u.conclusion ? { conclusion: u.conclusion } : {}),
    ...(u.status === "completed" ? { completed_at: new Date().toISOString() } : {}),
    ...(u.output
      ? { output: { title: clip(u.output.title, 200), summary: clipBytes(u.output.summary, CHECK_TEXT_LIMIT), ...(u.output.text ? { text: clipBytes(u.output.text, CHECK_TEXT_LIMIT) } : {}) } }
      : {}),
  };
}
