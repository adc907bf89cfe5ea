import { describe, expect, it } from "vitest";
import { NOT_FOUND } from "../../../src/core/exec/ledger.js";
import { parseSlurmQuery, renderSbatchScript } from "../../../src/core/exec/slurm.js";

const dir = "/scratch/alice/relabel/3/train-0123456789ab";

describe("renderSbatchScript", () => {
  it("puts every resource in #SBATCH lines, output inside the stage, then setup and run.sh", () => {
    const script = renderSbatchScript({
      dir,
      attempt: 2,
      jobName: "relabel-train-0123456789ab",
      setup: ["module load cuda/12.1", "conda activate mace"],
      resources: { partition: "gpu", account: "proj42", qos: "normal", gpus: "a100:2", time: "04:00:00", cpus: 8, memory: "32G", sbatch_options: ["--constraint=a100"] },
    });
    expect(script.split("\n")).toEqual([
      "#!/bin/bash -l",
      "#SBATCH --job-name=relabel-train-0123456789ab",
      `#SBATCH --chdir=${dir}`,
      `#SBATCH --output=${dir}/logs/slurm-%j.out`,
      `#SBATCH --error=${dir}/logs/slurm-%j.out`,
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks=1",
      "#SBATCH --partition=gpu",
      "#SBATCH --account=proj42",
      "#SBATCH --qos=normal",
      "#SBATCH --gres=gpu:a100:2",
      "#SBATCH --time=04:00:00",
      "#SBATCH --cpus-per-task=8",
      "#SBATCH --mem=32G",
      "#SBATCH --constraint=a100",
      "# relabel-loop: attempt 2 of relabel-train-0123456789ab",
      "set -e",
      "module load cuda/12.1",
      "conda activate mace",
      "set +e",
      `cd -- '${dir}'`,
      "bash run.sh",
      "",
    ]);
  });

  it("leaves out what is not configured", () => {
    const script = renderSbatchScript({ dir, attempt: 1, jobName: "j", setup: [], resources: { gpus: 1 } });
    expect(script).toContain("#SBATCH --gres=gpu:1\n");
    expect(script).not.toMatch(/--partition|--time|--mem|--account/);
  });
});

describe("parseSlurmQuery", () => {
  const jobs = ["5", "6", "7", "8"].map((jobId) => ({ jobId, attempt: 1, dir }));

  it("takes squeue's answer and falls back to sacct, then to NOT_FOUND", () => {
    const stdout = ["@squeue 0", "5|RUNNING|None", "6|PENDING|Priority", "12|RUNNING|None", "@sacct", "7|CANCELLED by 1000|0:15", "7.batch|CANCELLED|0:15", ""].join("\n");
    const result = parseSlurmQuery(stdout, jobs);
    expect(result.ok && Object.fromEntries(result.statuses)).toEqual({
      "5": { state: "RUNNING", reason: "None", exitCode: null },
      "6": { state: "PENDING", reason: "Priority", exitCode: null },
      "7": { state: "CANCELLED", reason: null, exitCode: 0 },
      "8": { state: NOT_FOUND, reason: "not listed by squeue or sacct", exitCode: null },
    });
  });

  it("uses the last sacct line of a requeued job and its exit code", () => {
    const result = parseSlurmQuery(["@squeue 0", "@sacct", "5|NODE_FAIL|0:0", "5|FAILED|7:0"].join("\n"), jobs.slice(0, 1));
    expect(result.ok && result.statuses.get("5")).toEqual({ state: "FAILED", reason: null, exitCode: 7 });
  });

  it("treats forgotten job ids as an answer, but an unreachable controller as no answer", () => {
    const forgotten = parseSlurmQuery(["@squeue 1", "slurm_load_jobs error: Invalid job id specified", "@sacct", ""].join("\n"), jobs.slice(0, 1));
    expect(forgotten.ok && forgotten.statuses.get("5")!.state).toBe(NOT_FOUND);
    const down = parseSlurmQuery(["@squeue 1", "squeue: error: Unable to contact slurm controller (connect failure)", "@sacct", ""].join("\n"), jobs.slice(0, 1));
    expect(down).toEqual({ ok: false, problem: "squeue failed: squeue: error: Unable to contact slurm controller (connect failure)" });
  });
});
