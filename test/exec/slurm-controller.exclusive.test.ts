/**
 * The Slurm controller going down and coming back (a maintenance restart) while jobs run and stages are
 * submitted. It stops the loopback cluster's one controller, so it runs alone, after every other test file
 * (the "exclusive" project in vitest.config.ts).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastAttempt } from "../../src/core/exec/ledger.js";
import { readLedger } from "../../src/exec/ledger-file.js";
import { readStageRef } from "../../src/exec/stage.js";
import { JobTracker, jobName } from "../../src/exec/tracker.js";
import { makeStage } from "../doubles/stage.js";
import { remoteRoot, restartSlurmctld, slurmJobsNamed, sshExecutor, startCluster, stopSlurmctld, type ClusterEnv } from "../helpers/cluster.js";
import { pollUntil } from "../helpers/poll-jobs.js";

let env: ClusterEnv;
let tracker: JobTracker;

beforeAll(() => {
  env = startCluster();
  tracker = new JobTracker(path.join(mkdtempSync(path.join(tmpdir(), "relabel-jobs-")), "jobs.json"));
});

afterAll(async () => {
  await tracker.close();
  startCluster();
});

describe("ssh+slurm across a controller restart", () => {
  it("keeps a running job and a refused submission, and finishes both once the controller is back", async () => {
    const config = sshExecutor(env, "ssh+slurm", remoteRoot(env, "controller"), {});
    const submit = async (name: string, sleep = 0) =>
      tracker.submit(await readStageRef(makeStage({ name, sleep }).dir), { executor: "hpc", config, round: "1" });
    const running = await submit("outlives-controller", 6);
    const runningHash = running.job.hash;
    await pollUntil(tracker, runningHash, (j) => lastAttempt(j).state === "RUNNING", { timeoutMs: 30_000, intervalMs: 200 });

    stopSlurmctld();
    let refusedHash: string;
    try {
      // sbatch and squeue retry for several seconds before they give up.
      const stage = await readStageRef(makeStage({ name: "controller-down" }).dir);
      refusedHash = stage.hash;
      await expect(tracker.submit(stage, { executor: "hpc", config, round: "1" })).rejects.toThrow(
        /sbatch refused relabel-controller-down-[0-9a-f]{12}: Batch job submission failed: Unable to contact slurm controller .*; kept: the next poll submits it again$/,
      );
      // A poll meanwhile tries the submission again and asks about the running job: both fail, nothing is lost.
      const during = await tracker.poll();
      expect(during.problems).toEqual([
        expect.stringMatching(/^controller-down: resuming the submission failed: .*Unable to contact slurm controller .*; kept: the next poll submits it again$/),
        expect.stringMatching(/^hpc: squeue failed: .*Unable to contact slurm controller/),
      ]);
      const states = Object.fromEntries(during.jobs.map((j) => [j.stage, lastAttempt(j).state]));
      expect(states).toEqual({ "outlives-controller": "RUNNING", "controller-down": "SUBMITTING" });
    } finally {
      restartSlurmctld();
    }

    const finished = await pollUntil(tracker, runningHash, undefined, { timeoutMs: 60_000, intervalMs: 300 });
    expect(lastAttempt(finished)).toMatchObject({ outcome: "succeeded", state: "COMPLETED" });
    const resubmitted = await pollUntil(tracker, refusedHash, undefined, { timeoutMs: 60_000, intervalMs: 300 });
    expect(lastAttempt(resubmitted)).toMatchObject({ outcome: "succeeded", number: 1 });
    expect(resubmitted.attempts).toHaveLength(1);
    for (const job of (await readLedger(tracker.ledgerPath)).jobs) expect(slurmJobsNamed(env, jobName(job))).toHaveLength(1);
  }, 120_000);
});
