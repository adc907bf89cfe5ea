import { describe, expect, it } from "vitest";
import { NOT_FOUND } from "../../../src/core/exec/ledger.js";
import { parseShellQuery, renderShellJob } from "../../../src/core/exec/shell-jobs.js";

const jobs = ["100", "101", "102", "103", "104", "105"].map((jobId) => ({ jobId, attempt: 1, dir: "/w/1/s-0123456789ab" }));

describe("parseShellQuery", () => {
  it("maps exit codes and markers to Slurm's state names", () => {
    const stdout = ["100|running", "101|rc|0|0|0", "102|rc|3|0|0", "103|rc|143|1|0", "104|rc|143|0|1", "105|gone|0", ""].join("\n");
    const result = parseShellQuery(stdout, jobs);
    expect(result.ok && Object.fromEntries([...result.statuses].map(([id, s]) => [id, [s.state, s.exitCode]]))).toEqual({
      "100": ["RUNNING", null],
      "101": ["COMPLETED", 0],
      "102": ["FAILED", 3],
      "103": ["CANCELLED", 143],
      "104": ["TIMEOUT", 143],
      "105": [NOT_FOUND, null],
    });
  });

  it("prefers a clean exit over a late cancel, and reports a cancelled job that left no exit code", () => {
    const result = parseShellQuery(["100|rc|0|1|0", "101|gone|1"].join("\n"), jobs.slice(0, 2));
    expect(result.ok && [...result.statuses.values()].map((s) => s.state)).toEqual(["COMPLETED", "CANCELLED"]);
  });

  it("is no answer when a job is missing from the output", () => {
    expect(parseShellQuery("100|running\n", jobs.slice(0, 2))).toEqual({ ok: false, problem: "no answer about process 101" });
  });
});

describe("renderShellJob", () => {
  const spec = { dir: "/w/1/s-0123456789ab", attempt: 2, jobName: "relabel-s", setup: ["source /opt/mace/env.sh"], resources: {} };

  it("records run.sh's exit code and runs setup before it", () => {
    const script = renderShellJob(spec, true);
    expect(script.startsWith("#!/bin/bash -l\n")).toBe(true);
    expect(script).toContain("mv -f .relabel/attempt-2.rc.tmp .relabel/attempt-2.rc' EXIT");
    expect(script.indexOf("source /opt/mace/env.sh")).toBeLessThan(script.indexOf("bash run.sh &"));
    expect(script).not.toContain("timedout");
  });

  it("arms a timer only with a time limit, in seconds", () => {
    const script = renderShellJob({ ...spec, resources: { time: "1:30:00" } }, false);
    expect(script).toContain("sleep 5400 &");
    expect(script).toContain("touch .relabel/attempt-2.timedout; kill -TERM -- -$$");
  });
});
