/**
 * Builds the `git fast-import` stream for one commit: a single git process writes every blob, the tree and the
 * commit, without a working tree or an index (so a large dataset is never checked out to change one file).
 */
import type { PreparedFile } from "./files.js";

/** The scratch ref fast-import moves; the commit is pushed by sha, this ref only keeps it reachable meanwhile. */
export const IMPORT_REF = "refs/relabel/import";

export interface ImportCommit {
  /** Parent commit sha; null for a root commit (an empty remote). */
  parent: string | null;
  files: readonly PreparedFile[];
  message: string;
  author: { name: string; email: string };
  when: Date;
}

/** C-style quoting, accepted by fast-import for every path (and required for some). */
function quotePath(path: string): string {
  return `"${path.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The stream, as chunks (file contents are passed through, not copied). It ends by printing the commit's sha. */
export function fastImportStream(commit: ImportCommit): Buffer[] {
  const seconds = Math.floor(commit.when.getTime() / 1000);
  const ident = `${commit.author.name} <${commit.author.email}> ${seconds} +0000`;
  const message = Buffer.from(commit.message.endsWith("\n") ? commit.message : `${commit.message}\n`, "utf8");
  const chunks: Buffer[] = [
    Buffer.from(
      `reset ${IMPORT_REF}\ncommit ${IMPORT_REF}\nmark :1\nauthor ${ident}\ncommitter ${ident}\ndata ${message.length}\n`,
    ),
    message,
  ];
  let head = commit.parent === null ? "" : `from ${commit.parent}\n`;
  for (const file of commit.files) {
    if (file.content === null) {
      head += `D ${quotePath(file.path)}\n`;
      continue;
    }
    const mode = file.executable ? "100755" : "100644";
    chunks.push(Buffer.from(`${head}M ${mode} inline ${quotePath(file.path)}\ndata ${file.content.length}\n`));
    chunks.push(file.content);
    head = "\n";
  }
  chunks.push(Buffer.from(`${head}\nget-mark :1\ndone\n`));
  return chunks;
}
