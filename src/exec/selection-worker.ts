/** Worker thread of fps-threads.ts startSelectionWorker: one selection, its progress, then the result whole. */
import { parentPort } from "node:worker_threads";
import { selectionMemory } from "../core/select/fps.js";
import { releaseBuffer, selectCandidatesThreaded, type SelectionWorkerReply, type SelectionWorkerRequest } from "./fps-threads.js";

const post = (reply: SelectionWorkerReply, transfer: ArrayBuffer[] = []): void => parentPort?.postMessage(reply, transfer);

parentPort?.once("message", async ({ input: posted, threads, joinSignal }: SelectionWorkerRequest) => {
  try {
    const given = posted.features;
    const input = { ...posted, features: "memory" in given ? selectionMemory(given.memory, given.layout, given.module) : given };
    const step = Math.max(1, Math.floor(input.k / 100));
    let rows: number[] = [];
    const onPick = (picked: number, index: number): void => {
      rows.push(index);
      if (picked % step !== 0) return;
      post({ picked, rows });
      rows = [];
    };
    const onPrepared = (): void => {
      // A moved matrix is this thread's to free; a shared memory is the selection's own.
      if (!("memory" in given) && given.data.buffer instanceof ArrayBuffer) releaseBuffer(given.data.buffer);
    };
    const result = await selectCandidatesThreaded(input, { threads, onPick, onPrepared, joinSignal });
    post({ result }, [result.distanceToCovered.buffer as ArrayBuffer]);
  } catch (error) {
    post({ error: error instanceof Error ? error.message : String(error) });
  }
});
