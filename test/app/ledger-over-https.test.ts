/**
 * The data repo reached over https, as on GitHub and GitHub Enterprise: git gets the installation token from the
 * App, asked for at the fake GitHub's baseUrl (127.0.0.1), and sends it as a header, never in the URL.
 */
import { afterEach, describe, expect, it } from "vitest";
import { roundIssueBody, startHarness, type Harness } from "../helpers/app-harness.js";
import { waitFor } from "../helpers/deliver.js";
import { git } from "../helpers/git-remote.js";
import { show } from "../helpers/git-repo.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** User and token of a Basic Authorization header. */
const credentials = (header: string): [string, string] => Buffer.from(header.replace(/^Basic /, ""), "base64").toString().split(":") as [string, string];

describe("the ledger over https", () => {
  it("clones and pushes with installation tokens that the App's baseUrl issued", async () => {
    h = await startHarness({ ledgerOverHttp: true });
    const harness = h;
    const { opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
    for (const d of [opened, ...labeled]) expect((await harness.deliver(d)).status).toBe(200);
    const pr = await waitFor("the selection PR", () => harness.fake.pulls().find((p) => p.title === "Round 1: selection"));
    await harness.relabel.idle();

    // The PR's branch is in the bare repository: the App pushed it over http.
    expect(git(harness.bare, "rev-parse", `refs/heads/${pr.pull!.head.ref}`).trim()).toBe(pr.pull!.head.sha);
    const sent = harness.gitHttp!.authorizations.filter((a): a is string => a !== null);
    expect(sent.length).toBeGreaterThan(0);
    for (const header of sent) {
      const [user, token] = credentials(header);
      expect([user, harness.fake.tokens.has(token)]).toEqual(["x-access-token", true]);
    }
    expect(harness.fake.requests.some((r) => r.method === "POST" && /^\/app\/installations\/\d+\/access_tokens$/.test(r.path) && r.status === 201)).toBe(true);
  });

  it("replaces a git token that GitHub revoked before it expired, and pushes with the new one", async () => {
    h = await startHarness({ ledgerOverHttp: true });
    const harness = h;
    const { number: issue, opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
    for (const d of [opened, ...labeled]) expect((await harness.deliver(d)).status).toBe(200);
    await waitFor("the selection PR", () => harness.fake.pulls().find((p) => p.title === "Round 1: selection"));
    await harness.relabel.idle();

    // Revoked: the tokens git used so far (the App's API token stays valid).
    const tokenOf = (header: string): string => credentials(header)[1];
    const used = new Set(harness.gitHttp!.authorizations.filter((a): a is string => a !== null).map(tokenOf));
    for (const token of used) harness.fake.tokens.delete(token);
    const seen = harness.gitHttp!.authorizations.length;

    const rerank = harness.fake.addComment(issue, "/relabel rank --select 2", "alice");
    expect((await harness.deliver(rerank.created)).status).toBe(200);
    const picks = (): number => (JSON.parse(show(harness.bare, "relabel/round-0001-selection", "rounds/0001/selection/ranking.json")!) as { selected: unknown[] }).selected.length;
    await waitFor("the re-ranked selection", () => picks() === 2);
    await harness.relabel.idle();
    // One refusal of the old token, then a new one for every request after it.
    const after = harness.gitHttp!.authorizations.slice(seen).filter((a): a is string => a !== null).map(tokenOf);
    expect(after.some((token) => used.has(token))).toBe(true);
    const fresh = after.slice(after.findIndex((token) => !used.has(token)));
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((token) => !used.has(token) && harness.fake.tokens.has(token))).toBe(true);
  });
});
