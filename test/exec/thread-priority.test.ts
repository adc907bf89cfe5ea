/**
 * yieldToOtherThreads in a process of its own (the compiled module; `npm test` builds dist/ first), so that the
 * test runner's threads keep their priority.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";

const compiled = path.resolve(import.meta.dirname, "../../dist/exec/thread-priority.js");

/** The nice values of a process's main thread and of a worker thread that called yieldToOtherThreads, the worker started at `niceBefore`. */
function niceAfterYield(niceBefore: number): { main: number; worker: number } {
  const script = `
    import { getPriority, setPriority } from "node:os";
    import { Worker } from "node:worker_threads";
    const code = 'const os = await import("node:os"); const { parentPort } = await import("node:worker_threads");' +
      'os.setPriority(0, ${niceBefore}); (await import(${JSON.stringify(compiled)})).yieldToOtherThreads();' +
      'parentPort.postMessage(os.getPriority(0));';
    const worker = new Worker(code, { eval: true });
    worker.once("message", (nice) => { process.stdout.write(JSON.stringify({ main: getPriority(0), worker: nice })); worker.terminate(); });`;
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { main: number; worker: number };
}

it.runIf(process.platform === "linux")("raises only the calling thread's nice value to 15, and never lowers a higher one", () => {
  const main = spawnSync(process.execPath, ["-e", 'process.stdout.write(String(require("node:os").getPriority(0)))'], { encoding: "utf8" });
  const start = Number(main.stdout);
  expect(niceAfterYield(start)).toEqual({ main: start, worker: Math.max(15, start) });
  expect(niceAfterYield(19)).toEqual({ main: start, worker: 19 });
});
