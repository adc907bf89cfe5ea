/**
 * Runs git in the ledger's bare clone through simple-git 4.
 *
 * Environment: simple-git strips ambient GIT_* variables and refuses guarded ones passed explicitly, so network
 * calls get a clean copy of the environment plus exactly the variables they need. The installation token travels
 * as an `http.<origin>.extraHeader` set through GIT_CONFIG_COUNT/KEY/VALUE: never on the command line (visible
 * in `ps`) nor in .git/config (on disk). Every failure is rethrown as a scrubbed GitFailure.
 */
import { GitError, simpleGit, type SimpleGit, type SimpleGitOptions } from "simple-git";
import { isAppSecretVariable } from "../core/app-secrets.js";
import { scrubSecrets } from "./errors.js";

/** A git command that exited non-zero; the message and streams are already scrubbed of credentials. */
export class GitFailure extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const command = args.find((a, i) => !a.startsWith("-") && args[i - 1] !== "-c") ?? "";
    super(`git ${command} failed (exit ${exitCode}): ${oneLine(`${stdout}\n${stderr}`)}`);
    this.name = "GitFailure";
  }
}

/** Git's diagnostic lines joined on one line, without its `hint:` advice. */
export function oneLine(text: string): string {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("hint:"))
    .join(" | ");
}

/** Variables git would honour from the ambient environment that a ledger call must not inherit. */
function guardedVariable(name: string): boolean {
  return /^git_/i.test(name) || /^(editor|visual|pager|prefix|ssh_askpass)$/i.test(name);
}

/**
 * The process environment without guarded variables and without the GitHub App's credentials (hooks and helpers
 * git may run need neither), in the C locale (race detection reads git's messages).
 */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !guardedVariable(name) && !isAppSecretVariable(name)) env[name] = value;
  }
  env.LC_ALL = "C";
  return env;
}

/** Passed through to network calls when set: the CA bundle a machine may need for https. */
const PASSED_THROUGH = ["GIT_SSL_CAINFO", "GIT_SSL_CAPATH"];

/** What the `errors` hook hands back to simple-git: a GitError subclass (anything else loses its fields). */
class ExitError extends GitError {
  constructor(
    readonly exitCode: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(undefined, "git exited non-zero");
  }
}

export interface CatResult {
  /** The spec asked for (`<ref>:<path>` or an object id). */
  spec: string;
  /** null when the object does not exist. */
  type: "blob" | "tree" | "commit" | "tag" | null;
  oid: string | null;
  content: Buffer | null;
}

/** Whether git's stderr says the remote refused (or never got) credentials. */
export function credentialsRefused(stderr: string): boolean {
  return /could not read Username|Authentication failed|returned error: 40[13]/.test(stderr);
}

/**
 * A token for the remote: asked before each network call. `refused` is the token the remote just refused, when it
 * did: a cached token revoked before it expired (an installation's permissions changed) is to be replaced then.
 */
export type RemoteAuth = (refused?: string) => Promise<string>;

export class GitRunner {
  private readonly secrets = new Set<string>();
  /** The token handed to git last (the one a refusal refers to). */
  private lastToken: string | undefined;

  constructor(
    readonly dir: string,
    /** The origin's URL; the auth header is scoped to its scheme://host/. */
    private readonly remoteUrl: string,
    private readonly auth?: RemoteAuth,
  ) {}

  /** Runs a local command and returns its stdout. */
  async run(args: string[], input?: Buffer | string): Promise<string> {
    return this.exec(args, this.instance({}, input), (git) => git.raw(args));
  }

  /**
   * Runs a command that talks to the remote (fetch, push, ls-remote), with the token header when auth is set. When
   * the remote refuses the token, auth() is told and the command runs once more if it gives another.
   */
  async network(args: string[]): Promise<string> {
    try {
      return await this.networkOnce(args);
    } catch (err) {
      if (!(err instanceof GitFailure && credentialsRefused(err.stderr) && (await this.renewRefusedToken()) !== null)) throw err;
      return this.networkOnce(args);
    }
  }

  /**
   * After the remote refused the last token: asks auth() for another, telling it which was refused. The Authorization
   * header value of the new token, or null when auth() gave none other (a second try would fail the same way).
   */
  async renewRefusedToken(): Promise<string | null> {
    const refused = this.lastToken;
    if (!this.auth || refused === undefined) return null;
    const token = await this.auth(refused);
    const basic = this.remember(token);
    return token === refused ? null : `Basic ${basic}`;
  }

