/**
 * A round whose results PR is merged while the Slurm controller is down: the train stage waits in jobs.json
 * instead of failing the round, and the poller submits it once the controller is back. Stops the loopback
 * cluster's controller, so it runs alone, after every other test file (the "exclusive" project).
 */
import path from "node:path";
import { afterEach, beforeAll, expect, it } from "vitest";
import { roundPaths } from "../../src/core/app/manifest.js";
import { remoteRoot, restartSlurmctld, sshExecutor, startCluster, stopSlurmctld, type ClusterEnv } from "../helpers/cluster.js";
import { localConfig, selectedRunFolders, startLocalRound, type LocalRound } from "../helpers/local-round.js";

const DOUBLES = path.resolve(import.meta.dirname, "../doubles");
let env: ClusterEnv;
let r: LocalRound | null = null;

beforeAll(() => {
  env = startCluster();
});

afterEach(async () => {
  await r?.close();
  r = null;
  startCluster();
});

it("keeps the round going when the controller is down at submission, and submits the stage at a later poll", async () => {
  const root = remoteRoot(env, "round-controller");
  r = await startLocalRound({
    config: (runsRoot) => ({
      ...localConfig(runsRoot),
      executor: "hpc",
      executors: { hpc: sshExecutor(env, "ssh+slurm", root, { setup: [`export PATH=${DOUBLES}:$PATH`] }) },
    }),
  });
  const round = r;
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
  const deadline = Date.now() + 90_000;
  while ((await round.manifest()).state !== "complete") {
    if (Date.now() > deadline) throw new Error(`round not complete: ${(await round.manifest()).state}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await round.workflow.poll();
  }
  const jobs = JSON.parse((await round.ledger.read(roundPaths(1).jobs))!.toString("utf8")) as { jobs: { stage: string; attempts: { job_id: string; outcome: string }[] }[] };
  expect(jobs.jobs.map((j) => [j.stage, j.attempts.map((a) => a.outcome)])).toEqual([
    ["train", ["succeeded"]],
    ["eval", ["succeeded"]],
  ]);
}, 180_000);
