/**
 * The end-to-end setting for the GitHub App: a real bare git repository as the data repo, the fake GitHub on
 * 127.0.0.1, and the real app behind createNodeMiddleware on 127.0.0.1 (src/app/server.ts) receiving signed
 * deliveries. Training and evaluation run through the local executor with the MACE test doubles on PATH (which
 * the App allows only when its operator does, RELABEL_ALLOW_LOCAL_EXECUTOR=1: the harness opts in unless a test
 * says otherwise): their outputs are stand-ins that only exercise the plumbing, never results.
 */
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Probot, ProbotOctokit } from "probot";
import { RelabelApp } from "../../src/app/index.js";
import { startServer, type RunningServer } from "../../src/app/server.js";
import { recordedRuns, writeInitialStructurePool, type RecordedRun } from "../../src/workflow/recorded-runs.js";
import { FakeGitHub, type Permission } from "../fakes/github.js";
import { deliver, type Delivery, type DeliveryAnswer } from "./deliver.js";
import { initBare, pushFiles, type FileSpec } from "./git-repo.js";
import { startGitHttpServer, type GitHttpServer } from "./git-remote.js";

export const SECRET = "e2e-webhook-secret";
export const APP_ID = 4711;
export const SAMPLE_VASP = path.resolve(import.meta.dirname, "../../examples/sample-data/vasp");
const DOUBLES = path.resolve(import.meta.dirname, "../doubles");

let keys: { publicKey: string; privateKey: string } | null = null;

/**
 * ProbotOctokit without retries and throttling. The function form matters: Probot 14 passes its own throttle
 * options to the constructor, which override an object given to `.defaults({throttle: {enabled: false}})`, and
 * the throttle's write and notification limiters would then space POSTs 1-3 s apart.
 */
export function testOctokit(): typeof ProbotOctokit {
  return ProbotOctokit.defaults((options: Record<string, unknown>) => ({ ...options, retry: { enabled: false }, throttle: { ...(options.throttle as object), enabled: false } }));
}

/** One RSA key pair per test process (PKCS#1 PEM, as GitHub issues App keys). */
export function appKeys(): { publicKey: string; privateKey: string } {
  keys ??= generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs1", format: "pem" } });
  return keys;
}

/** `.github/relabel.yml` of the e2e data repo. Seed 12 puts at least one of the four selected runs in every split. */
export function e2eConfig(runsRoot: string, extra = ""): string {
  return `# relabel-loop settings for the end-to-end tests
pool:
  paths: [pools/sample-runs.extxyz]
selection:
  select: 4
dataset:
  allow_mixed_settings: true   # the bundled runs are different systems with different ENCUT
  fractions: {train: 0.5, valid: 0.25, test: 0.25}
  seed: 12
stage:
  device: cpu
executor: here
executors:
  here:
    backend: local
    remote_root: ${runsRoot}
comment_pacing_ms: 0
${extra}`;
}

export interface Harness {
  root: string;
  bare: string;
  fake: FakeGitHub;
  probot: Probot;
  relabel: RelabelApp;
  server: RunningServer;
  runs: RecordedRun[];
  /** The data repo's smart-HTTP server, with ledgerOverHttp. */
  gitHttp?: GitHttpServer;
  deliver(d: Delivery, o?: { signature?: string }): Promise<DeliveryAnswer>;
  close(): Promise<void>;
}

/** `pollIntervalMs`: how often the App's poller looks at the repository (default 250 ms). */
export async function startHarness(
  o: {
    config?: (runsRoot: string) => string;
    files?: Record<string, FileSpec>;
    permissions?: Record<string, Permission>;
    pollIntervalMs?: number;
    allowLocalExecutor?: boolean;
    appKeyFile?: string;
    tokenRetryMs?: number;
    /** Serve the data repo over smart HTTP, accepting only the fake GitHub's installation tokens. */
    ledgerOverHttp?: boolean;
  } = {},
): Promise<Harness> {
  for (const d of ["mace_run_train", "mace_eval_configs"]) chmodSync(path.join(DOUBLES, d), 0o755);
  const root = mkdtempSync(path.join(tmpdir(), "relabel-e2e-"));
  const bare = initBare(path.join(root, "data.git"));
  const runs = await recordedRuns(SAMPLE_VASP);
  const pool = path.join(root, "sample-runs.extxyz");
  await writeInitialStructurePool(runs, pool);
  const runsRoot = path.join(root, "runs");
  pushFiles(bare, "main", { ".github/relabel.yml": (o.config ?? e2eConfig)(runsRoot), "pools/sample-runs.extxyz": { copy: pool }, ...o.files }, { message: "data repo" });

  const { publicKey, privateKey } = appKeys();
  const fake = new FakeGitHub({ owner: "lab", repo: "data", bare, appId: APP_ID, publicKeyPem: publicKey });
  for (const [login, p] of Object.entries({ alice: "admin", carol: "write", bob: "read", ...o.permissions } as Record<string, Permission>)) fake.permissions.set(login, p);
  await fake.start();
  const gitHttp = o.ledgerOverHttp ? await startGitHttpServer(root, (token) => fake.tokens.has(token)) : undefined;

  const probot = new Probot({
    appId: APP_ID,
    privateKey,
    secret: SECRET,
    baseUrl: fake.url,
    logLevel: (process.env.RELABEL_E2E_LOG as "fatal" | undefined) ?? "fatal",
    Octokit: testOctokit(),
  });
  const relabel = new RelabelApp({
    stateDir: path.join(root, "state"),
    ledgerRemote: gitHttp?.url(path.basename(bare)) ?? bare,
    webUrl: "https://github.example",
    author: { name: "relabel-loop[bot]", email: "bot@example.invalid" },
    pollIntervalMs: o.pollIntervalMs ?? 250,
    allowLocalExecutor: o.allowLocalExecutor ?? true,
    appKeyFile: o.appKeyFile,
    tokenRetryMs: o.tokenRetryMs,
  });
  const server = await startServer({ probot, relabel, port: 0, host: "127.0.0.1", webhooksPath: "/api/github/webhooks", tickMs: 250 });
  const originalPath = process.env.PATH;
  process.env.PATH = `${DOUBLES}:${originalPath}`;
  return {
    root,
    bare,
    fake,
    probot,
    relabel,
    server,
    runs,
    gitHttp,
    deliver: (d, opts) => deliver(server.url, SECRET, d, opts),
    close: async () => {
      await server.close();
      await fake.stop();
      await gitHttp?.close();
      process.env.PATH = originalPath;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The body GitHub renders from the round issue form. */
export function roundIssueBody(o: { pool?: string; select?: number } = {}): string {
  return [
    "### Pool paths",
    "",
    o.pool ?? "pools/sample-runs.extxyz",
    "",
    "### Selection size",
    "",
    String(o.select ?? 4),
    "",
    "### Committee",
    "",
    "none (diversity only)",
    "",
    "### Committee prediction files",
    "",
    "_No response_",
    "",
    "### Weights",
    "",
    "_No response_",
    "",
  ].join("\n");
}