  private async networkOnce(args: string[]): Promise<string> {
    const env = baseEnv();
    const allowed = ["GIT_TERMINAL_PROMPT", "GIT_CONFIG_COUNT"];
    for (const name of PASSED_THROUGH) {
      const value = process.env[name];
      if (value !== undefined) {
        env[name] = value;
        allowed.push(name);
      }
    }
    // Never wait for a password prompt; fail instead.
    env.GIT_TERMINAL_PROMPT = "0";
    const config: [string, string][] = [
      // A stalled transfer (under 1 KiB/s for a minute) fails instead of holding the ledger's mutex forever.
      ["http.lowSpeedLimit", "1024"],
      ["http.lowSpeedTime", "60"],
    ];
    const origin = httpOrigin(this.remoteUrl);
    const authorization = await this.authorization();
    if (authorization !== null) config.push([`http.${origin}.extraHeader`, `Authorization: ${authorization}`]);
    env.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([key, value], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = key;
      env[`GIT_CONFIG_VALUE_${i}`] = value;
      allowed.push(`GIT_CONFIG_KEY_${i}`, `GIT_CONFIG_VALUE_${i}`);
    });
    const git = this.instance({ allowEnvironment: allowed, unsafe: { allowUnsafeConfigEnvCount: true } }).env(env);
    return this.exec(args, git, (g) => g.raw(args));
  }

  /**
   * The Authorization header value for the remote's origin (`Basic base64("x-access-token:<token>")`), asked
   * from auth() afresh; null for paths, file:// remotes and remotes without auth. Both forms are scrubbed after.
   */
  async authorization(): Promise<string | null> {
    if (!this.auth || httpOrigin(this.remoteUrl) === null) return null;
    return `Basic ${this.remember(await this.auth())}`;
  }

  /** Keeps `token` as the last one handed out, and it and its Basic form as secrets to scrub; returns the Basic form. */
  private remember(token: string): string {
    const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
    this.lastToken = token;
    this.secrets.add(token);
    this.secrets.add(basic);
    return basic;
  }

  /** `git cat-file --batch` for several specs in one process. */
  async catBatch(specs: readonly string[]): Promise<CatResult[]> {
    if (specs.length === 0) return [];
    for (const spec of specs) {
      if (spec.includes("\n")) throw new Error(`object spec with a newline: ${JSON.stringify(spec)}`);
    }
    const input = specs.map((s) => `${s}\n`).join("");
    const out = await this.exec(["cat-file", "--batch"], this.instance({}, input), (git) =>
      git.binaryCatFile(["--batch"]),
    );
    return parseCatBatch(out, specs);
  }

  /** Scrubs text with the regexes and every token this runner has handed to git. */
  scrub(text: string): string {
    return scrubSecrets(text, this.secrets);
  }

  private instance(options: Partial<SimpleGitOptions>, input?: Buffer | string): SimpleGit {
    const git = simpleGit({
      baseDir: this.dir,
      ...options,
      ...(input === undefined ? {} : { input: () => input }),
      // Any non-zero exit is a failure (simple-git's default lets a silent non-zero exit pass as success).
      errors: (error, result) =>
        result.exitCode === 0
          ? error
          : new ExitError(result.exitCode, Buffer.concat(result.stdOut).toString("utf8"), Buffer.concat(result.stdErr).toString("utf8")),
    });
    return options.allowEnvironment ? git : git.env(baseEnv());
  }

  private async exec<T>(args: string[], git: SimpleGit, call: (git: SimpleGit) => Promise<T>): Promise<T> {
    try {
      return await call(git);
    } catch (err) {
      // A fresh error without `cause`: the original may hold the unscrubbed text.
      if (err instanceof ExitError) throw new GitFailure(args, err.exitCode, this.scrub(err.stdout), this.scrub(err.stderr));
      throw new GitFailure(args, -1, "", this.scrub(err instanceof Error ? err.message : String(err)));
    }
  }
}

/** `scheme://host[:port]/` of an http(s) URL, or null for paths and file:// URLs (no auth header there). */
export function httpOrigin(url: string): string | null {
  const m = /^(https?:\/\/)(?:[^/@]*@)?([^/]+)/i.exec(url);
  return m ? `${m[1].toLowerCase()}${m[2]}/` : null;
}

/** Parses `cat-file --batch` output: `<oid> <type> <size>\n<content>\n` or `<spec> missing\n` per spec. */
export function parseCatBatch(out: Buffer, specs: readonly string[]): CatResult[] {
  const results: CatResult[] = [];
  let at = 0;
  for (const spec of specs) {
    const eol = out.indexOf(0x0a, at);
    if (eol < 0) throw new Error(`cat-file --batch output ended before ${spec}`);
    const header = out.subarray(at, eol).toString("utf8");
    at = eol + 1;
    const m = /^([0-9a-f]{40,64}) (blob|tree|commit|tag) (\d+)$/.exec(header);
    if (!m) {
      // `missing`, `ambiguous` or (for odd specs) `dangling`: no object for this spec.
      results.push({ spec, type: null, oid: null, content: null });
      continue;
    }
    const size = Number(m[3]);
    results.push({ spec, type: m[2] as CatResult["type"], oid: m[1], content: out.subarray(at, at + size) });
    at += size + 1;
  }
  return results;
}
