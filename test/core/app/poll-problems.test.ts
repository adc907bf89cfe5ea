import { describe, expect, it } from "vitest";
import { nextPollNotice, type PollProblems } from "../../../src/core/app/poll-problems.js";

const refused = ["cannot connect to 127.0.0.1:2222: connection refused"];

describe("what the poller tells a round's thread about its problems", () => {
  it("lets a single failed poll pass without a comment, keeping it for /relabel status meanwhile", () => {
    const first = nextPollNotice(null, refused, "T1");
    expect(first).toEqual({ record: { since: "T1", at: "T1", problems: refused, announced: false }, say: null });
    expect(nextPollNotice(first.record, [], "T2")).toEqual({ record: null, say: null });
  });

  it("tells the thread at the second failed poll in a row, once, and once when polling works again", () => {
    const first = nextPollNotice(null, refused, "T1").record;
    const second = nextPollNotice(first, refused, "T2");
    expect(second).toEqual({ record: { since: "T1", at: "T2", problems: refused, announced: true }, say: "problems" });
    const third = nextPollNotice(second.record, ["squeue: Socket timed out"], "T3");
    expect(third).toEqual({ record: { since: "T1", at: "T3", problems: ["squeue: Socket timed out"], announced: true }, say: null });
    expect(nextPollNotice(third.record, [], "T4")).toEqual({ record: null, say: "recovered" });
  });

  it("counts a record written before announcements were tracked as told", () => {
    const old: PollProblems = { since: "T0", at: "T0", problems: refused };
    expect(nextPollNotice(old, refused, "T1").say).toBeNull();
    expect(nextPollNotice(old, [], "T1")).toEqual({ record: null, say: "recovered" });
  });

  it("has nothing to keep or say while polls meet no problem", () => {
    expect(nextPollNotice(null, [], "T1")).toEqual({ record: null, say: null });
  });
});
