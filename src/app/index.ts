/**
 * The relabel-loop GitHub App (Probot 14). Handlers only wire: a webhook payload becomes a plain event record for
 * the round workflow (src/workflow/round.ts), which runs in the background so that GitHub gets its answer at once.
 * Redeliveries are recognised by the workflow through the ledger's event log.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ApplicationFunction, Context, Probot, ProbotOctokit } from "probot";
import { Ledger } from "../ledger/ledger.js";
import { SOFTWARE } from "../version.js";
import type { ConfigFile, IssueInfo } from "../workflow/forge.js";
import { GitHubForge, pullRequestInfo, pullRequestsOfCheck, type AppIdentity, type RepoCache } from "../workflow/github-forge.js";
import { startInstance, type ProcessInstance } from "../workflow/instance.js";
import { Pacer } from "../workflow/pacer.js";
import { RoundWorkflow, type WorkflowLogger } from "../workflow/round.js";

export interface AppSettings {
  /** Where the app keeps ledger clones, job files, rendered stages and downloads (RELABEL_STATE_DIR). */
  stateDir: string;
  /**
   * The data repo's git remote; `{owner}` and `{repo}` are filled in (RELABEL_LEDGER_REMOTE). For https remotes
   * the installation token is sent as a header, never in the URL. Tests point it at a local bare repository.
   */
  ledgerRemote: string;
  /** Web address for links in comments (RELABEL_WEB_URL). */
  webUrl: string;
  /** Author of the ledger's commits. */
  author: { name: string; email: string };
  /** Milliseconds between polls of a repository's open jobs; null: the repository's `poll_seconds`. */
  pollIntervalMs: number | null;
  /**
   * Whether a repository's stages may run on this host (`backend: local`, or no executors): only when the operator
   * says so (RELABEL_ALLOW_LOCAL_EXECUTOR=1), since the config and its setup lines come from the data repo.
   */
  allowLocalExecutor: boolean;
  /** The App's private key file (PRIVATE_KEY_PATH), refused as an executor's SSH key. */
  appKeyFile?: string;
  /** The folder of SSH key files a repository's executors may use (RELABEL_SSH_KEY_DIR); none without it. */
  sshKeyDir?: string;
  /** How long the poller waits before asking again for a token that an installation refused (10 minutes). */
  tokenRetryMs?: number;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): AppSettings {
  const host = env.GHE_HOST ? `${env.GHE_PROTOCOL ?? "https"}://${env.GHE_HOST}` : "https://github.com";
  return {
    stateDir: path.resolve(env.RELABEL_STATE_DIR ?? ".relabel-state"),
    ledgerRemote: env.RELABEL_LEDGER_REMOTE ?? `${host}/{owner}/{repo}.git`,
    webUrl: env.RELABEL_WEB_URL ?? host,
    author: { name: env.RELABEL_GIT_NAME ?? "relabel-loop[bot]", email: env.RELABEL_GIT_EMAIL ?? "relabel-loop[bot]@users.noreply.github.com" },
    pollIntervalMs: null,
    allowLocalExecutor: /^(1|true)$/i.test(env.RELABEL_ALLOW_LOCAL_EXECUTOR ?? ""),
    ...(env.PRIVATE_KEY_PATH ? { appKeyFile: path.resolve(env.PRIVATE_KEY_PATH) } : {}),
    ...(env.RELABEL_SSH_KEY_DIR ? { sshKeyDir: path.resolve(env.RELABEL_SSH_KEY_DIR) } : {}),
  };
}

interface KnownRepo {
  owner: string;
  repo: string;
  installationId: number;
  /** GitHub's id of the repository, which survives a rename or transfer (entries written before it came lack it). */
  repoId?: number;
  /** Its installation is suspended (installation.suspend): not polled, kept for installation.unsuspend. */
  suspended?: true;
}

const TOKEN_RETRY_MS = 10 * 60_000;

interface Payload {
  installation?: { id: number };
  repository: { id?: number; name: string; owner: { login: string }; default_branch?: string };
  sender?: { login: string; type?: string };
}

/** The app's state across events: ledger clones, pacers, background work and the poller's list of repositories. */
export class RelabelApp {
  private probot: Probot | null = null;
  private readonly ledgers = new Map<string, Promise<Ledger>>();
  private readonly pacers = new Map<number, Pacer>();
  private readonly work = new Set<Promise<void>>();
  private readonly repos = new Map<string, KnownRepo>();
  private readonly lastPoll = new Map<string, number>();
  private readonly polling = new Set<string>();
  private readonly repoCaches = new Map<string, RepoCache>();
  /** Installations that refused a token: when to ask again (each is warned about once until it gives one). */
  private readonly refused = new Map<number, number>();
  private readonly gitTokens = new Map<number, { token: string; expiresAt: number }>();
  private reposLoading: Promise<void> | null = null;
  private reposSaved: Promise<void> = Promise.resolve();
  private identity: Promise<AppIdentity> | null = null;
  private instance: Promise<ProcessInstance> | null = null;

