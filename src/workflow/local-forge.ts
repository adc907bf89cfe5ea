/**
 * The Forge without GitHub, for `relabel demo` and `relabel round`: issues, pull requests, comments and check runs
 * are kept in `<dir>/forge.json` (read back by LocalForge.load, so that later commands continue the same threads)
 * and rendered as Markdown (`<dir>/threads/<n>.md`, `<dir>/checks/<id>.md`) for people to read; merging a pull
 * request merges its branch in the ledger (Ledger.mergeBranch).
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { CONFIG_FILE } from "../core/app/config.js";
import { readJsonFile } from "../io/json-file.js";
import type { Ledger } from "../ledger/ledger.js";
import { REACTIONS, type CheckRunUpdate, type CommentInfo, type ConfigFile, type Forge, type IssueInfo, type Permission, type PullRequestInfo, type Reaction } from "./forge.js";
import { parse as parseYaml } from "yaml";

const localThreadSchema = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string(),
  author: z.string(),
  labels: z.array(z.string()),
  state: z.enum(["open", "closed"]),
  reactions: z.array(z.enum(REACTIONS)),
  comments: z.array(z.object({ id: z.number().int().positive(), body: z.string(), author: z.string() })),
  pull: z.object({ head: z.string(), base: z.string(), headSha: z.string(), merged: z.boolean(), mergeCommitSha: z.string().nullable() }).nullable(),
});

const localCheckSchema = z.object({
  id: z.number().int().positive(),
  name: z.string(),
  headSha: z.string(),
  status: z.string(),
  conclusion: z.string().nullable(),
  title: z.string(),
  summary: z.string(),
});

const forgeRecordSchema = z.object({ threads: z.array(localThreadSchema), checks: z.array(localCheckSchema) });

type LocalThread = z.infer<typeof localThreadSchema>;
type LocalCheck = z.infer<typeof localCheckSchema>;

/** Where the records live in the forge's directory. */
const FORGE_RECORD = "forge.json";

export interface LocalForgeOptions {
  /** Where the records go. */
  dir: string;
  ledger: Ledger;
  /** Shown as the repository name. */
  repo: string;
  /** How a committed file is shown in comments (e.g. its path in a checkout). */
  link: (file: string, sha: string) => string;
  /**
   * The highest issue or pull request number the data repository's rounds name. New threads are numbered above
   * it, as GitHub numbers them for the whole repository: a round opened from another workspace, or on GitHub, must
   * not share a number with a thread here, or a command on this thread would act on that round.
   */
  numbersInUse?: () => Promise<number>;
  /**
   * Claims a new thread's number in the data repository, atomically across workspaces; false when another
   * workspace claimed it first (the next number is tried). Without it, numbers are not claimed.
   */
  claimNumber?: (number: number) => Promise<boolean>;
}

export class LocalForge implements Forge {
  readonly repo: string;
  private readonly threads = new Map<number, LocalThread>();
  private readonly checks = new Map<number, LocalCheck>();
  private nextNumber = 1;
  private nextComment = 1;
  private nextCheck = 1;

  constructor(private readonly o: LocalForgeOptions) {
    this.repo = o.repo;
  }

  /** The forge with the threads and checks an earlier process recorded in `<dir>/forge.json` (none when it is missing). */
  static async load(o: LocalForgeOptions): Promise<LocalForge> {
    const forge = new LocalForge(o);
    const record = await readJsonFile(path.join(o.dir, FORGE_RECORD), forgeRecordSchema, "a record of relabel's local threads");
    if (record === null) return forge;
    for (const t of record.threads) forge.threads.set(t.number, t);
    for (const c of record.checks) forge.checks.set(c.id, c);
    const after = (ids: number[]) => Math.max(0, ...ids) + 1;
    forge.nextNumber = after(record.threads.map((t) => t.number));
    forge.nextComment = after(record.threads.flatMap((t) => t.comments.map((c) => c.id)));
    forge.nextCheck = after(record.checks.map((c) => c.id));
    return forge;
  }

  async defaultBranch(): Promise<string> {
    return this.o.ledger.defaultBranch;
  }

  async issue(number: number): Promise<IssueInfo> {
    const t = this.thread(number);
    return { number, title: t.title, body: t.body, labels: [...t.labels], author: t.author, isPullRequest: t.pull !== null };
  }

