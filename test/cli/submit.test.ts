import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError, UsageError } from "../../src/core/errors.js";
import { lastAttempt } from "../../src/core/exec/ledger.js";
import { runSubmit } from "../../src/cli/commands/submit.js";
import { readLedger } from "../../src/exec/ledger-file.js";
import { makeStage } from "../doubles/stage.js";
import { startCluster, type ClusterEnv } from "../helpers/cluster.js";
import { runCli } from "../helpers/run-cli.js";
import { runCommand } from "../helpers/run-command.js";

const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-submit-"));

function writeConfig(dir: string, executors: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, "relabel.json");
  writeFileSync(file, JSON.stringify({ executors, ...extra }, null, 2));
  return file;
}

// Started by the first test that needs sshd and Slurm: the others run without them.
let started: ClusterEnv | undefined;
const cluster = (): ClusterEnv => (started ??= startCluster());

describe("relabel submit", () => {
  it("prints its help", async () => {
    const res = await runCommand(runSubmit, "--help");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: relabel submit STAGE_DIR/);
    expect(res.stdout).toContain("--executor NAME");
  });

  it("runs on this host without a config, records the job and does nothing the second time", async () => {
    const dir = tmp();
    const jobs = path.join(dir, "jobs.json");
    const stage = makeStage({ name: "cli-local", sleep: 5 });
    const first = await runCommand(runSubmit, stage.dir, "--jobs", jobs, "--round", "2");
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const runDir = path.join(dir, "runs", "2", `cli-local-${stage.hash!.slice(0, 12)}`);
    const job = (await readLedger(jobs)).jobs[0];
    expect(first.stdout).toBe(`uploaded 7 files (0 unchanged) to ${runDir}\nsubmitted cli-local (train, round 2, job ${lastAttempt(job).job_id} on local)\n`);
    expect(job).toMatchObject({ backend: "local", executor: "local", remote_dir: runDir, hash: stage.hash });

    const second = await runCommand(runSubmit, stage.dir, "--jobs", jobs, "--round", "2");
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`^cli-local: already submitted as job ${lastAttempt(job).job_id} \\((PENDING|RUNNING)\\); nothing to do\\n$`));
    expect((await readLedger(jobs)).jobs).toHaveLength(1);
    process.kill(-Number(lastAttempt(job).job_id), "SIGTERM");
  });

  it("hashes a stage without stage.json, given --kind", async () => {
    const dir = tmp();
    const stage = makeStage({ name: "no-json", noStageJson: true });
    await expect(runCommand(runSubmit, stage.dir, "--jobs", path.join(dir, "j.json"), "--round", "1")).rejects.toThrow(InputError);
    const res = await runCommand(runSubmit, stage.dir, "--jobs", path.join(dir, "j.json"), "--round", "1", "--kind", "eval");
    expect(res.code).toBe(0);
    const job = (await readLedger(path.join(dir, "j.json"))).jobs[0];
    expect(job.kind).toBe("eval");
    expect(job.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("answers usage mistakes with a usage error", async () => {
    const stage = makeStage({ name: "usage" });
    await expect(runCommand(runSubmit)).rejects.toThrow(/expected one STAGE_DIR\nusage: relabel submit/);
    await expect(runCommand(runSubmit, stage.dir, "--kind", "predict")).rejects.toThrow(/--kind must be one of train, eval/);
    await expect(runCommand(runSubmit, stage.dir, "--round", "a/b")).rejects.toThrow(UsageError);
    await expect(runCommand(runSubmit, stage.dir, "--round", "1", "--executor", "hpc")).rejects.toThrow("--executor hpc needs --config FILE defining it");
  });

  it("reports config mistakes as one line naming the file and the key", async () => {
    const dir = tmp();
    const stage = makeStage({ name: "bad-config" });
    const typo = writeConfig(dir, { hpc: { backend: "local", remote_root: "/tmp/x", resources: { partiton: "gpu" } } });
    await expect(runCommand(runSubmit, stage.dir, "--round", "1", "--config", typo)).rejects.toThrow(
      `${typo}: executors.hpc.resources: unknown key "partiton" (did you mean "partition"?)`,
    );
    const broken = path.join(dir, "broken.json");
    writeFileSync(broken, '{\n  "executors": {\n    "a": 1,\n  }\n}\n');
    await expect(runCommand(runSubmit, stage.dir, "--round", "1", "--config", broken)).rejects.toThrow(new RegExp(`^${broken}:4: not valid JSON`));
    const two = writeConfig(dir, { a: { backend: "local", remote_root: "/tmp/a" }, b: { backend: "local", remote_root: "/tmp/b" } });
    await expect(runCommand(runSubmit, stage.dir, "--round", "1", "--config", two)).rejects.toThrow("several executors are configured (a, b): choose one with --executor");
    await expect(runCommand(runSubmit, stage.dir, "--round", "1", "--config", two, "--executor", "c")).rejects.toThrow('no executor "c" in the config (configured: a, b)');
  });

  it("says in one line that a host cannot be reached, and records nothing", async () => {
    const env = cluster();
    const dir = tmp();
    const config = writeConfig(dir, {
      hpc: { backend: "ssh+slurm", host: "127.0.0.1", port: 2299, user: env.user, host_key: env.host_key, private_key_file: env.private_key_file, remote_root: "~/runs" },
    });
    const jobs = path.join(dir, "jobs.json");
    const res = await runCli("submit", makeStage({ name: "unreachable" }).dir, "--round", "1", "--config", config, "--jobs", jobs);
    expect(res).toEqual({ code: 1, stdout: "", stderr: "error: cannot connect to 127.0.0.1:2299: connection refused\n" });
    expect(existsSync(jobs)).toBe(false);
  });

  it("refuses a host key that does not match the pinned fingerprint", async () => {
    const env = cluster();
    const dir = tmp();
    const pinned = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    const config = writeConfig(dir, {
      hpc: { backend: "ssh+slurm", host: env.host, port: env.port, user: env.user, host_key: pinned, private_key_file: env.private_key_file, remote_root: "~/runs" },
    });
    const res = await runCli("submit", makeStage({ name: "wrong-key" }).dir, "--round", "1", "--config", config, "--jobs", path.join(dir, "jobs.json"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: host key for ${env.host}:${env.port} is ${env.host_key} (ssh-ed25519), expected ${pinned}: refusing to connect (if host_key is another of this server's keys, pin its ed25519 key: ssh-keyscan -t ed25519 -p PORT HOST | ssh-keygen -lf -)\n`);
  });

  it("submits a stage without a round (none in stage.json, no --round) to round cli", async () => {
    const dir = tmp();
    const stage = makeStage({ name: "no-round" });
    const res = await runCommand(runSubmit, stage.dir, "--jobs", path.join(dir, "jobs.json"));
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^submitted no-round \(train, round cli, job \d+ on local\)$/m);
    const job = (await readLedger(path.join(dir, "jobs.json"))).jobs[0];
    expect(job.round).toBe("cli");
    expect(job.remote_dir).toBe(path.join(dir, "runs", "cli", `no-round-${stage.hash!.slice(0, 12)}`));
  });

  it("takes the round from stage.json", async () => {
    const dir = tmp();
    const stage = makeStage({ name: "with-round" });
    const meta = path.join(stage.dir, "stage.json");
    writeFileSync(meta, JSON.stringify({ kind: "train", sha256: stage.hash, round: 4 }));
    const res = await runCommand(runSubmit, stage.dir, "--jobs", path.join(dir, "jobs.json"));
    expect(res.code).toBe(0);
    const job = (await readLedger(path.join(dir, "jobs.json"))).jobs[0];
    expect(job.round).toBe("4");
    expect(job.remote_dir).toBe(path.join(dir, "runs", "4", `with-round-${stage.hash!.slice(0, 12)}`));
  });
});

describe("relabel submit with a data repo's relabel.yml", () => {
  it("takes the executors from the YAML config the App reads, validated the same way", async () => {
    const dir = tmp();
    const yml = path.join(dir, "relabel.yml");
    writeFileSync(yml, `executor: here\nexecutors:\n  here:\n    backend: local\n    remote_root: ${path.join(dir, "runs")}\nselection:\n  select: 4\n`);
    const stage = makeStage({ name: "from-yaml" });
    const res = await runCli("submit", stage.dir, "--round", "1", "--config", yml, "--jobs", path.join(dir, "jobs.json"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const jobs = JSON.parse(readFileSync(path.join(dir, "jobs.json"), "utf8")) as { jobs: { executor: string; remote_dir: string }[] };
    expect(jobs.jobs[0].executor).toBe("here");
    expect(jobs.jobs[0].remote_dir.startsWith(path.join(dir, "runs"))).toBe(true);
    writeFileSync(yml, "executors:\n  here:\n    backend: local\n    remote_rot: /tmp\n");
    const typo = await runCli("submit", stage.dir, "--round", "1", "--config", yml, "--jobs", path.join(dir, "j2.json"));
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^error: .*relabel\.yml: executors\.here.*remote_rot/);
  });
});