  constructor(readonly settings: AppSettings) {}

  /** The Probot application function. */
  readonly appFn: ApplicationFunction = (app) => {
    this.probot = app;
    app.on(["issues.opened", "issues.labeled"], (context) => {
      const p = context.payload;
      this.dispatch(context, (wf) =>
        wf.onIssue({
          delivery: context.id,
          event: `issues.${p.action}`,
          label: p.action === "labeled" ? p.label?.name : undefined,
          issue: issueInfo(p.issue, false),
          sender: { login: p.sender.login, isBot: context.isBot },
        }),
      );
    });
    app.on("issue_comment.created", (context) => {
      const p = context.payload;
      this.dispatch(context, (wf) =>
        wf.onComment({
          delivery: context.id,
          issue: issueInfo(p.issue, p.issue.pull_request != null),
          comment: { id: p.comment.id, body: p.comment.body },
          sender: { login: p.comment.user?.login ?? p.sender.login, isBot: context.isBot || p.comment.user?.type === "Bot" },
        }),
      );
    });
    app.on(["pull_request.opened", "pull_request.synchronize", "pull_request.reopened", "pull_request.labeled"], (context) => {
      const p = context.payload;
      this.dispatch(context, (wf) => wf.onPullRequest({ delivery: context.id, event: `pull_request.${p.action}`, pr: pullRequestInfo(p.pull_request), sender: { login: p.sender.login, isBot: context.isBot } }));
    });
    // The check's Re-run button: the dry run again, for each open PR of this repository at that commit.
    app.on("check_run.rerequested", (context) => {
      const p = context.payload;
      const sender = { login: p.sender.login, isBot: context.isBot };
      this.dispatch(context, async (wf) => wf.onCheckRerequested({ delivery: context.id, prs: await pullRequestsOfCheck(context.octokit, context.repo(), p.check_run.pull_requests, p.check_run.head_sha), sender }));
    });
    // "Re-run all checks" and "Re-run failed checks" on the pull request ask for the App's whole check suite again.
    app.on("check_suite.rerequested", (context) => {
      const p = context.payload;
      const sender = { login: p.sender.login, isBot: context.isBot };
      this.dispatch(context, async (wf) => wf.onCheckRerequested({ delivery: context.id, prs: await pullRequestsOfCheck(context.octokit, context.repo(), p.check_suite.pull_requests, p.check_suite.head_sha), sender }));
    });
    app.on("pull_request.closed", (context) => {
      const p = context.payload;
      this.dispatch(context, (wf) => wf.onPullRequestClosed({ delivery: context.id, event: "pull_request.closed", pr: pullRequestInfo(p.pull_request), sender: { login: p.sender.login, isBot: context.isBot } }));
    });
    // GitHub sends these to every App: a repository the App can no longer reach is no longer polled.
    app.on("installation.deleted", (context) => {
      const id = context.payload.installation.id;
      this.track(this.forget((r) => r.installationId === id));
    });
    // Suspended: kept (unlike deleted), but neither polled nor acted for until unsuspended.
    app.on("installation.suspend", (context) => {
      this.track(this.setSuspended(context.payload.installation.id, true));
    });
    app.on("installation.unsuspend", (context) => {
      this.track(this.setSuspended(context.payload.installation.id, false));
    });
    // A known repository renamed or transferred is polled under its new name at once, not through GitHub's redirect
    // from the old one until its next event.
    app.on(["repository.renamed", "repository.transferred"], (context) => {
      const p = context.payload;
      const installationId = p.installation?.id;
      if (installationId === undefined) return;
      this.track(this.follow({ owner: p.repository.owner.login, repo: p.repository.name, installationId, repoId: p.repository.id }));
    });
    app.on("installation_repositories.removed", (context) => {
      const id = context.payload.installation.id;
      const removed = new Set(context.payload.repositories_removed.map((r) => r.full_name));
      this.track(this.forget((r) => r.installationId === id && removed.has(`${r.owner}/${r.repo}`)));
    });
  };

