import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isOpen, lastAttempt } from "../../src/core/exec/ledger.js";
import { runCancel } from "../../src/cli/commands/cancel.js";
import { runCollect } from "../../src/cli/commands/collect.js";
import { runJobs } from "../../src/cli/commands/jobs.js";
import { runSubmit } from "../../src/cli/commands/submit.js";
import { readLedger } from "../../src/exec/ledger-file.js";
import { makeStage } from "../doubles/stage.js";
import { remoteRoot, startCluster, type ClusterEnv } from "../helpers/cluster.js";
import { runCli } from "../helpers/run-cli.js";
import { runCommand } from "../helpers/run-command.js";

const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-jobs-cli-"));

// Started by the first test that needs sshd and Slurm: the others run without them.
let started: ClusterEnv | undefined;
const cluster = (): ClusterEnv => (started ??= startCluster());

describe("relabel jobs, collect and cancel", () => {
  it("print their help", async () => {
    for (const [run, usage] of [
      [runJobs, "usage: relabel jobs"],
      [runCollect, "usage: relabel collect -o DIR"],
      [runCancel, "usage: relabel cancel"],
    ] as const) {
      const res = await runCommand(run, "--help");
      expect(res.code).toBe(0);
      expect(res.stdout.startsWith(usage)).toBe(true);
    }
  });

  it.each(["-1", "0", "soon"])("refuse --interval %s with exit code 2 before reading the jobs file", async (value) => {
    const res = await runCli("jobs", "--jobs", "/nonexistent/jobs.json", "--watch", "--interval", value);
    expect([res.code, res.stderr]).toEqual([2, `relabel jobs: --interval must be a positive number (got "${value}")\n`]);
  });

  it("watch local jobs to the end, show failures with their stderr, and collect the outputs", async () => {
    const dir = tmp();
    const jobs = path.join(dir, "jobs.json");
    const ok = makeStage({ name: "watch-ok", sleep: 1 });
    const bad = makeStage({ name: "watch-bad", exit: 3 });
    for (const stage of [ok, bad]) expect((await runCommand(runSubmit, stage.dir, "--jobs", jobs, "--round", "1")).code).toBe(0);

    const watched = await runCommand(runJobs, "--jobs", jobs, "--watch", "--interval", "0.2");
    expect(watched.code).toBe(1);
    expect(watched.stdout).toMatch(/ watch-ok: job \d+ \(attempt 1\) COMPLETED -> succeeded\n/);
    const ledger = await readLedger(jobs);
    const [okJob, badJob] = ["watch-ok", "watch-bad"].map((n) => ledger.jobs.find((j) => j.stage === n)!);
    const table = watched.stdout.slice(watched.stdout.indexOf("STAGE"));
    expect(table.split("\n").slice(0, 3)).toEqual([
      expect.stringMatching(/^STAGE +KIND +ROUND +EXECUTOR +JOB +TRY +STATE +RESULT$/),
      expect.stringMatching(new RegExp(`^watch-ok   train  1      local     ${lastAttempt(okJob).job_id}\\s+1    COMPLETED  succeeded$`)),
      expect.stringMatching(new RegExp(`^watch-bad  train  1      local     ${lastAttempt(badJob).job_id}\\s+1    FAILED     failed$`)),
    ]);
    expect(table).toContain(`watch-bad: job ${lastAttempt(badJob).job_id} FAILED (NonZeroExitCode): run.sh exit code 3, no FINISHED tag\n`);
    expect(table).toContain("  | RuntimeError: test double asked to fail with exit code 3\n");

    const json = await runCommand(runJobs, "--jobs", jobs, "--json");
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { jobs: { stage: string }[]; problems: string[] };
    expect(parsed.problems).toEqual([]);
    expect(parsed.jobs.map((j) => j.stage)).toEqual(["watch-ok", "watch-bad"]);

    const out = path.join(dir, "out");
    const collected = await runCommand(runCollect, "--jobs", jobs, "-o", out);
    expect(collected.code).toBe(0);
    const okDir = path.join(out, `watch-ok-${okJob.hash.slice(0, 12)}`);
    const model = path.join(okJob.remote_dir, "model.model");
    expect(collected.stdout).toContain(`watch-ok: succeeded, 7 files into ${path.relative(process.cwd(), okDir)}\n`);
    expect(collected.stdout).toMatch(new RegExp(`  model ${model} sha256 [0-9a-f]{64} \\(${statSync(model).size} bytes, left on this host\\)\\n`));
    expect(readFileSync(path.join(okDir, "results/model_run-42_train.txt"))).toEqual(readFileSync(path.join(okJob.remote_dir, "results/model_run-42_train.txt")));
    expect(existsSync(path.join(okDir, "model.model"))).toBe(false);
    // The failed stage's logs come along for the report.
    expect(readFileSync(path.join(out, `watch-bad-${badJob.hash.slice(0, 12)}`, "logs/stderr.log"), "utf8")).toContain("RuntimeError: test double asked to fail with exit code 3");
    const again = await runCommand(runCollect, "--jobs", jobs, "-o", out, "watch-ok");
    expect(again.stdout).toBe(`watch-ok: already collected into ${path.relative(process.cwd(), okDir)}\n`);
  });

  it("cancels a running job and shows it as cancelled", async () => {
    const dir = tmp();
    const jobs = path.join(dir, "jobs.json");
    const stage = makeStage({ name: "cli-cancel", sleep: 120 });
    await runCommand(runSubmit, stage.dir, "--jobs", jobs, "--round", "1");
    const id = lastAttempt((await readLedger(jobs)).jobs[0]).job_id;
    const res = await runCommand(runCancel, "--jobs", jobs);
    expect(res).toEqual({ code: 0, stdout: `cancel requested: cli-cancel (job ${id})\n`, stderr: "" });
    const watched = await runCommand(runJobs, "--jobs", jobs, "--watch", "--interval", "0.2");
    expect(watched.code).toBe(1);
    expect(watched.stdout).toMatch(/cli-cancel +train +1 +local +\d+ +1 +CANCELLED +cancelled\n/);
    expect((await runCommand(runCancel, "--jobs", jobs)).stdout).toBe("no open jobs to cancel\n");
  });

  it("name a jobs file that does not exist, exit 1 and create none", async () => {
    const missing = path.join(tmp(), "nonexistent.json");
    for (const argv of [["jobs"], ["cancel"], ["collect", "-o", path.join(tmp(), "out")]]) {
      const res = await runCli(...argv, "--jobs", missing);
      expect(res, argv[0]).toEqual({ code: 1, stdout: "", stderr: `error: ${missing}: no such jobs file ('relabel submit' writes it; --jobs FILE names another)\n` });
    }
    expect(existsSync(missing)).toBe(false);
  });

  it("name a stage the jobs file does not record (cancel, collect), and leave the others alone", async () => {
    const dir = tmp();
    const jobs = path.join(dir, "jobs.json");
    const stage = makeStage({ name: "known-stage", sleep: 120 });
    await runCommand(runSubmit, stage.dir, "--jobs", jobs);
    const problem = `error: ${jobs}: no job for stage "nosuchstage" (by name or hash prefix of 6+ digits); its stages: known-stage\n`;
    expect(await runCli("cancel", "--jobs", jobs, "nosuchstage")).toEqual({ code: 1, stdout: "", stderr: problem });
    expect(await runCli("collect", "-o", path.join(dir, "out"), "--jobs", jobs, "known-stage", "nosuchstage")).toEqual({ code: 1, stdout: "", stderr: problem });
    expect(isOpen((await readLedger(jobs)).jobs[0])).toBe(true);
    expect((await runCli("cancel", "--jobs", jobs, "known-stage")).code).toBe(0);
  });

  it("collect does not list the model an eval stage was given (models/) as one of its outputs", async () => {
    const dir = tmp();
    const jobs = path.join(dir, "jobs.json");
    const stage = makeStage({ kind: "eval", name: "eval-given-model", files: { "models/test.model": "the model under test\n" } });
    await runCommand(runSubmit, stage.dir, "--jobs", jobs);
    expect((await runCommand(runJobs, "--jobs", jobs, "--watch", "--interval", "0.2")).code).toBe(0);
    const res = await runCli("collect", "-o", path.join(dir, "out"), "--jobs", jobs);
    expect(res.code).toBe(0);
    expect(res.stdout).not.toContain("models/test.model");
    const job = (await readLedger(jobs)).jobs[0];
    expect(job.collected!.models.map((m) => path.relative(job.remote_dir, m.path))).not.toContain("models/test.model");
  });

  it("drive a Slurm job from a config file, and warn when the host cannot be asked", async () => {
    const env = cluster();
    const dir = tmp();
    const jobs = path.join(dir, "jobs.json");
    const hpc = { backend: "ssh+slurm", host: env.host, port: env.port, user: env.user, host_key: env.host_key, private_key_file: env.private_key_file, remote_root: remoteRoot(env, "cli"), poll_interval: 0.5 };
    const config = path.join(dir, "relabel.json");
    writeFileSync(config, JSON.stringify({ executor: "hpc", executors: { hpc } }));
    const stage = makeStage({ name: "cli-slurm", kind: "eval" });
    const submitted = await runCommand(runSubmit, stage.dir, "--jobs", jobs, "--round", "1", "--config", config);
    expect(submitted.stdout).toMatch(/^uploaded 8 files \(0 unchanged\) to relabeltest@127\.0\.0\.1:2222:\/.*\nsubmitted cli-slurm \(eval, round 1, job \d+ on hpc\)\n$/);

    // The executor config recorded in jobs.json is enough: no --config needed from here on.
    const watched = await runCommand(runJobs, "--jobs", jobs, "--watch");
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/cli-slurm +eval +1 +hpc +\d+ +1 +COMPLETED +succeeded\n/);
    const collected = await runCommand(runCollect, "--jobs", jobs, "-o", path.join(dir, "out"));
    expect(collected.stdout).toMatch(/^cli-slurm: succeeded, \d+ files into /);
    expect(readFileSync(path.join(dir, "out", `cli-slurm-${stage.hash!.slice(0, 12)}`, "predictions/test.extxyz"), "utf8")).toContain("MACE_forces:R:3");

    const elsewhere = path.join(dir, "moved.json");
    writeFileSync(elsewhere, JSON.stringify({ executors: { hpc: { ...hpc, port: 2299 } } }));
    await runCommand(runSubmit, makeStage({ name: "cli-slurm-2", sleep: 30 }).dir, "--jobs", jobs, "--round", "1", "--config", config);
    const unreachable = await runCommand(runJobs, "--jobs", jobs, "--config", elsewhere);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toBe("warning: hpc: cannot connect to 127.0.0.1:2299: connection refused\n");
    expect(unreachable.stdout).toMatch(/cli-slurm-2 +train +1 +hpc +\d+ +1 +PENDING +open\n/);
    expect((await runCommand(runCancel, "--jobs", jobs, "cli-slurm-2")).stdout).toMatch(/^cancel requested: cli-slurm-2 \(job \d+\)\n$/);
  });
});
