/** Worker thread of fps-threads.ts selectOnWorker: one selection, its progress, then the result whole. */
import { parentPort } from "node:worker_threads";
import { releaseBuffer, selectCandidatesThreaded, type MatrixSelectionInput, type SelectionWorkerReply } from "./fps-threads.js";

const post = (reply: SelectionWorkerReply, transfer: ArrayBuffer[] = []): void => parentPort?.postMessage(reply, transfer);

parentPort?.once("message", async ({ input, threads }: { input: MatrixSelectionInput; threads?: number }) => {
  try {
    const step = Math.max(1, Math.floor(input.k / 100));
    const onPick = (picked: number): void => {
      if (picked % step === 0) post({ picked });
    };
    const features = input.features.data.buffer;
    const onPrepared = (): void => {
      if (features instanceof ArrayBuffer) releaseBuffer(features);
    };
    const result = await selectCandidatesThreaded(input, { threads, onPick, onPrepared });
    post({ result }, [result.distanceToCovered.buffer as ArrayBuffer]);
  } catch (error) {
    post({ error: error instanceof Error ? error.message : String(error) });
  }
});
