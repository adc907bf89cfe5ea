/**
 * The poller and the installation's state: suspended and unsuspended by signed `installation` deliveries, a
 * suspension that survives a restart, a token refused without a webhook (one warning, no storm), and the config
 * file read once per repository and tick. The fake GitHub records every request the App makes.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Probot } from "probot";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RelabelApp } from "../../src/app/index.js";
import { startServer } from "../../src/app/server.js";
import { APP_ID, SECRET, appKeys, startHarness, testOctokit, type Harness } from "../helpers/app-harness.js";
import { deliver, waitFor } from "../helpers/deliver.js";

let h: Harness | null = null;
const extra: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of extra.splice(0)) await stop();
  await h?.close();
  h = null;
});

const CONFIG = "/repos/lab/data/contents/.github%2Frelabel.yml";
const reposFile = (harness: Harness) => path.join(harness.root, "state", "repos.json");
const knownRepos = (harness: Harness) => JSON.parse(readFileSync(reposFile(harness), "utf8")) as Array<{ owner: string; repo: string; installationId: number; suspended?: boolean }>;
/** The requests made since `mark` (an index into the fake's log). */
const since = (harness: Harness, mark: number) => harness.fake.requests.slice(mark).map((r) => `${r.method} ${r.path} ${r.status}`);
/** A read of the config that GitHub answered (200, or 304 when the App's copy is current): a poll of lab/data. */
const configRead = (calls: string[]) => calls.some((c) => c === `GET ${CONFIG} 200` || c === `GET ${CONFIG} 304`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An issue without the round label: the App only learns of the repository (and polls it from then on). */
async function makeKnown(harness: Harness): Promise<void> {
  const { opened } = harness.fake.openIssue({ title: "A question", body: "", labels: [] });
  expect((await harness.deliver(opened)).status).toBe(200);
  await waitFor("repos.json", () => {
    try {
      return knownRepos(harness).length === 1;
    } catch {
      return false;
    }
  });
}

/** Another App process on the harness's state directory and fake GitHub, ticked by hand (the harness's is stopped). */
async function secondApp(harness: Harness, o: { pollIntervalMs: number | null; tokenRetryMs?: number }): Promise<{ probot: Probot; relabel: RelabelApp }> {
  await harness.server.close();
  const probot = new Probot({ appId: APP_ID, privateKey: appKeys().privateKey, secret: SECRET, baseUrl: harness.fake.url, logLevel: "fatal", Octokit: testOctokit() });
  const relabel = new RelabelApp({
    stateDir: path.join(harness.root, "state"),
    ledgerRemote: harness.bare,
    webUrl: "https://github.example",
    author: { name: "relabel-loop[bot]", email: "bot@example.invalid" },
    pollIntervalMs: o.pollIntervalMs,
    allowLocalExecutor: true,
    tokenRetryMs: o.tokenRetryMs,
  });
  await probot.load(relabel.appFn);
  return { probot, relabel };
}

async function ticks(relabel: RelabelApp, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await relabel.tick();
    await relabel.idle();
  }
}