  /** Resolves when no background work is left (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  /**
   * One poller tick: each known repository whose poll interval has passed gets its open jobs checked. The list
   * of repositories survives restarts in `<stateDir>/repos.json`.
   */
  async tick(): Promise<void> {
    if (!this.probot) return;
    await this.loadRepos();
    for (const known of this.repos.values()) {
      const key = `${known.owner}/${known.repo}`;
      if (known.suspended || this.polling.has(key)) continue;
      const due = (interval: number) => Date.now() - (this.lastPoll.get(key) ?? 0) >= interval;
      if (this.settings.pollIntervalMs !== null && !due(this.settings.pollIntervalMs)) continue;
      const id = known.installationId;
      const retryAt = this.refused.get(id);
      if (retryAt !== undefined && Date.now() < retryAt) continue;
      const octokit = await this.probot.auth(id);
      const forge = this.forge(octokit, known);
      // Read once per tick (a conditional request: GitHub answers 304 while it is unchanged), and handed to the
      // poll, which would otherwise read it again.
      const config = await forge.loadConfig();
      // 401/403: the installation may refuse the App (suspended while the App was not listening).
      if ((config.status === 401 || config.status === 403) && (await this.tokenRefused(id))) continue;
      if (retryAt !== undefined) {
        this.refused.delete(id);
        this.log().info(`relabel-loop: installation ${id} gives the App tokens again; its repositories are polled again`);
      }
      if (!due(this.settings.pollIntervalMs ?? pollSeconds(config) * 1000)) continue;
      this.lastPoll.set(key, Date.now());
      this.polling.add(key);
      this.track(
        (async () => {
          try {
            await (await this.workflow(forge, known)).poll(config);
          } finally {
            this.polling.delete(key);
          }
        })(),
      );
    }
  }

  private dispatch(context: Context, run: (wf: RoundWorkflow) => Promise<void>): void {
    const p = context.payload as unknown as Payload;
    if (!p.installation) {
      context.log.warn("event without an installation; ignored");
      return;
    }
    const known: KnownRepo = { owner: p.repository.owner.login, repo: p.repository.name, installationId: p.installation.id, ...(p.repository.id !== undefined ? { repoId: p.repository.id } : {}) };
    this.track(
      (async () => {
        if (await this.stillSuspended(known)) return;
        await this.remember(known);
        const forge = this.forge(context.octokit, known, p.repository.default_branch);
        await run(await this.workflow(forge, known));
      })(),
    );
  }

