/**
 * The app's handlers in-process: Probot.receive with every GitHub call mocked by nock (no network), the data repo
 * a real bare git repository. Covers who may run commands, when a closed pull request triggers anything, where the
 * config comes from, and which comments are the App's sticky ones.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import nock from "nock";
import { Probot } from "probot";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RelabelApp } from "../../src/app/index.js";
import { advance, newRoundManifest, roundPaths, selectionBranch } from "../../src/core/app/manifest.js";
import { defaultRelabelConfig } from "../../src/core/app/config.js";
import { appKeys, testOctokit } from "../helpers/app-harness.js";
import { initBare, pushFiles, show } from "../helpers/git-repo.js";

const API = "https://api.github.com";
const CONFIG_PATH = /^\/repos\/lab\/data\/contents\/\.github(%2F|\/)relabel\.yml/;
const ORG_CONFIG_PATH = /^\/repos\/lab\/\.github\/contents\/\.github(%2F|\/)relabel\.yml/;
const SHA = "0123456789abcdef0123456789abcdef01234567";

let root: string;
let bare: string;
let probot: Probot;
let relabel: RelabelApp;

beforeEach(async () => {
  nock.disableNetConnect();
  root = mkdtempSync(path.join(tmpdir(), "relabel-handlers-"));
  bare = initBare(path.join(root, "data.git"));
  pushFiles(bare, "main", { "README.md": "data repo\n" });
  probot = new Probot({ appId: 1, privateKey: appKeys().privateKey, secret: "test-secret", logLevel: "fatal", Octokit: testOctokit() });
  relabel = new RelabelApp({ stateDir: path.join(root, "state"), ledgerRemote: bare, webUrl: "https://github.com", author: { name: "bot", email: "bot@example.invalid" }, pollIntervalMs: null, allowLocalExecutor: false });
  await probot.load(relabel.appFn);
});

afterEach(async () => {
  await relabel.idle();
  nock.cleanAll();
  nock.enableNetConnect();
  rmSync(root, { recursive: true, force: true });
});

const repository = { id: 1, name: "data", full_name: "lab/data", owner: { login: "lab", type: "Organization" }, default_branch: "main" };

function github() {
  return nock(API).post("/app/installations/7/access_tokens").reply(201, { token: "ghs_test", expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} });
}

/** The data repo's config file, as the contents API answers for a missing file and for a file. */
function noConfig(scope: nock.Scope): nock.Scope {
  return scope.get(CONFIG_PATH).reply(404, { message: "Not Found" });
}

function withConfig(scope: nock.Scope, yaml: string, path = CONFIG_PATH): nock.Scope {
  return scope.get(path).reply(fileAnswer(yaml));
}

/** The contents API's answer for a file: raw text when asked for it (Accept: ….raw), else JSON with base64 content. */
function fileAnswer(text: string) {
  return function (this: nock.ReplyFnContext): nock.ReplyFnResult {
    if (/\.raw/.test(String(this.req.headers.accept))) return [200, text, { "content-type": "text/plain; charset=utf-8" }];
    return [200, { type: "file", encoding: "base64", path: ".github/relabel.yml", content: Buffer.from(text).toString("base64") }];
  };
}

/** Delivers an event of lab/data's installation (sent by alice unless the payload names another sender) and waits for the App. */
async function receive(id: string, name: string, payload: Record<string, unknown>) {
  await probot.receive({ id, name, payload: { repository, installation: { id: 7 }, sender: { login: "alice", type: "User" }, ...payload } } as never);
  await relabel.idle();
}

/** An open pull request as GET /pulls answers it. */
const openPull = (number: number, title: string, login: string, headRepo: string) => ({
  number,
  title,
  state: "open",
  merged: false,
  merge_commit_sha: null,
  user: { login },
  labels: [],
  head: { ref: "results", sha: SHA, repo: { full_name: headRepo } },
  base: { ref: "main", repo: { full_name: "lab/data" } },
});

async function comment(login: string, body: string, id = 555, type: "User" | "Bot" = "User") {
  await receive(`delivery-${id}`, "issue_comment", {
    action: "created",
    issue: { number: 3, title: "Round 1", body: "", user: { login: "alice" }, labels: [{ name: "al-round" }], state: "open" },
    comment: { id, body, user: { login, type } },
    sender: { login, type },
  });
}

