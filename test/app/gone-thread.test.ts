/**
 * A round whose issue is deleted on GitHub (the fake answers 410, as GitHub does): the poller's next step on it
 * fails the round with a reason that names the issue and what to do, logs one warning (no internal error), and
 * asks GitHub nothing more about that issue at later ticks.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseRoundManifest } from "../../src/core/app/manifest.js";
import { roundIssueBody, startHarness, type Harness } from "../helpers/app-harness.js";
import { waitFor } from "../helpers/deliver.js";
import { show } from "../helpers/git-repo.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const manifest = (bare: string) => {
  const text = show(bare, "main", "rounds/0001/round.json");
  if (text === null) return null;
  const parsed = parseRoundManifest(text, "round.json");
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.manifest;
};

describe("a round issue that is gone", () => {
  it("fails its round with the reason once, without an internal error, and is not asked about again", async () => {
    h = await startHarness();
    const harness = h;
    const { number: issue, opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
    for (const d of [opened, ...labeled]) expect((await harness.deliver(d)).status).toBe(200);
    const pr = await waitFor("the selection PR", () => harness.fake.pulls().find((p) => p.title === "Round 1: selection"));
    await harness.relabel.idle();
    const warnings = vi.spyOn(harness.probot.log, "warn");
    const errors = vi.spyOn(harness.probot.log, "error");

    harness.fake.deleteIssue(issue);
    // Merged without a delivery: the poller freezes the selection and then tells the round issue, which is gone.
    harness.fake.mergePull(pr.number);
    const failed = await waitFor("the failed round", () => (manifest(harness.bare)?.state === "failed" ? manifest(harness.bare) : undefined), 40_000);
    await harness.relabel.idle();
    const message = failed!.failure!.message;
    expect(message).toContain(`#${issue} is gone from lab/data (GitHub answered 410`);
    expect(message).toContain("round 1 stops here");
    expect(message).toContain("open a new round issue");
    expect(failed!.failure!.state).toBe("labeling");

    const mark = harness.fake.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 1500)); // six ticks of the poller
    await harness.relabel.idle();
    expect(harness.fake.requests.slice(mark).filter((r) => r.path.startsWith(`/repos/lab/data/issues/${issue}`))).toEqual([]);
    const gone = warnings.mock.calls.map((c) => String(c[0])).filter((m) => m.includes(`#${issue} is gone`));
    expect(gone).toHaveLength(1);
    expect(gone[0]).not.toContain("\n");
    expect(errors).not.toHaveBeenCalled();
    const outcomes = (show(harness.bare, "main", "ledger/events.jsonl") ?? "").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { outcome: string }).outcome);
    expect(outcomes.filter((o) => o.startsWith(`error: #${issue} is gone`))).toHaveLength(1);
  });
});
