/**
 * committee: previous-round. Round 1 trains a committee of two (MACE test doubles with seeds 42 and 43); round 2's
 * pool is predicted by those models through the executor, and the ranking uses their disagreement. With
 * selection.features: previous-round, a single trained model computes the descriptors round 2 ranks in.
 */
import { afterEach, expect, it } from "vitest";
import { roundPaths } from "../../src/core/app/manifest.js";
import { localConfig, selectedRunFolders, startLocalRound, type LocalRound } from "../helpers/local-round.js";

let r: LocalRound | null = null;
afterEach(async () => {
  await r?.close();
  r = null;
});

async function until(what: string, probe: () => Promise<boolean>, round: LocalRound, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await round.workflow.poll();
  }
}

/**
 * The executor counts a job as succeeded only when the stage root writes status.json and FINISHED; the root run.sh
 * of a train committee (src/core/stage/render.ts) does not yet, so a committee's training never "succeeds".
 * This test runs as soon as it does.
 */

it("refuses a previous-round committee when the previous round trained a single model", async () => {
  r = await startLocalRound();
  const round = r;
  await round.selectAndFreeze();
  const pr = await round.openResults(await selectedRunFolders(round));
  await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
  await until("round 1 complete", async () => (await round.manifest(1)).state === "complete", round);
  const issue = await round.forge.openIssue({ title: "Round 2", labels: ["al-round"], author: "you", body: "### Committee\n\nprevious round's committee\n" });
  await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
  const reply = (await round.forge.listComments(issue.number)).at(-1)!.body;
  expect(reply).toContain("round 1 trained a single model; a committee needs at least 2 models");
  expect(await round.ledger.read(roundPaths(2).manifest)).toBeNull();
}, 60_000);

it("ranks round 2 with the disagreement of round 1's committee, predicted through the executor, in member 0's descriptors", async () => {
  r = await startLocalRound({ config: (runs) => ({ ...localConfig(runs), stage: { device: "cpu", committee: 2 }, selection: { select: 4, features: "previous-round" } }) });
  const round = r;
  await round.selectAndFreeze();
  const pr = await round.openResults(await selectedRunFolders(round));
  await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
  await until("round 1 complete", async () => (await round.manifest(1)).state === "complete", round);

  const issue = await round.forge.openIssue({
    title: "Round 2",
    labels: ["al-round"],
    author: "you",
    body: "### Pool paths\n\npools/sample-runs.extxyz\n\n### Committee\n\nprevious round's committee\n",
  });
  await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
  expect((await round.manifest(2)).state).toBe("ranking");
  const waiting = (await round.forge.listComments(issue.number)).map((c) => c.body).find((b) => b.startsWith("**Round 2:**"));
  expect(waiting).toContain("the 2 models of round 1 are predicting the pool");

  await until("round 2 ranked", async () => (await round.manifest(2)).state === "selection-review", round);
  const m = await round.manifest(2);
  const ranking = JSON.parse((await round.ledger.read(roundPaths(2).rankingJson, m.branches.selection))!.toString("utf8")) as {
    committee: { size: number; members: string[] };
    parameters: { features_files: { path: string; sha256: string }[]; features_key: string };
    rule: string;
    labeled_size: number;
    selected: { candidate_id: string }[];
  };
  expect(ranking.committee.size).toBe(2);
  expect(ranking.committee.members.map((p) => p.split("/").at(-1))).toEqual(["pool.member-0.extxyz", "pool.member-1.extxyz"]);
  expect(ranking.committee.members.every((p) => p.includes("/0002/pool-eval-"))).toBe(true);
  // selection.features: previous-round: member 0's descriptors of the pool and of datasets/current's splits.
  const described = ranking.parameters.features_files.map((f) => f.path.split("/").slice(-2).join("/"));
  expect(described[0]).toBe("predictions/pool.member-0.extxyz");
  expect(described.slice(1).every((p) => /^predictions\/(train|valid|test)\.extxyz$/.test(p))).toBe(true);
  expect(described.length).toBeGreaterThan(1);
  expect(ranking.rule).toContain("diversity = distance in the space of MACE_descriptors (one mean vector per structure)");
  // The four structures labelled in round 1 are in the dataset now: only the fifth run's structure is left.
  const labelled = new Set(Object.keys(await selectedRunFolders(round)));
  const left = round.runs.filter((run) => !labelled.has(run.name));
  expect(ranking.selected.map((s) => s.candidate_id)).toEqual(left.map((run) => run.candidateId));
  expect(m.committee_size).toBe(2);
  expect(m.prs.selection).toBeDefined();
}, 90_000);

it.each([
  { label: "previous-round", features: "previous-round" as const, space: "one mean vector per structure" },
  { label: "{model: previous-round, per_element: true}", features: { model: "previous-round" as const, per_element: true }, space: "composition-weighted means per element: C, H, O, Si, Ti" },
])("ranks round 2 in the descriptors of round 1's single model (selection.features: $label), without a committee", async ({ features, space }) => {
  r = await startLocalRound({ config: (runs) => ({ ...localConfig(runs), selection: { select: 4, features } }) });
  const round = r;
  await round.selectAndFreeze();
  // Round 1 has no earlier model: it ranked by the descriptor, and says so.
  const first = JSON.parse((await round.ledger.read(roundPaths(1).rankingJson))!.toString("utf8")) as { parameters: { descriptor: string } };
  expect(first.parameters.descriptor).toBe("baseline");
  const pr = await round.openResults(await selectedRunFolders(round));
  await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
  await until("round 1 complete", async () => (await round.manifest(1)).state === "complete", round);

  const issue = await round.forge.openIssue({ title: "Round 2", labels: ["al-round"], author: "you", body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
  await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
  const waiting = (await round.forge.listComments(issue.number)).map((c) => c.body).find((b) => b.startsWith("**Round 2:**"));
  expect(waiting).toContain("the model of round 1 is computing the descriptors of the pool and of `datasets/current`");
  await until("round 2 ranked", async () => (await round.manifest(2)).state === "selection-review", round);
  const m = await round.manifest(2);
  const ranking = JSON.parse((await round.ledger.read(roundPaths(2).rankingJson, m.branches.selection))!.toString("utf8")) as {
    committee: { size: number };
    parameters: { features_files: { path: string; sha256: string }[] };
    rule: string;
  };
  expect(ranking.committee.size).toBe(0);
  expect(ranking.parameters.features_files[0].path).toMatch(/\/0002\/pool-eval-[^/]+\/predictions\/pool\.member-0\.extxyz$/);
  expect(ranking.rule).toMatch(/^diversity-first \(no committee\): greedy farthest-point sampling in the space of MACE_descriptors/);
  expect(ranking.rule).toContain(`(${space})`);
}, 90_000);
