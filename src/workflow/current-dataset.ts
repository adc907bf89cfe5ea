/**
 * datasets/current in the ledger. GitHub refuses files over 100 MiB, and a fine-tuning set's train.extxyz passes that
 * at roughly 700,000 atoms (about 150 bytes per atom with forces and stress). So a split file over
 * DATASET_GZIP_ABOVE is committed gzipped, as `train.extxyz.gz`, which ASE (and so MACE) reads as it is; smaller ones
 * stay plain, so that their diffs show on GitHub. Exported for the App's own steps, every split file is plain again.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGunzip, gzip } from "node:zlib";
import type { Ledger, LedgerFile } from "../ledger/ledger.js";

export const CURRENT_DATASET = "datasets/current";
/** Half GitHub's per-file limit: GitHub warns from 50 MiB on, and a gzipped split stays far below the limit. */
export const DATASET_GZIP_ABOVE = 50 * 1024 * 1024;

const gzipAsync = promisify(gzip);

/**
 * The ledger files of one split file of a new dataset (`name`: train.extxyz, ...): plain, or gzipped above
 * `gzipAbove` bytes, and the other form deleted (a no-op when absent). `content` null: the split is gone, both deleted.
 */
export async function splitFileForLedger(name: string, content: Buffer | null, gzipAbove = DATASET_GZIP_ABOVE): Promise<LedgerFile[]> {
  const plain = `${CURRENT_DATASET}/${name}`;
  const gzipped = `${plain}.gz`;
  if (content === null) return [{ path: plain, content: null }, { path: gzipped, content: null }];
  if (content.length <= gzipAbove) return [{ path: plain, content }, { path: gzipped, content: null }];
  // Level 6, no name or time in the header: the same split gives the same bytes.
  return [{ path: gzipped, content: await gzipAsync(content, { level: 6 }) }, { path: plain, content: null }];
}

/** Exports datasets/current at `ref` under `dir`, every `*.extxyz.gz` gunzipped to its `*.extxyz`; returns its folder. */
export async function exportCurrentDataset(ledger: Ledger, ref: string, dir: string): Promise<string> {
  await ledger.exportTree(ref, dir, [CURRENT_DATASET]);
  const folder = path.join(dir, CURRENT_DATASET);
  const names = await readdir(folder).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith(".extxyz.gz"))) {
    const from = path.join(folder, name);
    await pipeline(createReadStream(from), createGunzip(), createWriteStream(from.slice(0, -3)));
    await rm(from);
  }
  return folder;
}
