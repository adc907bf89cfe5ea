/**
 * The poller's list of repositories, `<stateDir>/repos.json`, across events and restarts: concurrent events write
 * it one at a time through a rename, a corrupt file is set aside with one logged line (and the event that found it
 * still runs), and an uninstalled App or a removed repository is no longer polled. Probot.receive in-process, every
 * GitHub call mocked by nock (no network); writes to repos.json go through a slow pass-through of node:fs/promises
 * that records them.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import nock from "nock";
import { Probot } from "probot";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RelabelApp } from "../../src/app/index.js";
import { appKeys, testOctokit } from "../helpers/app-harness.js";
import { initBare, pushFiles } from "../helpers/git-repo.js";

const fsWatch = vi.hoisted(() => ({ calls: [] as string[], inFlight: 0, maxInFlight: 0 }));

vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  const name = (p: unknown) => path.basename(String(p));
  /** Records a repos.json write or rename and makes it slow (20 ms), so that overlapping ones would overlap. */
  const watched =
    <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (!name(args[0]).startsWith("repos.json")) return fn(...args);
      fsWatch.calls.push(op === "rename" ? `rename ${name(args[0])} -> ${name(args[1])}` : `${op} ${name(args[0])}`);
      fsWatch.maxInFlight = Math.max(fsWatch.maxInFlight, ++fsWatch.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return await fn(...args);
      } finally {
        fsWatch.inFlight--;
      }
    };
  const writeFile = watched("write", fs.writeFile);
  const rename = watched("rename", fs.rename);
  return { ...fs, writeFile, rename, default: { ...fs, writeFile, rename } };
});

const API = "https://api.github.com";

let root: string;
let bare: string;
let state: string;
let probot: Probot;
let relabel: RelabelApp;

beforeEach(async () => {
  nock.disableNetConnect();
  root = mkdtempSync(path.join(tmpdir(), "relabel-repos-"));
  bare = initBare(path.join(root, "data.git"));
  pushFiles(bare, "main", { "README.md": "data repo\n" });
  state = path.join(root, "state");
  fsWatch.calls.length = 0;
  fsWatch.maxInFlight = 0;
  await start();
});

afterEach(async () => {
  await relabel.idle();
  nock.cleanAll();
  nock.enableNetConnect();
  rmSync(root, { recursive: true, force: true });
});

/** A fresh App process on the same state directory. */
async function start(): Promise<void> {
  probot = new Probot({ appId: 1, privateKey: appKeys().privateKey, secret: "test-secret", logLevel: "fatal", Octokit: testOctokit() });
  relabel = new RelabelApp({ stateDir: state, ledgerRemote: bare, webUrl: "https://github.com", author: { name: "bot", email: "bot@example.invalid" }, pollIntervalMs: null, allowLocalExecutor: false });
  await probot.load(relabel.appFn);
}

const reposFile = () => path.join(state, "repos.json");
const known = () => (JSON.parse(readFileSync(reposFile(), "utf8")) as { owner: string; repo: string; installationId: number }[]).map((r) => `${r.owner}/${r.repo}@${r.installationId}`).sort();

function seed(entries: { owner: string; repo: string; installationId: number; repoId?: number }[] | string): void {
  mkdirSync(state, { recursive: true });
  writeFileSync(reposFile(), typeof entries === "string" ? entries : JSON.stringify(entries));
}

/** GitHub's id of a test repository: one per name, unless a test renames one. */
const repoIdOf = (name: string) => [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1_000_000, 7);

/** A pull request closed without merging: nothing to do but remember the repository. */
function closedUnmerged(repo: string, installation = 7, id = `closed-${repo}`, repoId = repoIdOf(repo)) {
  const repository = { id: repoId, name: repo, full_name: `lab/${repo}`, owner: { login: "lab", type: "Organization" }, default_branch: "main" };
  const head = { ref: "topic", sha: "0".repeat(40), repo: { full_name: `lab/${repo}` } };
  return probot.receive({
    id,
    name: "pull_request",
    payload: {
      action: "closed",
      number: 9,
      pull_request: { number: 9, title: "PR", state: "closed", merged: false, merge_commit_sha: null, user: { login: "alice" }, labels: [], head, base: { ref: "main", repo: { full_name: `lab/${repo}` } } },
      repository,
      installation: { id: installation },
      sender: { login: "alice", type: "User" },
    },
  } as never);
}

