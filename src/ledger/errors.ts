/**
 * Errors from the git ledger. One line each, scrubbed of credentials: the message is what a webhook handler may
 * post or log, so it never carries a token, an Authorization header or a URL with userinfo.
 */
export type LedgerErrorCode =
  | "invalid-path" // a path that is absolute, climbs out, names .git, or has control characters
  | "frozen" // the caller's guard refused a path (a finished step's directory)
  | "too-large" // a file over GitHub's 100 MiB per-file limit
  | "conflict" // another writer changed one of this commit's files while it was being pushed
  | "merge-conflict" // mergeBranch found conflicting changes
  | "not-found" // a branch or ref that the operation needs is absent
  | "push-rejected" // every push attempt lost the race
  | "invalid-record" // events.jsonl or a lock file that is not what the ledger wrote
  | "lfs" // a Git LFS file whose object could not be fetched or does not match its pointer
  | "git"; // any other git failure

export class LedgerError extends Error {
  constructor(
    readonly code: LedgerErrorCode,
    message: string,
    /** Repository paths the error is about (frozen, too large, conflicting). */
    readonly paths: readonly string[] = [],
  ) {
    super(message);
    this.name = "LedgerError";
  }
}

/**
 * Removes credentials from text: the given secret values (tokens and their encoded forms), userinfo in URLs,
 * `x-access-token:…` pairs and Authorization header values.
 */
export function scrubSecrets(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join("***");
  }
  return out
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1***@")
    .replace(/x-access-token:[^@\s'"]+/gi, "x-access-token:***")
    .replace(/(authorization:\s*)(basic|bearer|token)\s+[^\s'"]+/gi, "$1$2 ***");
}
