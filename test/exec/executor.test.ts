/**
 * The executor pool's policy (the App's limits on what a data repo's config may open): the local backend refused,
 * and the App's own private key refused as an SSH key, before any key is read or any connection is tried.
 */
import { linkSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
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

  it("takes only the keys the App's operator offers: RELABEL_SSH_* variables and files in the key folder", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "relabel-offered-"));
    const offered = path.join(root, "offered");
    mkdirSync(offered);
    writeFileSync(path.join(offered, "cluster.pem"), "not a real key\n");
    writeFileSync(path.join(root, "id_ed25519"), "the host's own key\n");
    symlinkSync(path.join(root, "id_ed25519"), path.join(offered, "sneaky.pem"));
    const messageOf = async (pool: ExecutorPool, config: ExecutorConfig) => ((await pool.get("hpc", config).catch((e: unknown) => e)) as Error).message;
    const withEnv = (variables: { private_key_env: string; private_key_passphrase_env?: string }): ExecutorConfig => {
      const { private_key_file: _file, ...rest } = ssh("") as Extract<ExecutorConfig, { host: string }>;
      return { ...rest, ...variables };
    };
    const pool = new ExecutorPool({ offeredKeys: { dir: offered } });
    expect(await messageOf(pool, withEnv({ private_key_env: "HOME_KEY" }))).toBe(
      "executors.hpc.private_key_env: HOME_KEY is not offered to data repositories; this App reads SSH keys and passphrases only from variables named RELABEL_SSH_*",
    );
    expect(await messageOf(pool, withEnv({ private_key_env: "RELABEL_SSH_KEY", private_key_passphrase_env: "OTHER" }))).toMatch(/^executors\.hpc\.private_key_passphrase_env: OTHER is not offered/);
    expect(await messageOf(pool, ssh(path.join(root, "id_ed25519")))).toBe(`executors.hpc.private_key_file: ${path.join(root, "id_ed25519")} is not a file in the App's key folder (RELABEL_SSH_KEY_DIR)`);
    // A link in the folder to a key elsewhere is that key.
    expect(await messageOf(pool, ssh(path.join(offered, "sneaky.pem")))).toMatch(/sneaky\.pem is not a file in the App's key folder/);
    expect(await messageOf(new ExecutorPool({ offeredKeys: { dir: null } }), ssh(path.join(offered, "cluster.pem")))).toBe(
      "executors.hpc.private_key_file: this App offers no key files (its operator set no RELABEL_SSH_KEY_DIR); name a RELABEL_SSH_* variable in private_key_env instead",
    );
    // Offered ones go on to be read (and fail there: neither is a key).
    expect(await messageOf(pool, ssh(path.join(offered, "cluster.pem")))).toMatch(/^cannot (read|parse|use) the private key/);
    delete process.env.RELABEL_SSH_KEY;
    expect(await messageOf(pool, withEnv({ private_key_env: "RELABEL_SSH_KEY" }))).toMatch(/RELABEL_SSH_KEY/);
  });
});