async function closed(pr: { merged: boolean; base?: string; head?: string; labels?: string[]; number?: number }, id = "closed-1") {
  await receive(id, "pull_request", {
    action: "closed",
    number: pr.number ?? 9,
    pull_request: {
      number: pr.number ?? 9,
      title: "PR",
      state: "closed",
      merged: pr.merged,
      merge_commit_sha: pr.merged ? SHA : null,
      user: { login: "alice" },
      labels: (pr.labels ?? []).map((name) => ({ name })),
      head: { ref: pr.head ?? "results", sha: SHA, repo: { full_name: "lab/data" } },
      base: { ref: pr.base ?? "main", repo: { full_name: "lab/data" } },
    },
  });
}

const events = () => (show(bare, "main", "ledger/events.jsonl") ?? "").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { actor: string; outcome: string; command: string | null });

describe("command permissions", () => {
  it("refuses a read-only user politely once per thread, writes nothing to the ledger, and runs nothing", async () => {
    const posted: string[] = [];
    const before = events().length;
    const scope = github()
      .get("/repos/lab/data/collaborators/bob/permission")
      .times(2)
      .reply(200, { permission: "read", user: { login: "bob" } });
    nock(API)
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => (posted.push(body.body), true))
      .times(2)
      .reply(201, { id: 1 });
    await comment("bob", "/relabel rank --select 2");
    // A second command on the same thread is not answered again.
    await comment("bob", "/relabel status", 561);
    expect(scope.isDone()).toBe(true);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("Sorry @bob");
    expect(posted[0]).toContain("(yours: read)");
    expect(events()).toHaveLength(before);
  });

  // GitHub's `permission` only knows admin, write, read and none; the role (triage, or a custom one) is role_name.
  it.each([
    ["tom", "triage", 562, "(yours: triage)"],
    ["cy", "auditor", 564, "(yours: read)"],
  ] as const)("refuses %s, a read collaborator with role_name %s, naming the role GitHub's way", async (login, role, id, named) => {
    let posted = "";
    const scope = github()
      .get(`/repos/lab/data/collaborators/${login}/permission`)
      .reply(200, { permission: "read", role_name: role, user: { login } })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 1 });
    await comment(login, "/relabel status", id);
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain(named);
  });

  it("lets a maintainer (role_name maintain, permission write) run commands", async () => {
    let help = "";
    const maintainer = noConfig(github())
      .get("/repos/lab/data/collaborators/mia/permission")
      .reply(200, { permission: "write", role_name: "maintain", user: { login: "mia" } })
      .post("/repos/lab/data/issues/comments/563/reactions", { content: "eyes" })
      .reply(201, { id: 1 })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((help = body.body), true))
      .reply(201, { id: 2 });
    await comment("mia", "/relabel help", 563);
    expect(maintainer.isDone()).toBe(true);
    expect(help).toContain("**relabel-loop commands**");
  });

  it("treats a login that is no collaborator (404) as having no permission", async () => {
    let posted = "";
    const scope = github()
      .get("/repos/lab/data/collaborators/eve/permission")
      .reply(404, { message: "Not Found" })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 1 });
    await comment("eve", "/relabel status");
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain("(yours: none)");
  });

  it("runs a command for a user with write access", async () => {
    let posted = "";
    const scope = noConfig(github())
      .get("/repos/lab/data/collaborators/carol/permission")
      .reply(200, { permission: "write", user: { login: "carol" } })
      .post("/repos/lab/data/issues/comments/556/reactions", { content: "eyes" })
      .reply(201, { id: 1 })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 2 });
    await comment("carol", "/relabel help", 556);
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain("**relabel-loop commands**");
    expect(events().at(-1)).toMatchObject({ actor: "carol", command: "help", outcome: "help" });
  });

  it("narrows commands to the config's allowlist", async () => {
    let posted = "";
    const scope = withConfig(github(), "commands:\n  allowlist: [alice]\n")
      .get("/repos/lab/data/collaborators/carol/permission")
      .reply(200, { permission: "admin", user: { login: "carol" } })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 1 });
    await comment("carol", "/relabel status", 557);
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain("commands.allowlist");
  });

  it("ignores comments by bots and comments without a command: no API call, nothing recorded", async () => {
    await comment("some-ci[bot]", "/relabel status", 558, "Bot");
    await comment("alice", "thanks, looks good", 560);
    // Any API call would fail (no network, no mocks) and be recorded as an error event.
    expect(events()).toEqual([]);
  });
});

