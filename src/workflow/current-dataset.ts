/**
 * datasets/current in the ledger. A split file over LARGE_FILE_BYTES is committed gzipped (`train.extxyz.gz`): a
 * fine-tuning set's train.extxyz passes GitHub's 100 MiB limit at roughly 700,000 atoms (about 150 bytes per atom
 * with forces and stress). Exported for the App's own steps, every split file is plain again.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { Ledger, LedgerFile } from "../ledger/ledger.js";
import { gzippedIfLarge, LARGE_FILE_BYTES } from "./large-files.js";

export const CURRENT_DATASET = "datasets/current";

/**
 * The ledger files of one split file of a new dataset (`name`: train.extxyz, ...): plain, or gzipped above
 * `gzipAbove` bytes (gzippedIfLarge), and the other form deleted (a no-op when absent). `content` null: the split
 * is gone, both deleted.
 */
export async function splitFileForLedger(ledger: Ledger, name: string, content: Buffer | null, gzipAbove = LARGE_FILE_BYTES): Promise<LedgerFile[]> {
  const plain = `${CURRENT_DATASET}/${name}`;
  if (content === null) return [{ path: plain, content: null }, { path: `${plain}.gz`, content: null }];
  const stored = await gzippedIfLarge(ledger, plain, content, gzipAbove);
  return [stored, { path: stored.path === plain ? `${plain}.gz` : plain, content: null }];
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
