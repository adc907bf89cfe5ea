/**
 * `relabel demo`: one round on a local git data repository with the bundled real runs. Without MACE it stops at
 * the rendered train stage and prints the command; with the MACE test doubles on PATH (stand-ins, not results)
 * the local executor runs the stages and the round completes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runDemo } from "../../src/cli/commands/demo.js";
import { runCommand } from "../helpers/run-command.js";

const DOUBLES = path.resolve(import.meta.dirname, "../doubles");
const roots: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-demo-"));
  roots.push(dir);
  return dir;
};
afterAll(() => roots.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function withPath<T>(prefix: string | null, task: () => Promise<T>): Promise<T> {
  const original = process.env.PATH;
  process.env.PATH = (original ?? "").split(path.delimiter).filter((d) => !existsSync(path.join(d, "mace_run_train"))).join(path.delimiter);
  if (prefix) process.env.PATH = `${prefix}${path.delimiter}${process.env.PATH}`;
  try {
    return await task();
  } finally {
    process.env.PATH = original;
  }
}

const manifest = (out: string) => JSON.parse(readFileSync(path.join(out, "data-repo/rounds/0001/round.json"), "utf8")) as { state: string; finished_steps: string[] };

describe("relabel demo", () => {
  it("without MACE: replays the recorded runs, rebuilds the dataset and stops at the train stage with its exact command", async () => {
    const out = path.join(tmp(), "demo");
    const res = await withPath(null, () => runCommand(runDemo, "-o", out));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('the "DFT" step is REPLAYED, not computed');
    expect(res.stdout).toContain("mace_run_train is not on PATH, so nothing was trained");
    expect(res.stdout).toMatch(/\n {5}mace_run_train --name=relabel --seed=42 --device=cpu .* --train_file=data\/train\.extxyz /);
    const stage = path.join(out, "state/rounds/0001/stages/train");
    expect(res.stdout).toContain(`cd ${path.relative(process.cwd(), stage)} && bash run.sh`);
    expect(readFileSync(path.join(stage, "run.sh"), "utf8")).toContain("mace_run_train \\");
    expect(existsSync(path.join(stage, "data/train.extxyz"))).toBe(true);
    expect(manifest(out)).toMatchObject({ state: "training", finished_steps: ["selection", "dataset"] });
    // Every artifact the demo names exists.
    for (const line of res.stdout.split("artifacts:\n")[1].split("\n\n")[0].trim().split("\n")) {
      for (const p of line.trim().split(/\s{2,}/)[1].split(", ")) expect(existsSync(p.replace(/\/? \(.*$/, "")), p).toBe(true);
    }
    expect(res.stdout).toContain(`'relabel round status -w ${path.relative(process.cwd(), out)}' shows it`);
    // The labels are the bundled files, byte for byte.
    const labels = path.join(out, "data-repo/rounds/0001/labels/dpdata_h2o_md10/vasprun.xml");
    expect(readFileSync(labels)).toEqual(readFileSync(path.resolve(import.meta.dirname, "../../examples/sample-data/vasp/dpdata_h2o_md10/vasprun.xml")));
  });

  it("with mace_run_train on PATH (the test double): trains, evaluates and benchmarks through the local executor", async () => {
    const out = path.join(tmp(), "demo");
    const res = await withPath(DOUBLES, () => runCommand(runDemo, "-o", out));
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`training with ${path.join(DOUBLES, "mace_run_train")} through the local executor`);
    expect(res.stdout).toContain("round 1 complete: benchmark in rounds/0001/benchmark/");
    expect(manifest(out).state).toBe("complete");
    expect(existsSync(path.join(out, "data-repo/rounds/0001/benchmark/metrics.json"))).toBe(true);
  }, 60_000);

  it("replaces its own earlier output but refuses a directory it did not make", async () => {
    const out = path.join(tmp(), "demo");
    expect((await withPath(null, () => runCommand(runDemo, "-o", out))).code).toBe(0);
    expect((await withPath(null, () => runCommand(runDemo, "-o", out))).code).toBe(0);
    const foreign = path.join(tmp(), "mine");
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, "notes.txt"), "keep me\n");
    await expect(runCommand(runDemo, "-o", foreign)).rejects.toThrow(/exists and was not made by relabel demo/);
    expect(readFileSync(path.join(foreign, "notes.txt"), "utf8")).toBe("keep me\n");
  });
});
