/**
 * The built CLI (bin/relabel.js on dist/) in a real shell pipeline. `npm test` builds dist/ before the suite runs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { realPath } from "../helpers/real-data.js";

const bin = path.resolve(import.meta.dirname, "../../bin/relabel.js");

/** Runs `relabel ARGS | head -1` in bash; returns relabel's exit status, its stderr and what head printed. */
function pipedIntoHead(...args: string[]): { status: number; stderr: string; stdout: string } {
  const errFile = path.join(mkdtempSync(path.join(tmpdir(), "relabel-pipe-")), "stderr");
  const script = `"$0" "$@" 2>"$ERR_FILE" | head -1; exit \${PIPESTATUS[0]}`;
  const run = spawnSync("bash", ["-c", script, process.execPath, bin, ...args], { env: { ...process.env, ERR_FILE: errFile }, encoding: "utf8", timeout: 60_000 });
  return { status: run.status ?? -1, stderr: readFileSync(errFile, "utf8"), stdout: run.stdout };
}

describe("relabel in a pipeline whose reader stops early", () => {
  // Eight copies print about 110 KiB, more than a pipe holds: relabel is still writing when head has gone.
  const inputs = Array.from({ length: 8 }, () => realPath("extxyz/metatrain_carbon_reduced_100.xyz"));

  it("ends quietly with 0 when stdout closes (inspect | head -1)", () => {
    const res = pipedIntoHead("inspect", ...inputs);
    expect(res.stdout).toMatch(/metatrain_carbon_reduced_100\.xyz {2}#0 {2}4 atoms {2}C4/);
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
  });

  it("ends quietly with 0 when stdout closes (inspect --json | head -1)", () => {
    const res = pipedIntoHead("inspect", "--json", ...inputs);
    expect(JSON.parse(res.stdout)).toMatchObject({ type: "frame", frame: 0, natoms: 4 });
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
  });
});
