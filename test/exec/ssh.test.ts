/**
 * The SSH connection against the real loopback sshd: host-key pinning, clear connection errors, private keys from
 * an environment variable, and uploads that survive a dropped connection or a crashed bot.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { utils } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecutorConfig } from "../../src/core/exec/config.js";
import { lastAttempt } from "../../src/core/exec/ledger.js";
import { readLedger } from "../../src/exec/ledger-file.js";
import { SshTransport } from "../../src/exec/ssh.js";
import { readStageRef } from "../../src/exec/stage.js";
import { JobTracker } from "../../src/exec/tracker.js";
import { makeStage } from "../doubles/stage.js";
import { dropOwnSshConnections, remoteRoot, sshExecutor, startCluster, type ClusterEnv } from "../helpers/cluster.js";

let env: ClusterEnv;
let root: string;
const trackers: JobTracker[] = [];

beforeAll(() => {
  env = startCluster();
  root = remoteRoot(env, "ssh");
});

afterAll(async () => {
  await Promise.all(trackers.map((t) => t.close()));
});

function tracker(ledgerPath = path.join(mkdtempSync(path.join(tmpdir(), "relabel-jobs-")), "jobs.json"), options = {}): JobTracker {
  const t = new JobTracker(ledgerPath, options);
  trackers.push(t);
  return t;
}

const shell = (extra: Partial<Record<string, unknown>> = {}): ExecutorConfig => sshExecutor(env, "ssh+shell", root, extra);
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const OTHER_KEY = `SHA256:${createHash("sha256").update("not the server's key").digest("base64").replace(/=+$/, "")}`;

async function trySubmit(config: ExecutorConfig, t = tracker()) {
  const stage = await readStageRef(makeStage({ name: "conn" }).dir);
  return { t, promise: t.submit(stage, { executor: "ws", config, round: "1" }) };
}

describe("ssh connection", () => {
  it("refuses a host whose key differs from the pinned fingerprint, naming both, and records nothing", async () => {
    const { t, promise } = await trySubmit(shell({ host_key: OTHER_KEY }));
    await expect(promise).rejects.toThrow(`host key for ${env.host}:${env.port} is ${env.host_key} (ssh-ed25519), expected ${OTHER_KEY}: refusing to connect (if host_key is another of this server's keys, pin its ed25519 key: ssh-keyscan -t ed25519 -p PORT HOST | ssh-keygen -lf -)`);
    expect((await readLedger(t.ledgerPath)).jobs).toEqual([]);
  });

  it("says clearly when the host cannot be reached", async () => {
    const started = Date.now();
    const { promise } = await trySubmit(shell({ port: 2299 }));
    await expect(promise).rejects.toThrow(/^cannot connect to 127\.0\.0\.1:2299: connection refused$/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("reads the private key from an environment variable, and says when the server refuses a key", async () => {
    process.env.RELABEL_TEST_SSH_KEY = readFileSync(env.private_key_file, "utf8");
    const good = await trySubmit(shell({ private_key_file: undefined, private_key_env: "RELABEL_TEST_SSH_KEY" }));
    expect((await good.promise).action).toBe("submitted");

    process.env.RELABEL_TEST_SSH_KEY = utils.generateKeyPairSync("ed25519").private;
    const refused = await trySubmit(shell({ private_key_file: undefined, private_key_env: "RELABEL_TEST_SSH_KEY" }));
    await expect(refused.promise).rejects.toThrow(`cannot log in to ${env.host}:${env.port} as ${env.user}: the server refused the private key`);

    delete process.env.RELABEL_TEST_SSH_KEY;
    const unset = await trySubmit(shell({ private_key_file: undefined, private_key_env: "RELABEL_TEST_SSH_KEY" }));
    await expect(unset.promise).rejects.toThrow("the environment variable RELABEL_TEST_SSH_KEY (private_key_env) is not set");
  });

  it("unlocks a passphrase-protected key with the passphrase from an environment variable, and says what is missing or wrong", async () => {
    const protectedKey = shell({ private_key_file: env.protected_key_file, private_key_passphrase_env: "RELABEL_TEST_SSH_PASSPHRASE" });
    try {
      process.env.RELABEL_TEST_SSH_PASSPHRASE = env.protected_key_passphrase;
      const good = await trySubmit(protectedKey);
      expect((await good.promise).action).toBe("submitted");

      process.env.RELABEL_TEST_SSH_PASSPHRASE = "not the passphrase";
      const wrong = await trySubmit(protectedKey);
      await expect(wrong.promise).rejects.toThrow(
        `the passphrase in RELABEL_TEST_SSH_PASSPHRASE (private_key_passphrase_env) does not unlock the private key ${env.protected_key_file}`,
      );

      delete process.env.RELABEL_TEST_SSH_PASSPHRASE;
      const unset = await trySubmit(protectedKey);
      await expect(unset.promise).rejects.toThrow("the environment variable RELABEL_TEST_SSH_PASSPHRASE (private_key_passphrase_env) is not set");
      const none = await trySubmit(shell({ private_key_file: env.protected_key_file }));
      await expect(none.promise).rejects.toThrow(
        `the private key ${env.protected_key_file} is protected by a passphrase: set private_key_passphrase_env to the name of an environment variable holding it`,
      );
    } finally {
      delete process.env.RELABEL_TEST_SSH_PASSPHRASE;
    }
  });
});

describe("uploads", () => {
  const big = randomBytes(48 * 1024 * 1024);

  it("finishes an upload cut off mid-file by a dropped connection, copying each file once", async () => {
    const built = makeStage({ name: "big-drop", files: { "data/big.bin": big } });
    let dropped = 0;
    let watcher: NodeJS.Timeout | undefined;
    const t = tracker(undefined, {
      events: {
        uploaded: (job: { remote_dir: string }, file: { path: string }) => {
          if (file.path !== "bin/mace_run_train") return;
          // Drop the connection once a few MiB of the big file have arrived.
          const part = path.join(job.remote_dir, "data/big.bin.part");
          watcher = setInterval(() => {
            if (existsSync(part) && statSync(part).size > 4 * 1024 * 1024) {
              clearInterval(watcher);
              dropped = dropOwnSshConnections(env);
            }
          }, 2);
        },
      },
    });
    const stage = await readStageRef(built.dir);
    const result = await t.submit(stage, { executor: "ws", config: shell(), round: "1" });
    clearInterval(watcher);
    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(((await t.pool.transportFor(shell())) as SshTransport).reconnects).toBeGreaterThanOrEqual(1);
    expect(result.upload!.uploaded).toEqual(["bin/argparse.mjs", "bin/mace_eval_configs", "bin/mace_run_train", "data/big.bin", "data/structures.extxyz", "double.env", "run.sh", "stage.json"]);
    const remote = result.job.remote_dir;
    expect(sha256(path.join(remote, "data/big.bin"))).toBe(sha256(path.join(built.dir, "data/big.bin")));
    expect(readdirSync(path.join(remote, "data")).sort()).toEqual(["big.bin", "structures.extxyz"]);
  });

  it("resumes an upload after the bot died mid-way: files already there are skipped", async () => {
    const built = makeStage({ name: "big-crash", files: { "data/big.bin": big } });
    const stage = await readStageRef(built.dir);
    const first = tracker(undefined, {
      events: {
        uploaded: (_job: unknown, file: { path: string }) => {
          if (file.path === "data/big.bin") throw new Error("bot killed");
        },
      },
    });
    await expect(first.submit(stage, { executor: "ws", config: shell(), round: "1" })).rejects.toThrow("bot killed");
    const pending = (await readLedger(first.ledgerPath)).jobs[0];
    expect(lastAttempt(pending).state).toBe("SUBMITTING");
    expect(existsSync(path.join(pending.remote_dir, "run.sh"))).toBe(false);

    const second = tracker(first.ledgerPath);
    const result = await second.submit(stage, { executor: "ws", config: shell(), round: "1" });
    expect(result.action).toBe("submitted");
    expect(result.job.remote_dir).toBe(pending.remote_dir);
    expect(result.upload).toEqual({
      skipped: ["bin/argparse.mjs", "bin/mace_eval_configs", "bin/mace_run_train", "data/big.bin"],
      uploaded: ["data/structures.extxyz", "double.env", "run.sh", "stage.json"],
    });
    expect(sha256(path.join(result.job.remote_dir, "run.sh"))).toBe(sha256(path.join(built.dir, "run.sh")));
    expect(lastAttempt(result.job).job_id).toMatch(/^\d+$/);
  });
});