describe("issues", () => {
  it("records nothing for an issue without the round label", async () => {
    const scope = noConfig(github());
    await receive("issue-labeled", "issues", {
      action: "labeled",
      label: { name: "bug" },
      issue: { number: 4, title: "A bug", body: "", user: { login: "alice" }, labels: [{ name: "bug" }], state: "open" },
    });
    expect(scope.isDone()).toBe(true);
    expect(events()).toEqual([]);
  });
});

describe("the merge trigger", () => {
  it("does nothing for a pull request closed without merging", async () => {
    await closed({ merged: false, labels: ["labeled-results"] });
    expect(events()).toEqual([]);
  });

  it("does nothing for a pull request merged into another branch than the default", async () => {
    await closed({ merged: true, base: "develop", labels: ["labeled-results"] });
    expect(events()).toEqual([]);
  });

  it("does nothing for a merged pull request without the results label", async () => {
    const scope = noConfig(github());
    await closed({ merged: true, labels: ["documentation"] });
    expect(scope.isDone()).toBe(true);
    expect(events()).toEqual([]);
  });

  it("acts on a merged results pull request: once, even when the delivery repeats", async () => {
    let posted = "";
    const scope = noConfig(github())
      .post("/repos/lab/data/issues/9/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 1 });
    await closed({ merged: true, labels: ["labeled-results"] });
    noConfig(nock(API));
    await closed({ merged: true, labels: ["labeled-results"] });
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain("adds no run folders for a round waiting for labels");
    expect(events().map((e) => e.outcome)).toEqual(["received", "ignored: no labels for a waiting round"]);
  });

  it("freezes the selection when the round's selection branch is merged", async () => {
    const config = defaultRelabelConfig();
    const parameters = { ...config.selection, committee: config.committee };
    const opened = newRoundManifest({ round: 1, issue: 3, opened_by: "alice", time: "2026-01-01T00:00:00Z", pool: [{ path: "pools/p.extxyz", sha256: "a".repeat(64) }], parameters });
    const ranked = advance(opened, "ranked", SHA, "2026-01-01T00:01:00Z");
    pushFiles(bare, "main", { [roundPaths(1).manifest]: `${JSON.stringify({ ...ranked, prs: { selection: 9 } }, null, 2)}\n` });
    let posted = "";
    const scope = noConfig(github())
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 1 });
    await closed({ merged: true, head: selectionBranch(1) });
    expect(scope.isDone()).toBe(true);
    const manifest = JSON.parse(show(bare, "main", roundPaths(1).manifest)!) as { state: string; commits: { frozen: string }; finished_steps: string[] };
    expect(manifest.state).toBe("labeling");
    expect(manifest.commits.frozen).toBe(SHA);
    expect(manifest.finished_steps).toEqual(["selection"]);
    expect(posted).toContain("Round 1: selection frozen");
  });
});

describe("re-running the check", () => {
  it("answers \"Re-run all checks\" (check_suite.rerequested) by looking at the suite's pull requests again", async () => {
    const scope = noConfig(github().get("/repos/lab/data/pulls/9").reply(200, openPull(9, "PR", "alice", "lab/data")));
    await receive("suite-rerequested", "check_suite", {
      action: "rerequested",
      // As GitHub sends it: the suite's commit and the same-repository pull requests whose head it is.
      check_suite: { id: 77, head_sha: SHA, head_branch: "results", status: "queued", conclusion: null, pull_requests: [{ number: 9, head: { ref: "results", sha: SHA }, base: { ref: "main", sha: SHA } }] },
    });
    expect(scope.isDone()).toBe(true);
    // Without the results label there is nothing to check, and nothing is recorded.
    expect(events()).toEqual([]);
  });

  it("finds a fork's pull request by the check's commit, since GitHub lists none from forks in the event", async () => {
    const pull = openPull(12, "labels", "ext", "ext/data");
    const other = { ...pull, number: 13, head: { ref: "other", sha: "f".repeat(40), repo: { full_name: "lab/data" } } };
    const scope = noConfig(
      github()
        .get("/repos/lab/data/pulls")
        .query({ state: "open", per_page: "100" })
        .reply(200, [other, pull])
        .get("/repos/lab/data/pulls/12")
        .reply(200, pull),
    );
    await receive("run-rerequested-fork", "check_run", {
      action: "rerequested",
      check_run: { id: 78, name: "relabel-loop dry run (round 1)", head_sha: SHA, status: "completed", conclusion: "failure", pull_requests: [] },
    });
    expect(scope.isDone()).toBe(true);
  });
});

