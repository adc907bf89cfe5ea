/**
 * The executor pool's policy (the App's limits on what a data repo's config may open): the local backend refused,
 * and the App's own private key refused as an SSH key, before any key is read or any connection is tried.
 */
import { linkSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ExecutorConfig } from "../../src/core/exec/config.js";
import { ConnectionError, ExecError } from "../../src/exec/errors.js";
import { ExecutorPool } from "../../src/exec/executor.js";

const local = (root: string): ExecutorConfig => ({ backend: "local", remote_root: root, setup: [], resources: {}, overrides: {}, resubmit: false, poll_interval: 30 });

const ssh = (keyFile: string): ExecutorConfig => ({
  backend: "ssh+slurm",
  // Port 1 on loopback: never reached, the key is checked first.
  host: "127.0.0.1",
  port: 1,
  user: "alice",
  host_key: `SHA256:${"A".repeat(43)}`,
  private_key_file: keyFile,
  keepalive_interval: 15,
  connect_timeout: 1,
  reconnect_timeout: 0,
  remote_root: "/scratch/relabel",
  setup: [],
  resources: {},
  overrides: {},
  resubmit: false,
  poll_interval: 30,
});

describe("ExecutorPool policy", () => {
  it("opens the local backend by default (the CLI) and refuses it when told, saying what to configure", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "relabel-pool-"));
    const allowed = new ExecutorPool();
    expect((await allowed.get("here", local(root))).backend).toBe("local");
    const refused = new ExecutorPool({ localRefused: "configure an ssh+slurm executor" });
    const err = await refused.get("here", local(root)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect((err as Error).message).toBe('executor "here" (backend local) would run stages on this host, which is not allowed: configure an ssh+slurm executor');
  });

  it("refuses the App's own key file as an SSH key, also through a symlink or a hard link, and reads no other key", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-keys-"));
    const appKey = path.join(dir, "app.pem");
    writeFileSync(appKey, "-----BEGIN RSA PRIVATE KEY-----\nnot a real key\n-----END RSA PRIVATE KEY-----\n");
    symlinkSync(appKey, path.join(dir, "linked.pem"));
    linkSync(appKey, path.join(dir, "hard.pem"));
    const pool = new ExecutorPool({ refusedKeyFiles: [appKey] });
    for (const file of ["app.pem", "linked.pem", "hard.pem"]) {
      const err = await pool.get("hpc", ssh(path.join(dir, file))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExecError);
      expect((err as Error).message).toBe(`executors.hpc.private_key_file: ${path.join(dir, file)} is the GitHub App's own private key; expected the SSH key for alice@127.0.0.1`);
    }
    // Another file goes on to be read as the key (and, missing, fails there).
    const other = await pool.get("hpc", ssh(path.join(dir, "missing.pem"))).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(ConnectionError);
    expect((other as Error).message).toMatch(/^cannot read the private key file .*missing\.pem: ENOENT/);
  });
});