describe("repos.json", () => {
  it("is written one event at a time, through a temporary file and a rename, and keeps every repository", async () => {
    seed([
      { owner: "lab", repo: "old-1", installationId: 7 },
      { owner: "lab", repo: "old-2", installationId: 7 },
    ]);
    await start();
    const names = ["r1", "r2", "r3", "r4", "r5"];
    await Promise.all(names.map((n) => closedUnmerged(n)));
    await relabel.idle();
    expect(known()).toEqual([...["old-1", "old-2"], ...names].map((n) => `lab/${n}@7`).sort());
    expect(fsWatch.maxInFlight).toBe(1);
    expect(fsWatch.calls.length).toBeGreaterThan(0);
    for (const call of fsWatch.calls) expect(call).toMatch(/^(write repos\.json\.tmp|rename repos\.json\.tmp -> repos\.json)$/);
    expect(readdirSync(state).filter((f) => f.startsWith("repos.json"))).toEqual(["repos.json"]);
  });

  it("that does not parse is set aside with one logged line, and the event that found it still runs", async () => {
    seed('[{"owner": "lab", "repo": "da');
    await start();
    const errors = vi.spyOn(probot.log, "error");
    let posted = "";
    const scope = nock(API)
      .post("/app/installations/7/access_tokens")
      .reply(201, { token: "ghs_test", expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} })
      .get(/^\/repos\/lab\/data\/contents\/\.github(%2F|\/)relabel\.yml/)
      .reply(404, { message: "Not Found" })
      .get("/repos/lab/data/collaborators/carol/permission")
      .reply(200, { permission: "write", user: { login: "carol" } })
      .post("/repos/lab/data/issues/comments/556/reactions")
      .reply(201, { id: 1 })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 2 });
    await probot.receive({
      id: "after-restart",
      name: "issue_comment",
      payload: {
        action: "created",
        issue: { number: 3, title: "Round 1", body: "", user: { login: "alice" }, labels: [{ name: "al-round" }], state: "open" },
        comment: { id: 556, body: "/relabel help", user: { login: "carol", type: "User" } },
        repository: { id: 1, name: "data", full_name: "lab/data", owner: { login: "lab", type: "Organization" }, default_branch: "main" },
        installation: { id: 7 },
        sender: { login: "carol", type: "User" },
      },
    } as never);
    await relabel.idle();
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain("**relabel-loop commands**");

    const aside = readdirSync(state).filter((f) => f.startsWith("repos.json.corrupt-"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(path.join(state, aside[0]), "utf8")).toBe('[{"owner": "lab", "repo": "da');
    expect(known()).toEqual(["lab/data@7"]);
    const logged = errors.mock.calls.map((c) => String(c[0])).filter((m) => m.includes("repos.json"));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(`${reposFile()}: not valid JSON`);
    expect(logged[0]).toContain(`kept as ${aside[0]}`);
    expect(logged[0]).not.toContain("\n");
  });

  it("forgets every repository of an uninstalled App, and the poller asks GitHub nothing about them", async () => {
    seed([
      { owner: "lab", repo: "data", installationId: 7 },
      { owner: "lab", repo: "other", installationId: 7 },
    ]);
    await start();
    await probot.receive({
      id: "uninstalled",
      name: "installation",
      payload: { action: "deleted", installation: { id: 7, account: { login: "lab", type: "Organization" } }, repositories: [], sender: { login: "alice", type: "User" } },
    } as never);
    await relabel.idle();
    expect(known()).toEqual([]);

    const asked: string[] = [];
    const noMatch = (req: { path?: string }) => asked.push(String(req.path));
    nock.emitter.on("no match", noMatch);
    try {
      await relabel.tick();
      await relabel.idle();
    } finally {
      nock.emitter.removeListener("no match", noMatch);
    }
    expect(asked).toEqual([]);
  });

  it("follows a renamed repository by its id: the old name is no longer polled, the others are kept", async () => {
    seed([
      { owner: "lab", repo: "data-old", installationId: 7, repoId: 4242 },
      { owner: "lab", repo: "keep", installationId: 7 },
    ]);
    await start();
    // The next event after the rename carries the new name and the same id.
    await closedUnmerged("data", 7, "after-rename", 4242);
    await relabel.idle();
    expect(known()).toEqual(["lab/data@7", "lab/keep@7"]);
    const entry = (JSON.parse(readFileSync(reposFile(), "utf8")) as { repo: string; repoId?: number }[]).find((r) => r.repo === "data");
    expect(entry?.repoId).toBe(4242);
  });

  it("follows a rename the moment GitHub reports it, and leaves a repository it never polled alone", async () => {
    seed([
      { owner: "lab", repo: "data-old", installationId: 7, repoId: 4242 },
      { owner: "lab", repo: "keep", installationId: 7, repoId: 17 },
    ]);
    await start();
    const repository = (id: number, name: string) => ({ id, name, full_name: `lab/${name}`, owner: { login: "lab", type: "Organization" }, default_branch: "main" });
    const renamed = (id: string, repo: ReturnType<typeof repository>, action = "renamed") =>
      probot.receive({
        id,
        name: "repository",
        payload: { action, changes: { repository: { name: { from: "before" } } }, repository: repo, installation: { id: 7 }, sender: { login: "alice", type: "User" } },
      } as never);
    await renamed("rename", repository(4242, "data"));
    await renamed("rename-other", repository(99, "never-seen"));
    await renamed("transfer", repository(17, "kept"), "transferred");
    await relabel.idle();
    expect(known()).toEqual(["lab/data@7", "lab/kept@7"]);
  });

  it("forgets the repositories removed from an installation and keeps the others", async () => {
    seed([
      { owner: "lab", repo: "data", installationId: 7 },
      { owner: "lab", repo: "keep", installationId: 7 },
      { owner: "lab", repo: "data-elsewhere", installationId: 8 },
    ]);
    await start();
    await probot.receive({
      id: "removed",
      name: "installation_repositories",
      payload: {
        action: "removed",
        installation: { id: 7, account: { login: "lab", type: "Organization" } },
        repository_selection: "selected",
        repositories_added: [],
        repositories_removed: [{ id: 1, name: "data", full_name: "lab/data", private: true }],
        sender: { login: "alice", type: "User" },
      },
    } as never);
    await relabel.idle();
    expect(known()).toEqual(["lab/data-elsewhere@8", "lab/keep@7"]);
    expect(existsSync(`${reposFile()}.tmp`)).toBe(false);
  });
});
