import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { NOT_FOUND } from "../../../src/core/exec/ledger.js";
import { parseSlurmQuery, renderSbatchScript, slurmLaunch, submitRefusal } from "../../../src/core/exec/slurm.js";

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
      "7": { state: "CANCELLED", reason: null, exitCode: 143, fromAccounting: true },
      "8": { state: NOT_FOUND, reason: "not listed by squeue or sacct", exitCode: null },
    });
  });

  it("uses the last sacct line of a requeued job and its exit code", () => {
    const result = parseSlurmQuery(["@squeue 0", "@sacct", "5|NODE_FAIL|0:0", "5|FAILED|7:0"].join("\n"), jobs.slice(0, 1));
    expect(result.ok && result.statuses.get("5")).toEqual({ state: "FAILED", reason: null, exitCode: 7, fromAccounting: true });
  });

  it("treats forgotten job ids as an answer, but an unreachable controller as no answer", () => {
    const forgotten = parseSlurmQuery(["@squeue 1", "slurm_load_jobs error: Invalid job id specified", "@sacct", ""].join("\n"), jobs.slice(0, 1));
    expect(forgotten.ok && forgotten.statuses.get("5")!.state).toBe(NOT_FOUND);
    const down = parseSlurmQuery(["@squeue 1", "squeue: error: Unable to contact slurm controller (connect failure)", "@sacct", ""].join("\n"), jobs.slice(0, 1));
    expect(down).toEqual({ ok: false, problem: "squeue failed: squeue: error: Unable to contact slurm controller (connect failure)" });
  });
});

describe("parseSlurmQuery exit codes", () => {
  it("reports a job killed by a signal (sacct 0:9) as 128+signal, not as exit code 0", () => {
    const jobs = [{ jobId: "5", attempt: 1, dir }];
    const result = parseSlurmQuery(["@squeue 0", "@sacct", "5|FAILED|0:9"].join("\n"), jobs);
    expect(result.ok && result.statuses.get("5")!.exitCode).toBe(137);
    const plain = parseSlurmQuery(["@squeue 0", "@sacct", "5|FAILED|3:0"].join("\n"), jobs);
    expect(plain.ok && plain.statuses.get("5")!.exitCode).toBe(3);
  });
});

describe("submitRefusal", () => {
  it("names sbatch's error, not a warning printed before it", () => {
    const stderr = [
      "sbatch: Warning: can't honor --ntasks-per-node set to 1 which doesn't match the requested tasks 2 with the number of requested nodes 1. Ignoring --ntasks-per-node.",
      "sbatch: error: invalid partition specified: gpu-big",
      "sbatch: error: Batch job submission failed: Invalid partition name specified",
    ].join("\n");
    expect(submitRefusal(stderr)).toEqual({ reason: "invalid partition specified: gpu-big", transient: false });
  });

  it("prefers the error line over a site's own notices printed before it", () => {
    const stderr = ["Project proj42: 91% of the allocation used", "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"].join("\n");
    expect(submitRefusal(stderr).reason).toBe("Batch job submission failed: Invalid account or account/partition combination specified");
  });

  it("tells a busy or unreachable controller and per-user submit limits from refusals for good", () => {
    const transient = [
      "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
      "sbatch: error: Batch job submission failed: Zero Bytes were transmitted or received",
      "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
      "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
      "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
    ];
    for (const stderr of transient) expect(submitRefusal(stderr).transient).toBe(true);
    expect(submitRefusal("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified").transient).toBe(false);
    expect(submitRefusal("")).toEqual({ reason: "", transient: false });
  });
});

describe("slurmLaunch", () => {
  const spec = { dir, attempt: 2, jobName: "relabel-train-0123456789ab", setup: [], resources: { partition: "gpu", time: "04:00:00", sbatch_options: ['--comment="two words"'] } };

  /**
   * Runs the launch command with squeue and sbatch doubles first on PATH, in a login environment that sets SBATCH_*
   * variables; the sbatch double records its arguments and the SBATCH_ variables it saw.
   */
  function launch(squeueOutput: string | null): { stdout: string; sbatchArgs: string[] | null; sbatchEnv: string[] } {
    const bin = mkdtempSync(path.join(tmpdir(), "relabel-slurm-bin-"));
    const squeue = squeueOutput === null ? "echo 'squeue: error: Unable to contact slurm controller' >&2; exit 1" : `printf '%s\\n' ${JSON.stringify(squeueOutput)}`;
    writeFileSync(path.join(bin, "squeue"), `#!/bin/bash\n${squeue}\n`);
    writeFileSync(path.join(bin, "sbatch"), `#!/bin/bash\nprintf '%s\\n' "$@" > ${bin}/args\nenv | grep '^SBATCH_' | sort > ${bin}/env\necho '88;cluster'\n`);
    chmodSync(path.join(bin, "squeue"), 0o755);
    chmodSync(path.join(bin, "sbatch"), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, SBATCH_PARTITION: "default", SBATCH_WAIT: "1", SBATCH_ARRAY_INX: "0-3", SBATCH_ACCOUNT: "proj42" };
    const stdout = execFileSync("bash", ["-c", slurmLaunch(spec)], { env }).toString();
    const called = existsSync(path.join(bin, "args"));
    return {
      stdout,
      sbatchArgs: called ? readFileSync(path.join(bin, "args"), "utf8").trimEnd().split("\n") : null,
      sbatchEnv: called ? readFileSync(path.join(bin, "env"), "utf8").trimEnd().split("\n") : [],
    };
  }

  it("adopts a job of the same attempt that a timed-out sbatch left behind", () => {
    expect(launch(`77 ${dir}/.relabel/job-2.sh`)).toMatchObject({ stdout: "77\n", sbatchArgs: null });
  });

  it("submits when no job runs that attempt's script, or when squeue cannot tell", () => {
    for (const answer of [`76 ${dir}/.relabel/job-1.sh\n75 /home/alice/other.sh`, "", null]) {
      const result = launch(answer);
      expect(result.stdout).toBe("88;cluster\n");
      expect(result.sbatchArgs?.at(-1)).toBe(`${dir}/.relabel/job-2.sh`);
    }
  });

  it("puts the job's options on the command line, where SBATCH_* variables cannot override them", () => {
    const { sbatchArgs, sbatchEnv } = launch("");
    expect(sbatchArgs).toEqual([
      "--parsable",
      "--job-name=relabel-train-0123456789ab",
      `--chdir=${dir}`,
      `--output=${dir}/logs/slurm-%j.out`,
      `--error=${dir}/logs/slurm-%j.out`,
      "--nodes=1",
      "--ntasks=1",
      "--partition=gpu",
      "--time=04:00:00",
      "--comment=two words",
      `${dir}/.relabel/job-2.sh`,
    ]);
    // The site's account default stays; waiting and arrays, which no option of ours undoes, do not.
    expect(sbatchEnv).toEqual(["SBATCH_ACCOUNT=proj42", "SBATCH_PARTITION=default"]);
  });
});
