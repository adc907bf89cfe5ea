import { describe, expect, it } from "vitest";
import { eventKeys, formatEvent, highestRound, lockPath, parseLock, roundDirName } from "../../src/ledger/records.js";

describe("events.jsonl", () => {
  it("formats one line with the documented keys first and nulls for absent command and commit", () => {
    const line = formatEvent({ actor: "alice", delivery: "d1", event: "issues.opened", outcome: "round-opened" }, "2025-01-01T00:00:00.000Z");
    expect(line).toBe('{"time":"2025-01-01T00:00:00.000Z","actor":"alice","delivery":"d1","event":"issues.opened","command":null,"outcome":"round-opened","commit":null}\n');
  });

  it("collects delivery ids and comment keys, and names the line of a broken record", () => {
    const text = '{"delivery":"d1","comment":null}\n\n{"delivery":null,"comment":"comment:7"}\n';
    expect([...eventKeys(text)].sort()).toEqual(["comment:7", "d1"]);
    expect(() => eventKeys('{"delivery":"d1"}\n{"delivery":\n')).toThrow("ledger/events.jsonl:2: not a JSON line");
  });
});

describe("rounds and locks", () => {
  it("pads round numbers to four digits and refuses what does not fit", () => {
    expect(roundDirName(3)).toBe("0003");
    expect(lockPath(12)).toBe("ledger/locks/0012.json");
    for (const bad of [0, -1, 1.5, 10000]) expect(() => roundDirName(bad)).toThrow(/1 to 9999/);
  });

  it("finds the highest four-digit round directory and ignores other names", () => {
    expect(highestRound(["0001", "0010", "README.md", "12345", "0003", "abcd"])).toBe(10);
    expect(highestRound([])).toBe(0);
  });

  it("parses a lock file and refuses one without holder or since", () => {
    expect(parseLock('{"holder":"a","reason":"rank","since":"t","delivery":null}', "L")).toEqual({ holder: "a", reason: "rank", since: "t", delivery: null });
    expect(() => parseLock('{"reason":"x"}', "ledger/locks/0001.json")).toThrow('ledger/locks/0001.json: expected {"holder","reason","since","delivery"}');
    expect(() => parseLock("nope", "L")).toThrow("L: not JSON");
  });
});
