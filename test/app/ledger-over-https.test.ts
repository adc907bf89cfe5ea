/**
 * The data repo reached over https, as on GitHub and GitHub Enterprise: git gets the installation token from the
 * App, asked for at the fake GitHub's baseUrl (127.0.0.1), and sends it as a header, never in the URL.
 */
import { afterEach, describe, expect, it } from "vitest";
import { roundIssueBody, startHarness, type Harness } from "../helpers/app-harness.js";
import { waitFor } from "../helpers/deliver.js";
import { git } from "../helpers/git-remote.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

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
      const [user, token] = Buffer.from(header.replace(/^Basic /, ""), "base64").toString().split(":");
      expect([user, harness.fake.tokens.has(token)]).toEqual(["x-access-token", true]);
    }
    expect(harness.fake.requests.some((r) => r.method === "POST" && /^\/app\/installations\/\d+\/access_tokens$/.test(r.path) && r.status === 201)).toBe(true);
  });
});
