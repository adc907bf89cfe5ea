/**
 * Reads and rewrites jobs.json: atomically (temporary file + rename) and under a lock file, so a `relabel jobs
 * --watch` and a `relabel submit` on the same file never lose each other's updates.
 */
import { open, readFile, rename, rm } from "node:fs/promises";
import { InputError } from "../core/errors.js";
import { emptyLedger, ledgerSchema, type Ledger } from "../core/exec/ledger.js";
import { ExecError } from "./errors.js";

export async function readLedger(file: string): Promise<Ledger> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyLedger();
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InputError(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = ledgerSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(file, issue.path.map(String).join(".") || undefined, `not a relabel jobs file: ${issue.message}`);
  }
  return parsed.data;
}

const LOCK_WAIT_MS = 30_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function lock(file: string): Promise<() => Promise<void>> {
  const lockFile = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockFile, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number(await readFile(lockFile, "utf8").catch(() => ""));
    // A lock left by a process that died (or one still being written) is taken over.
    if (Number.isInteger(holder) && holder > 0 && !processAlive(holder)) {
      await rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new ExecError(`${file} is locked by process ${holder || "?"} (remove ${lockFile} if that process is gone)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

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
