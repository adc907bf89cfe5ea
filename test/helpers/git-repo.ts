/**
 * Real git repositories for the app tests: a bare repo as the data repo, and commits pushed to it the way a
 * person would push them (a clone, files written, commit, push).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** git with a clean environment (no ambient GIT_* variables) and a fixed identity. */
export function git(cwd: string, ...args: string[]): string {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^GIT_/.test(k)) env[k] = v;
  return execFileSync("git", ["-c", "user.name=Test Person", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main", ...args], {
    cwd,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** File content, or `{ copy: dir-or-file }` to copy from disk. */
export type FileSpec = string | { copy: string };

/** Creates an empty bare repository with `main` as its default branch. */
export function initBare(dir: string): string {
  mkdirSync(dir, { recursive: true });
  git(dir, "init", "--bare", "--initial-branch=main");
  return dir;
}

/**
 * Commits `files` on `branch` (created from `base` when missing; the first commit of an empty repo when there is
 * no base) and pushes it. Returns the new commit's sha.
 */
export function pushFiles(bare: string, branch: string, files: Record<string, FileSpec>, o: { base?: string; message?: string } = {}): string {
  const work = mkdtempSync(path.join(tmpdir(), "relabel-push-"));
  try {
    git(work, "clone", "--quiet", bare, ".");
    const remoteBranches = git(work, "branch", "-r");
    const has = (b: string) => remoteBranches.split("\n").some((l) => l.trim() === `origin/${b}`);
    if (has(branch)) git(work, "checkout", "--quiet", branch);
    else if (o.base && has(o.base)) git(work, "checkout", "--quiet", "-b", branch, `origin/${o.base}`);
    else git(work, "checkout", "--quiet", "--orphan", branch);
    for (const [rel, spec] of Object.entries(files)) {
      const target = path.join(work, rel);
      mkdirSync(path.dirname(target), { recursive: true });
      if (typeof spec === "string") writeFileSync(target, spec);
      else cpSync(spec.copy, target, { recursive: true });
    }
    git(work, "add", "-A");
    git(work, "commit", "--quiet", "-m", o.message ?? `update ${branch}`);
    git(work, "push", "--quiet", "origin", `HEAD:refs/heads/${branch}`);
    return git(work, "rev-parse", "HEAD");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The content of `file` at `ref` in the bare repo, or null. */
export function show(bare: string, ref: string, file: string): string | null {
  try {
    return git(bare, "show", `${ref}:${file}`);
  } catch {
    return null;
  }
}

/** Paths of the files under `dir` at `ref` (recursive), sorted. */
export function listTree(bare: string, ref: string, dir: string): string[] {
  try {
    const out = git(bare, "ls-tree", "-r", "--name-only", ref, "--", dir);
    return out === "" ? [] : out.split("\n").sort();
  } catch {
    return [];
  }
}

export function revParse(bare: string, ref: string): string | null {
  try {
    return git(bare, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`);
  } catch {
    return null;
  }
}
