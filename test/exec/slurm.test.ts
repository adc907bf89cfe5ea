/**
 * ssh+slurm against the real loopback sshd and Slurm 22.05 (test/env/cluster.sh). The time-limit job starts in
 * beforeAll and is checked last, so its minute runs alongside the other cases.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecutorConfig } from "../../src/core/exec/config.js";
import { isOpen, lastAttempt, type JobRecord } from "../../src/core/exec/ledger.js";
import { readLedger } from "../../src/exec/ledger-file.js";
import { SshTransport } from "../../src/exec/ssh.js";
import { readStageRef } from "../../src/exec/stage.js";
import { JobTracker, jobName } from "../../src/exec/tracker.js";
import { makeStage, type StageDouble } from "../doubles/stage.js";
import { pollUntil } from "../helpers/poll-jobs.js";
import { remoteRoot, slurmJobsNamed, sshExecutor, startCluster, stopSshd, type ClusterEnv } from "../helpers/cluster.js";

let env: ClusterEnv;
let root: string;
const trackers: JobTracker[] = [];

function tracker(ledgerPath = path.join(mkdtempSync(path.join(tmpdir(), "relabel-jobs-")), "jobs.json")): JobTracker {
  const t = new JobTracker(ledgerPath);
  trackers.push(t);
  return t;
}

function slurm(extra: Partial<Record<string, unknown>> = {}): ExecutorConfig {
  return sshExecutor(env, "ssh+slurm", root, extra);
}

async function submitDouble(t: JobTracker, double: StageDouble, config = slurm()) {
  const stage = await readStageRef(makeStage(double).dir);
  const result = await t.submit(stage, { executor: "hpc", config, round: "1" });
  return { stage, result };
}

const until = (t: JobTracker, hash: string, done?: (j: JobRecord) => boolean, timeoutMs = 60_000) =>
  pollUntil(t, hash, done, { timeoutMs, intervalMs: 300 });

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const squeueField = (id: string, field: string) =>
  String(execFileSync("squeue", ["-h", "-t", "all", "-j", id, "-o", field], { env: { ...process.env, SLURM_CONF: env.slurm_conf } })).trim();

let timeLimited: { t: JobTracker; hash: string; startedAt: number };

beforeAll(async () => {
  env = startCluster();
  root = remoteRoot(env, "slurm");
  const t = tracker();
  const { stage } = await submitDouble(t, { name: "timeout-double", sleep: 300 }, slurm({ resources: { time: "1" } }));
  timeLimited = { t, hash: stage.hash, startedAt: Date.now() };
});

afterAll(async () => {
  await Promise.all(trackers.map((t) => t.close()));
});

describe("ssh+slurm", () => {
  it("runs a train and an eval stage, records them in jobs.json and collects what the benchmark needs", async () => {
    const t = tracker();
    const config = slurm({
      setup: ["echo setup-line-ran"],
      resources: { time: "10", cpus: 1 },
      overrides: { eval: { resources: { time: "5" } } },
    });
    const train = await submitDouble(t, { kind: "train", name: "train-ok", sleep: 1 }, config);
    const evalStage = await submitDouble(t, { kind: "eval", name: "eval-ok", sleep: 1 }, config);
    expect(train.result.action).toBe("submitted");
    expect(train.result.upload!.skipped).toEqual([]);
    expect(train.result.upload!.uploaded).toEqual(["bin/argparse.mjs", "bin/mace_eval_configs", "bin/mace_run_train", "data/structures.extxyz", "double.env", "run.sh", "stage.json"]);

    const ledger = await readLedger(t.ledgerPath);
    const record = ledger.jobs.find((j) => j.hash === train.stage.hash)!;
    expect(record).toMatchObject({ backend: "ssh+slurm", executor: "hpc", kind: "train", round: "1", host: `${env.user}@${env.host}:${env.port}` });
    expect(record.remote_dir).toBe(path.join(root, "1", `train-ok-${train.stage.hash.slice(0, 12)}`));
    expect(lastAttempt(record).job_id).toMatch(/^\d+$/);
    expect(Date.parse(lastAttempt(record).submitted_at)).toBeGreaterThan(Date.now() - 60_000);
    // The per-kind override reaches Slurm: time limits in minutes as squeue prints them.
    expect(squeueField(lastAttempt(record).job_id!, "%l")).toBe("10:00");
    expect(squeueField(lastAttempt(train.result.job).job_id!, "%j")).toBe(jobName(record));
    expect(squeueField(lastAttempt(evalStage.result.job).job_id!, "%l")).toBe("5:00");

    const [trainDone, evalDone] = [await until(t, train.stage.hash), await until(t, evalStage.stage.hash)];
    for (const job of [trainDone, evalDone]) {
      expect(lastAttempt(job)).toMatchObject({ outcome: "succeeded", state: "COMPLETED", exit_code: 0, failure: null });
    }

    const out = mkdtempSync(path.join(tmpdir(), "relabel-collect-"));
    const { collected } = await t.collect(out);
    const trainOut = collected.find((c) => c.job.hash === train.stage.hash)!;
    const remote = (rel: string) => path.join(trainDone.remote_dir, rel);
    expect(trainOut.files.map((f) => f.path).sort()).toEqual(
      ["logs/model_run-42.log", `logs/slurm-${lastAttempt(trainDone).job_id}.out`, "logs/stderr.log", "logs/stdout.log", "results/model_run-42_train.txt", "stage.json", "status.json"].sort(),
    );
    for (const f of trainOut.files) expect(readFileSync(path.join(trainOut.dir, f.path))).toEqual(readFileSync(remote(f.path)));
    expect(readFileSync(path.join(trainOut.dir, `logs/slurm-${lastAttempt(trainDone).job_id}.out`), "utf8")).toContain("setup-line-ran");
    // The model stays on the cluster: only its path and hash are recorded; checkpoints are ignored.
    expect(trainOut.models).toEqual([{ path: remote("model.model"), sha256: sha256(remote("model.model")), bytes: statSync(remote("model.model")).size }]);
    expect(existsSync(path.join(trainOut.dir, "model.model"))).toBe(false);
    expect(existsSync(path.join(trainOut.dir, "checkpoints"))).toBe(false);
    const evalOut = collected.find((c) => c.job.hash === evalStage.stage.hash)!;
    expect(readFileSync(path.join(evalOut.dir, "predictions/test.extxyz"), "utf8")).toContain("MACE_energy=-1.04200000");
    const afterCollect = await readLedger(t.ledgerPath);
    expect(afterCollect.jobs.find((j) => j.hash === train.stage.hash)!.collected!.models[0].sha256).toBe(sha256(remote("model.model")));

    // Submitting the unchanged stage again does nothing.
    const again = await t.submit(train.stage, { executor: "hpc", config, round: "1" });
    expect(again.action).toBe("none");
    expect(again.reason).toMatch(/already succeeded as job \d+/);
    expect(slurmJobsNamed(env, jobName(record))).toHaveLength(1);
  });

  it("reports a non-zero exit with the reason and the stderr tail, and does not resubmit by default", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "fails", exit: 3 }, slurm({ setup: ["echo loading-modules"] }));
    const job = await until(t, stage.hash);
    const attempt = lastAttempt(job);
    expect(attempt).toMatchObject({ outcome: "failed", state: "FAILED", exit_code: 3 });
    expect(attempt.failure!.summary).toBe(`job ${attempt.job_id} FAILED (NonZeroExitCode): run.sh exit code 3, no FINISHED tag`);
    expect(attempt.failure!.stderr_tail).toContain("RuntimeError: test double asked to fail with exit code 3");
    expect(attempt.failure!.output_tail).toContain("loading-modules");
    expect(job.attempts).toHaveLength(1);
    await expect(t.submit(stage, { executor: "hpc", config: slurm(), round: "1" })).rejects.toThrow(/attempt 1 as job \d+ failed; pass --retry/);
  });

  it("does not count COMPLETED as success without the stage's FINISHED tag", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "no-tag", skipFinished: true });
    const attempt = lastAttempt(await until(t, stage.hash));
    expect(attempt).toMatchObject({ outcome: "failed", state: "COMPLETED", exit_code: 0 });
    expect(attempt.failure!.summary).toBe(`job ${attempt.job_id} COMPLETED: run.sh exit code 0, no FINISHED tag`);
  });

  it("resubmits a failed job exactly once when the config allows it", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "flaky", exit: 2 }, slurm({ resubmit: true }));
    const job = await until(t, stage.hash, (j) => j.attempts.length === 2 && !isOpen(j));
    expect(job.attempts.map((a) => a.outcome)).toEqual(["failed", "failed"]);
    expect(job.attempts[1].job_id).not.toBe(job.attempts[0].job_id);
    await t.poll();
    expect((await readLedger(t.ledgerPath)).jobs[0].attempts).toHaveLength(2);
    expect(slurmJobsNamed(env, jobName(job))).toHaveLength(2);
  });

  it("cancels a running job with scancel and never resubmits it", async () => {
    const t = tracker();
    const { stage } = await submitDouble(t, { name: "to-cancel", sleep: 120 }, slurm({ resubmit: true }));
    await until(t, stage.hash, (j) => lastAttempt(j).state === "RUNNING");
    const cancelled = await t.cancel();
    expect(cancelled.map((j) => j.hash)).toEqual([stage.hash]);
    const job = await until(t, stage.hash);
    expect(lastAttempt(job)).toMatchObject({ outcome: "cancelled", state: "CANCELLED" });
    await t.poll();
    expect((await readLedger(t.ledgerPath)).jobs[0].attempts).toHaveLength(1);
  });

  it("refuses a job sbatch rejects, with sbatch's reason, and records nothing", async () => {
    const t = tracker();
    const submitting = submitDouble(t, { name: "bad-partition" }, slurm({ resources: { partition: "nope" } }));
    await expect(submitting).rejects.toThrow(/sbatch refused relabel-bad-partition-[0-9a-f]{12}: invalid partition specified: nope$/);
    expect((await readLedger(t.ledgerPath)).jobs).toEqual([]);
  });

  it("keeps polling through an sshd restart: it reconnects and submits nothing twice", async () => {
    const t = tracker();
    const { stage, result } = await submitDouble(t, { name: "survives-restart", sleep: 3 });
    const transport = (await t.pool.transportFor(slurm())) as SshTransport;
    expect(transport.reconnects).toBe(0);
    stopSshd();
    const polling = t.poll();
    await new Promise((resolve) => setTimeout(resolve, 600));
    startCluster();
    expect((await polling).problems).toEqual([]);
    expect(transport.reconnects).toBe(1);
    const job = await until(t, stage.hash);
    expect(lastAttempt(job).outcome).toBe("succeeded");
    expect((await t.submit(stage, { executor: "hpc", config: slurm(), round: "1" })).action).toBe("none");
    expect(slurmJobsNamed(env, jobName(result.job))).toHaveLength(1);
  });

  it("reconciles after the bot restarts mid-job: a fresh process adopts the job instead of submitting again", async () => {
    // Bot A submits, then dies without another word.
    const a = tracker();
    const { stage, result } = await submitDouble(a, { name: "outlives-bot", sleep: 2 });
    const ledgerPath = a.ledgerPath;
    // Bot B starts from the same jobs.json.
    const b = tracker(ledgerPath);
    expect((await b.submit(stage, { executor: "hpc", config: slurm(), round: "1" })).action).toBe("none");
    const job = await until(b, stage.hash);
    expect(lastAttempt(job)).toMatchObject({ outcome: "succeeded", job_id: lastAttempt(result.job).job_id });
    expect(slurmJobsNamed(env, jobName(job))).toHaveLength(1);
  });

  it("adopts a job that was submitted just before the bot died, before jobs.json heard of it", async () => {
    const a = tracker();
    const stage = await readStageRef(makeStage({ name: "died-after-sbatch", sleep: 1 }).dir);
    const files = ["bin/argparse.mjs", "bin/mace_eval_configs", "bin/mace_run_train", "data/structures.extxyz", "double.env", "run.sh", "stage.json"];
    // Bot A dies right after its last upload: jobs.json says SUBMITTING, with no job id.
    const crashing = new JobTracker(a.ledgerPath, {
      events: {
        uploaded: (_job, file) => {
          if (file.path === files.at(-1)) throw new Error("bot killed");
        },
      },
    });
    trackers.push(crashing);
    await expect(crashing.submit(stage, { executor: "hpc", config: slurm(), round: "1" })).rejects.toThrow("bot killed");
    const before = (await readLedger(a.ledgerPath)).jobs[0];
    expect(lastAttempt(before)).toMatchObject({ state: "SUBMITTING", job_id: null });
    // ...but its sbatch had gone through (the same idempotent step the tracker runs).
    const executor = await crashing.pool.get("hpc", slurm());
    const sent = await executor.submit(before.remote_dir, 1, { jobName: jobName(before), setup: [], resources: {} });
    expect(sent.adopted).toBe(false);

    const adopted: string[] = [];
    const b = new JobTracker(a.ledgerPath, { events: { submitted: (_job, attempt, wasAdopted) => wasAdopted && adopted.push(attempt.job_id!) } });
    trackers.push(b);
    const job = await until(b, stage.hash);
    expect(adopted).toEqual([sent.jobId]);
    expect(lastAttempt(job)).toMatchObject({ outcome: "succeeded", job_id: sent.jobId });
    expect(slurmJobsNamed(env, jobName(job))).toEqual([`${sent.jobId}|COMPLETED`]);
  });

  it("reports TIMEOUT for a job that hits its time limit", { timeout: 150_000 }, async () => {
    const job = await until(timeLimited.t, timeLimited.hash, undefined, 140_000 - (Date.now() - timeLimited.startedAt));
    const attempt = lastAttempt(job);
    expect(attempt).toMatchObject({ outcome: "failed", state: "TIMEOUT" });
    expect(attempt.failure!.summary).toBe(`job ${attempt.job_id} TIMEOUT (TimeLimit): no status.json, no FINISHED tag`);
  });
});