  /** `.github/relabel.yml` from the ledger's default branch, as GitHub's flow reads it. */
  async loadConfig(): Promise<ConfigFile> {
    const content = await this.o.ledger.read(CONFIG_FILE);
    if (content === null) return { found: false, data: null };
    try {
      return { found: true, data: parseYaml(content.toString("utf8")) as unknown };
    } catch (err) {
      return { found: true, data: null, error: `${CONFIG_FILE}: not valid YAML (${(err as Error).message.split("\n")[0]})` };
    }
  }

  /** The person running the local flow owns the repository. */
  async permission(): Promise<Permission> {
    return "admin";
  }

  async react(target: { issue: number } | { comment: number }, reaction: Reaction): Promise<void> {
    if ("issue" in target) {
      this.thread(target.issue).reactions.push(reaction);
      await this.save(target.issue);
    }
  }

  async comment(issue: number, body: string): Promise<number> {
    const id = this.nextComment++;
    this.thread(issue).comments.push({ id, body, author: "relabel-loop" });
    await this.save(issue);
    return id;
  }

  /** A person comments (e.g. a `/relabel` command); returns the comment id. */
  async addComment(issue: number, author: string, body: string): Promise<number> {
    const id = this.nextComment++;
    this.thread(issue).comments.push({ id, body, author });
    await this.save(issue);
    return id;
  }

  async upsertComment(issue: number, marker: string, render: (previous: string | null) => string): Promise<number> {
    const existing = this.thread(issue).comments.find((c) => c.body.includes(marker));
    const text = render(existing?.body ?? null);
    if (!text.includes(marker)) throw new Error(`a sticky comment body must hold its marker ${marker}`);
    if (!existing) return this.comment(issue, text);
    existing.body = text;
    await this.save(issue);
    return existing.id;
  }

  async listComments(issue: number): Promise<CommentInfo[]> {
    return this.thread(issue).comments.map((c) => ({ ...c }));
  }

  /** A person opens an issue (the local counterpart of the round issue form). */
  async openIssue(o: { title: string; body: string; labels: string[]; author: string }): Promise<IssueInfo> {
    const number = await this.newNumber();
    this.threads.set(number, { number, ...o, labels: [...o.labels], state: "open", reactions: [], comments: [], pull: null });
    await this.save(number);
    return this.issue(number);
  }

  async openPullRequest(o: { head: string; base: string; title: string; body: string; labels?: string[]; author?: string }): Promise<number> {
    const open = [...this.threads.values()].find((t) => t.pull && t.state === "open" && t.pull.head === o.head);
    if (open) {
      open.pull!.headSha = (await this.o.ledger.head(o.head)) ?? open.pull!.headSha;
      await this.save(open.number);
      return open.number;
    }
    const headSha = await this.o.ledger.head(o.head);
    if (headSha === null) throw new Error(`cannot open a pull request: no branch ${o.head}`);
    const number = await this.newNumber();
    this.threads.set(number, {
      number,
      title: o.title,
      body: o.body,
      author: o.author ?? "relabel-loop",
      labels: [...(o.labels ?? [])],
      state: "open",
      reactions: [],
      comments: [],
      pull: { head: o.head, base: o.base, headSha, merged: false, mergeCommitSha: null },
    });
    await this.save(number);
    return number;
  }

  async pullRequest(number: number): Promise<PullRequestInfo> {
    const t = this.thread(number);
    if (!t.pull) throw new Error(`#${number} is an issue, not a pull request`);
    return {
      number,
      title: t.title,
      state: t.state,
      merged: t.pull.merged,
      mergeCommitSha: t.pull.mergeCommitSha,
      author: t.author,
      labels: [...t.labels],
      head: { ref: t.pull.head, sha: t.pull.headSha, fork: false },
      base: { ref: t.pull.base },
    };
  }

  /** Every one: a workspace's threads are few (`since` is for GitHub's long lists). */
  async mergedPullRequests(label: string): Promise<PullRequestInfo[]> {
    const merged = [...this.threads.values()].filter((t) => t.pull?.merged && t.labels.includes(label)).reverse();
    return Promise.all(merged.map((t) => this.pullRequest(t.number)));
  }

  /** Merges the pull request's branch in the ledger, as the merge button would. */
  async merge(number: number): Promise<PullRequestInfo> {
    const t = this.thread(number);
    if (!t.pull || t.state !== "open") throw new Error(`#${number} is not an open pull request`);
    t.pull.mergeCommitSha = await this.o.ledger.mergeBranch(t.pull.head, `Merge pull request #${number} from ${t.pull.head}`);
    t.pull.merged = true;
    t.state = "closed";
    await this.save(number);
    return this.pullRequest(number);
  }

