/**
 * The selection's worker thread, booted ahead of need: `relabel rank` starts it before the command's modules load
 * (30-40 ms at start-up, about what the thread takes to boot), and startSelectionWorker takes it. It is unreferenced
 * until taken, so that one left unused never keeps the process alive.
 */
import { Worker } from "node:worker_threads";
import { compiledWorkerScript } from "./worker-script.js";

let booted: { worker: Worker; failed: boolean } | undefined;

/** Boots the worker thread (of `script`: the tests give another), unless one is booted and not yet taken. */
export function bootSelectionWorker(script = compiledWorkerScript(import.meta.url, "exec", "selection-worker")): void {
  if (booted || !script) return;
  const worker = new Worker(script);
  worker.unref();
  const entry = { worker, failed: false };
  // A thread that fails or ends before it is taken is not handed out (its events would have gone unheard).
  const fail = (): void => {
    entry.failed = true;
  };
  worker.once("error", fail);
  worker.once("exit", fail);
  booted = entry;
}

/** The booted worker thread, now keeping the process alive; undefined when none was booted or it failed. */
export function takeBootedSelectionWorker(): Worker | undefined {
  const entry = booted;
  booted = undefined;
  if (!entry || entry.failed) return undefined;
  entry.worker.ref();
  return entry.worker;
}
