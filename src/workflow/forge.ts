/**
 * What the round workflow needs from the place where people talk about rounds: GitHub (issues, pull requests,
 * check runs, permissions) or, for the demo, a local folder that records the same things as files. The workflow
 * never sees Probot or Octokit types.
 */

/** Repository permission levels of GitHub's collaborator permission API. */
export type Permission = "admin" | "maintain" | "write" | "triage" | "read" | "none";

export const REACTIONS = ["eyes", "+1", "-1", "confused", "rocket", "hooray"] as const;
export type Reaction = (typeof REACTIONS)[number];

export interface PullRequestInfo {
  number: number;
  title: string;
  state: "open" | "closed";
  merged: boolean;
  /** The merge commit on the base branch, once merged. */
  mergeCommitSha: string | null;
  author: string;
  labels: string[];
  head: { ref: string; sha: string; /** The head branch lives in another repository (a fork). */ fork: boolean };
  base: { ref: string };
}

export type CheckConclusion = "success" | "failure" | "neutral" | "cancelled" | "action_required";

export interface CheckOutput {
  title: string;
  /** At most 65,535 bytes of UTF-8 (GitHub's limit, though its docs say characters); the Forge cuts longer text. */
  summary: string;
  text?: string;
}

export interface CheckRunUpdate {
  status: "queued" | "in_progress" | "completed";
  conclusion?: CheckConclusion;
  output?: CheckOutput;
}

export interface CommentInfo {
  id: number;
  body: string;
  author: string;
}

export interface ConfigFile {
  /** False when the repository has no config file (defaults apply). */
  found: boolean;
  /** The parsed YAML (or JSON) object. */
  data: unknown;
  /** A file that exists but could not be parsed: the reason. */
  error?: string;
  /** The HTTP status of a read that failed (GitHub): 401/403 may mean the installation's token is refused. */
  status?: number;
}

export interface IssueInfo {
  number: number;
  title: string;
  body: string;
  labels: string[];
  author: string;
  /** Pull requests are issues too (comments on either arrive as issue comments). */
  isPullRequest: boolean;
}

export interface Forge {
  /** "owner/repo", for messages. */
  readonly repo: string;
  defaultBranch(): Promise<string>;
  issue(number: number): Promise<IssueInfo>;
  /** `.github/relabel.yml` from the default branch. */
  loadConfig(): Promise<ConfigFile>;
  permission(login: string): Promise<Permission>;
  react(target: { issue: number } | { comment: number }, reaction: Reaction): Promise<void>;
  /** Posts a comment (split into several when longer than GitHub allows); returns the id of the last part. */
  comment(issue: number, body: string): Promise<number>;
  /**
   * Replaces the comment that holds `marker` (created when there is none): one sticky comment per marker. `render`
   * gets the comment's current body (null for a new one) and returns the new body, which must contain the marker.
   */
  upsertComment(issue: number, marker: string, render: (previous: string | null) => string): Promise<number>;
  listComments(issue: number): Promise<CommentInfo[]>;
  /** Opens a pull request, or returns the open one that already has this head branch. */
  openPullRequest(o: { head: string; base: string; title: string; body: string; labels?: string[] }): Promise<number>;
  pullRequest(number: number): Promise<PullRequestInfo>;
  /** Merged pull requests carrying `label`, most recently updated first; on GitHub, those updated at or after `since`. */
  mergedPullRequests(label: string, since: string): Promise<PullRequestInfo[]>;
  addLabels(issue: number, labels: string[]): Promise<void>;
  createCheckRun(o: { name: string; headSha: string } & CheckRunUpdate): Promise<number>;
  updateCheckRun(id: number, update: CheckRunUpdate): Promise<void>;
  closeIssue(issue: number): Promise<void>;
  /** Link to a file as of a commit, for comments. */
  fileLink(path: string, sha: string): string;
  /** Link that renders a committed image (SVG plots) inline in a comment. */
  imageLink(path: string, sha: string): string;
}

/**
 * An issue or pull request the forge no longer has (GitHub answers 410 for a deleted issue, 404 for one moved to a
 * repository the App cannot see): the step that needed it cannot report there, and trying again would not help.
 */
export class ThreadGoneError extends Error {
  constructor(
    readonly thread: number,
    readonly status: number,
    repo: string,
  ) {
    super(`#${thread} is gone from ${repo} (GitHub answered ${status}: the issue or pull request was deleted, or transferred to another repository)`);
    this.name = "ThreadGoneError";
  }
}

/**
 * GitHub's limits: comment bodies 65,536 characters, check-run summary and text 65,535 bytes each (UTF-8: GitHub
 * answers 422 "summary exceeds a maximum bytesize of 65535" for shorter text with Å, – or … in it).
 */
export const CHECK_TEXT_LIMIT = 65_535;

const CUT_NOTE = "\n\n… (cut: the full report is in the ledger)";

/** Cuts text to `limit` characters, saying so at the end. */
export function clip(text: string, limit: number): string {
  if (text.length <= limit) return text;
  return text.slice(0, limit - CUT_NOTE.length) + CUT_NOTE;
}

/** Cuts text to `limit` bytes of UTF-8, between characters, saying so at the end. */
export function clipBytes(text: string, limit: number): string {
  if (Buffer.byteLength(text, "utf8") <= limit) return text;
  const room = limit - Buffer.byteLength(CUT_NOTE, "utf8");
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, "utf8");
    if (bytes + size > room) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end) + CUT_NOTE;
}
