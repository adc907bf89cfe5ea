/**
 * `npm start`: the relabel-loop GitHub App as a long-lived process. Checks the environment (APP_ID, PRIVATE_KEY
 * or PRIVATE_KEY_PATH, WEBHOOK_SECRET, which must not be Probot's "development" default), serves the webhook
 * endpoint through Probot's createNodeMiddleware on a node:http server, and polls open jobs in the background.
 * Secrets are never logged, and are removed from the environment once read (see takeServerEnv).
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createNodeMiddleware, Probot, ProbotOctokit } from "probot";
import { isAppSecretVariable } from "../core/app-secrets.js";
import { RelabelApp, settingsFromEnv, type AppSettings } from "./index.js";

export interface ServerEnv {
  appId: number;
  privateKey: string;
  secret: string;
  port: number;
  host: string;
  webhooksPath: string;
  baseUrl: string | undefined;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

/** Reads and checks the environment; problems are one line each and never quote a secret. */
export function readServerEnv(env: NodeJS.ProcessEnv, readKey: (file: string) => string = (f) => readFileSync(f, "utf8")): { ok: true; env: ServerEnv } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const appId = Number(env.APP_ID);
  if (!env.APP_ID) problems.push("APP_ID is not set (the App ID from the GitHub App's settings page)");
  else if (!Number.isInteger(appId) || appId <= 0) problems.push("APP_ID must be the numeric App ID");

  let privateKey = "";
  if (env.PRIVATE_KEY) privateKey = normaliseKey(env.PRIVATE_KEY);
  else if (env.PRIVATE_KEY_PATH) {
    try {
      privateKey = normaliseKey(readKey(env.PRIVATE_KEY_PATH));
    } catch (err) {
      problems.push(`PRIVATE_KEY_PATH: cannot read ${env.PRIVATE_KEY_PATH} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
  } else problems.push("PRIVATE_KEY or PRIVATE_KEY_PATH must be set (the App's private key, PEM)");
  if ((env.PRIVATE_KEY || env.PRIVATE_KEY_PATH) && privateKey !== "" && !/-----BEGIN (RSA )?PRIVATE KEY-----/.test(privateKey)) {
    problems.push(`${env.PRIVATE_KEY ? "PRIVATE_KEY" : "PRIVATE_KEY_PATH"} does not hold a PEM private key`);
  }

  const secret = env.WEBHOOK_SECRET ?? "";
  if (secret === "") problems.push("WEBHOOK_SECRET is not set (the webhook secret from the GitHub App's settings page)");
  else if (secret === "development") problems.push('WEBHOOK_SECRET is "development", Probot\'s default: set the secret configured in the GitHub App');

  const port = env.PORT === undefined ? 3000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push("PORT must be a port number");
  const logLevel = (env.LOG_LEVEL ?? "info") as ServerEnv["logLevel"];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  const allowLocal = env.RELABEL_ALLOW_LOCAL_EXECUTOR;
  if (allowLocal !== undefined && !/^(0|1|true|false)?$/i.test(allowLocal)) {
    problems.push("RELABEL_ALLOW_LOCAL_EXECUTOR must be 1 (repositories may run stages on this host) or 0 (the default)");
  }
  if (problems.length) return { ok: false, problems };
  const baseUrl = env.GHE_HOST ? `${env.GHE_PROTOCOL ?? "https"}://${env.GHE_HOST}/api/v3` : undefined;
  return { ok: true, env: { appId, privateKey, secret, port, host: env.HOST ?? "0.0.0.0", webhooksPath: env.WEBHOOK_PATH ?? "/api/github/webhooks", baseUrl, logLevel } };
}

/**
 * readServerEnv and the App's settings, after which the App's credentials are deleted from `env` (process.env for
 * `npm start`): Probot holds what it needs, and no child process, stage or executor config can reach them there.
 */
export function takeServerEnv(
  env: NodeJS.ProcessEnv,
  readKey?: (file: string) => string,
): { ok: true; env: ServerEnv; settings: AppSettings } | { ok: false; problems: string[] } {
  const checked = readServerEnv(env, readKey);
  if (!checked.ok) return checked;
  const settings = settingsFromEnv(env);
  for (const name of Object.keys(env)) if (isAppSecretVariable(name)) delete env[name];
  return { ok: true, env: checked.env, settings };
}

/** Keys pasted with literal "\n" or base64-encoded (single-line environment variables) are turned back into PEM. */
function normaliseKey(text: string): string {
  const trimmed = text.trim();
  if (trimmed.includes("-----BEGIN")) return trimmed.replace(/\\n/g, "\n");
  const decoded = Buffer.from(trimmed, "base64").toString("utf8");
  return decoded.includes("-----BEGIN") ? decoded : trimmed;
}

export interface RunningServer {
  server: Server;
  url: string;
  relabel: RelabelApp;
  close(): Promise<void>;
}

/** Serves the app behind createNodeMiddleware (awaited) and starts the job poller. */
export async function startServer(o: { probot: Probot; relabel: RelabelApp; port: number; host: string; webhooksPath: string; tickMs: number }): Promise<RunningServer> {
  const middleware = await createNodeMiddleware(o.relabel.appFn, { probot: o.probot, webhooksPath: o.webhooksPath });
  const server = createServer((req, res) => {
    void middleware(req, res, () => {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    o.relabel
      .tick()
      .catch((err: unknown) => o.probot.log.error(`poller: ${(err as Error).message}`))
      .finally(() => (ticking = false));
  }, o.tickMs);
  return {
    server,
    url: `http://${host}:${address.port}${o.webhooksPath}`,
    relabel: o.relabel,
    close: async () => {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await o.relabel.idle();
    },
  };
}

/** How often a request refused by a secondary rate limit is sent again, each after GitHub's retry-after. */
export const SECONDARY_LIMIT_RETRIES = 2;

/**
 * ProbotOctokit that waits out secondary rate limits (403/429 "secondary rate limit", with retry-after) and tries
 * again. Probot's own throttle options only log them, so a burst of comments or check runs would fail the step.
 */
export function appOctokit(): typeof ProbotOctokit {
  return ProbotOctokit.defaults((options: Record<string, unknown>) => ({
    ...options,
    throttle: {
      ...(options.throttle as object),
      onSecondaryRateLimit: (retryAfter: number, request: { method: string; url: string }, octokit: { log: { warn(m: string): void } }, retryCount: number) => {
        const again = retryCount < SECONDARY_LIMIT_RETRIES;
        octokit.log.warn(`secondary rate limit on ${request.method} ${request.url}: ${again ? `trying again in ${retryAfter} s` : "giving up"}`);
        return again;
      },
    },
  }));
}

/** The Probot instance `npm start` serves: GHE's API when GHE_HOST is set, secondary rate limits waited out. */
export function createProbot(env: ServerEnv): Probot {
  return new Probot({ appId: env.appId, privateKey: env.privateKey, secret: env.secret, logLevel: env.logLevel, baseUrl: env.baseUrl, Octokit: appOctokit() });
}

async function main(): Promise<number> {
  const checked = takeServerEnv(process.env);
  if (!checked.ok) {
    for (const p of checked.problems) process.stderr.write(`relabel-loop: ${p}\n`);
    return 2;
  }
  const env = checked.env;
  const probot = createProbot(env);
  const relabel = new RelabelApp(checked.settings);
  const running = await startServer({ probot, relabel, port: env.port, host: env.host, webhooksPath: env.webhooksPath, tickMs: 30_000 });
  probot.log.info(`relabel-loop listening on ${running.url} (state in ${relabel.settings.stateDir})`);
  if (relabel.settings.allowLocalExecutor) probot.log.warn("RELABEL_ALLOW_LOCAL_EXECUTOR: repositories without an SSH executor run their stages and setup lines on this host");
  const stop = () => {
    probot.log.info("relabel-loop stopping: finishing running work");
    void running.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(
    (code) => {
      if (code !== 0) process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`relabel-loop: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
