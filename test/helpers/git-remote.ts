/**
 * Real git remotes for ledger tests: a bare repository on disk (the "GitHub" data repo) and, for the token path,
 * the same repositories served over smart HTTP on 127.0.0.1 by `git http-backend` behind a Basic-auth check.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

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
  close(): Promise<void>;
}

/**
 * Serves the bare repos under `root` over git's smart HTTP protocol (fetch and push). Requests without
 * `Authorization: Basic base64("x-access-token:<token>")` get 401, like GitHub without a valid token.
 */
export async function startGitHttpServer(root: string, token: string): Promise<GitHttpServer> {
  const expected = `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`;
  const authorizations: (string | null)[] = [];
  const server: Server = createServer((req, res) => {
    authorizations.push(req.headers.authorization ?? null);
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="relabel-test"' });
      res.end("Bad credentials\n");
      return;
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
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
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