describe("the config file", () => {
  it("comes from the data repo only: an organisation-wide .github repository is never read", async () => {
    let posted = "";
    const org = withConfig(nock(API), "commands:\n  allowlist: [alice]\n", ORG_CONFIG_PATH);
    const scope = noConfig(github())
      .get("/repos/lab/data/collaborators/carol/permission")
      .reply(200, { permission: "write", user: { login: "carol" } })
      .post("/repos/lab/data/issues/comments/561/reactions", { content: "eyes" })
      .reply(201, { id: 1 })
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 2 });
    await comment("carol", "/relabel help", 561);
    expect(scope.isDone()).toBe(true);
    expect(org.isDone()).toBe(false);
    expect(posted).toContain("**relabel-loop commands**");
  });

  it("refuses `_extends` as a config problem and reads nothing it points to", async () => {
    let posted = "";
    const org = withConfig(nock(API), "comment_pacing_ms: 0\n", ORG_CONFIG_PATH);
    const scope = withConfig(github(), "_extends: .github\n")
      .get("/repos/lab/data/collaborators/carol/permission")
      .reply(200, { permission: "write", user: { login: "carol" } })
      .get("/app")
      .reply(200, { id: 1, slug: "relabel-loop" })
      .get("/repos/lab/data/issues/3/comments")
      .query(true)
      .reply(200, [])
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 2 });
    await comment("carol", "/relabel status", 562);
    expect(scope.isDone()).toBe(true);
    expect(org.isDone()).toBe(false);
    expect(posted).toContain("cannot use `.github/relabel.yml`");
    expect(posted).toContain("- `_extends`: is not supported");
    expect(events().at(-1)).toMatchObject({ actor: "carol", outcome: "refused: .github/relabel.yml has 1 problem(s): _extends" });
  });
});

describe("sticky comments", () => {
  const mark = "<!-- relabel-loop:config:3 -->";
  const app = { id: 1, slug: "relabel-loop" };

  /** A command under a config with a typo: the App answers with its sticky config comment on #3. */
  function typoConfig(existing: object[]): nock.Scope {
    return withConfig(github(), "selction:\n  select: 2\n")
      .get("/repos/lab/data/collaborators/carol/permission")
      .reply(200, { permission: "write", user: { login: "carol" } })
      .get("/app")
      .reply(200, app)
      .get("/repos/lab/data/issues/3/comments")
      .query(true)
      .reply(200, existing);
  }

  it("are never someone else's comment that carries the marker: the App writes its own", async () => {
    let posted = "";
    const scope = typoConfig([
      { id: 11, body: `${mark}\nmallory's text`, user: { login: "mallory", type: "User" }, performed_via_github_app: null },
      { id: 12, body: mark, user: { login: "other-app[bot]", type: "Bot" }, performed_via_github_app: { id: 99, slug: "other-app" } },
      // Posted by mallory through the App on her own behalf (a user token): still hers to edit.
      { id: 13, body: mark, user: { login: "mallory", type: "User" }, performed_via_github_app: app },
    ])
      .post("/repos/lab/data/issues/3/comments", (body: { body: string }) => ((posted = body.body), true))
      .reply(201, { id: 14 });
    await comment("carol", "/relabel status", 563);
    expect(scope.isDone()).toBe(true);
    expect(posted).toContain(mark);
    expect(posted).toContain("`selction`");
    expect(posted).not.toContain("mallory's text");
    expect(events().at(-1)!.outcome).toMatch(/^refused: \.github\/relabel\.yml has 1 problem/);
  });

  it("are updated in place when the App wrote them", async () => {
    let patched = "";
    const scope = typoConfig([
      { id: 11, body: `${mark}\nmallory's text`, user: { login: "mallory", type: "User" }, performed_via_github_app: null },
      { id: 15, body: `${mark}\nan earlier answer`, user: { login: "relabel-loop[bot]", type: "Bot" }, performed_via_github_app: app },
    ])
      .patch("/repos/lab/data/issues/comments/15", (body: { body: string }) => ((patched = body.body), true))
      .reply(200, { id: 15 });
    await comment("carol", "/relabel status", 564);
    expect(scope.isDone()).toBe(true);
    expect(patched).toContain("`selction`");
    expect(patched).toContain("an earlier answer");
    expect(patched).not.toContain("mallory's text");
  });
});
