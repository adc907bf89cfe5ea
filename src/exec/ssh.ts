/**
 * One persistent SSH connection per execution host (ssh2), with keepalive, host-key pinning and reconnection:
 * an operation cut off by a dropped connection runs again once the connection is back (every script and file
 * transfer the executors use is idempotent). A network error never means that a job died.
 */
import { createHash } from "node:crypto";
import { readFile, mkdir, rename as renameLocal } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
// ssh2 is CommonJS: Node finds `Client` as a named export, but not `utils`.
import ssh2, { Client, type SFTPWrapper } from "ssh2";
import type { SshExecutorConfig } from "../core/exec/config.js";
import { afterSentinel, stderrAfterSentinel, withSentinel } from "../core/exec/scripts.js";
import { ConnectionError, ExecError } from "./errors.js";
import type { RunResult, Transport } from "./transport.js";

/** The fingerprint `ssh-keygen -lf` prints for a raw public key blob. */
export function fingerprintOf(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** The algorithm named at the start of a raw public key blob ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"), or null. */
export function hostKeyType(key: Buffer): string | null {
  if (key.length < 4) return null;
  const length = key.readUInt32BE(0);
  if (length === 0 || length > 64 || key.length < 4 + length) return null;
  const name = key.subarray(4, 4 + length).toString("latin1");
  return /^[a-z0-9@.-]+$/.test(name) ? name : null;
}

/**
 * Why a presented host key was refused. ssh2 asks for an ed25519 key first, then ecdsa, then rsa, while
 * `ssh-keyscan | ssh-keygen -lf -` lists every key, RSA first: a user who pinned another of the server's keys
 * is told which one to pin.
 */
export function hostKeyMismatch(address: string, seen: string, type: string | null, expected: string): string {
  const scanType = type === null ? null : type === "ssh-ed25519" ? "ed25519" : type.startsWith("ecdsa-") ? "ecdsa" : type === "ssh-rsa" ? "rsa" : null;
  const which = type === null ? "" : ` (${type})`;
  const hint = scanType === null ? "" : ` (if host_key is another of this server's keys, pin its ${scanType} key: ssh-keyscan -t ${scanType} -p PORT HOST | ssh-keygen -lf -)`;
  return `host key for ${address} is ${seen}${which}, expected ${expected}: refusing to connect${hint}`;
}

/**
 * Why the SFTP session did not start. sshd starts an external sftp-server through the user's login shell: text a
 * login script prints (an `echo` in ~/.bashrc) lands in the SFTP stream, which then reads as a huge packet length.
 */
export function sftpStartProblem(label: string, err: Error & { level?: string }): string {
  const garbled = err.level === "sftp-protocol" || /Packet length \d+ exceeds|Expected VERSION packet|Unknown packet type|Invalid packet length/.test(err.message);
  const hint = garbled ? ": something printed text before the SFTP server started; make login scripts (~/.bashrc, ~/.cshrc) print only in interactive shells" : "";
  return `${label}: cannot start SFTP (${err.message})${hint}`;
}

/** A private key as read from its file or variable, with the passphrase that unlocks it (if any). */
/**
 * Opens an SFTP session on a connection; `gone` hears when the session failed or closed after it started, so that
 * the next operation opens another. ssh2 reports a fatal SFTP protocol error as an "error" event (the pending calls
 * fail by themselves), which without a listener would crash the process.
 */
export function openSftpSession(client: Pick<Client, "sftp">, startProblem: (err: Error) => Error, gone: () => void): Promise<SFTPWrapper> {
  return new Promise<SFTPWrapper>((resolve, reject) =>
    client.sftp((err, sftp) => {
      if (err) {
        reject(startProblem(err));
        return;
      }
      sftp.on("error", gone);
      sftp.on("close", gone);
      resolve(sftp);
    }),
  );
}

export interface PrivateKey {
  key: Buffer;
  passphrase?: string;
}

/** A private_key_file on this host: an absolute path, or ~/... in the home directory. */
export function keyFilePath(file: string): string {
  return file.startsWith("~/") ? path.join(homedir(), file.slice(2)) : file;
}

type KeyConfig = Pick<SshExecutorConfig, "private_key_file" | "private_key_env" | "private_key_passphrase_env">;

/**
 * Reads the private key named by the config (and its passphrase), and checks that it can be used before any
 * connection is tried. Neither the key nor the passphrase ever appears in messages.
 */
export async function loadPrivateKey(config: KeyConfig): Promise<PrivateKey> {
  let key: Buffer;
  let origin: string;
  if (config.private_key_env !== undefined) {
    const value = process.env[config.private_key_env];
    if (!value) throw new ConnectionError(`the environment variable ${config.private_key_env} (private_key_env) is not set`, false);
    key = Buffer.from(value.endsWith("\n") ? value : `${value}\n`);
    origin = `the private key in ${config.private_key_env}`;
  } else {
    const file = keyFilePath(config.private_key_file!);
    try {
      key = await readFile(file);
    } catch (err) {
      throw new ConnectionError(`cannot read the private key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, false);
    }
    origin = `the private key ${file}`;
  }
  let passphrase: string | undefined;
  if (config.private_key_passphrase_env !== undefined) {
    passphrase = process.env[config.private_key_passphrase_env];
    if (!passphrase) throw new ConnectionError(`the environment variable ${config.private_key_passphrase_env} (private_key_passphrase_env) is not set`, false);
  }
  const parsed = ssh2.utils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) {
      throw new ConnectionError(`${origin} is protected by a passphrase: set private_key_passphrase_env to the name of an environment variable holding it`, false);
    }
    if (passphrase !== undefined && /passphrase|decrypt/i.test(parsed.message)) {
      throw new ConnectionError(`the passphrase in ${config.private_key_passphrase_env} (private_key_passphrase_env) does not unlock ${origin}`, false);
    }
    throw new ConnectionError(`cannot use ${origin}: ${parsed.message}`, false);
  }
  return passphrase === undefined ? { key } : { key, passphrase };
}

export interface SshOptions {
  host: string;
  port: number;
  user: string;
  /** Pinned host key fingerprint, SHA256:... */
  hostKey: string;
  privateKey: PrivateKey;
  keepaliveSeconds: number;
  connectTimeoutSeconds: number;
  /** How long to keep trying after an established connection dropped. */
  reconnectTimeoutSeconds: number;
}

export function sshOptions(config: SshExecutorConfig, privateKey: PrivateKey): SshOptions {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    hostKey: config.host_key,
    privateKey,
    keepaliveSeconds: config.keepalive_interval,
    connectTimeoutSeconds: config.connect_timeout,
    reconnectTimeoutSeconds: config.reconnect_timeout,
  };
}

const FIRST_CONNECT_RETRY_MS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SOCKET_REASONS: Record<string, [string, boolean]> = {
  ECONNREFUSED: ["connection refused", true],
  ECONNRESET: ["connection reset", true],
  ETIMEDOUT: ["timed out", true],
  EHOSTUNREACH: ["host unreachable", true],
  ENETUNREACH: ["network unreachable", true],
  EAI_AGAIN: ["host name lookup failed", true],
  ENOTFOUND: ["host not found", false],
};

export class SshTransport implements Transport {
  readonly label: string;
  /** How often an established connection had to be opened again. */
  reconnects = 0;
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private sftpSessions = new WeakMap<Client, Promise<SFTPWrapper>>();
  private closed = new WeakSet<Client>();
  private connectedOnce = false;
  private closing = false;

  constructor(private readonly options: SshOptions) {
    this.label = `${options.user}@${options.host}:${options.port}`;
  }

  private get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  run(script: string): Promise<RunResult> {
    return this.withConnection((client) => this.exec(client, "bash -s", withSentinel(script))).then((r) => ({ ...r, stdout: afterSentinel(r.stdout), stderr: stderrAfterSentinel(r.stderr) }));
  }

  put(localPath: string, remotePath: string, mode: number): Promise<void> {
    return this.withConnection(async (client) => {
      const sftp = await this.sftp(client);
      await sftpCall<void>((cb) => sftp.fastPut(localPath, `${remotePath}.part`, { mode }, cb));
      await this.rename(sftp, `${remotePath}.part`, remotePath);
    });
  }

  putText(remotePath: string, text: string, mode: number): Promise<void> {
    return this.withConnection(async (client) => {
      const sftp = await this.sftp(client);
      await sftpCall<void>((cb) => sftp.writeFile(`${remotePath}.part`, text, { mode }, cb));
      await sftpCall<void>((cb) => sftp.chmod(`${remotePath}.part`, mode, cb));
      await this.rename(sftp, `${remotePath}.part`, remotePath);
    });
  }

  get(remotePath: string, localPath: string): Promise<void> {
    return this.withConnection(async (client) => {
      const sftp = await this.sftp(client);
      await mkdir(path.dirname(localPath), { recursive: true });
      await sftpCall<void>((cb) => sftp.fastGet(remotePath, `${localPath}.part`, cb)).catch((err: { code?: number; message: string }) => {
        throw err.code === 2 ? new ExecError(`${this.label}: ${remotePath} does not exist`) : err;
      });
      await renameLocal(`${localPath}.part`, localPath);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const client = this.client;
    this.client = null;
    if (client && !this.closed.has(client)) {
      await new Promise<void>((resolve) => {
        client.once("close", () => resolve());
        client.end();
      });
    }
  }

  /**
   * Runs op on the live connection. When the connection drops under it, op runs again on a new connection, for
   * at most reconnect_timeout seconds after the first drop.
   */
  private async withConnection<T>(op: (client: Client) => Promise<T>): Promise<T> {
    let lostAt: number | null = null;
    for (;;) {
      const client = await this.connection(lostAt);
      try {
        return await this.untilClosed(client, op(client));
      } catch (err) {
        if (!this.closed.has(client) && !(err instanceof ConnectionError && err.retryable)) throw err;
        if (this.client === client) this.client = null;
        lostAt ??= Date.now();
        if (Date.now() - lostAt > this.options.reconnectTimeoutSeconds * 1000) {
          throw new ConnectionError(`lost the connection to ${this.address} and could not get it back within ${this.options.reconnectTimeoutSeconds} s`, true);
        }
      }
    }
  }

  /** SFTP requests in flight when the connection dies never call back: settle them when the client closes. */
  private untilClosed<T>(client: Client, work: Promise<T>): Promise<T> {
    if (this.closed.has(client)) return Promise.reject(new ConnectionError(`the connection to ${this.address} dropped`, true));
    let onClose: () => void = () => {};
    const closed = new Promise<never>((_, reject) => {
      onClose = () => reject(new ConnectionError(`the connection to ${this.address} dropped`, true));
      client.once("close", onClose);
    });
    return Promise.race([work, closed]).finally(() => client.removeListener("close", onClose));
  }

  private connection(lostAt: number | null): Promise<Client> {
    if (this.client && !this.closed.has(this.client)) return Promise.resolve(this.client);
    this.connecting ??= this.establish(lostAt).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /**
   * Connects, retrying with backoff: for reconnect_timeout once a connection has existed, and only briefly before
   * (a refused first connection is usually a wrong address, but may be an sshd restarting).
   */
  private async establish(lostAt: number | null): Promise<Client> {
    if (this.closing) throw new ConnectionError(`the connection to ${this.address} was closed`, false);
    const since = lostAt ?? Date.now();
    const budget = this.connectedOnce ? this.options.reconnectTimeoutSeconds * 1000 : FIRST_CONNECT_RETRY_MS;
    let delay = 200;
    for (;;) {
      try {
        const client = await this.connectOnce();
        if (this.closing) {
          client.end();
          throw new ConnectionError(`the connection to ${this.address} was closed`, false);
        }
        if (this.connectedOnce) this.reconnects++;
        this.connectedOnce = true;
        this.client = client;
        return client;
      } catch (err) {
        if (!(err instanceof ConnectionError) || !err.retryable || Date.now() + delay - since > budget) throw err;
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private connectOnce(): Promise<Client> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let seenKey: string | null = null;
      let seenType: string | null = null;
      let settled = false;
      const fail = (err: ConnectionError) => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      client.on("ready", () => {
        settled = true;
        resolve(client);
      });
      // After "ready", errors are followed by "close", which marks the client dead; operations then reconnect.
      client.on("error", (err) => fail(this.describe(err, seenKey, seenType)));
      client.on("close", () => {
        this.closed.add(client);
        if (this.client === client) this.client = null;
        fail(new ConnectionError(`cannot connect to ${this.address}: connection closed`, true));
      });
      try {
        client.connect({
          host: this.options.host,
          port: this.options.port,
          username: this.options.user,
          privateKey: this.options.privateKey.key,
          passphrase: this.options.privateKey.passphrase,
          readyTimeout: this.options.connectTimeoutSeconds * 1000,
          keepaliveInterval: this.options.keepaliveSeconds * 1000,
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            seenKey = fingerprintOf(key);
            seenType = hostKeyType(key);
            return seenKey === this.options.hostKey;
          },
        });
      } catch (err) {
        fail(new ConnectionError(`cannot use the private key for ${this.address}: ${(err as Error).message}`, false));
      }
    });
  }

  private describe(err: Error & { code?: string; level?: string }, seenKey: string | null, seenType: string | null): ConnectionError {
    if (seenKey !== null && seenKey !== this.options.hostKey) {
      return new ConnectionError(hostKeyMismatch(this.address, seenKey, seenType, this.options.hostKey), false);
    }
    const socket = err.code ? SOCKET_REASONS[err.code] : undefined;
    if (socket) return new ConnectionError(`cannot connect to ${this.address}: ${socket[0]}`, socket[1]);
    if (err.level === "client-authentication") {
      return new ConnectionError(`cannot log in to ${this.address} as ${this.options.user}: the server refused the private key`, false);
    }
    if (err.level === "client-timeout") return new ConnectionError(`cannot connect to ${this.address}: timed out (${err.message})`, true);
    return new ConnectionError(`cannot connect to ${this.address}: ${err.message}`, true);
  }

  /** Runs a command; a channel that closes without an exit status means the connection dropped. */
  private exec(client: Client, command: string, stdin: string): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      client.exec(command, (err, stream) => {
        if (err) return reject(this.closed.has(client) ? new ConnectionError(err.message, true) : new ExecError(`${this.label}: ${err.message}`));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let code: number | null = null;
        stream.on("data", (d: Buffer) => out.push(d));
        stream.stderr.on("data", (d: Buffer) => errOut.push(d));
        stream.on("exit", (c: number | null, signal?: string) => {
          code = c ?? (signal ? 128 : 1);
        });
        stream.on("close", () => {
          if (code === null) reject(new ConnectionError(`the connection to ${this.address} dropped`, true));
          else resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(errOut).toString("utf8") });
        });
        stream.end(stdin);
      });
    });
  }

  private sftp(client: Client): Promise<SFTPWrapper> {
    let session = this.sftpSessions.get(client);
    if (!session) {
      const opened = openSftpSession(
        client,
        (err) => (this.closed.has(client) ? err : new ExecError(sftpStartProblem(this.label, err))),
        () => {
          if (this.sftpSessions.get(client) === opened) this.sftpSessions.delete(client);
        },
      );
      this.sftpSessions.set(client, (session = opened));
      opened.catch(() => this.sftpSessions.delete(client));
    }
    return session;
  }

  /** Renames over an existing file (posix-rename@openssh.com; plain SFTP rename refuses to overwrite). */
  private async rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
    try {
      await sftpCall<void>((cb) => sftp.ext_openssh_rename(from, to, cb));
    } catch (err) {
      if (!/not supported/i.test((err as Error).message)) throw err;
      await sftpCall<void>((cb) => sftp.unlink(to, () => cb(undefined)));
      await sftpCall<void>((cb) => sftp.rename(from, to, cb));
    }
  }
}

function sftpCall<T>(start: (cb: (err?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    try {
      start((err, value) => (err ? reject(err) : resolve(value as T)));
    } catch (err) {
      reject(err);
    }
  });
}