describe("a suspended installation", () => {
  it("is not polled, is kept, and is polled again once unsuspended (signed deliveries)", async () => {
    h = await startHarness({ pollIntervalMs: 250 });
    const harness = h;
    await makeKnown(harness);
    const errors = vi.spyOn(harness.probot.log, "error");
    await waitFor("a poll of lab/data", () => harness.fake.requests.some((r) => r.path === CONFIG));

    expect((await harness.deliver(harness.fake.suspendInstallation(true))).status).toBe(200);
    await waitFor("the suspension in repos.json", () => knownRepos(harness)[0].suspended === true);
    await harness.relabel.idle();
    const mark = harness.fake.requests.length;
    await sleep(1500); // six ticks of the harness's poller
    expect(since(harness, mark)).toEqual([]);
    expect(knownRepos(harness)).toEqual([{ owner: "lab", repo: "data", installationId: 7, repoId: 4242, suspended: true }]);

    expect((await harness.deliver(harness.fake.suspendInstallation(false))).status).toBe(200);
    await waitFor("a poll after the unsuspension", () => configRead(since(harness, mark)));
    expect(knownRepos(harness)).toEqual([{ owner: "lab", repo: "data", installationId: 7, repoId: 4242 }]);
    expect(errors).not.toHaveBeenCalled();
  });

  it("stays unpolled after a restart, and an unsuspend delivered to the new process resumes polling", async () => {
    h = await startHarness({ pollIntervalMs: 250 });
    const harness = h;
    await makeKnown(harness);
    expect((await harness.deliver(harness.fake.suspendInstallation(true))).status).toBe(200);
    await waitFor("the suspension in repos.json", () => knownRepos(harness)[0].suspended === true);
    await harness.relabel.idle();

    const { probot, relabel } = await secondApp(harness, { pollIntervalMs: 0 });
    const mark = harness.fake.requests.length;
    await ticks(relabel, 3);
    expect(since(harness, mark)).toEqual([]);

    const running = await startServer({ probot, relabel, port: 0, host: "127.0.0.1", webhooksPath: "/api/github/webhooks", tickMs: 250 });
    extra.push(() => running.close());
    expect((await deliver(running.url, SECRET, harness.fake.suspendInstallation(false))).status).toBe(200);
    await waitFor("a poll after the unsuspension", () => since(harness, mark).includes(`GET ${CONFIG} 200`));
  });

  it("loads a repos.json written before suspensions were recorded", async () => {
    h = await startHarness({ pollIntervalMs: 250 });
    const harness = h;
    await harness.server.close();
    mkdirSync(path.dirname(reposFile(harness)), { recursive: true });
    writeFileSync(reposFile(harness), JSON.stringify([{ owner: "lab", repo: "data", installationId: 7 }]));
    const { relabel } = await secondApp(harness, { pollIntervalMs: 0 });
    const mark = harness.fake.requests.length;
    await ticks(relabel, 1);
    expect(since(harness, mark)).toContain(`GET ${CONFIG} 200`);
  });
});

describe("a token the installation refuses", () => {
  it("is one warning until the installation gives tokens again, and its repositories wait meanwhile", async () => {
    h = await startHarness({ pollIntervalMs: 0 });
    const harness = h;
    await makeKnown(harness);
    // Suspended while the App was not listening: Probot still holds a token from before.
    const { probot, relabel } = await secondApp(harness, { pollIntervalMs: 0, tokenRetryMs: 1500 });
    await ticks(relabel, 1);
    const warnings = vi.spyOn(probot.log, "warn");
    const errors = vi.spyOn(probot.log, "error");
    const infos = vi.spyOn(probot.log, "info");
    harness.fake.suspended = true;
    const mark = harness.fake.requests.length;
    await ticks(relabel, 5);
    // The cached token is refused once, a new one is refused once, and then nothing until the retry is due.
    expect(since(harness, mark)).toEqual([`GET ${CONFIG} 403`, "POST /app/installations/7/access_tokens 403"]);
    const refused = warnings.mock.calls.map((c) => String(c[0])).filter((m) => m.includes("installation 7"));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain("refused the App a token (403: This installation has been suspended)");
    expect(refused[0]).toContain("lab/data not polled");
    expect(errors).not.toHaveBeenCalled();

    harness.fake.suspended = false;
    await sleep(1600);
    await ticks(relabel, 1);
    expect(configRead(since(harness, mark))).toBe(true);
    expect(infos.mock.calls.map((c) => String(c[0]))).toContain("relabel-loop: installation 7 gives the App tokens again; its repositories are polled again");
    expect(warnings.mock.calls.filter((c) => String(c[0]).includes("installation 7"))).toHaveLength(1);
  });
});

describe("the poller's config reads", () => {
  it("read .github/relabel.yml once per repository and tick, answered 304 while it is unchanged", async () => {
    h = await startHarness({ pollIntervalMs: 250 });
    const harness = h;
    await harness.server.close();
    mkdirSync(path.dirname(reposFile(harness)), { recursive: true });
    writeFileSync(reposFile(harness), JSON.stringify([{ owner: "lab", repo: "data", installationId: 7 }]));
    // The repository's poll_seconds decides when it is polled: the poller reads the file at every tick.
    const { relabel } = await secondApp(harness, { pollIntervalMs: null });
    const mark = harness.fake.requests.length;
    await ticks(relabel, 3);
    const repoCalls = since(harness, mark).filter((r) => r.includes(" /repos/"));
    // The default branch once per process (events carry it), then the file once per tick.
    expect(repoCalls).toEqual(["GET /repos/lab/data 200", `GET ${CONFIG} 200`, `GET ${CONFIG} 304`, `GET ${CONFIG} 304`]);
  });
});
