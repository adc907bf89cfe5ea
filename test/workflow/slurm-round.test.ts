/**
 * Issue 6's last case: one full round (selection, replayed labels, rebuild, train, eval, benchmark) whose stages
 * run on the real loopback Slurm through SSH. Training and evaluation run the MACE test doubles (stand-ins).
 */
import path from "node:path";
import { afterEach, beforeAll, expect, it } from "vitest";
import { roundPaths } from "../../src/core/app/manifest.js";
import { remoteRoot, sshExecutor, startCluster, type ClusterEnv } from "../helpers/cluster.js";
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
});

it("runs a whole round with its stages on Slurm over SSH", async () => {
  const root = remoteRoot(env, "round");
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
  await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
  const deadline = Date.now() + 90_000;
  while ((await round.manifest()).state !== "complete") {
    if (Date.now() > deadline) throw new Error(`round not complete: ${(await round.manifest()).state}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await round.workflow.poll();
  }
  const jobs = JSON.parse((await round.ledger.read(roundPaths(1).jobs))!.toString("utf8")) as {
    jobs: { stage: string; backend: string; remote_dir: string; attempts: { job_id: string; outcome: string }[] }[];
  };
  expect(jobs.jobs.map((j) => [j.stage, j.backend, j.attempts.map((a) => a.outcome)])).toEqual([
    ["train", "ssh+slurm", ["succeeded"]],
    ["eval", "ssh+slurm", ["succeeded"]],
  ]);
  for (const j of jobs.jobs) {
    expect(j.remote_dir.startsWith(root)).toBe(true);
    expect(j.attempts[0].job_id).toMatch(/^\d+$/);
  }
  expect(await round.ledger.read(`${roundPaths(1).benchmark}/metrics.json`)).not.toBeNull();
}, 150_000);
