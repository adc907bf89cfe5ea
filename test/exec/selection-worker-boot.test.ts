import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { selectCandidates } from "../../src/core/select/fps.js";
import { startSelectionWorker } from "../../src/exec/fps-threads.js";
import { bootSelectionWorker, takeBootedSelectionWorker } from "../../src/exec/selection-worker-boot.js";
import { seededRandom } from "../core/select/fps-oracle.js";

const scratch = mkdtempSync(path.join(tmpdir(), "selection-boot-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("a selection worker booted ahead", () => {
  it("is taken once, by the next selection worker started, which then selects as on this thread", async () => {
    expect(takeBootedSelectionWorker()).toBeUndefined();
    bootSelectionWorker();
    const selection = startSelectionWorker()!;
    // startSelectionWorker took it: nothing is left to take.
    expect(takeBootedSelectionWorker()).toBeUndefined();
    const random = seededRandom(3);
    const N = 400, D = 6;
    const data = Float32Array.from({ length: N * D }, () => random());
    const input = { features: { rows: N, cols: D, data }, ids: Array.from({ length: N }, (_, i) => `c${i}`), k: 20 };
    const expected = selectCandidates({ ...input, features: { ...input.features, data: data.slice() } });
    const { result } = selection.run(input);
    expect((await result).picks).toEqual(expected.picks);
  });

  it("is not handed out when its thread failed before it was taken", async () => {
    const failing = path.join(scratch, "failing.mjs");
    writeFileSync(failing, "throw new Error('no selection here');\n");
    bootSelectionWorker(pathToFileURL(failing));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(takeBootedSelectionWorker()).toBeUndefined();
    // A later boot gets a thread of its own again.
    bootSelectionWorker();
    const worker = takeBootedSelectionWorker();
    expect(worker).toBeDefined();
    await worker!.terminate();
  });

  it("never keeps the process alive when nobody takes it", () => {
    const module = JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, "../../dist/exec/selection-worker-boot.js")).href);
    const run = (name: string, body: string) => {
      const script = path.join(scratch, name);
      writeFileSync(script, `import { bootSelectionWorker, takeBootedSelectionWorker } from ${module};\nbootSelectionWorker();\n${body}\n`);
      const started = Date.now();
      const result = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 20_000 });
      return { ...result, seconds: (Date.now() - started) / 1000 };
    };
    // Booted and left alone: the process ends once its own timer has run (the thread has booted by then).
    const alone = run("alone.mjs", "setTimeout(() => {}, 800);");
    expect(alone.error).toBeUndefined();
    expect(alone.status).toBe(0);
    expect(alone.seconds).toBeLessThan(15);
    // The same thread is alive then, and taken it is the caller's to end.
    const taken = run("taken.mjs", "setTimeout(async () => { const w = takeBootedSelectionWorker(); console.log(w ? 'alive' : 'gone'); await w?.terminate(); }, 800);");
    expect(taken.stdout.trim()).toBe("alive");
    expect(taken.status).toBe(0);
  });
});