  private track(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => this.log().error(`relabel-loop: ${(err as Error)?.stack ?? String(err)}`));
    this.work.add(tracked);
    void tracked.finally(() => this.work.delete(tracked));
  }

  private log(): WorkflowLogger {
    const log = this.probot?.log;
    return {
      info: (m) => log?.info(m),
      warn: (m) => log?.warn(m),
      error: (m) => log?.error(m),
    };
  }

  private forge(octokit: ProbotOctokit, known: KnownRepo, defaultBranch?: string): GitHubForge {
    let pacer = this.pacers.get(known.installationId);
    if (!pacer) this.pacers.set(known.installationId, (pacer = new Pacer(1000)));
    const key = `${known.owner}/${known.repo}`;
    let cache = this.repoCaches.get(key);
    if (!cache) this.repoCaches.set(key, (cache = {}));
    return new GitHubForge({ octokit, app: () => this.appIdentity(), owner: known.owner, repo: known.repo, defaultBranch, pacer, webUrl: this.settings.webUrl, cache });
  }

  /**
   * Whether the installation refuses the App a new token (401/403: suspended, or access revoked; 404: uninstalled).
   * Asked with the App's own JWT, past Probot's token cache. A refusal is logged once per installation (until it
   * gives a token again), and the poller leaves its repositories alone for tokenRetryMs.
   */
  private async tokenRefused(installationId: number): Promise<boolean> {
    const retryAt = this.refused.get(installationId);
    try {
      await this.newToken(installationId);
    } catch (err) {
      this.gitTokens.delete(installationId);
      const status = (err as { status?: number }).status;
      if (status !== 401 && status !== 403 && status !== 404) throw err;
      const wait = this.settings.tokenRetryMs ?? TOKEN_RETRY_MS;
      if (retryAt === undefined) {
        const names = [...this.repos.values()].filter((r) => r.installationId === installationId).map((r) => `${r.owner}/${r.repo}`);
        this.log().warn(
          `relabel-loop: installation ${installationId} refused the App a token (${status}: ${(err as Error).message.split("\n")[0]}); ` +
            `${names.join(", ")} not polled until it gives one (asked again every ${Math.round(wait / 1000)} s)`,
        );
      }
      this.refused.set(installationId, Date.now() + wait);
      return true;
    }
    return false;
  }

  /**
   * GitHub delivers no events for a suspended installation, so an event for one marked suspended means the
   * unsuspend went unheard (the App was down) — unless a fresh token is still refused, in which case it is ignored.
   */
  private async stillSuspended(known: KnownRepo): Promise<boolean> {
    await this.loadRepos();
    const id = known.installationId;
    if (![...this.repos.values()].some((r) => r.installationId === id && r.suspended)) return false;
    if (await this.tokenRefused(id)) {
      this.log().warn(`relabel-loop: ${known.owner}/${known.repo}: event ignored, installation ${id} is suspended`);
      return true;
    }
    await this.setSuspended(id, false);
    return false;
  }

  /** Marks an installation's repositories suspended or not; unsuspended ones are polled at the next tick. */
  private async setSuspended(installationId: number, suspended: boolean): Promise<void> {
    await this.loadRepos();
    const keys: string[] = [];
    for (const [key, r] of this.repos) {
      if (r.installationId !== installationId || (r.suspended ?? false) === suspended) continue;
      if (suspended) r.suspended = true;
      else delete r.suspended;
      this.lastPoll.delete(key);
      keys.push(key);
    }
    this.refused.delete(installationId);
    this.gitTokens.delete(installationId);
    if (keys.length === 0) return;
    this.log().info(
      suspended
        ? `relabel-loop: installation ${installationId} is suspended: ${keys.join(", ")} not polled until it is unsuspended`
        : `relabel-loop: installation ${installationId} is unsuspended: polling ${keys.join(", ")} again`,
    );
    await this.saveRepos();
  }

  /** The App's id and slug (GET /app with its JWT), asked for once: its sticky comments are the ones it wrote. */
  private appIdentity(): Promise<AppIdentity> {
    if (!this.identity) {
      this.identity = (async () => {
        const octokit = await this.probot!.auth();
        const { data } = await octokit.rest.apps.getAuthenticated();
        if (!data?.slug) throw new Error("GET /app: the answer has no slug (the App's name in URLs)");
        return { id: data.id, slug: data.slug };
      })();
      this.identity.catch(() => (this.identity = null));
    }
    return this.identity;
  }

  private repoDir(known: KnownRepo): string {
    return path.join(this.settings.stateDir, "repos", safeName(known.owner), safeName(known.repo));
  }

  private async workflow(forge: GitHubForge, known: KnownRepo): Promise<RoundWorkflow> {
    const key = `${known.owner}/${known.repo}`;
    let ledger = this.ledgers.get(key);
    if (!ledger) {
      const remote = this.settings.ledgerRemote.replaceAll("{owner}", known.owner).replaceAll("{repo}", known.repo);
      ledger = Ledger.open({ remote, workdir: path.join(this.repoDir(known), "ledger"), author: this.settings.author, auth: (refused) => this.token(known.installationId, refused) });
      this.ledgers.set(key, ledger);
      ledger.catch(() => this.ledgers.delete(key));
    }
    if (!this.instance) {
      this.instance = startInstance(this.settings.stateDir);
      this.instance.catch(() => (this.instance = null));
    }
    const instance = await this.instance;
    const { allowLocalExecutor, appKeyFile, sshKeyDir } = this.settings;
    const offeredKeys = { dir: sshKeyDir ?? null };
    return new RoundWorkflow({ forge, ledger: await ledger, stateDir: this.repoDir(known), software: SOFTWARE, log: this.log(), instance, allowLocalExecutor, appKeyFile, offeredKeys });
  }

  /**
   * An installation token for git over https, kept until 5 minutes before it expires, or until the remote refuses it
   * (`refused`: revoked early, as when the installation's permissions change).
   */
  private async token(installationId: number, refused?: string): Promise<string> {
    const kept = this.gitTokens.get(installationId);
    if (kept && kept.token !== refused && kept.expiresAt - Date.now() > 5 * 60_000) return kept.token;
    return this.newToken(installationId);
  }

  /**
   * Asks GitHub for an installation token with the App's JWT. Not through the installation Octokit's auth(): that
   * call goes to api.github.com whatever the baseUrl, so it fails on GitHub Enterprise.
   */
  private async newToken(installationId: number): Promise<string> {
    const app = await this.probot!.auth();
    const { data } = await app.rest.apps.createInstallationAccessToken({ installation_id: installationId });
    this.gitTokens.set(installationId, { token: data.token, expiresAt: Date.parse(data.expires_at) });
    return data.token;
  }


  private get reposFile(): string {
    return path.join(this.settings.stateDir, "repos.json");
  }

  /** Reads repos.json once; every caller waits for the same read. A file that does not parse is set aside. */
  private loadRepos(): Promise<void> {
    this.reposLoading ??= (async () => {
      const file = this.reposFile;
      const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? null : Promise.reject(err)));
      if (text === null) return;
      const repos = parseRepos(text);
      if (typeof repos === "string") {
        const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
        await rename(file, aside);
        this.log().error(`relabel-loop: ${file}: ${repos}; kept as ${path.basename(aside)}, and each repository is polled again after its next event`);
        return;
      }
      for (const r of repos) this.repos.set(`${r.owner}/${r.repo}`, r);
    })().catch((err: unknown) => {
      this.reposLoading = null; // tried again by the next caller
      throw err;
    });
    return this.reposLoading;
  }

  /**
   * Adds or updates the repository of an event. One renamed or transferred keeps its id: its entry under the old
   * name goes, since GitHub redirects the old name and the poller would otherwise poll the repository twice.
   */
  private async remember(known: KnownRepo): Promise<void> {
    await this.loadRepos();
    const key = `${known.owner}/${known.repo}`;
    const moved = known.repoId === undefined ? [] : [...this.repos].filter(([k, r]) => k !== key && r.repoId === known.repoId).map(([k]) => k);
    const kept = this.repos.get(key);
    if (moved.length === 0 && kept?.installationId === known.installationId && kept.repoId === known.repoId) return;
    for (const old of moved) {
      this.repos.delete(old);
      this.lastPoll.delete(old);
    }
    if (moved.length > 0) this.log().info(`relabel-loop: ${moved.join(", ")} is now ${key} (renamed or transferred); polled under its new name`);
    this.repos.set(key, known);
    await this.saveRepos();
  }

  /** remember() for a repository known by its id already; others are not polled until an event of theirs. */
  private async follow(known: KnownRepo & { repoId: number }): Promise<void> {
    await this.loadRepos();
    if ([...this.repos.values()].some((r) => r.repoId === known.repoId)) await this.remember(known);
  }

  private async forget(gone: (r: KnownRepo) => boolean): Promise<void> {
    await this.loadRepos();
    const keys = [...this.repos].filter(([, r]) => gone(r)).map(([key]) => key);
    if (keys.length === 0) return;
    for (const key of keys) {
      this.repos.delete(key);
      this.lastPoll.delete(key);
    }
    this.log().info(`relabel-loop: no longer polling ${keys.join(", ")} (the App was uninstalled or lost access)`);
    await this.saveRepos();
  }

  /**
   * Writes the list as it is when its turn comes, one write at a time, through a temporary file and a rename: a
   * reader (or a restart after a crash) sees the old list or the new one, never half of one.
   */
  private saveRepos(): Promise<void> {
    const save = this.reposSaved.then(async () => {
      const file = this.reposFile;
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, `${JSON.stringify([...this.repos.values()], null, 2)}\n`);
      await rename(`${file}.tmp`, file);
    });
    this.reposSaved = save.catch(() => undefined);
    return save;
  }
}

