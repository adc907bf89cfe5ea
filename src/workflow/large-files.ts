/**
 * Ledger files that may outgrow GitHub's 100 MiB per-file limit (a dataset's train split, the ranking.csv of a pool
 * of a million candidates) are committed gzipped above LARGE_FILE_BYTES: `NAME.gz`, which ASE, MACE and relabel-loop
 * read as it is. Smaller ones stay plain, so that their diffs show on GitHub, as do those the repository's
 * .gitattributes routes to Git LFS (the ledger stores them there, where the limit does not apply).
 */
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { Ledger, LedgerFile } from "../ledger/ledger.js";

/** Half GitHub's per-file limit: GitHub warns from 50 MB on, and gzipped text stays far below the limit. */
export const LARGE_FILE_BYTES = 50 * 1024 * 1024;

const gzipAsync = promisify(gzip);

/**
 * The file as committed: `path` with `content`, or `path.gz` with it gzipped when it is over `above` bytes and the
 * repository's .gitattributes does not route `path` to Git LFS.
 */
export async function gzippedIfLarge(ledger: Ledger, path: string, content: Buffer, above = LARGE_FILE_BYTES): Promise<LedgerFile & { content: Buffer }> {
  if (content.length <= above || (await ledger.routesToLfs([path])).has(path)) return { path, content };
  // Level 6, no name or time in the header: the same content gives the same bytes.
  return { path: `${path}.gz`, content: await gzipAsync(content, { level: 6 }) };
}
