/**
 * Two ledgers on two clones of one bare repo (as two app processes would be) writing at the same time: every
 * commit lands, round numbers differ, exactly one lock holder, one record per delivery.
 */
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { createBareRemote, git, type BareRemote } from "../helpers/git-remote.js";

let remote: BareRemote;
let a: Ledger;
let b: Ledger;

beforeEach(async () => {
  remote = createBareRemote();
  const open = (name: string) =>
    Ledger.open({ remote: remote.path, workdir: path.join(remote.root, name), author: { name: `bot ${name}`, email: `${name}@example.invalid` } });
  [a, b] = await Promise.all([open("a"), open("b")]);
  expect(a.dir).not.toBe(b.dir);
});

afterEach(() => remote.cleanup());

function mainLog(): string[] {
  return git(remote.path, "log", "--format=%s", "main").trim().split("\n");
}

describe("two clones writing concurrently", () => {
  it("lands all 20 commits of 10 + 10 concurrent writers, none lost", async () => {
    const writer = async (ledger: Ledger, who: string) => {
      for (let i = 0; i < 10; i++) {
        await ledger.commit({ message: `${who} ${i}`, files: [{ path: `race/${who}-${i}.txt`, content: `${who} ${i}\n` }] });
      }
    };
    await Promise.all([writer(a, "a"), writer(b, "b")]);
    const subjects = mainLog();
    expect(subjects).toHaveLength(21);
    for (const who of ["a", "b"]) {
      for (let i = 0; i < 10; i++) {
        expect(subjects).toContain(`${who} ${i}`);
        expect(git(remote.path, "show", `main:race/${who}-${i}.txt`)).toBe(`${who} ${i}\n`);
      }
    }
    // Linear history: every commit was re-applied on the tip it lost to, none merged or forced over.
    expect(git(remote.path, "rev-list", "--merges", "--count", "main").trim()).toBe("0");
  });

  it("allocates different round numbers to concurrent callers", async () => {
    const results = await Promise.all([a.nextRoundNumber(), b.nextRoundNumber(), a.nextRoundNumber(), b.nextRoundNumber()]);
    expect(results.map((r) => r.round).sort()).toEqual([1, 2, 3, 4]);
    const dirs = git(remote.path, "ls-tree", "--name-only", "main", "rounds/").trim().split("\n");
    expect(dirs).toEqual(["rounds/0001", "rounds/0002", "rounds/0003", "rounds/0004"]);
  });

  it("gives a round lock to exactly one of two concurrent acquirers", async () => {
    for (let round = 1; round <= 5; round++) {
      const [ra, rb] = await Promise.all([a.acquireLock(round, "alice", "rank", `da-${round}`), b.acquireLock(round, "bob", "rank", `db-${round}`)]);
      expect([ra.ok, rb.ok].filter(Boolean)).toHaveLength(1);
      const loser = ra.ok ? rb : ra;
      const winner = ra.ok ? "alice" : "bob";
      expect(loser).toMatchObject({ ok: false, holder: winner });
      expect(JSON.parse(git(remote.path, "show", `main:ledger/locks/${String(round).padStart(4, "0")}.json`)).holder).toBe(winner);
    }
  });

  it("records a webhook delivered to both processes exactly once", async () => {
    const event = (actor: string) => ({ actor, delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958", event: "issues.opened", outcome: "received" });
    const [ra, rb] = await Promise.all([a.appendEventOnce(event("a")), b.appendEventOnce(event("b"))]);
    expect([ra, rb].filter((r) => r !== null)).toHaveLength(1);
    const lines = git(remote.path, "show", "main:ledger/events.jsonl").trim().split("\n");
    expect(lines).toHaveLength(1);
    await b.sync();
    expect(await b.seen("72d3162e-cc78-11e3-81ab-4c9367dc0958")).toBe(true);
  });
});

describe("one ledger used concurrently", () => {
  it("serialises its own writes, so they never race each other", async () => {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => a.commit({ message: `same ${i}`, files: [{ path: `same/${i}.txt`, content: `${i}\n` }] })),
    );
    expect(mainLog()).toHaveLength(11);
    expect(a.pushRetries).toBe(0);
  });
});
