import { describe, expect, it } from "vitest";
import { KeyedMutex } from "../../src/ledger/mutex.js";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("KeyedMutex", () => {
  it("runs tasks of one key one at a time, in call order, even when one fails", async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let inside = 0;
    const task = (name: string, ms: number, fail = false) =>
      mutex.run("repo", async () => {
        inside++;
        expect(inside).toBe(1);
        log.push(`start ${name}`);
        await tick(ms);
        log.push(`end ${name}`);
        inside--;
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([task("a", 20), task("b", 1, true), task("c", 5)]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("lets different keys run at the same time", async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    await Promise.all([
      mutex.run("x", async () => {
        log.push("x start");
        await tick(20);
        log.push("x end");
      }),
      mutex.run("y", async () => {
        log.push("y start");
        await tick(1);
        log.push("y end");
      }),
    ]);
    expect(log).toEqual(["x start", "y start", "y end", "x end"]);
  });
});
