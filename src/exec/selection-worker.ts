/**
 * Worker thread of fps-threads.ts startSelectionWorker: one selection, its progress, then the result whole; when
 * asked to stay, then selected.extxyz files (rank's third artifact, written while rank writes the other two).
 */
import { parentPort } from "node:worker_threads";
import { InputError } from "../core/errors.js";
import { selectionMemory } from "../core/select/fps.js";
import { releaseBuffer, selectCandidatesThreaded, type SelectionWorkerReply, type SelectionWorkerRequest } from "./fps-threads.js";

const post = (reply: SelectionWorkerReply, transfer: ArrayBuffer[] = []): void => parentPort?.postMessage(reply, transfer);

async function writeSelected(request: Extract<SelectionWorkerRequest, { writeSelected: unknown }>): Promise<void> {
  try {
    // Loaded only here: the selection waits for this thread to boot, and the extxyz reader and writer are large.
    const { writeSelectedAtRanges } = await import("../io/selected.js");
    await writeSelectedAtRanges(request.writeSelected);
    post({ written: true });
  } catch (error) {
    if (error instanceof InputError) post({ writeFailed: { file: error.file, where: error.where, detail: error.detail } });
    else post({ writeFailed: { message: error instanceof Error ? error.message : String(error) } });
  }
}

parentPort?.once("message", async (request: SelectionWorkerRequest) => {
  if (!("input" in request)) return;
  const { input: posted, threads, joinSignal, stay } = request;
  try {
    const given = posted.features;
    const input = { ...posted, features: "memory" in given ? selectionMemory(given.memory, given.layout) : given };
    const step = Math.max(1, Math.floor(input.k / 100));
    const onPick = (picked: number): void => {
      if (picked % step === 0) post({ picked });
    };
    const onPrepared = (): void => {
      // A moved matrix is this thread's to free; a shared memory is the selection's own.
      if (!("memory" in given) && given.data.buffer instanceof ArrayBuffer) releaseBuffer(given.data.buffer);
    };
    const result = await selectCandidatesThreaded(input, { threads, onPick, onPrepared, joinSignal });
    if (stay) parentPort?.on("message", (next: SelectionWorkerRequest) => void ("writeSelected" in next && writeSelected(next)));
    post({ result }, [result.distanceToCovered.buffer as ArrayBuffer]);
  } catch (error) {
    post({ error: error instanceof Error ? error.message : String(error) });
  }
});
