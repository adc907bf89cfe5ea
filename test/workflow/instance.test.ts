import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startInstance } from "../../src/workflow/instance.js";

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

describe("startInstance", () => {
  it("counts the process recorded as current as ended when the next one starts, and remembers the last 100", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "relabel-instance-"));
    const first = await startInstance(dir);
    expect([...first.ended]).toEqual([]);
    const second = await startInstance(dir);
    expect(second.id).not.toBe(first.id);
    expect([...second.ended]).toEqual([first.id]);
    const ids = [first.id, second.id];
    for (let n = 0; n < 105; n++) ids.push((await startInstance(dir)).id);
    const recorded = JSON.parse(readFileSync(path.join(dir, "instances.json"), "utf8")) as { current: string; ended: string[] };
    expect(recorded.current).toBe(ids.at(-1));
    expect(recorded.ended).toEqual(ids.slice(-101, -1));
  });

  it("starts afresh from a file it cannot read, in a state directory that does not exist yet", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "relabel-instance-"));
    writeFileSync(path.join(dir, "instances.json"), "{ not json");
    expect([...(await startInstance(dir)).ended]).toEqual([]);
    const fresh = await startInstance(path.join(dir, "new", "state"));
    expect([...fresh.ended]).toEqual([]);
    expect(fresh.id).toMatch(/^.+:\d+:[0-9a-f]{8}$/);
  });
});
