import { describe, expect, it } from "vitest";
import { parseExecutionConfig, parseExecutorConfig, slurmTimeSeconds, stageSettings, type ExecutorConfig } from "../../../src/core/exec/config.js";

const FP = "SHA256:+jhdc21V/zdn5MHHdxqoWycd4s30OlQNHJbhYpbHEPc";
const hpc = {
  backend: "ssh+slurm",
  host: "login.cluster.example",
  user: "alice",
  host_key: FP,
  private_key_file: "~/.ssh/id_ed25519",
  remote_root: "$SCRATCH/relabel",
  setup: ["module load cuda/12.1", "source ~/venvs/mace/bin/activate"],
  resources: { partition: "gpu", account: "proj42", qos: "normal", gpus: "a100:1", time: "04:00:00", cpus: 8, memory: "32G" },
  overrides: { eval: { resources: { time: "00:30:00", gpus: 1 } } },
};

function problem(data: unknown) {
  const result = parseExecutionConfig(data);
  if (result.ok) throw new Error("expected a problem");
  return result.problem;
}

describe("executor config", () => {
  it("accepts a Slurm executor and fills the defaults", () => {
    const result = parseExecutionConfig({ executor: "hpc", executors: { hpc } });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.executors.hpc).toMatchObject({ port: 22, resubmit: false, poll_interval: 30, keepalive_interval: 15, reconnect_timeout: 120 });
  });

  it("merges per-kind overrides key by key", () => {
    const result = parseExecutionConfig({ executors: { hpc } });
    if (!result.ok) throw new Error(result.problem.message);
    const config = result.config.executors.hpc;
    expect(stageSettings(config, "train").resources).toEqual(hpc.resources);
    expect(stageSettings(config, "eval")).toEqual({ setup: hpc.setup, resources: { ...hpc.resources, time: "00:30:00", gpus: 1 } });
  });

  it("refuses unknown keys with a suggestion", () => {
    expect(problem({ executors: { hpc: { ...hpc, resources: { partiton: "gpu" } } } })).toEqual({
      where: "executors.hpc.resources",
      message: 'unknown key "partiton" (did you mean "partition"?)',
    });
    expect(problem({ executors: { hpc: { ...hpc, hots: "x" } } })).toEqual({ where: "executors.hpc", message: 'unknown key "hots" (did you mean "host"?)' });
    expect(problem({ executors: { hpc: { ...hpc, overrides: { evaluation: {} } } } }).message).toBe('unknown key "evaluation" (expected one of: train, eval)');
  });

  it("names the valid backends and required keys", () => {
    expect(problem({ executors: { x: { backend: "slurm" } } })).toEqual({ where: "executors.x.backend", message: 'expected one of "local", "ssh+shell", "ssh+slurm"' });
    const { host: _host, ...noHost } = hpc;
    expect(problem({ executors: { hpc: noHost } })).toEqual({ where: "executors.hpc.host", message: "is required" });
  });

  it("insists on a pinned SHA256 host key and exactly one private key source outside the repository", () => {
    expect(problem({ executors: { hpc: { ...hpc, host_key: "MD5:aa:bb" } } }).message).toMatch(/^expected "SHA256:" followed by 43 base64 characters/);
    expect(problem({ executors: { hpc: { ...hpc, private_key_file: "keys/id_ed25519" } } }).message).toMatch(/keys never come from the repository/);
    expect(problem({ executors: { hpc: { ...hpc, private_key_env: "KEY" } } }).message).toBe("give exactly one of private_key_file and private_key_env");
    const { private_key_file: _k, ...noKey } = hpc;
    expect(problem({ executors: { hpc: noKey } }).message).toBe("give exactly one of private_key_file and private_key_env");
    expect(parseExecutionConfig({ executors: { hpc: { ...noKey, private_key_env: "RELABEL_SSH_KEY" } } }).ok).toBe(true);
    // A passphrase, like the key, only ever comes from the environment.
    expect(parseExecutionConfig({ executors: { hpc: { ...hpc, private_key_passphrase_env: "RELABEL_SSH_KEY_PASSPHRASE" } } }).ok).toBe(true);
    expect(problem({ executors: { hpc: { ...hpc, private_key_passphrase_env: "my secret" } } })).toEqual({
      where: "executors.hpc.private_key_passphrase_env",
      message: "expected an environment variable name",
    });
  });

  it("refuses the GitHub App's own credentials as the SSH key or its passphrase", () => {
    const { private_key_file: _k, ...noKey } = hpc;
    const refusal = "expected a variable holding the SSH key, not one of the GitHub App's own (PRIVATE_KEY, PRIVATE_KEY_PATH, WEBHOOK_SECRET, GITHUB_CLIENT_SECRET)";
    for (const name of ["PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_SECRET", "private_key"]) {
      expect(problem({ executors: { hpc: { ...noKey, private_key_env: name } } })).toEqual({ where: "executors.hpc.private_key_env", message: refusal });
    }
    expect(problem({ executors: { hpc: { ...hpc, private_key_passphrase_env: "WEBHOOK_SECRET" } } }).where).toBe("executors.hpc.private_key_passphrase_env");
    // The same schema guards the executors recorded in jobs.json.
    expect(parseExecutorConfig({ ...noKey, private_key_env: "PRIVATE_KEY" }, "hpc")).toEqual({ ok: false, problem: { where: "executors.hpc.private_key_env", message: refusal } });
  });

  it("allows only plain remote roots", () => {
    for (const root of ["/scratch/a/relabel", "~/relabel", "$SCRATCH/relabel", "${WORK}/x"]) {
      expect(parseExecutionConfig({ executors: { hpc: { ...hpc, remote_root: root } } }).ok).toBe(true);
    }
    for (const root of ["relabel", "$(rm -rf ~)/x", "/a/../b", "/a b", "/a`id`"]) {
      expect(problem({ executors: { hpc: { ...hpc, remote_root: root } } }).where).toBe("executors.hpc.remote_root");
    }
  });

  it("checks resource values and that the default executor exists", () => {
    expect(problem({ executors: { hpc: { ...hpc, resources: { time: "4h" } } } }).message).toMatch(/Slurm time limit/);
    expect(problem({ executors: { hpc: { ...hpc, resources: { memory: "lots" } } } }).message).toMatch(/memory size/);
    expect(problem({ executors: { hpc: { ...hpc, resources: { sbatch_options: ["--constraint=a100\n#SBATCH --x"] } } } }).where).toBe("executors.hpc.resources.sbatch_options.0");
    expect(problem({ executor: "gpu", executors: { hpc } })).toEqual({ where: "executor", message: "names no entry of executors" });
  });

  it("refuses sbatch options that would break tracking, also abbreviated, and values sbatch would split", () => {
    const options = (sbatch_options: string[]) => parseExecutionConfig({ executors: { hpc: { ...hpc, resources: { sbatch_options } } } });
    const refused = (option: string) => problem({ executors: { hpc: { ...hpc, resources: { sbatch_options: [option] } } } }).message;
    expect(refused("--array=0-3")).toBe("--array (job arrays) is not supported: relabel-loop could not track the job");
    expect(refused("--arr=0-3")).toMatch(/^--array/);
    expect(refused("--clusters=gpu2")).toMatch(/^--clusters/);
    expect(refused("--wait")).toMatch(/^--wait/);
    expect(refused("--test-only")).toMatch(/^--test-only/);
    expect(refused("--output=/tmp/x.out")).toMatch(/^--output/);
    expect(refused("--constraint=a100 gpu")).toMatch(/expected one sbatch option/);
    expect(options(["--constraint=a100", "--wait-all-nodes=1", '--comment="two words"', "--exclusive"]).ok).toBe(true);
  });

  it("takes a comma-separated partition list, as sbatch does", () => {
    expect(parseExecutionConfig({ executors: { hpc: { ...hpc, resources: { partition: "gpu,gpu-preempt" } } } }).ok).toBe(true);
    expect(problem({ executors: { hpc: { ...hpc, resources: { partition: "gpu;rm -rf ~" } } } }).where).toBe("executors.hpc.resources.partition");
  });

  it("validates a single executor entry as stored in jobs.json", () => {
    const result = parseExecutorConfig({ backend: "local", remote_root: "/tmp/x", extra: 1 }, "box");
    expect(result).toEqual({ ok: false, problem: { where: "executors.box", message: 'unknown key "extra" (expected one of: backend, remote_root, setup, resources, overrides, resubmit, poll_interval)' } });
    const ok = parseExecutorConfig({ backend: "local", remote_root: "/tmp/x" }, "box");
    expect(ok.ok && (ok.config as ExecutorConfig).backend).toBe("local");
  });
});

describe("slurmTimeSeconds", () => {
  it("reads every Slurm time format", () => {
    expect(slurmTimeSeconds("90")).toBe(90 * 60);
    expect(slurmTimeSeconds("1:30")).toBe(90);
    expect(slurmTimeSeconds("04:00:00")).toBe(4 * 3600);
    expect(slurmTimeSeconds("1-12")).toBe(36 * 3600);
    expect(slurmTimeSeconds("2-00:30")).toBe(2 * 86400 + 30 * 60);
    expect(slurmTimeSeconds("1-0:0:5")).toBe(86400 + 5);
    expect(slurmTimeSeconds("4h")).toBeNull();
    expect(slurmTimeSeconds("UNLIMITED")).toBeNull();
  });
});
