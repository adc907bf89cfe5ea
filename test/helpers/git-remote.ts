/**
 * Real git remotes for ledger tests: a bare repository on disk (the "GitHub" data repo) and, for the token path,
 * the same repositories served over smart HTTP on 127.0.0.1 by `git http-backend` behind a Basic-auth check,
 * with a Git LFS batch API beside it.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The environment without ambient GIT_* variables (a hook or CI may set GIT_DIR and friends). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^GIT_/i.test(k)));
}

/** Runs git in `cwd` with a fixed identity; returns stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=Test Seeder", "-c", "user.email=seeder@example.invalid", ...args], {
    cwd,
    env: cleanEnv(),
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface BareRemote {
  /** Temporary root holding the bare repo (and anything else the test puts there). */
  root: string;
  /** Path of the bare repository, usable as a remote. */
  path: string;
  /** Removes everything under root. */
  cleanup(): void;
}

/** A bare repo on branch main whose first commit holds `files` (default: a minimal .github/relabel.yml). */
export function createBareRemote(
  files: Record<string, string> = { ".github/relabel.yml": "round_label: al-round\nresults_label: labeled-results\n" },
  name = "data.git",
): BareRemote {
  const root = mkdtempSync(path.join(tmpdir(), "relabel-ledger-"));
  const bare = path.join(root, name);
  git(root, "init", "--quiet", "--bare", "--initial-branch=main", bare);
  const seed = path.join(root, "seed");
  git(root, "init", "--quiet", "--initial-branch=main", seed);
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(seed, file)), { recursive: true });
    writeFileSync(path.join(seed, file), content);
  }
  git(seed, "add", "--all");
  git(seed, "commit", "--quiet", "-m", "Seed the data repo");
  git(seed, "push", "--quiet", bare, "HEAD:refs/heads/main");
  rmSync(seed, { recursive: true, force: true });
  return { root, path: bare, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>/<name>` for a bare repo directly under the served root. */
  url(name: string): string;
  /** The Authorization header of every request received (null when absent). */
  authorizations: (string | null)[];
  /** The Git LFS side: a batch API on this server, objects on a second server (another origin, as on GitHub). */
  lfs: {
    /** Stores an object for repo `name`, as a `git lfs push` would; returns its pointer's oid. */
    put(name: string, content: Buffer): string;
    /** Every request the object server received, with its Authorization header. */
    objectRequests: Array<{ method: string; path: string; authorization: string | null }>;
    /** Replaces the object server's answer to downloads (status and body), or restores it with null. */
    failDownloads(answer: { status: number; body: Buffer } | null): void;
  };
  close(): Promise<void>;
}

/** The header the fake batch API hands out for its object server, as GitHub hands out a storage credential. */
export const LFS_STORAGE_AUTH = "RemoteAuth storage-credential-for-tests";

/**
 * Serves the bare repos under `root` over git's smart HTTP protocol (fetch and push). Requests without
 * `Authorization: Basic base64("x-access-token:<token>")` get 401, like GitHub without a valid token; `token` is
 * the one token accepted, or a test of each (a fake GitHub's installation tokens).
 */
/**
 * A cache of tokens as the App keeps one, for Ledger's `auth`: hands out `cached` until told that it was refused, then
 * `fresh`. `refused` lists what it was told; set `cached` to play a token revoked behind the cache's back.
 */
export function tokenCache(cached: string, fresh: string): { auth: (refused?: string) => Promise<string>; refused: string[]; cached: string } {
  const cache = {
    cached,
    refused: [] as string[],
    auth: async (refused?: string): Promise<string> => {
      if (refused !== undefined) cache.refused.push(refused);
      if (refused === cache.cached) cache.cached = fresh;
      return cache.cached;
    },
  };
  return cache;
}

export async function startGitHttpServer(root: string, token: string | ((token: string) => boolean)): Promise<GitHttpServer> {
  const accepts = typeof token === "string" ? (t: string) => t === token : token;
  const authorizations: (string | null)[] = [];
  const objects = await startLfsObjectServer();
  const server: Server = createServer((req, res) => {
    authorizations.push(req.headers.authorization ?? null);
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
    const [user, given] = basic ? Buffer.from(basic[1], "base64").toString().split(":") : [];
    if (user !== "x-access-token" || given === undefined || !accepts(given)) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="relabel-test"' });
      res.end("Bad credentials\n");
      return;
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const batch = /^\/([^/]+)\/info\/lfs\/objects\/batch$/.exec(url.pathname);
    if (batch) {
      answerLfsBatch(req, res, batch[1], objects);
      return;
    }
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        REMOTE_USER: "x-access-token", // enables receive-pack (push)
        REMOTE_ADDR: "127.0.0.1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"] ?? ""),
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on("data", (c: Buffer) => chunks.push(c));
    cgi.on("close", () => {
      const out = Buffer.concat(chunks);
      const split = out.indexOf("\r\n\r\n");
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of out.subarray(0, split).toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        const key = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else if (key !== "") headers[key] = value;
      }
      res.writeHead(status, headers);
      res.end(out.subarray(split + 4));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    authorizations,
    lfs: objects.api,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await objects.close();
    },
  };
}

interface LfsObjectServer {
  api: GitHttpServer["lfs"];
  has(name: string, oid: string): boolean;
  href(name: string, oid: string): string;
  close(): Promise<void>;
}

/** The object storage of the fake LFS server: GET and PUT `/<repo>/<oid>` with LFS_STORAGE_AUTH only. */
async function startLfsObjectServer(): Promise<LfsObjectServer> {
  const store = new Map<string, Buffer>();
  const objectRequests: GitHttpServer["lfs"]["objectRequests"] = [];
  let failure: { status: number; body: Buffer } | null = null;
  const server = createServer((req, res) => {
    const key = decodeURIComponent(req.url ?? "/").slice(1);
    objectRequests.push({ method: req.method ?? "GET", path: key, authorization: req.headers.authorization ?? null });
    if (req.headers.authorization !== LFS_STORAGE_AUTH) {
      res.writeHead(403).end("storage credential missing\n");
    } else if (req.method === "PUT") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        store.set(key, Buffer.concat(chunks));
        res.writeHead(200).end();
      });
    } else if (failure !== null) {
      res.writeHead(failure.status).end(failure.body);
    } else {
      const content = store.get(key);
      if (content === undefined) res.writeHead(404).end("no such object\n");
      else res.writeHead(200, { "Content-Length": String(content.length) }).end(content);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    api: {
      put(name, content) {
        const oid = createHash("sha256").update(content).digest("hex");
        store.set(`${name}/${oid}`, content);
        return oid;
      },
      objectRequests,
      failDownloads: (answer) => void (failure = answer),
    },
    has: (name, oid) => store.has(`${name}/${oid}`),
    href: (name, oid) => `http://127.0.0.1:${port}/${name}/${oid}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The LFS batch API (download and upload, basic transfer) in front of the object server. */
function answerLfsBatch(req: IncomingMessage, res: ServerResponse, name: string, objects: LfsObjectServer): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { operation: string; objects: Array<{ oid: string; size: number }> };
    const header = { Authorization: LFS_STORAGE_AUTH };
    const answer = request.objects.map(({ oid, size }) => {
      const present = objects.has(name, oid);
      if (request.operation === "upload") return present ? { oid, size } : { oid, size, actions: { upload: { href: objects.href(name, oid), header } } };
      return present ? { oid, size, actions: { download: { href: objects.href(name, oid), header } } } : { oid, size, error: { code: 404, message: "Object does not exist" } };
    });
    res.writeHead(200, { "Content-Type": "application/vnd.git-lfs+json" });
    res.end(JSON.stringify({ transfer: "basic", objects: answer }));
  });
}

