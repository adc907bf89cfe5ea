/**
 * How executors reach the execution host: run a bash script there and move files. The SSH transport lives in
 * ssh.ts; this file holds the interface and the local one (bash and the file system of the bot host).
 */
import { spawn } from "node:child_process";
import { chmod, copyFile, mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { childEnv } from "../core/app-secrets.js";
import { afterSentinel, stderrAfterSentinel, withSentinel } from "../core/exec/scripts.js";

export interface RunResult {
  code: number;
  /** The script's own stdout (login banners before it are cut off). */
  stdout: string;
  /** The script's own stderr (likewise). */
  stderr: string;
}

export interface Transport {
  /** "local", or user@host:port. */
  readonly label: string;
  /** Runs a bash script; rejects only when the host cannot be reached, never for the script's exit code. */
  run(script: string): Promise<RunResult>;
  /** Copies a local file to the host, through `<remote>.part` and a rename, so a cut-off copy never looks complete. */
  put(localPath: string, remotePath: string, mode: number): Promise<void>;
  putText(remotePath: string, text: string, mode: number): Promise<void>;
  /** Copies a file from the host, through `<local>.part` and a rename. */
  get(remotePath: string, localPath: string): Promise<void>;
  close(): Promise<void>;
}

/** Runs a bash script on this host; its environment (and its jobs') never holds the GitHub App's credentials. */
export function runBash(script: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-s"], { stdio: ["pipe", "pipe", "pipe"], env: childEnv(process.env) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: afterSentinel(Buffer.concat(out).toString("utf8")), stderr: stderrAfterSentinel(Buffer.concat(err).toString("utf8")) }),
    );
    child.stdin.end(withSentinel(script));
  });
}

export class LocalTransport implements Transport {
  readonly label = "local";

  run(script: string): Promise<RunResult> {
    return runBash(script);
  }

  async put(localPath: string, remotePath: string, mode: number): Promise<void> {
    await copyFile(localPath, `${remotePath}.part`);
    await chmod(`${remotePath}.part`, mode);
    await rename(`${remotePath}.part`, remotePath);
  }

  async putText(remotePath: string, text: string, mode: number): Promise<void> {
    await writeFile(`${remotePath}.part`, text);
    await chmod(`${remotePath}.part`, mode);
    await rename(`${remotePath}.part`, remotePath);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    await mkdir(path.dirname(localPath), { recursive: true });
    await copyFile(remotePath, `${localPath}.part`);
    await rename(`${localPath}.part`, localPath);
  }

  async close(): Promise<void> {}
}
