/**
 * Checks on the files of a ledger commit: path shape, the caller's frozen-path guard and duplicates before any git
 * work; GitHub's per-file size limit on what is committed (after files routed to Git LFS became pointers).
 */
import { LedgerError } from "./errors.js";

/** GitHub refuses pushes containing a file above 100 MiB. */
export const MAX_FILE_BYTES = 100 * 1024 * 1024;

export interface LedgerFile {
  /** Repository path, `/`-separated, relative to the root. */
  path: string;
  /** New content; null deletes the file (a no-op when it is absent). */
  content: Buffer | string | null;
  /** Stored with mode 100755 (e.g. a stage's run.sh). */
  executable?: boolean;
}

/** Returns the step name that freezes `path`, or null when the path may be written. */
export type PathGuard = (path: string) => string | null;

export interface PreparedFile {
  path: string;
  content: Buffer | null;
  executable: boolean;
}

/** Throws LedgerError("invalid-path") unless `path` is a plain relative repository path. */
export function checkRepoPath(path: string): void {
  const fail = (why: string) => {
    throw new LedgerError("invalid-path", `invalid ledger path ${JSON.stringify(path)}: ${why}`, [path]);
  };
  if (path.length === 0) fail("empty");
  if (/[\u0000-\u001f\u007f]/.test(path)) fail("control characters are not allowed");
  if (path.includes("\\")) fail("use / as the separator");
  if (path.startsWith("/")) fail("must be relative to the repository root");
  for (const segment of path.split("/")) {
    if (segment === "") fail("empty path segment (double or trailing /)");
    if (segment === "." || segment === "..") fail(`"${segment}" segments are not allowed`);
    if (segment.toLowerCase() === ".git") fail(".git is reserved by git");
  }
}

/** Validates and guards the files of one commit; returns them with Buffer contents. */
export function prepareFiles(files: readonly LedgerFile[], guard?: PathGuard): PreparedFile[] {
  const seen = new Set<string>();
  const prepared: PreparedFile[] = [];
  for (const file of files) {
    checkRepoPath(file.path);
    if (seen.has(file.path)) {
      throw new LedgerError("invalid-path", `${file.path} appears twice in one commit`, [file.path]);
    }
    seen.add(file.path);
    const step = guard?.(file.path) ?? null;
    if (step !== null) {
      throw new LedgerError(
        "frozen",
        `refusing to ${file.content === null ? "delete" : "write"} ${file.path}: step "${step}" is finished and its files are frozen`,
        [file.path],
      );
    }
    const content = typeof file.content === "string" ? Buffer.from(file.content, "utf8") : file.content;
    prepared.push({ path: file.path, content, executable: file.executable === true });
  }
  return prepared;
}

/** Refuses a commit holding a file over GitHub's 100 MiB limit (a file routed to Git LFS is a small pointer by now). */
export function checkFileSizes(files: readonly PreparedFile[]): void {
  for (const { path, content } of files) {
    if (content !== null && content.length > MAX_FILE_BYTES) {
      throw new LedgerError(
        "too-large",
        `${path} is ${(content.length / 1024 / 1024).toFixed(1)} MiB (${content.length} bytes), above GitHub's ` +
          `100 MiB per-file limit; route it to Git LFS in .gitattributes (the ledger then stores it there) or make it smaller`,
        [path],
      );
    }
  }
}
