/**
 * An in-process, stateful fake of the GitHub REST API on 127.0.0.1, for the app's end-to-end tests: the App
 * itself and installation tokens (GET /app, POST /app/installations/:id/access_tokens, both with the App's JWT),
 * repositories, file contents read from a real bare git repository, issues, comments (create, list, PATCH),
 * reactions, labels, pull requests (create, list, get, merged state), check runs (create, update, list) and
 * collaborator permissions. As on GitHub, what the installation token creates is by `<slug>[bot]` and comments
 * name the App in `performed_via_github_app`. Test actions (open an issue, comment, open or merge a pull request)
 * change the state and return the webhook payload GitHub would send. Also as on GitHub: file contents carry an
 * ETag and a matching If-None-Match gets 304; a suspended installation gets no token (403) and its tokens are
 * refused; a deleted issue answers 410.
 */
import { createHash, createPublicKey, createVerify, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { git, revParse, show } from "../helpers/git-repo.js";

export type Permission = "admin" | "maintain" | "write" | "triage" | "read" | "none";

interface User {
  login: string;
  type: "User" | "Bot";
}

export interface FakeIssue {
  number: number;
  title: string;
  body: string;
  user: User;
  labels: string[];
  state: "open" | "closed";
  reactions: Array<{ content: string; user: string }>;
  pull: FakePull | null;
  /** GitHub's updated_at: set at every change (tick: strictly increasing, whole seconds). */
  updatedAt: string;
}

export interface FakePull {
  head: { ref: string; sha: string; repo: string };
  base: { ref: string };
  merged: boolean;
  mergeCommitSha: string | null;
}

interface AppRef {
  id: number;
  slug: string;
}

export interface FakeComment {
  id: number;
  issue: number;
  body: string;
  user: User;
  /** The App that posted it (its installation token); null for people's comments. */
  app: AppRef | null;
  createdAt: string;
  updatedAt: string;
  /** How many times the body was replaced (PATCH). */
  edits: number;
  reactions: Array<{ content: string; user: string }>;
}

export interface FakeCheckRun {
  id: number;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  output: { title?: string; summary?: string; text?: string } | null;
  updates: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  /** The query string, with its `?` (empty without one). */
  query: string;
  status: number;
}

export interface FakeGitHubOptions {
  owner: string;
  repo: string;
  /** The data repository: a real bare git repo whose default branch is `defaultBranch`. */
  bare: string;
  defaultBranch?: string;
  installationId?: number;
  appId: number;
  /** The App's public key: installation-token requests must carry a JWT signed by its private key. */
  publicKeyPem: string;
  /** The App's slug: what the installation token creates is by `<slug>[bot]`. */
  appSlug?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class FakeGitHub {
  readonly owner: string;
  readonly repo: string;
  readonly bare: string;
  readonly defaultBranch: string;
  readonly installationId: number;
  readonly appSlug: string;
  readonly issues = new Map<number, FakeIssue>();
  readonly comments = new Map<number, FakeComment>();
  readonly checkRuns = new Map<number, FakeCheckRun>();
  readonly permissions = new Map<string, Permission>();
  readonly requests: RequestRecord[] = [];
  readonly tokens = new Set<string>();
  /** The installation is suspended (suspendInstallation): no tokens, and the ones it gave are refused. */
  suspended = false;
  /** Issues deleted by deleteIssue: GitHub answers 410 for them. */
  readonly deleted = new Set<number>();
  private nextIssue = 1;
  /** The last updated_at given (ms since the epoch). */
  private clock = 0;
  /** Added to the wall clock for updated_at: a test sets it below 0 to make changes in the past. */
  timeShiftMs = 0;
  private nextComment = 1000;
  private nextCheck = 500;
  private server: Server | null = null;
  readonly appId: number;
  private readonly publicKeyPem: string;
  url = "";

  constructor(o: FakeGitHubOptions) {
    this.owner = o.owner;
    this.repo = o.repo;
    this.bare = o.bare;
    this.defaultBranch = o.defaultBranch ?? "main";
    this.installationId = o.installationId ?? 7;
    this.appId = o.appId;
    this.publicKeyPem = o.publicKeyPem;
    this.appSlug = o.appSlug ?? "relabel-loop";
  }

  /** The App's bot user. */
  get botLogin(): string {
    return `${this.appSlug}[bot]`;
  }

  get fullName(): string {
    return `${this.owner}/${this.repo}`;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  // ---- test actions: change the state as a person on github.com would, return the webhook to deliver ----

  openIssue(o: { title: string; body: string; labels?: string[]; user?: string }): { number: number; opened: WebhookDelivery; labeled: WebhookDelivery[] } {
    const issue: FakeIssue = {
      number: this.nextIssue++,
      title: o.title,
      body: o.body,
      user: { login: o.user ?? "alice", type: "User" },
      labels: [...(o.labels ?? [])],
      state: "open",
      reactions: [],
      pull: null,
      updatedAt: this.tick(),
    };
    this.issues.set(issue.number, issue);
    const opened = this.delivery("issues", { action: "opened", issue: this.issueJson(issue), sender: userJson(issue.user) });
    const labeled = issue.labels.map((label) =>
      this.delivery("issues", { action: "labeled", label: { name: label }, issue: this.issueJson(issue), sender: userJson(issue.user) }),
    );
    return { number: issue.number, opened, labeled };
  }

  addComment(issueNumber: number, body: string, user = "alice", type: User["type"] = "User"): { id: number; created: WebhookDelivery } {
    const issue = this.issue(issueNumber);
    const comment = this.createComment(issue, body, { login: user, type }, null);
    return { id: comment.id, created: this.commentDelivery(comment) };
  }

  /** Opens a pull request from `head` (a branch of the bare repo; `fork` pretends it lives in a fork). */
  openPull(o: { head: string; base?: string; title: string; body?: string; labels?: string[]; user?: string; fork?: boolean }): { number: number; opened: WebhookDelivery } {
    const sha = revParse(this.bare, `refs/heads/${o.head}`);
    if (!sha) throw new Error(`no branch ${o.head} in ${this.bare}`);
    const issue: FakeIssue = {
      number: this.nextIssue++,
      title: o.title,
      body: o.body ?? "",
      user: { login: o.user ?? "alice", type: "User" },
      labels: [...(o.labels ?? [])],
      state: "open",
      reactions: [],
      pull: {
        head: { ref: o.head, sha, repo: o.fork ? `${o.user ?? "alice"}/${this.repo}` : this.fullName },
        base: { ref: o.base ?? this.defaultBranch },
        merged: false,
        mergeCommitSha: null,
      },
      updatedAt: this.tick(),
    };
    this.issues.set(issue.number, issue);
    return { number: issue.number, opened: this.pullDelivery(issue, "opened") };
  }

  /** Merges a pull request the way the merge button does (a merge commit on the base branch). */
  mergePull(number: number, by = "alice"): { sha: string; closed: WebhookDelivery } {
    const issue = this.issue(number);
    const pull = issue.pull;
    if (!pull || pull.merged || issue.state === "closed") throw new Error(`#${number} is not an open pull request`);
    const base = `refs/heads/${pull.base.ref}`;
    const headSha = revParse(this.bare, `refs/heads/${pull.head.ref}`) ?? pull.head.sha;
    // Like the merge button, against the base as it is: the App may push to it meanwhile (its ledger), and
    // the guarded update then fails; the merge is made again on the new base.
    let sha = "";
    for (let attempt = 1; !sha; attempt++) {
      const baseSha = revParse(this.bare, base)!;
      const tree = git(this.bare, "merge-tree", "--write-tree", baseSha, headSha).split("\n")[0];
      const merge = git(this.bare, "commit-tree", tree, "-p", baseSha, "-p", headSha, "-m", `Merge pull request #${number} from ${pull.head.ref}`);
      try {
        git(this.bare, "update-ref", base, merge, baseSha);
        sha = merge;
      } catch (error) {
        if (attempt >= 5 || revParse(this.bare, base) === baseSha) throw error;
      }
    }
    pull.merged = true;
    pull.mergeCommitSha = sha;
    pull.head.sha = headSha;
    issue.state = "closed";
    this.touch(issue);
    return { sha, closed: this.pullDelivery(issue, "closed", by) };
  }

  /** Closes a pull request without merging. */
  closePull(number: number): WebhookDelivery {
    const issue = this.issue(number);
    issue.state = "closed";
    this.touch(issue);
    return this.pullDelivery(issue, "closed");
  }

  /** A new push to an open pull request's head branch. */
  synchronize(number: number): WebhookDelivery {
    const issue = this.issue(number);
    issue.pull!.head.sha = revParse(this.bare, `refs/heads/${issue.pull!.head.ref}`)!;
    return this.pullDelivery(issue, "synchronize");
  }

  /**
   * The Re-run button of a check run: GitHub lists the open pull requests of the same repository whose head is the
   * run's commit (none from forks).
   */
  rerequestCheck(id: number, by = "alice"): WebhookDelivery {
    const run = this.checkRuns.get(id);
    if (!run) throw new Error(`no check run ${id}`);
    const pulls = this.pulls().filter((i) => i.state === "open" && i.pull!.head.repo === this.fullName && i.pull!.head.sha === run.headSha);
    const pullRequests = pulls.map((i) => ({ number: i.number, head: { ref: i.pull!.head.ref, sha: i.pull!.head.sha }, base: { ref: i.pull!.base.ref } }));
    return this.delivery("check_run", { action: "rerequested", check_run: { ...checkJson(run), pull_requests: pullRequests }, sender: userJson({ login: by, type: "User" }) });
  }

  /**
   * "Re-run all checks" on a pull request: GitHub asks for the App's check suite at that commit again
   * (check_suite.rerequested), listing the same open pull requests as a check run's Re-run does.
   */
  rerequestSuite(sha: string, by = "alice"): WebhookDelivery {
    const pulls = this.pulls().filter((i) => i.state === "open" && i.pull!.head.repo === this.fullName && i.pull!.head.sha === sha);
    const pullRequests = pulls.map((i) => ({ number: i.number, head: { ref: i.pull!.head.ref, sha: i.pull!.head.sha }, base: { ref: i.pull!.base.ref } }));
    const suite = { id: 9000, head_sha: sha, head_branch: pulls[0]?.pull!.head.ref ?? null, status: "queued", conclusion: null, pull_requests: pullRequests };
    return this.delivery("check_suite", { action: "rerequested", check_suite: suite, sender: userJson({ login: by, type: "User" }) });
  }

  // ---- queries for assertions ----

  pulls(): FakeIssue[] {
    return [...this.issues.values()].filter((i) => i.pull !== null);
  }

  commentsOn(issue: number): FakeComment[] {
    return [...this.comments.values()].filter((c) => c.issue === issue).sort((a, b) => a.id - b.id);
  }

  /** The App's own comments. */
  botComments(issue: number): FakeComment[] {
    return this.commentsOn(issue).filter((c) => c.app?.id === this.appId);
  }

  checksFor(sha: string): FakeCheckRun[] {
    return [...this.checkRuns.values()].filter((c) => c.headSha === sha);
  }

  /** An owner suspends the App's installation (or lifts it): the `installation` webhook GitHub sends. */
  suspendInstallation(suspended: boolean): WebhookDelivery {
    this.suspended = suspended;
    const sender = { login: "alice", type: "User" as const };
    return {
      id: randomBytes(16).toString("hex"),
      name: "installation",
      payload: {
        action: suspended ? "suspend" : "unsuspend",
        installation: { id: this.installationId, account: { login: this.owner, type: "Organization" }, suspended_at: suspended ? new Date().toISOString() : null, suspended_by: suspended ? userJson(sender) : null },
        sender: userJson(sender),
      },
    };
  }

  /** An admin deletes an issue (GitHub sends no webhook the App listens to). */
  deleteIssue(number: number): void {
    this.issue(number);
    this.deleted.add(number);
  }

  // ---- webhook payloads ----

  private repositoryJson() {
    return {
      id: 4242,
      name: this.repo,
      full_name: this.fullName,
      private: true,
      owner: { login: this.owner, type: "Organization" },
      default_branch: this.defaultBranch,
      html_url: `https://github.com/${this.fullName}`,
    };
  }

  private delivery(name: string, payload: Record<string, unknown>): WebhookDelivery {
    return { id: randomBytes(16).toString("hex"), name, payload: { ...payload, repository: this.repositoryJson(), installation: { id: this.installationId } } };
  }

  private commentDelivery(comment: FakeComment): WebhookDelivery {
    const issue = this.issue(comment.issue);
    return this.delivery("issue_comment", { action: "created", issue: this.issueJson(issue), comment: this.commentJson(comment), sender: userJson(comment.user) });
  }

  private pullDelivery(issue: FakeIssue, action: string, by?: string): WebhookDelivery {
    const sender = by ? { login: by, type: "User" as const } : issue.user;
    return this.delivery("pull_request", { action, number: issue.number, pull_request: this.pullJson(issue), sender: userJson(sender) });
  }

  private issueJson(issue: FakeIssue) {
    return {
      number: issue.number,
      title: issue.title,
      body: issue.body,
      state: issue.state,
      user: userJson(issue.user),
      labels: issue.labels.map((name) => ({ name })),
      html_url: `https://github.com/${this.fullName}/issues/${issue.number}`,
      ...(issue.pull ? { pull_request: { url: `${this.url}/repos/${this.fullName}/pulls/${issue.number}` } } : {}),
    };
  }

  private pullJson(issue: FakeIssue) {
    const pull = issue.pull!;
    return {
      number: issue.number,
      title: issue.title,
      body: issue.body,
      state: issue.state,
      merged: pull.merged,
      merged_at: pull.merged ? "2026-01-01T00:00:00Z" : null,
      updated_at: issue.updatedAt,
      merge_commit_sha: pull.mergeCommitSha,
      user: userJson(issue.user),
      labels: issue.labels.map((name) => ({ name })),
      head: { ref: pull.head.ref, sha: pull.head.sha, repo: { full_name: pull.head.repo, fork: pull.head.repo !== this.fullName } },
      base: { ref: pull.base.ref, repo: { full_name: this.fullName } },
      html_url: `https://github.com/${this.fullName}/pull/${issue.number}`,
    };
  }

  private commentJson(c: FakeComment) {
    return {
      id: c.id,
      body: c.body,
      user: userJson(c.user),
      performed_via_github_app: c.app ? { id: c.app.id, slug: c.app.slug, name: c.app.slug } : null,
      created_at: c.createdAt,
      updated_at: c.updatedAt,
      issue_url: `${this.url}/repos/${this.fullName}/issues/${c.issue}`,
    };
  }

  // ---- the HTTP side ----

  private issue(number: number): FakeIssue {
    if (this.deleted.has(number)) throw new HttpError(410, "This issue was deleted");
    const issue = this.issues.get(number);
    if (!issue) throw new HttpError(404, "Not Found");
    return issue;
  }

  private createComment(issue: FakeIssue, body: string, user: User, app: AppRef | null): FakeComment {
    if (body.length > 65_536) throw new HttpError(422, "Body is too long (maximum is 65536 characters)");
    const now = new Date().toISOString();
    const comment: FakeComment = { id: this.nextComment++, issue: issue.number, body, user, app, createdAt: now, updatedAt: now, edits: 0, reactions: [] };
    this.comments.set(comment.id, comment);
    this.touch(issue);
    return comment;
  }

  /** The next updated_at: now, or a second after the last one when that is later (GitHub's are whole seconds). */
  private tick(): string {
    this.clock = Math.max(Math.floor((Date.now() + this.timeShiftMs) / 1000) * 1000, this.clock + 1000);
    return new Date(this.clock).toISOString().replace(".000Z", "Z");
  }

  private touch(issue: FakeIssue): void {
    issue.updatedAt = this.tick();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let status = 200;
    let body: unknown;
    let contentType = "application/json; charset=utf-8";
    const headers: Record<string, string> = {};
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString("utf8");
      const input = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      const answer = this.route(req.method ?? "GET", url, input, req.headers);
      status = answer.status ?? 200;
      body = answer.body;
      if (answer.etag !== undefined) headers.etag = answer.etag;
      if (answer.link !== undefined) headers.link = answer.link;
      if (answer.raw !== undefined) {
        contentType = "text/plain; charset=utf-8";
        body = answer.raw;
      }
    } catch (err) {
      status = err instanceof HttpError ? err.status : 500;
      body = { message: (err as Error).message };
    }
    this.requests.push({ method: req.method ?? "GET", path: url.pathname, query: url.search, status });
    const out = typeof body === "string" ? body : body === undefined ? "" : JSON.stringify(body);
    if (status === 304) res.writeHead(status, headers);
    else res.writeHead(status, { ...headers, "content-type": contentType, "content-length": Buffer.byteLength(out) });
    res.end(out);
  }

  private authenticate(headers: IncomingMessage["headers"]): void {
    const auth = headers.authorization ?? "";
    const m = /^(?:token|bearer) (\S+)$/i.exec(auth);
    if (!m || !this.tokens.has(m[1])) throw new HttpError(401, "Bad credentials");
    if (this.suspended) throw new HttpError(403, "This installation has been suspended");
  }

  /** The App's JWT: RS256, signed with the private key that belongs to publicKeyPem, iss = the App id. */
  private verifyJwt(headers: IncomingMessage["headers"]): void {
    const m = /^bearer (\S+)$/i.exec(headers.authorization ?? "");
    if (!m) throw new HttpError(401, "A JSON web token could not be decoded");
    const [head, claims, signature] = m[1].split(".");
    const verifier = createVerify("RSA-SHA256");
    verifier.update(`${head}.${claims}`);
    if (!signature || !verifier.verify(createPublicKey(this.publicKeyPem), Buffer.from(signature, "base64url"))) {
      throw new HttpError(401, "'Issuer' claim ('iss') must be an Integer");
    }
    const payload = JSON.parse(Buffer.from(claims, "base64url").toString("utf8")) as { iss?: unknown };
    if (String(payload.iss) !== String(this.appId)) throw new HttpError(401, "Integration not found");
  }

  /** One page of a list, as GitHub serves it: per_page (default 30, at most 100) and a Link header to the next. */
  private page<T>(all: T[], url: URL): { body: T[]; link?: string } {
    const perPage = Math.min(Number(url.searchParams.get("per_page") ?? "30"), 100);
    const page = Number(url.searchParams.get("page") ?? "1");
    if (page * perPage >= all.length) return { body: all.slice((page - 1) * perPage, page * perPage) };
    const next = new URL(url.pathname + url.search, this.url);
    next.searchParams.set("page", String(page + 1));
    return { body: all.slice((page - 1) * perPage, page * perPage), link: `<${next.href}>; rel="next"` };
  }

  private route(method: string, url: URL, input: Record<string, unknown>, headers: IncomingMessage["headers"]): { status?: number; body?: unknown; raw?: string; etag?: string; link?: string } {
    const p = url.pathname;
    let m: RegExpExecArray | null;

    if (p === "/app" && method === "GET") {
      this.verifyJwt(headers);
      return { body: { id: this.appId, slug: this.appSlug, name: this.appSlug, owner: { login: this.owner, type: "Organization" } } };
    }

    if ((m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(p)) && method === "POST") {
      this.verifyJwt(headers);
      if (Number(m[1]) !== this.installationId) throw new HttpError(404, "Not Found");
      if (this.suspended) throw new HttpError(403, "This installation has been suspended");
      const token = `ghs_${randomBytes(18).toString("hex")}`;
      this.tokens.add(token);
      return {
        status: 201,
        body: { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { issues: "write", pull_requests: "write", contents: "write", checks: "write", metadata: "read" }, repository_selection: "all" },
      };
    }

    this.authenticate(headers);
    const repoPrefix = `/repos/${this.owner}/${this.repo}`;
    if (!p.startsWith(`/repos/`)) throw new HttpError(404, "Not Found");
    if (!p.startsWith(repoPrefix + "/") && p !== repoPrefix) throw new HttpError(404, "Not Found");
    const rest = p.slice(repoPrefix.length);

    if (rest === "" && method === "GET") return { body: this.repositoryJson() };

    if ((m = /^\/contents\/(.+)$/.exec(rest)) && method === "GET") {
      const file = decodeURIComponent(m[1]);
      const ref = url.searchParams.get("ref") ?? this.defaultBranch;
      const content = show(this.bare, ref, file);
      if (content === null) throw new HttpError(404, "Not Found");
      if (/raw/.test(String(headers.accept ?? ""))) return { raw: content };
      const etag = `"${createHash("sha1").update(content).digest("hex")}"`;
      if (headers["if-none-match"] === etag) return { status: 304, etag };
      return { etag, body: { type: "file", path: file, encoding: "base64", content: Buffer.from(content).toString("base64") } };
    }

    if ((m = /^\/collaborators\/([^/]+)\/permission$/.exec(rest)) && method === "GET") {
      const login = decodeURIComponent(m[1]);
      const permission = this.permissions.get(login);
      if (permission === undefined) throw new HttpError(404, `${login} is not a user`);
      // As on GitHub: `permission` knows only admin, write, read and none; role_name has the role itself.
      const level = permission === "maintain" ? "write" : permission === "triage" ? "read" : permission;
      return { body: { permission: level, role_name: permission, user: { login, type: "User" } } };
    }

    if ((m = /^\/issues\/(\d+)$/.exec(rest))) {
      const issue = this.issue(Number(m[1]));
      if (method === "PATCH") {
        if (input.state === "open" || input.state === "closed") issue.state = input.state;
        this.touch(issue);
        if (typeof input.body === "string") issue.body = input.body;
        if (typeof input.title === "string") issue.title = input.title;
      }
      return { body: this.issueJson(issue) };
    }

    if ((m = /^\/issues\/(\d+)\/comments$/.exec(rest))) {
      const issue = this.issue(Number(m[1]));
      if (method === "POST") {
        if (typeof input.body !== "string") throw new HttpError(422, "body is required");
        return { status: 201, body: this.commentJson(this.createComment(issue, input.body, { login: this.botLogin, type: "Bot" }, { id: this.appId, slug: this.appSlug })) };
      }
      return this.page(this.commentsOn(issue.number).map((c) => this.commentJson(c)), url);
    }

    if ((m = /^\/issues\/comments\/(\d+)$/.exec(rest))) {
      const comment = this.comments.get(Number(m[1]));
      if (!comment) throw new HttpError(404, "Not Found");
      if (method === "PATCH") {
        if (typeof input.body !== "string") throw new HttpError(422, "body is required");
        if (input.body.length > 65_536) throw new HttpError(422, "Body is too long (maximum is 65536 characters)");
        comment.body = input.body;
        comment.updatedAt = new Date().toISOString();
        comment.edits++;
      }
      return { body: this.commentJson(comment) };
    }

    if ((m = /^\/issues\/(\d+)\/reactions$/.exec(rest)) && method === "POST") {
      const issue = this.issue(Number(m[1]));
      issue.reactions.push({ content: String(input.content), user: this.botLogin });
      return { status: 201, body: { id: issue.reactions.length, content: input.content } };
    }

    if ((m = /^\/issues\/comments\/(\d+)\/reactions$/.exec(rest)) && method === "POST") {
      const comment = this.comments.get(Number(m[1]));
      if (!comment) throw new HttpError(404, "Not Found");
      comment.reactions.push({ content: String(input.content), user: this.botLogin });
      return { status: 201, body: { id: comment.reactions.length, content: input.content } };
    }

    if ((m = /^\/issues\/(\d+)\/labels$/.exec(rest))) {
      const issue = this.issue(Number(m[1]));
      if (method === "POST") {
        for (const label of (input.labels as string[]) ?? []) if (!issue.labels.includes(label)) issue.labels.push(label);
        this.touch(issue);
      }
      return { body: issue.labels.map((name) => ({ name })) };
    }

    if (rest === "/pulls" && method === "POST") {
      const head = String(input.head).replace(new RegExp(`^${this.owner}:`), "");
      const sha = revParse(this.bare, `refs/heads/${head}`);
      if (!sha) throw new HttpError(422, `Validation Failed: head ${head} does not exist`);
      if (this.pulls().some((i) => i.state === "open" && i.pull!.head.ref === head)) throw new HttpError(422, `A pull request already exists for ${this.owner}:${head}.`);
      const issue: FakeIssue = {
        number: this.nextIssue++,
        title: String(input.title),
        body: String(input.body ?? ""),
        user: { login: this.botLogin, type: "Bot" },
        labels: [],
        state: "open",
        reactions: [],
        pull: { head: { ref: head, sha, repo: this.fullName }, base: { ref: String(input.base) }, merged: false, mergeCommitSha: null },
        updatedAt: this.tick(),
      };
      this.issues.set(issue.number, issue);
      return { status: 201, body: this.pullJson(issue) };
    }

    if (rest === "/pulls" && method === "GET") {
      const head = url.searchParams.get("head")?.replace(new RegExp(`^${this.owner}:`), "");
      const state = url.searchParams.get("state") ?? "open";
      const list = this.pulls().filter((i) => (state === "all" || i.state === state) && (head === undefined || i.pull!.head.ref === head));
      // As on GitHub: newest first by default; sorted by updated_at, oldest first unless direction=desc.
      if (url.searchParams.get("sort") === "updated") {
        list.sort((a, b) => a.updatedAt.localeCompare(b.updatedAt));
        if (url.searchParams.get("direction") !== "desc") list.reverse();
      }
      // Listed pull requests have merged_at but no `merged`; a page holds at most 100.
      return this.page(list.reverse().map((i) => ({ ...this.pullJson(i), merged: undefined })), url);
    }

    if ((m = /^\/pulls\/(\d+)$/.exec(rest)) && method === "GET") {
      const issue = this.issue(Number(m[1]));
      if (!issue.pull) throw new HttpError(404, "Not Found");
      // Like GitHub: the head sha follows the branch while the pull request is open.
      if (issue.state === "open") issue.pull.head.sha = revParse(this.bare, `refs/heads/${issue.pull.head.ref}`) ?? issue.pull.head.sha;
      return { body: this.pullJson(issue) };
    }

    if (rest === "/check-runs" && method === "POST") {
      // As on GitHub: the commit must be in the repository (422 "No commit found for SHA").
      if (!/^[0-9a-f]{40}$/.test(String(input.head_sha)) || revParse(this.bare, String(input.head_sha)) === null) throw new HttpError(422, `No commit found for SHA: ${String(input.head_sha)}`);
      const run: FakeCheckRun = {
        id: this.nextCheck++,
        name: String(input.name),
        headSha: String(input.head_sha),
        status: String(input.status ?? "queued"),
        conclusion: (input.conclusion as string | undefined) ?? null,
        output: (input.output as FakeCheckRun["output"]) ?? null,
        updates: 0,
      };
      // A conclusion completes the run; "completed" needs one.
      if (run.conclusion !== null) run.status = "completed";
      checkRunFields(run);
      this.checkRuns.set(run.id, run);
      return { status: 201, body: checkJson(run) };
    }

    if ((m = /^\/check-runs\/(\d+)$/.exec(rest))) {
      const run = this.checkRuns.get(Number(m[1]));
      if (!run) throw new HttpError(404, "Not Found");
      if (method === "PATCH") {
        if (input.status !== undefined) run.status = String(input.status);
        if (input.conclusion !== undefined) run.conclusion = String(input.conclusion);
        if (run.conclusion !== null) run.status = "completed";
        if (input.output !== undefined) run.output = input.output as FakeCheckRun["output"];
        checkRunFields(run);
        run.updates++;
      }
      return { body: checkJson(run) };
    }

    if ((m = /^\/commits\/([^/]+)\/check-runs$/.exec(rest)) && method === "GET") {
      const runs = this.checksFor(decodeURIComponent(m[1]));
      return { body: { total_count: runs.length, check_runs: runs.map(checkJson) } };
    }

    throw new HttpError(404, `Not Found (fake GitHub has no ${method} ${p})`);
  }
}

export interface WebhookDelivery {
  id: string;
  name: string;
  payload: Record<string, unknown>;
}

function userJson(user: User) {
  return { login: user.login, type: user.type };
}

function checkJson(run: FakeCheckRun) {
  return { id: run.id, name: run.name, head_sha: run.headSha, status: run.status, conclusion: run.conclusion, output: run.output };
}

const CHECK_CONCLUSIONS = new Set(["action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"]);

/** What GitHub refuses with 422 in a check run: an unknown status or conclusion, completed without a conclusion, output without title or summary, or output over its limits. */
function checkRunFields(run: FakeCheckRun): void {
  if (!["queued", "in_progress", "completed"].includes(run.status)) throw new HttpError(422, `Validation Failed: status ${run.status} is not included in the list`);
  if (run.conclusion !== null && !CHECK_CONCLUSIONS.has(run.conclusion)) throw new HttpError(422, `Validation Failed: conclusion ${run.conclusion} is not included in the list`);
  if (run.status === "completed" && run.conclusion === null) throw new HttpError(422, "Validation Failed: conclusion can't be blank when status is completed");
  if (run.output && (typeof run.output.title !== "string" || typeof run.output.summary !== "string")) throw new HttpError(422, "Validation Failed: output needs a title and a summary");
  checkOutputLimits(run.output);
}

function checkOutputLimits(output: FakeCheckRun["output"]): void {
  for (const key of ["summary", "text"] as const) {
    // GitHub counts bytes of UTF-8 here, not the characters its docs name.
    if (Buffer.byteLength(output?.[key] ?? "", "utf8") > 65_535) throw new HttpError(422, `Validation Failed: ${key} exceeds a maximum bytesize of 65535`);
  }
}
