/**
 * A round whose results PR is merged while the Slurm controller is down: the train stage waits in jobs.json
 * instead of failing the round, and the poller submits it once the controller is back. Stops the loopback
 * cluster's controller, so it runs alone, after every other test file (the "exclusive" project).
 */
import { expect, it } from "vitest";
import { restartSlurmctld, stopSlurmctld } from "../helpers/cluster.js";
import { committedJobOutcomes, pollUntilComplete, selectedRunFolders, slurmRounds } from "../helpers/local-round.js";

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