/**
 * Adds `files` to `remote`'s main branch through a clone where real git-lfs tracks them, as a user's
 * `git lfs track` + `git push` does: git gets pointers, the LFS store gets the content. `remote` is a file://
 * URL or an http URL of startGitHttpServer (then `authorization` is its Basic header). Asynchronous, so that a
 * server in this process can answer.
 */
export async function pushWithGitLfs(remote: string, files: Record<string, Buffer>, authorization?: string): Promise<void> {
  const root = mkdtempSync(path.join(tmpdir(), "relabel-lfs-push-"));
  const work = path.join(root, "work");
  const run = (cwd: string, ...args: string[]) =>
    execFileAsync("git", ["-c", "user.name=Test Seeder", "-c", "user.email=seeder@example.invalid", ...args], { cwd, env: cleanEnv() });
  try {
    const auth = authorization === undefined ? [] : ["-c", `http.extraHeader=Authorization: ${authorization}`];
    await run(root, ...auth, "clone", "--quiet", remote, "work");
    if (authorization !== undefined) await run(work, "config", "http.extraHeader", `Authorization: ${authorization}`);
    await run(work, "lfs", "install", "--local");
    await run(work, "config", "lfs.locksverify", "false");
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
      writeFileSync(path.join(work, file), content);
      await run(work, "lfs", "track", file);
    }
    await run(work, "add", "--all");
    await run(work, "commit", "--quiet", "-m", "Add files in Git LFS");
    await run(work, "push", "--quiet", "origin", "HEAD:main");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A clone made as a user makes one, with git-lfs active (its smudge filter checks out LFS content); cleaned up with `root`. */
export async function cloneWithGitLfs(url: string, root: string, authorization?: string): Promise<{ work: string; status: string }> {
  const auth = authorization === undefined ? [] : ["-c", `http.extraHeader=Authorization: ${authorization}`];
  await execFileAsync("git", [...auth, "clone", "--quiet", url, "work"], { cwd: root, env: { ...cleanEnv(), GIT_TERMINAL_PROMPT: "0" } });
  const work = path.join(root, "work");
  const { stdout } = await execFileAsync("git", ["status", "--porcelain"], { cwd: work, env: cleanEnv() });
  return { work, status: stdout };
}

