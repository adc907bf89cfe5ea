/**
 * The GitHub App end to end: signed deliveries over HTTP into the real app (createNodeMiddleware on 127.0.0.1),
 * Octokit against the fake GitHub, a real bare git repository as the data repo, the bundled real VASP runs as the
 * labels, and the MACE test doubles (stand-ins, never results) run by the local executor.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseRoundManifest } from "../../src/core/app/manifest.js";
import { candidateId } from "../../src/core/select/candidate-id.js";
import { groupedBySpecies } from "../../src/core/structure.js";
import { parsePoscar } from "../../src/core/vasp/poscar.js";
import { rankToDir } from "../../src/io/rank.js";
import { waitFor } from "../helpers/deliver.js";
import { listTree, pushFiles, show } from "../helpers/git-repo.js";
import { appKeys, e2eConfig, roundIssueBody, startHarness, type Harness } from "../helpers/app-harness.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const manifest = (bare: string, round = 1) => {
  const text = show(bare, "main", `rounds/${String(round).padStart(4, "0")}/round.json`);
  if (text === null) return null;
  const parsed = parseRoundManifest(text, "round.json");
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.manifest;
};

const events = (bare: string) =>
  (show(bare, "main", "ledger/events.jsonl") ?? "")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { actor: string; delivery: string | null; event: string; command: string | null; outcome: string; round?: number });

/** Opens the round issue and waits for the selection PR. */
async function openRound(harness: Harness, times = 1): Promise<{ issue: number; pr: number }> {
  const { number, opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
  const answers = await Promise.all([...Array.from({ length: times }, () => harness.deliver(opened)), ...labeled.map((d) => harness.deliver(d))]);
  for (const a of answers) expect(a.status).toBe(200);
  const pr = await waitFor("the selection PR", () => harness.fake.pulls().find((p) => p.title === "Round 1: selection"));
  return { issue: number, pr: pr.number };
}

/** Pushes the recorded run of every selected candidate under rounds/0001/labels/ and opens the results PR. */
async function openResults(harness: Harness): Promise<{ pr: number; sha: string }> {
  const ranking = JSON.parse(show(harness.bare, "main", "rounds/0001/selection/ranking.json")!) as { selected: { candidate_id: string }[] };
  const files: Record<string, { copy: string }> = {};
  for (const pick of ranking.selected) {
    const run = harness.runs.find((r) => r.candidateId === pick.candidate_id)!;
    files[`rounds/0001/labels/${run.name}`] = { copy: run.dir };
  }
  const sha = pushFiles(harness.bare, "results-round-1", files, { base: "main", message: "VASP results of round 1" });
  const { number, opened } = harness.fake.openPull({ head: "results-round-1", title: "Round 1 labels", labels: ["labeled-results"], user: "alice" });
  expect((await harness.deliver(opened)).status).toBe(200);
  return { pr: number, sha };
}

describe("GitHub App, end to end", () => {
  it("runs one full round from the round issue to the benchmark comment", async () => {
    h = await startHarness();
    const harness = h;
    const { issue, pr } = await openRound(harness);

    // Selection: the artifacts on the branch are what `relabel rank` computes for the same pool.
    const branch = "relabel/round-0001-selection";
    const ranking = JSON.parse(show(harness.bare, branch, "rounds/0001/selection/ranking.json")!) as { selected: { rank: number; candidate_id: string }[]; sources: { path: string }[] };
    const direct = await rankToDir({ pool: [path.join(harness.root, "sample-runs.extxyz")], select: 4, out: path.join(mkdtempSync(path.join(tmpdir(), "rank-")), "out"), software: { name: "t", version: "0" } });
    expect(ranking.selected.map((s) => s.candidate_id)).toEqual(direct.result.picks.map((p) => direct.candidates[p.index].id));
    expect(ranking.sources.map((s) => s.path)).toEqual(["pools/sample-runs.extxyz"]);
    for (const pick of ranking.selected) {
      const folder = `rounds/0001/selection/poscars/${String(pick.rank).padStart(3, "0")}-${pick.candidate_id}`;
      const poscar = parsePoscar(show(harness.bare, branch, `${folder}/POSCAR`)!, { file: "POSCAR" });
      const run = harness.runs.find((r) => r.candidateId === pick.candidate_id)!;
      // One block per species (Ti-O-Ti's atoms alternate): the pick's atoms, grouped.
      const grouped = groupedBySpecies(run.frame);
      expect(poscar.frame.symbols).toEqual(grouped.symbols);
      expect(candidateId({ ...poscar.frame, pbc: [true, true, true] })).toBe(candidateId({ ...grouped, pbc: [true, true, true] }));
      if (grouped === run.frame) expect(candidateId({ ...poscar.frame, pbc: [true, true, true] })).toBe(pick.candidate_id);
    }
    await waitFor("the selection summary on the issue", () => harness.fake.botComments(issue).find((c) => c.body.includes("relabel-loop:selection:1")));
    expect(harness.fake.issues.get(issue)!.reactions.map((r) => r.content)).toContain("eyes");
    expect(manifest(harness.bare)!.state).toBe("selection-review");

    // Merging the selection PR freezes it.
    const merged = harness.fake.mergePull(pr);
    expect((await harness.deliver(merged.closed)).status).toBe(200);
    await waitFor("the frozen selection", () => manifest(harness.bare)?.state === "labeling");
    expect(manifest(harness.bare)!.commits.frozen).toBe(merged.sha);

    // The results PR gets a passing dry-run check.
    const results = await openResults(harness);
    const check = await waitFor("the dry-run check", () => harness.fake.checksFor(results.sha).find((c) => c.status === "completed"));
    expect(check.conclusion, check.output?.summary).toBe("success");
    expect(check.output?.summary).toContain("the rebuild would succeed");
    expect(check.output?.summary).toMatch(/dpdata_h2o_md10\/` \| matched/);
    // The check's Re-run button runs the dry run again.
    expect((await harness.deliver(harness.fake.rerequestCheck(check.id))).status).toBe(200);
    const rerun = await waitFor("the check run again", () => harness.fake.checksFor(results.sha).find((c) => c.id !== check.id && c.status === "completed"));
    expect(rerun.conclusion).toBe("success");
    // So does the pull request's "Re-run all checks" (the check suite, rerequested).
    expect((await harness.deliver(harness.fake.rerequestSuite(results.sha))).status).toBe(200);
    const suiteRerun = await waitFor("the check suite run again", () => harness.fake.checksFor(results.sha).find((c) => c.id !== check.id && c.id !== rerun.id && c.status === "completed"));
    expect(suiteRerun.conclusion).toBe("success");

    // Merging it rebuilds the dataset, trains (double), evaluates (double) and benchmarks.
    const closed = harness.fake.mergePull(results.pr);
    expect((await harness.deliver(closed.closed)).status).toBe(200);
    const bench = await waitFor("the benchmark comment", () => harness.fake.botComments(results.pr).find((c) => c.body.includes("relabel-loop:benchmark:1")), 40_000).catch((err) => {
      console.error(show(harness.bare, "main", "ledger/events.jsonl"));
      console.error(harness.fake.botComments(results.pr).map((c) => c.body).join("\n----\n"));
      throw err;
    });
    await harness.relabel.idle();

    const m = manifest(harness.bare)!;
    expect(m.state).toBe("complete");
    expect(m.finished_steps).toEqual(["selection", "dataset", "stages", "jobs", "benchmark"]);
    expect(listTree(harness.bare, "main", "rounds/0001/benchmark")).toEqual(
      expect.arrayContaining(["rounds/0001/benchmark/metrics.json", "rounds/0001/benchmark/report.md", "rounds/0001/benchmark/parity_energy.svg"]),
    );
    expect(listTree(harness.bare, "main", "rounds/0001/stages")).toEqual([
      "rounds/0001/stages/eval/params.json",
      "rounds/0001/stages/eval/run.sh",
      "rounds/0001/stages/eval/stage.json",
      "rounds/0001/stages/train/params.json",
      "rounds/0001/stages/train/run.sh",
      "rounds/0001/stages/train/stage.json",
    ]);
    const summary = JSON.parse(show(harness.bare, "main", "datasets/current/summary.json")!) as { splits: Record<string, { runs: number }> };
    expect(summary.splits.train.runs + summary.splits.valid.runs + summary.splits.test.runs).toBe(4);
    const metrics = JSON.parse(show(harness.bare, "main", "rounds/0001/benchmark/metrics.json")!) as { inputs: { references: string }; counts: { paired_frames: number; reference_frames: number } };
    expect(metrics.inputs.references).toBe("datasets/current/test.extxyz");
    expect(metrics.counts.paired_frames).toBe(metrics.counts.reference_frames);
    const jobs = JSON.parse(show(harness.bare, "main", "rounds/0001/jobs.json")!) as { jobs: { stage: string; attempts: { outcome: string }[] }[] };
    expect(jobs.jobs.map((j) => [j.stage, j.attempts.at(-1)!.outcome])).toEqual([
      ["train", "succeeded"],
      ["eval", "succeeded"],
    ]);
    expect(bench.body).toContain(`https://github.example/lab/data/blob/${m.commits.benchmark}/rounds/0001/benchmark/parity_energy.svg?raw=true`);
    const outputs = harness.fake.botComments(issue).find((c) => c.body.includes("relabel-loop:outputs:1"))!;
    expect(outputs.body).toContain("rounds/0001/selection/ranking.json");
    expect(outputs.body).toContain("rounds/0001/dataset/summary.json");
    expect(harness.fake.issues.get(issue)!.state).toBe("closed");
    expect(harness.fake.botComments(results.pr).some((c) => c.body.includes("relabel-loop:jobs:1"))).toBe(true);
  });

  it("rebuilds from a results PR whose merge event never came: the poller finds the merge, past 100 later closed PRs", async () => {
    h = await startHarness();
    const harness = h;
    // Pull requests closed three days before the round: older than what the poller lists, so it stops paging at them.
    harness.fake.timeShiftMs = -3 * 24 * 3600_000;
    for (let i = 0; i < 150; i++) harness.fake.closePull(harness.fake.openPull({ head: "main", base: "main", title: `old ${i}` }).number);
    harness.fake.timeShiftMs = 0;
    const { pr } = await openRound(harness);
    expect((await harness.deliver(harness.fake.mergePull(pr).closed)).status).toBe(200);
    await waitFor("the frozen selection", () => manifest(harness.bare)?.state === "labeling");
    const results = await openResults(harness);
    await waitFor("the dry-run check", () => harness.fake.checksFor(results.sha).find((c) => c.status === "completed"));
    // Merged on GitHub while the App was away: no pull_request.closed delivery. A busy repository closed 120 other
    // pull requests since, so the merge is on the second page of closed PRs by last update (no await in between:
    // the poller cannot look before they are there).
    harness.fake.mergePull(results.pr);
    for (let i = 0; i < 120; i++) harness.fake.closePull(harness.fake.openPull({ head: "main", base: "main", title: `unrelated ${i}` }).number);
    await waitFor("the train job", () => show(harness.bare, "main", "rounds/0001/jobs.json") ?? undefined, 40_000);
    await harness.relabel.idle();
    const jobs = JSON.parse(show(harness.bare, "main", "rounds/0001/jobs.json")!) as { jobs: { stage: string }[] };
    expect(jobs.jobs.map((j) => j.stage)).toContain("train");
    expect(events(harness.bare).filter((e) => e.delivery === `poll:merged:${results.pr}`).map((e) => e.outcome)[0]).toBe("received");
    const closedPages = harness.fake.requests
      .filter((r) => r.method === "GET" && r.path.endsWith("/pulls") && r.query.includes("state=closed"))
      .map((r) => new URLSearchParams(r.query).get("page") ?? "1");
    expect(closedPages).toContain("2");
    expect(closedPages).not.toContain("3");
  });

  it("acts once on a delivery sent 5 times: one round, one PR, one job set", async () => {
    // The poller would also take up a merge it finds before the deliveries arrive (once either way, which another
    // test covers); here it looks only once, at the start, so that the deliveries are what acts.
    h = await startHarness({ pollIntervalMs: 3_600_000 });
    const harness = h;
    const { pr } = await openRound(harness, 5);
    const merged = harness.fake.mergePull(pr);
    await Promise.all(Array.from({ length: 5 }, () => harness.deliver(merged.closed)));
    await waitFor("the frozen selection", () => manifest(harness.bare)?.state === "labeling");
    const results = await openResults(harness);
    await waitFor("the dry-run check", () => harness.fake.checksFor(results.sha).find((c) => c.status === "completed"));
    const closed = harness.fake.mergePull(results.pr);
    await Promise.all(Array.from({ length: 5 }, () => harness.deliver(closed.closed)));
    await waitFor("the train job", () => show(harness.bare, "main", "rounds/0001/jobs.json") ?? undefined);
    await harness.relabel.idle();

    expect(harness.fake.pulls().filter((p) => p.title === "Round 1: selection")).toHaveLength(1);
    expect(listTree(harness.bare, "main", "rounds").filter((f) => f.endsWith("round.json"))).toEqual(["rounds/0001/round.json"]);
    const jobs = JSON.parse(show(harness.bare, "main", "rounds/0001/jobs.json")!) as { jobs: { stage: string; attempts: unknown[] }[] };
    expect(jobs.jobs.filter((j) => j.stage === "train")).toHaveLength(1);
    expect(jobs.jobs.find((j) => j.stage === "train")!.attempts).toHaveLength(1);
    const received = events(harness.bare).filter((e) => e.outcome === "received");
    for (const id of [merged.closed.id, closed.closed.id]) expect(received.filter((e) => e.delivery === id)).toHaveLength(1);
  });

  it("runs one of two concurrent commands on a round and tells the other the round is busy", async () => {
    h = await startHarness();
    const harness = h;
    const { issue } = await openRound(harness);
    await harness.relabel.idle();
    const a = harness.fake.addComment(issue, "/relabel rank --select 3", "alice");
    const b = harness.fake.addComment(issue, "/relabel rank --select 2", "carol");
    const answers = await Promise.all([harness.deliver(a.created), harness.deliver(b.created)]);
    expect(answers.map((x) => x.status)).toEqual([200, 200]);
    await waitFor("both commands handled", () => events(harness.bare).filter((e) => e.command === "rank" && e.outcome !== "received").length === 2);
    await harness.relabel.idle();
    const outcomes = events(harness.bare).filter((e) => e.command === "rank" && e.outcome !== "received");
    expect(outcomes.filter((e) => e.outcome.startsWith("re-ranked"))).toHaveLength(1);
    expect(outcomes.filter((e) => e.outcome.startsWith("busy"))).toHaveLength(1);
    const busy = harness.fake.botComments(issue).filter((c) => c.body.startsWith("Round 1 is busy"));
    expect(busy).toHaveLength(1);
    const winner = outcomes.find((e) => e.outcome.startsWith("re-ranked"))!.actor;
    expect(busy[0].body).toContain(winner === "alice" ? "@alice" : "@carol");
    const selected = JSON.parse(show(harness.bare, "relabel/round-0001-selection", "rounds/0001/selection/ranking.json")!) as { selected: unknown[] };
    expect(selected.selected).toHaveLength(winner === "alice" ? 3 : 2);
    expect(show(harness.bare, "main", "ledger/locks/0001.json")).toBeNull();
  });

  it("writes its sticky comment beside, never over, someone else's comment that carries the marker", async () => {
    h = await startHarness();
    const harness = h;
    const { number, opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
    const planted = "<!-- relabel-loop:selection:1 -->\nmallory's text";
    const mallory = harness.fake.addComment(number, planted, "mallory");
    const answers = await Promise.all([harness.deliver(mallory.created), harness.deliver(opened), ...labeled.map((d) => harness.deliver(d))]);
    for (const a of answers) expect(a.status).toBe(200);
    const summary = await waitFor("the selection summary", () => harness.fake.botComments(number).find((c) => c.body.includes("relabel-loop:selection:1")));
    await harness.relabel.idle();
    expect(harness.fake.comments.get(mallory.id)).toMatchObject({ body: planted, edits: 0, user: { login: "mallory" } });
    expect(summary.id).not.toBe(mallory.id);
    expect(summary.user).toEqual({ login: "relabel-loop[bot]", type: "Bot" });
    expect(summary.body).toContain("Round 1");
    expect(summary.body).not.toContain("mallory's text");
  });

  it("politely refuses a command from a read-only user, recording nothing in the ledger", async () => {
    h = await startHarness();
    const harness = h;
    const { issue } = await openRound(harness);
    await harness.relabel.idle();
    const before = harness.fake.botComments(issue).length;
    const c = harness.fake.addComment(issue, "/relabel unlock", "bob");
    expect((await harness.deliver(c.created)).status).toBe(200);
    await waitFor("the refusal", () => harness.fake.botComments(issue).length > before);
    await harness.relabel.idle();
    const reply = harness.fake.botComments(issue).at(-1)!;
    expect(reply.body).toContain("Sorry @bob");
    expect(reply.body).toContain("write, maintain or admin");
    expect(events(harness.bare).filter((e) => e.actor === "bob")).toEqual([]);
    expect(harness.fake.comments.get(c.id)!.reactions).toEqual([]);
  });

  it("runs nothing for a results PR from a fork and says why in the check", async () => {
    h = await startHarness();
    const harness = h;
    const { pr } = await openRound(harness);
    const merged = harness.fake.mergePull(pr);
    await harness.deliver(merged.closed);
    await waitFor("the frozen selection", () => manifest(harness.bare)?.state === "labeling");
    const run = harness.runs[0];
    const sha = pushFiles(harness.bare, "fork-results", { [`rounds/0001/labels/${run.name}`]: { copy: run.dir } }, { base: "main" });
    const { opened } = harness.fake.openPull({ head: "fork-results", title: "labels from a fork", labels: ["labeled-results"], user: "mallory", fork: true });
    expect((await harness.deliver(opened)).status).toBe(200);
    const check = await waitFor("the fork check", () => harness.fake.checksFor(sha).find((c) => c.status === "completed"));
    await harness.relabel.idle();
    expect(check.conclusion).toBe("neutral");
    expect(check.output?.title).toContain("fork");
    expect(check.output?.summary).toContain("reads and runs nothing from forks");
    expect(events(harness.bare).some((e) => e.outcome === "check: fork, nothing run")).toBe(true);
    expect(show(harness.bare, "main", "datasets/current/summary.json")).toBeNull();
  });

  it("answers a delivery with a bad signature with 400 and does nothing", async () => {
    h = await startHarness();
    const harness = h;
    const { opened } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"] });
    const answer = await harness.deliver(opened, { signature: `sha256=${"0".repeat(64)}` });
    expect(answer.status).toBe(400);
    await harness.relabel.idle();
    expect(harness.fake.requests).toEqual([]);
    expect(show(harness.bare, "main", "ledger/events.jsonl")).toBeNull();
  });

  it("answers a config with a typo with one issue comment naming the key and what it meant", async () => {
    h = await startHarness({ config: (runs) => e2eConfig(runs).replace("selection:\n  select: 4", "selction:\n  select: 4") });
    const harness = h;
    const { number, opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"] });
    await Promise.all([harness.deliver(opened), ...labeled.map((d) => harness.deliver(d))]);
    await waitFor("the config comment", () => harness.fake.botComments(number).length > 0);
    await harness.relabel.idle();
    const comments = harness.fake.botComments(number);
    expect(comments).toHaveLength(1);
    expect(comments[0].body).toContain("`selction`");
    expect(comments[0].body).toContain("did you mean `selection`?");
    expect(listTree(harness.bare, "main", "rounds")).toEqual([]);
    expect(harness.fake.pulls()).toEqual([]);

    // Fixed on the default branch, `/relabel rank` reads the issue again and opens the round.
    pushFiles(harness.bare, "main", { ".github/relabel.yml": e2eConfig(path.join(harness.root, "runs")) }, { message: "fix the config" });
    const retry = harness.fake.addComment(number, "/relabel rank", "alice");
    await harness.deliver(retry.created);
    await waitFor("the selection PR", () => harness.fake.pulls().find((p) => p.title === "Round 1: selection"));
    await harness.relabel.idle();
    expect(manifest(harness.bare)).toMatchObject({ issue: number, state: "selection-review" });
  });

  it("refuses a round whose stages would run on the App's host unless its operator allowed it, and runs nothing", async () => {
    // The operator did not set RELABEL_ALLOW_LOCAL_EXECUTOR=1; the repo's config names a local executor.
    h = await startHarness({ allowLocalExecutor: false });
    const harness = h;
    const { number, opened, labeled } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
    const answers = await Promise.all([harness.deliver(opened), ...labeled.map((d) => harness.deliver(d))]);
    for (const a of answers) expect(a.status).toBe(200);
    await waitFor("the refusal", () => harness.fake.botComments(number).length > 0);
    await harness.relabel.idle();
    const comments = harness.fake.botComments(number);
    expect(comments).toHaveLength(1);
    // Whichever of issues.opened and issues.labeled came first answers; the other finds the issue taken.
    expect(comments[0].body.replace(/`issues\.(opened|labeled)`/, "`issues.*`")).toBe(
      "relabel-loop could not finish `issues.*`: executors.here in .github/relabel.yml has backend local, and this App does not run stages on its own host: " +
        "configure an ssh+shell or ssh+slurm executor under `executors` in .github/relabel.yml, or have the App's operator set RELABEL_ALLOW_LOCAL_EXECUTOR=1. No stage was run.",
    );
    expect(harness.fake.pulls()).toEqual([]);
    expect(listTree(harness.bare, "main", "rounds")).toEqual([]);
    expect(existsSync(path.join(harness.root, "runs"))).toBe(false);
    expect(events(harness.bare).filter((e) => e.outcome.startsWith("error: executors.here"))).toHaveLength(1);
  });

  /** A round opened under an ssh+slurm executor whose key line is `keyLine`: the App's only comment, and no PR. */
  async function refusedKey(keyLine: string, appKeyFile?: string): Promise<string[]> {
    const hpc = ["executor: hpc", "executors:", "  hpc:", "    backend: ssh+slurm", "    host: 127.0.0.1", "    port: 1", "    user: alice", `    host_key: "SHA256:${"A".repeat(43)}"`, `    ${keyLine}`, "    remote_root: /scratch/relabel", ""].join("\n");
    h = await startHarness({ config: (runs) => e2eConfig(runs).replace(/^executor: here\nexecutors:\n  here:\n.*\n.*\n/m, hpc), appKeyFile });
    const harness = h;
    const { number, opened } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"], user: "alice" });
    expect((await harness.deliver(opened)).status).toBe(200);
    await waitFor("the refusal", () => harness.fake.botComments(number).length > 0);
    await harness.relabel.idle();
    expect(harness.fake.pulls()).toEqual([]);
    return harness.fake.botComments(number).map((c) => c.body);
  }

  it("refuses the App's own private key file as an executor's SSH key, naming the key, before anything runs", async () => {
    const keyFile = path.join(mkdtempSync(path.join(tmpdir(), "relabel-app-key-")), "app.pem");
    writeFileSync(keyFile, appKeys().privateKey);
    expect(await refusedKey(`private_key_file: ${keyFile}`, keyFile)).toEqual([
      `relabel-loop could not finish \`issues.opened\`: executors.hpc.private_key_file: ${keyFile} is the GitHub App's own private key; expected the SSH key for alice@127.0.0.1`,
    ]);
  });

  it("refuses an SSH key its operator did not offer (here a variable not named RELABEL_SSH_*)", async () => {
    expect(await refusedKey("private_key_env: HOME")).toEqual([
      "relabel-loop could not finish `issues.opened`: executors.hpc.private_key_env: HOME is not offered to data repositories; this App reads SSH keys and passphrases only from variables named RELABEL_SSH_*",
    ]);
  });

  it("answers webhooks before the work is done", async () => {
    h = await startHarness();
    const harness = h;
    const { opened } = harness.fake.openIssue({ title: "Round 1", body: roundIssueBody(), labels: ["al-round"] });
    const answer = await harness.deliver(opened);
    expect(answer.status).toBe(200);
    expect(answer.ms).toBeLessThan(10_000); // GitHub's limit for an answer
    // The ranking, the branch and the PR come after the answer.
    expect(harness.fake.pulls()).toEqual([]);
    await waitFor("the selection PR", () => harness.fake.pulls().length === 1);
    await harness.relabel.idle();
  });
});
