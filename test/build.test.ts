/**
 * The compiled package as Node runs it (bin/relabel.js, the App, worker threads), outside vitest's own module
 * transform: a named import that Node cannot find in a CommonJS dependency passes every other test and still
 * breaks the built CLI. `npm test` builds dist/ before the suite runs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";

const dist = path.resolve(import.meta.dirname, "../dist");

it("loads every compiled module in plain Node", () => {
  expect(existsSync(dist), "dist/ is missing: build first (npm test does)").toBe(true);
  const modules = readdirSync(dist, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".js"))
    .map((file) => path.join(dist, file))
    .sort();
  expect(modules.length).toBeGreaterThan(50);
  const script = `
    const failures = [];
    for (const file of ${JSON.stringify(modules)}) {
      try { await import(file); } catch (err) { failures.push(file + ": " + err.message.split("\\n")[0]); }
    }
    process.stdout.write(JSON.stringify(failures));`;
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual([]);
});
