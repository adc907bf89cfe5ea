import { describe, expect, it } from "vitest";
import {
  LOST,
  NOT_FOUND,
  decideSubmit,
  newAttempt,
  parseStatusJson,
  phaseOf,
  settleAttempt,
  shouldResubmit,
  statusPhase,
  type Attempt,
  type JobRecord,
  type StageMarkers,
} from "../../../src/core/exec/ledger.js";

const NOW = "2026-01-02T03:04:05.000Z";
const submitted: Attempt = { ...newAttempt(1, NOW), job_id: "17", state: "PENDING" };

function markers(overrides: Partial<StageMarkers> = {}): StageMarkers {
  return { finished: true, status: { exit_code: 0 }, statusProblem: null, stderrTail: "", outputTail: "", ...overrides };
}

function job(attempts: Partial<Attempt>[], extra: Partial<JobRecord> = {}): JobRecord {
  return {
    hash: "abcdef0123456789",
    stage: "train",
    kind: "train",
    round: "1",
    executor: "hpc",
    backend: "ssh+slurm",
    host: "u@h:22",
    remote_dir: "/r/1/train-abcdef012345",
    local_dir: "/l/train",
    attempts: attempts.map((a, i) => ({ ...submitted, number: i + 1, ...a })),
    cancel_requested_at: null,
    collected: null,
    ...extra,
  };
}

describe("settleAttempt", () => {
  it("keeps queued and running jobs open and records the state", () => {
    const next = settleAttempt(submitted, { state: "RUNNING", reason: "None", exitCode: null }, undefined, NOW);
    expect(next).toMatchObject({ state: "RUNNING", reason: "None", outcome: null, updated_at: NOW });
  });

  it("leaves an ended job open until its markers were read", () => {
    expect(settleAttempt(submitted, { state: "COMPLETED", reason: null, exitCode: 0 }, undefined, NOW).outcome).toBeNull();
  });

  it("needs FINISHED and exit_code 0 besides COMPLETED", () => {
    const completed = { state: "COMPLETED", reason: "None", exitCode: 0 };
    expect(settleAttempt(submitted, completed, markers(), NOW)).toMatchObject({ outcome: "succeeded", failure: null, exit_code: 0 });
    const noTag = settleAttempt(submitted, completed, markers({ finished: false, stderrTail: "boom" }), NOW);
    expect(noTag).toMatchObject({ outcome: "failed", failure: { summary: "job 17 COMPLETED: run.sh exit code 0, no FINISHED tag", stderr_tail: "boom" } });
    const badExit = settleAttempt(submitted, completed, markers({ status: { exit_code: 4 } }), NOW);
    expect(badExit).toMatchObject({ outcome: "failed", exit_code: 4, failure: { summary: "job 17 COMPLETED: run.sh exit code 4" } });
    const badJson = settleAttempt(submitted, completed, markers({ status: null, statusProblem: "status.json is not valid JSON" }), NOW);
    expect(badJson.failure!.summary).toBe("job 17 COMPLETED: status.json is not valid JSON");
  });

  it("describes Slurm failures with the reason and the stage's own exit code", () => {
    const failed = settleAttempt(submitted, { state: "FAILED", reason: "NonZeroExitCode", exitCode: 1 }, markers({ finished: false, status: { exit_code: 3 } }), NOW);
    expect(failed).toMatchObject({ outcome: "failed", exit_code: 3, failure: { summary: "job 17 FAILED (NonZeroExitCode): run.sh exit code 3, no FINISHED tag" } });
    const oom = settleAttempt(submitted, { state: "OUT_OF_MEMORY", reason: null, exitCode: 0 }, markers({ finished: false, status: null }), NOW);
    expect(oom.failure!.summary).toBe("job 17 OUT_OF_MEMORY: no status.json, no FINISHED tag");
  });

  it("treats CANCELLED as cancelled, not failed", () => {
    expect(settleAttempt(submitted, { state: "CANCELLED", reason: null, exitCode: 0 }, markers({ finished: false, status: null }), NOW)).toMatchObject({
      outcome: "cancelled",
      failure: null,
    });
  });

  it("lets the markers decide for jobs the scheduler has forgotten", () => {
    const gone = { state: NOT_FOUND, reason: "not listed by squeue or sacct", exitCode: null };
    expect(settleAttempt(submitted, gone, markers(), NOW).outcome).toBe("succeeded");
    const lost = settleAttempt(submitted, gone, markers({ finished: false, status: null }), NOW);
    expect(lost).toMatchObject({ outcome: "failed", state: LOST, failure: { summary: "job 17 is unknown to the scheduler: no status.json, no FINISHED tag" } });
    const failedEarlier = settleAttempt(submitted, gone, markers({ finished: false, status: { exit_code: 2 } }), NOW);
    expect(failedEarlier).toMatchObject({ state: NOT_FOUND, failure: { summary: "job 17 is no longer known to the scheduler: run.sh exit code 2, no FINISHED tag" } });
  });

  it("keeps a preempted job that is still queued open: Slurm may requeue it under the same id", () => {
    const queued = { state: "PREEMPTED", reason: "None", exitCode: null };
    expect(statusPhase(queued)).toBe("running");
    expect(settleAttempt(submitted, queued, markers({ finished: false, status: null }), NOW)).toMatchObject({ state: "PREEMPTED", outcome: null });
  });

  it("ends a job once it left the queue, letting the markers decide where accounting kept an earlier run's state", () => {
    const preempted = { state: "PREEMPTED", reason: null, exitCode: 0, fromAccounting: true };
    expect(statusPhase(preempted)).toBe("ended");
    expect(settleAttempt(submitted, preempted, markers(), NOW).outcome).toBe("succeeded");
    expect(settleAttempt(submitted, preempted, markers({ finished: false, status: null }), NOW)).toMatchObject({
      outcome: "failed",
      failure: { summary: "job 17 PREEMPTED: no status.json, no FINISHED tag" },
    });
    const lagging = { state: "RUNNING", reason: null, exitCode: 0, fromAccounting: true };
    expect(settleAttempt(submitted, lagging, markers(), NOW).outcome).toBe("succeeded");
    const failed = { state: "FAILED", reason: null, exitCode: 1, fromAccounting: true };
    expect(settleAttempt(submitted, failed, markers(), NOW).outcome).toBe("failed");
  });
});

