/** Worker thread of fps-threads.ts selectOnWorker: one selection, posted back whole. */
import { parentPort } from "node:worker_threads";
import type { SelectionInput } from "../core/select/fps.js";
import { selectCandidatesThreaded } from "./fps-threads.js";

parentPort?.once("message", async ({ input, threads }: { input: SelectionInput; threads?: number }) => {
  try {
    const result = await selectCandidatesThreaded(input, { threads });
    parentPort?.postMessage({ result }, [result.distanceToCovered.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
});
