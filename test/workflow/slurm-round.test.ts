/**
 * Issue 6's last case: one full round (selection, replayed labels, rebuild, train, eval, benchmark) whose stages
 * run on the real loopback Slurm through SSH. Training and evaluation run the MACE test doubles (stand-ins).
 */
import { expect, it } from "vitest";
import { roundPaths } from "../../src/core/app/manifest.js";
import { committedJobOutcomes, pollUntilComplete, selectedRunFolders, slurmRounds } from "../helpers/local-round.js";

const rounds = slurmRounds();

it("runs a whole round with its stages on Slurm over SSH", async () => {
  const round = await rounds.start("round");
  await round.selectAndFreeze();
  const pr = await round.openResults(await selectedRunFolders(round));
  await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
  await pollUntilComplete(round);
  expect(await committedJobOutcomes(round)).toEqual([
    ["train", ["succeeded"]],
    ["eval", ["succeeded"]],
  ]);
  const jobs = JSON.parse((await round.ledger.read(roundPaths(1).jobs))!.toString("utf8")) as {
    jobs: { backend: string; remote_dir: string; attempts: { job_id: string }[] }[];
  };
  for (const j of jobs.jobs) {
    expect(j.backend).toBe("ssh+slurm");
    expect(j.remote_dir.startsWith(`${rounds.env().home}/runs/round-`)).toBe(true);
    expect(j.attempts[0].job_id).toMatch(/^\d+$/);
  }
  expect(await round.ledger.read(`${roundPaths(1).benchmark}/metrics.json`)).not.toBeNull();
}, 150_000);