describe("decideSubmit", () => {
  it("submits new stages, resumes interrupted submissions and does nothing for live or successful ones", () => {
    expect(decideSubmit(undefined, false)).toEqual({ action: "new" });
    expect(decideSubmit(job([{ job_id: null, state: "SUBMITTING" }]), false)).toEqual({ action: "resume", attempt: 1 });
    expect(decideSubmit(job([{ state: "RUNNING" }]), true)).toEqual({ action: "none", reason: "already submitted as job 17 (RUNNING)" });
    expect(decideSubmit(job([{ state: "COMPLETED", outcome: "succeeded" }]), true)).toEqual({ action: "none", reason: "already succeeded as job 17" });
  });

  it("submits a failed or cancelled stage again only on request", () => {
    const failed = job([{ state: "FAILED", outcome: "failed" }]);
    expect(decideSubmit(failed, false)).toEqual({ action: "refuse", reason: "attempt 1 as job 17 failed; pass --retry to submit it again" });
    expect(decideSubmit(failed, true)).toEqual({ action: "retry", attempt: 2 });
    expect(decideSubmit(job([{ state: "CANCELLED", outcome: "cancelled" }]), false).action).toBe("refuse");
  });
});

describe("shouldResubmit", () => {
  it("resubmits a failure once, only when allowed, never after a cancel request", () => {
    const failedOnce = job([{ state: "FAILED", outcome: "failed" }]);
    expect(shouldResubmit(failedOnce, true)).toBe(true);
    expect(shouldResubmit(failedOnce, false)).toBe(false);
    expect(shouldResubmit(job([{ outcome: "failed" }, { outcome: "failed" }]), true)).toBe(false);
    expect(shouldResubmit(job([{ outcome: "failed" }], { cancel_requested_at: NOW }), true)).toBe(false);
    expect(shouldResubmit(job([{ outcome: "cancelled" }]), true)).toBe(false);
  });
});

describe("phaseOf and parseStatusJson", () => {
  it("maps scheduler states, counting unknown ones as running", () => {
    expect(["PENDING", "REQUEUED"].map(phaseOf)).toEqual(["queued", "queued"]);
    expect(["RUNNING", "COMPLETING", "SUSPENDED", "SOMETHING_NEW"].map(phaseOf)).toEqual(["running", "running", "running", "running"]);
    expect(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", NOT_FOUND].map(phaseOf)).toEqual(Array(7).fill("ended"));
    expect(phaseOf("SUBMITTING")).toBe("submitting");
  });

  it("reads exit_code from status.json", () => {
    expect(parseStatusJson('{"exit_code": 0, "start": "x"}')).toEqual({ status: { exit_code: 0 }, problem: null });
    expect(parseStatusJson("")).toEqual({ status: null, problem: null });
    expect(parseStatusJson('{"exit_code": "0"}')).toEqual({ status: null, problem: "status.json has no integer exit_code" });
    expect(parseStatusJson('{"exit_code": 0')).toEqual({ status: null, problem: "status.json is not valid JSON" });
  });
});
