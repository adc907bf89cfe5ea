/**
 * Reads and rewrites jobs.json: atomically (temporary file + rename) and under a lock file, so a `relabel jobs
 * --watch` and a `relabel submit` on the same file never lose each other's updates.
 */
import { open, rename } from "node:fs/promises";
import { readJsonFile } from "../io/json-file.js";
import { takePidLock } from "../io/pid-lock.js";
import { emptyLedger, ledgerSchema, type Ledger } from "../core/exec/ledger.js";
import { ExecError } from "./errors.js";

export async function readLedger(file: string): Promise<Ledger> {
  return (await readJsonFile(file, ledgerSchema, "a relabel jobs file")) ?? emptyLedger();
}

const LOCK_WAIT_MS = 30_000;

const lock = (file: string) =>
  takePidLock(`${file}.lock`, LOCK_WAIT_MS, (holder) => new ExecError(`${file} is locked by process ${holder ?? "?"} (remove ${file}.lock if that process is gone)`));

/** Applies a change to the current file content under the lock and writes the result atomically. */
export async function updateLedger(file: string, change: (ledger: Ledger) => Ledger): Promise<Ledger> {
  const unlock = await lock(file);
  try {
    const next = change(await readLedger(file));
    const tmp = `${file}.tmp-${process.pid}`;
    await writeAll(tmp, `${JSON.stringify(next, null, 2)}\n`);
    await rename(tmp, file);
    return next;
  } finally {
    await unlock();
  }
}

async function writeAll(file: string, text: string): Promise<void> {
  const handle = await open(file, "w");
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
