/**
 * Rounds that live through cluster outages: the Slurm controller down when a stage is submitted, the SSH server
 * down when a finished job is collected. Neither fails the round; the App's poller carries on once the service is
 * back. These stop services of the shared loopback cluster, so they run alone, after every other test file (the
 * "exclusive" project).
 */
import path from "node:path";
import { expect, it } from "vitest";
import { lastAttempt } from "../../src/core/exec/ledger.js";
import { JobTracker } from "../../src/exec/tracker.js";
import { restartSlurmctld, startCluster, stopSlurmctld, stopSshd } from "../helpers/cluster.js";
import { committedJobOutcomes, pollUntilComplete, selectedRunFolders, slurmRounds } from "../helpers/local-round.js";
import { pollUntil } from "../helpers/poll-jobs.js";

const rounds = slurmRounds();

it("keeps the round going when the controller is down at submission, and submits the stage at a later poll", async () => {
  const round = await rounds.start("round-controller");
  await round.selectAndFreeze();
  const pr = await round.openResults(await selectedRunFolders(round));
  stopSlurmctld();
  try {
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
    expect((await round.manifest()).state).toBe("training");
    const said = (await round.forge.listComments(pr)).map((c) => c.body);
    expect(said).toContainEqual(
      expect.stringMatching(/^\*\*Round 1:\*\* the scheduler did not take the `train` stage yet \(.*Unable to contact slurm controller.*\)\. The App submits it again at its next poll/),
    );
    expect(said.at(-1)).toMatch(/### Round 1: 1 job, not yet taken by the scheduler\n[\s\S]*\| `train` \|.*\| – \| SUBMITTING \|/);
  } finally {
    restartSlurmctld();
  }
  await pollUntilComplete(round);
  expect(await committedJobOutcomes(round)).toEqual([
    ["train", ["succeeded"]],
    ["eval", ["succeeded"]],
  ]);
}, 180_000);

it("keeps the round going when the SSH server is down as the trained model is collected", async () => {
  const round = await rounds.start("round-sshd");
  await round.selectAndFreeze();
  const pr = await round.openResults(await selectedRunFolders(round));
  await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
  // Train's end is recorded in the App's jobs file from outside (as `relabel jobs` would), so that the App's next
  // poll goes straight to collecting the model.
  const watcher = new JobTracker(path.join(round.stateDir, "rounds", "0001", "jobs.json"));
  try {
    const train = (await watcher.poll()).jobs.find((j) => j.stage === "train")!;
    await pollUntil(watcher, train.hash, undefined, { timeoutMs: 60_000, intervalMs: 300 });
  } finally {
    await watcher.close();
  }
  const said = async () => (await round.forge.listComments(pr)).map((c) => c.body);
  const before = (await said()).length;
  stopSshd();
  try {
    // Two poller ticks: the round stays in training, and the thread hears of the problem once, at the second
    // (a single failed poll passes quietly).
    await round.workflow.poll();
    expect((await said()).length).toBe(before);
    await round.workflow.poll();
    expect((await round.manifest()).state).toBe("training");
    const during = (await said()).slice(before);
    expect(during).toEqual([expect.stringMatching(/^\*\*Round 1:\*\* polling the jobs runs into a problem: cannot connect to 127\.0\.0\.1:2222: connection refused\. The App keeps polling/)]);
    await round.command(pr, "/relabel status");
    expect((await said()).at(-1)).toMatch(/\n- Polling: problems since \S+, last at \S+: cannot connect to 127\.0\.0\.1:2222: connection refused\n/);
  } finally {
    startCluster();
  }
  await pollUntilComplete(round);
  expect(await said()).toContainEqual(expect.stringMatching(/^\*\*Round 1:\*\* polling works again \(it had problems since \S+\); the round carries on\.$/));
  expect(await committedJobOutcomes(round)).toEqual([
    ["train", ["succeeded"]],
    ["eval", ["succeeded"]],
  ]);
}, 180_000);
