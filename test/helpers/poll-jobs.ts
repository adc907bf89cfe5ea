import { expect } from "vitest";
import { isOpen, lastAttempt, type JobRecord } from "../../src/core/exec/ledger.js";
import type { JobTracker } from "../../src/exec/tracker.js";

/** Polls the tracker until the job of `hash` satisfies `done` (by default: it has an outcome), failing on poll problems. */
export async function pollUntil(
  t: JobTracker,
  hash: string,
  done: (j: JobRecord) => boolean = (j) => !isOpen(j),
  { timeoutMs = 30_000, intervalMs = 200 } = {},
): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { jobs, problems } = await t.poll();
    expect(problems).toEqual([]);
    const job = jobs.find((j) => j.hash === hash)!;
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${job.stage} still ${lastAttempt(job).state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