  async addLabels(issue: number, labels: string[]): Promise<void> {
    const t = this.thread(issue);
    for (const l of labels) if (!t.labels.includes(l)) t.labels.push(l);
    await this.save(issue);
  }

  async createCheckRun(o: { name: string; headSha: string } & CheckRunUpdate): Promise<number> {
    const id = this.nextCheck++;
    this.checks.set(id, { id, name: o.name, headSha: o.headSha, status: o.status, conclusion: o.conclusion ?? null, title: o.output?.title ?? "", summary: o.output?.summary ?? "" });
    await this.saveCheck(id);
    return id;
  }

  async updateCheckRun(id: number, update: CheckRunUpdate): Promise<void> {
    const c = this.checks.get(id);
    if (!c) throw new Error(`no check run ${id}`);
    c.status = update.status;
    c.conclusion = update.conclusion ?? c.conclusion;
    if (update.output) [c.title, c.summary] = [update.output.title, update.output.summary];
    await this.saveCheck(id);
  }

  /** The check runs recorded so far (for the demo's report and `relabel round`). */
  checkRuns(): Array<{ id: number; name: string; headSha: string; status: string; conclusion: string | null; title: string; summary: string; file: string }> {
    return [...this.checks.values()].map((c) => ({ id: c.id, name: c.name, headSha: c.headSha, status: c.status, conclusion: c.conclusion, title: c.title, summary: c.summary, file: this.checkFile(c.id) }));
  }

  /** Every issue and pull request, in number order, for `relabel round status` and for showing what a command changed. */
  threadList(): Array<{ number: number; title: string; state: "open" | "closed"; labels: string[]; pull: { head: string; merged: boolean } | null; comments: CommentInfo[] }> {
    return [...this.threads.values()]
      .sort((a, b) => a.number - b.number)
      .map((t) => ({ number: t.number, title: t.title, state: t.state, labels: [...t.labels], pull: t.pull && { head: t.pull.head, merged: t.pull.merged }, comments: t.comments.map((c) => ({ ...c })) }));
  }

  async closeIssue(issue: number): Promise<void> {
    this.thread(issue).state = "closed";
    await this.save(issue);
  }

  fileLink(file: string, sha: string): string {
    return this.o.link(file, sha);
  }

  imageLink(file: string, sha: string): string {
    return this.o.link(file, sha);
  }

  threadFile(number: number): string {
    return path.join(this.o.dir, "threads", `${number}.md`);
  }

  private checkFile(id: number): string {
    return path.join(this.o.dir, "checks", `${id}.md`);
  }

  private async newNumber(): Promise<number> {
    // Two workspaces that open a thread at the same moment see the same numbers in use: the claim decides.
    for (;;) {
      const number = Math.max(this.nextNumber, ((await this.o.numbersInUse?.()) ?? 0) + 1);
      this.nextNumber = number + 1;
      if (this.o.claimNumber === undefined || (await this.o.claimNumber(number))) return number;
    }
  }

  private thread(number: number): LocalThread {
    const t = this.threads.get(number);
    if (!t) throw new Error(`no issue or pull request #${number}`);
    return t;
  }

  private async save(number: number): Promise<void> {
    const t = this.thread(number);
    const kind = t.pull ? `pull request (${t.pull.head} → ${t.pull.base}${t.pull.merged ? `, merged in ${t.pull.mergeCommitSha}` : ""})` : "issue";
    const lines = [`# #${t.number} ${t.title}`, "", `${kind}, ${t.state}, opened by ${t.author}; labels: ${t.labels.join(", ") || "none"}`, "", t.body, ""];
    for (const c of t.comments) lines.push("---", "", `**${c.author}** (comment ${c.id}):`, "", c.body, "");
    await mkdir(path.dirname(this.threadFile(number)), { recursive: true });
    await writeFile(this.threadFile(number), lines.join("\n"));
    await this.saveState();
  }

  private async saveCheck(id: number): Promise<void> {
    const c = this.checks.get(id)!;
    await mkdir(path.dirname(this.checkFile(id)), { recursive: true });
    await writeFile(this.checkFile(id), [`# ${c.name}`, "", `commit ${c.headSha}: ${c.status}${c.conclusion ? `, ${c.conclusion}` : ""}`, "", `## ${c.title}`, "", c.summary, ""].join("\n"));
    await this.saveState();
  }

  private async saveState(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    // Through a rename: a command stopped halfway must not leave later commands a cut record.
    const file = path.join(this.o.dir, FORGE_RECORD);
    await writeFile(`${file}.tmp`, `${JSON.stringify({ threads: [...this.threads.values()], checks: [...this.checks.values()] }, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }
}
