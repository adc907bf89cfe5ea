/**
 * The loopback sshd + Slurm the executor tests run against (test/env/cluster.sh). startCluster() is idempotent
 * and fast when everything runs; it throws, failing the tests, when the services cannot start.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ExecutorConfig } from "../../src/core/exec/config.js";

const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../env/cluster.sh");
const clusterDir = process.env.RELABEL_CLUSTER_DIR ?? "/tmp/relabel-cluster";

export interface ClusterEnv {
  host: string;
  port: number;
  user: string;
  private_key_file: string;
  /** A second authorised key, protected by protected_key_passphrase. */
  protected_key_file: string;
  protected_key_passphrase: string;
  host_key: string;
  home: string;
  slurm_conf: string;
  node: string;
}

function cluster(command: "start" | "stop-sshd" | "stop-slurmctld" | "start-slurmctld"): void {
  try {
    execFileSync("bash", [script, command], { stdio: ["ignore", "ignore", "pipe"], timeout: 600_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`test/env/cluster.sh ${command} failed: ${stderr || (err as Error).message}`);
  }
}

export function startCluster(): ClusterEnv {
  cluster("start");
  return JSON.parse(readFileSync(path.join(clusterDir, "env.json"), "utf8")) as ClusterEnv;
}

/** Stops sshd, dropping every open session; startCluster() brings it back. */
export function stopSshd(): void {
  cluster("stop-sshd");
}

/** Stops the Slurm controller; slurmd, sshd and running jobs carry on. */
export function stopSlurmctld(): void {
  cluster("stop-slurmctld");
}

/** Starts the controller again with the jobs it knew, as after a controller restart. */
export function restartSlurmctld(): void {
  cluster("start-slurmctld");
}

/** A fresh remote root in the test user's home, so every test run gets new stage directories. */
export function remoteRoot(env: ClusterEnv, label: string): string {
  execFileSync("install", ["-d", "-o", env.user, path.join(env.home, "runs")]);
  const dir = mkdtempSync(path.join(env.home, "runs", `${label}-`));
  execFileSync("chown", [env.user, dir]);
  return dir;
}

export function sshExecutor(env: ClusterEnv, backend: "ssh+slurm" | "ssh+shell", root: string, extra: Partial<Record<string, unknown>> = {}): ExecutorConfig {
  return {
    backend,
    host: env.host,
    port: env.port,
    user: env.user,
    host_key: env.host_key,
    private_key_file: env.private_key_file,
    keepalive_interval: 5,
    connect_timeout: 10,
    reconnect_timeout: 30,
    remote_root: root,
    setup: [],
    resources: {},
    overrides: {},
    resubmit: false,
    poll_interval: 1,
    ...extra,
  } as ExecutorConfig;
}

/** Every job Slurm knows with the given name, as "<id>|<state>" (queried as root, outside the code under test). */
export function slurmJobsNamed(env: ClusterEnv, name: string): string[] {
  const out = execFileSync("squeue", ["-h", "-t", "all", "-n", name, "-o", "%i|%T"], { env: { ...process.env, SLURM_CONF: env.slurm_conf } });
  return String(out).trim().split("\n").filter(Boolean);
}

/** Kills the server side of this process's SSH connections: a network drop for us only. */
export function dropOwnSshConnections(env: ClusterEnv): number {
  const out = String(execFileSync("ss", ["-Htnp", "state", "established"]));
  const ownPorts = out
    .split("\n")
    .filter((l) => l.includes(`${env.host}:${env.port}`) && l.includes(`pid=${process.pid},`))
    .map((l) => /\S+:(\d+)\s+\S+:\d+\s+users:/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  const pids = new Set<string>();
  for (const line of out.split("\n")) {
    for (const port of ownPorts) {
      if (new RegExp(`${env.host.replace(/\./g, "\\.")}:${env.port}\\s+\\S+:${port}\\s`).test(line)) {
        for (const m of line.matchAll(/pid=(\d+)/g)) pids.add(m[1]);
      }
    }
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone: the session ended on its own.
    }
  }
  return ownPorts.length;
}
