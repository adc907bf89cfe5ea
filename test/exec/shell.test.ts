/**
 * The shell backends: ssh+shell (detached processes on a workstation, here the loopback sshd) and local (detached
 * processes on this host). Same cases for both.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecutorConfig } from "../../src/core/exec/config.js";
import { lastAttempt, type JobRecord } from "../../src/core/exec/ledger.js";
import { readLedger } from "../../src/exec/ledger-file.js";
import { readStageRef } from "../../src/exec/stage.js";
import { JobTracker } from "../../src/exec/tracker.js";
import { makeStage, type StageDouble } from "../doubles/stage.js";
import { pollUntil } from "../helpers/poll-jobs.js";
import { remoteRoot, sshExecutor, startCluster, type ClusterEnv } from "../helpers/cluster.js";

// Started for the ssh+shell cases only: the local ones run without sshd and Slurm.
let started: ClusterEnv | undefined;
const cluster = (): ClusterEnv => (started ??= startCluster());
const trackers: JobTracker[] = [];

afterAll(async () => {
  await Promise.all(trackers.map((t) => t.close()));
});

function tracker(ledgerPath = path.join(mkdtempSync(path.join(tmpdir(), "relabel-jobs-")), "jobs.json")): JobTracker {
  const t = new JobTracker(ledgerPath);
  trackers.push(t);
  return t;
}

const until = (t: JobTracker, hash: string, done?: (j: JobRecord) => boolean, timeoutMs = 30_000) =>
  pollUntil(t, hash, done, { timeoutMs, intervalMs: 200 });

/** Processes (on this host, which is also the loopback "remote" one) running in or naming dir. */
function processesIn(dir: string): number[] {
  const inDir = (p: string) => {
    try {
      const cwd = readlinkSync(`/proc/${p}/cwd`);
      return cwd === dir || cwd.startsWith(`${dir}/`) || readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ").includes(dir);
    } catch {
      return false;
    }
  };
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && inDir(p))
    .map(Number);
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe.each(["ssh+shell", "local"] as const)("%s backend", (backend) => {
  let config: () => ExecutorConfig;

  beforeAll(() => {
    const root = backend === "local" ? mkdtempSync(path.join(tmpdir(), "relabel-local-runs-")) : remoteRoot(cluster(), "shell");
    const base: ExecutorConfig =
      backend === "local"
        ? { backend: "local", remote_root: root, setup: [], resources: {}, overrides: {}, resubmit: false, poll_interval: 1 }
        : sshExecutor(cluster(), "ssh+shell", root);
    config = () => base;
  });

  async function submitDouble(t: JobTracker, double: StageDouble, extra: Partial<ExecutorConfig> = {}) {
    const stage = await readStageRef(makeStage(double).dir);
    const result = await t.submit(stage, { executor: "box", config: { ...config(), ...extra } as ExecutorConfig, round: "7" });
    return { stage, result };
  }

  it("runs a stage to success and collects its outputs", async () => {
    const t = tracker();
    const { stage, result } = await submitDouble(t, { name: "ok", sleep: 1 }, { setup: ["echo setup-ran"], resources: { time: "10:00" } });
    expect(result.action).toBe("submitted");
    expect(lastAttempt(result.job).job_id).toMatch(/^\d+$/);
    expect(result.job.backend).toBe(backend);
    const job = await until(t, stage.hash);
    expect(lastAttempt(job)).toMatchObject({ outcome: "succeeded", state: "COMPLETED", exit_code: 0 });
    // Nothing lingers, not even the time-limit timer.
    await expect.poll(() => processesIn(job.remote_dir), { timeout: 5000 }).toEqual([]);
    const { collected } = await t.collect(mkdtempSync(path.join(tmpdir(), "relabel-collect-")));
    const files = collected[0].files.map((f) => f.path);
    expect(files).toContain("results/model_run-42_train.txt");
    expect(files).toContain("logs/shell-1.out");
    expect(readFileSync(path.join(collected[0].dir, "logs/shell-1.out"), "utf8")).toContain("setup-ran");
    const model = path.join(job.remote_dir, "model.model");
    expect(collected[0].models).toEqual([{ path: model, sha256: sha256(model), bytes: statSync(model).size }]);
  });

  it("reports a failure with run.sh's exit code and the stderr tail", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "fails", exit: 5 });
    const attempt = lastAttempt(await until(t, stage.hash));
    expect(attempt).toMatchObject({ outcome: "failed", state: "FAILED", exit_code: 5 });
    expect(attempt.failure!.summary).toBe(`job ${attempt.job_id} FAILED (NonZeroExitCode): run.sh exit code 5, no FINISHED tag`);
    expect(attempt.failure!.stderr_tail).toContain("RuntimeError: test double asked to fail with exit code 5");
  });

  it("cancels by killing the whole process group", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "cancel-me", sleep: 120 });
    const running = await until(t, stage.hash, (j) => lastAttempt(j).state === "RUNNING");
    expect(processesIn(running.remote_dir).length).toBeGreaterThan(0);
    await t.cancel();
    const job = await until(t, stage.hash);
    expect(lastAttempt(job)).toMatchObject({ outcome: "cancelled", state: "CANCELLED" });
    await expect.poll(() => processesIn(job.remote_dir), { timeout: 5000 }).toEqual([]);
  });

  it("enforces the time limit and reports TIMEOUT", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "too-slow", sleep: 60 }, { resources: { time: "0:02" } });
    const job = await until(t, stage.hash);
    const attempt = lastAttempt(job);
    expect(attempt).toMatchObject({ outcome: "failed", state: "TIMEOUT" });
    expect(attempt.failure!.summary).toBe(`job ${attempt.job_id} TIMEOUT (TimeLimit): no status.json, no FINISHED tag`);
    await expect.poll(() => processesIn(job.remote_dir), { timeout: 5000 }).toEqual([]);
  });

  it("reports a job whose processes vanished (host rebooted) as lost", async () => {
    const t = tracker();
    const { stage, result } = await submitDouble(t, { name: "vanishes", sleep: 120 });
    await until(t, stage.hash, (j) => lastAttempt(j).state === "RUNNING");
    process.kill(-Number(lastAttempt(result.job).job_id), "SIGKILL");
    const attempt = lastAttempt(await until(t, stage.hash));
    expect(attempt).toMatchObject({ outcome: "failed", state: "LOST" });
    expect(attempt.failure!.summary).toBe(`job ${attempt.job_id} is unknown to the scheduler: no status.json, no FINISHED tag`);
  });

  it("picks up a running job after a restart without starting it twice", async () => {
    const a = tracker();
    const { stage, result } = await submitDouble(a, { name: "restart", sleep: 2 });
    const b = tracker(a.ledgerPath);
    expect((await b.submit(stage, { executor: "box", config: config(), round: "7" })).action).toBe("none");
    const job = await until(b, stage.hash);
    expect(lastAttempt(job)).toMatchObject({ outcome: "succeeded", job_id: lastAttempt(result.job).job_id });
    expect(readdirSync(path.join(job.remote_dir, "logs")).filter((f) => f.startsWith("shell-"))).toEqual(["shell-1.out"]);
    expect(existsSync(path.join(job.remote_dir, ".relabel", "attempt-2.jobid"))).toBe(false);
    expect((await readLedger(a.ledgerPath)).jobs).toHaveLength(1);
  });
});