/** repos.json's entries, or what is wrong with the file. */
function parseRepos(text: string): KnownRepo[] | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (!Array.isArray(data)) return "expected a list of {owner, repo, installationId}";
  // `suspended` came later: entries without it (older files) are active installations.
  const bad = data.findIndex(
    (r: (Partial<Omit<KnownRepo, "suspended">> & { suspended?: unknown }) | null) =>
      typeof r?.owner !== "string" ||
      typeof r.repo !== "string" ||
      !Number.isInteger(r.installationId) ||
      (r.repoId !== undefined && !Number.isInteger(r.repoId)) ||
      (r.suspended !== undefined && typeof r.suspended !== "boolean"),
  );
  if (bad !== -1) return `entry ${bad + 1}: expected {owner, repo, installationId} and, for a suspended installation, suspended: true`;
  return (data as Array<KnownRepo | (Omit<KnownRepo, "suspended"> & { suspended: false })>).map(({ suspended, ...r }) => (suspended ? { ...r, suspended: true } : r));
}


function pollSeconds(file: ConfigFile): number {
  const value = (file.data as { poll_seconds?: unknown } | null)?.poll_seconds;
  return typeof value === "number" && value >= 30 ? value : 300;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}

interface IssuePayload {
  number: number;
  title: string;
  body?: string | null;
  user?: { login: string } | null;
  labels?: Array<{ name?: string } | string>;
}

function issueInfo(issue: IssuePayload, isPullRequest: boolean): IssueInfo {
  return {
    number: issue.number,
    title: issue.title,
    body: issue.body ?? "",
    labels: (issue.labels ?? []).map((l) => (typeof l === "string" ? l : (l.name ?? ""))).filter((l) => l !== ""),
    author: issue.user?.login ?? "ghost",
    isPullRequest,
  };
}

