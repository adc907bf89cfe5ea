/**
 * The GitHub forge's requests against GitHub's documented answers, mocked by nock (no network): what it sends where
 * GitHub's limits differ from what its docs or the fake GitHub would suggest.
 */
import nock from "nock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CHECK_TEXT_LIMIT } from "../../src/workflow/forge.js";
import { GitHubForge } from "../../src/workflow/github-forge.js";
import { Pacer } from "../../src/workflow/pacer.js";
import { testOctokit } from "../helpers/app-harness.js";

const API = "https://api.github.com";

function forge(): GitHubForge {
  const Octokit = testOctokit();
  return new GitHubForge({ octokit: new Octokit({ auth: { token: "ghs_test" } }), app: async () => ({ id: 1, slug: "relabel-loop" }), owner: "lab", repo: "data", defaultBranch: "main", pacer: new Pacer(0) });
}

beforeEach(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

describe("check runs", () => {
  it("cuts summary and text to 65,535 bytes of UTF-8, which GitHub counts, not characters", async () => {
    // 40,000 characters, 80,000 bytes: under the limit by length, over it as GitHub measures.
    const summary = `| run | note |\n${"Å".repeat(40_000)}`;
    const sent: Array<{ summary: string; text: string }> = [];
    const scope = nock(API)
      .post("/repos/lab/data/check-runs", (body: { output: { summary: string; text: string } }) => (sent.push(body.output), true))
      .reply(201, { id: 5 });
    await forge().createCheckRun({ name: "relabel-loop", headSha: "0".repeat(40), status: "completed", conclusion: "success", output: { title: "dry run", summary, text: `–${summary}` } });
    expect(scope.isDone()).toBe(true);
    for (const part of [sent[0].summary, sent[0].text]) {
      const bytes = Buffer.byteLength(part, "utf8");
      expect(bytes).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
      expect(bytes).toBeGreaterThan(CHECK_TEXT_LIMIT - 100);
      expect(part).toMatch(/Å\n\n… \(cut: the full report is in the ledger\)$/);
    }
  });

  it("leaves text within the limit as it is", async () => {
    const summary = "Å".repeat(30_000);
    let sent = "";
    nock(API)
      .patch("/repos/lab/data/check-runs/5", (body: { output: { summary: string } }) => ((sent = body.output.summary), true))
      .reply(200, { id: 5 });
    await forge().updateCheckRun(5, { status: "completed", conclusion: "success", output: { title: "dry run", summary } });
    expect(sent).toBe(summary);
  });

  it("never splits a character made of two UTF-16 units", async () => {
    let sent = "";
    nock(API)
      .patch("/repos/lab/data/check-runs/5", (body: { output: { summary: string } }) => ((sent = body.output.summary), true))
      .reply(200, { id: 5 });
    await forge().updateCheckRun(5, { status: "completed", conclusion: "success", output: { title: "dry run", summary: `x${"😀".repeat(20_000)}` } });
    expect(Buffer.byteLength(sent, "utf8")).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
    expect(sent).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(sent).toMatch(/😀\n\n… \(cut/);
  });
});

describe("sticky comments", () => {
  it("are found past the first page of a long thread (GitHub pages comments, 100 at most)", async () => {
    const people = Array.from({ length: 100 }, (_, i) => ({ id: 100 + i, body: `comment ${i}`, user: { login: "alice", type: "User" } }));
    const sticky = { id: 900, body: "<!-- relabel-loop:status:1 -->\nold", user: { login: "relabel-loop[bot]", type: "Bot" }, performed_via_github_app: { id: 1 } };
    let updated = "";
    const scope = nock(API)
      .get("/repos/lab/data/issues/3/comments")
      .query({ per_page: "100" })
      .reply(200, people, { link: `<${API}/repos/lab/data/issues/3/comments?per_page=100&page=2>; rel="next"` })
      .get("/repos/lab/data/issues/3/comments")
      .query({ per_page: "100", page: "2" })
      .reply(200, [sticky])
      .patch("/repos/lab/data/issues/comments/900", (body: { body: string }) => ((updated = body.body), true))
      .reply(200, { id: 900 });
    const id = await forge().upsertComment(3, "<!-- relabel-loop:status:1 -->", (previous) => `${previous?.split("\n")[0]}\nnew`);
    expect(scope.isDone()).toBe(true);
    expect(id).toBe(900);
    expect(updated).toBe("<!-- relabel-loop:status:1 -->\nnew");
  });
});
