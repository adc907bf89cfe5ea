/**
 * The git ledger against real bare repositories: reads, one-commit writes, guards and limits, the event log,
 * round locks and numbers, merges, exports, and the fetch + re-apply + retry path (made deterministic with a
 * pre-receive hook that moves the branch under the push, as a concurrent writer would).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LedgerError } from "../../src/ledger/errors.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { createBareRemote, git, type BareRemote } from "../helpers/git-remote.js";

const AUTHOR = { name: "relabel-loop[bot]", email: "relabel-loop[bot]@users.noreply.github.com" };
const CONFIG = "round_label: al-round\nresults_label: labeled-results\n";

let remote: BareRemote;
let ledger: Ledger;

beforeEach(async () => {
  remote = createBareRemote({ ".github/relabel.yml": CONFIG });
  ledger = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "work"), author: AUTHOR });
});

afterEach(async () => {
  await ledger.dispose();
  remote.cleanup();
});

/** Commit count on a branch of the remote. */
function count(ref = "main"): number {
  return Number(git(remote.path, "rev-list", "--count", ref).trim());
}

function remoteFile(file: string, ref = "main"): string {
  return git(remote.path, "show", `${ref}:${file}`);
}

async function thrown(promise: Promise<unknown>): Promise<LedgerError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LedgerError);
  return err as LedgerError;
}

describe("open and read", () => {
  it("clones the remote, finds its default branch and reads the seeded config", async () => {
    expect(ledger.defaultBranch).toBe("main");
    expect((await ledger.read(".github/relabel.yml"))?.toString()).toBe(CONFIG);
    expect(await ledger.read("pools/none.extxyz")).toBeNull();
    expect(await ledger.head()).toBe(git(remote.path, "rev-parse", "main").trim());
  });

  it("takes the default branch from the remote's HEAD", async () => {
    const other = path.join(remote.root, "trunk.git");
    git(remote.root, "clone", "--quiet", "--bare", remote.path, other);
    git(other, "branch", "-m", "main", "trunk");
    const l = await Ledger.open({ remote: other, workdir: path.join(remote.root, "work"), author: AUTHOR });
    expect(l.defaultBranch).toBe("trunk");
    expect((await l.read(".github/relabel.yml"))?.toString()).toBe(CONFIG);
  });

  it("sets the author as user.name and user.email of its clone", async () => {
    const config = path.join(ledger.dir, "config");
    expect(git(ledger.dir, "config", "--file", config, "user.name").trim()).toBe(AUTHOR.name);
    expect(git(ledger.dir, "config", "--file", config, "user.email").trim()).toBe(AUTHOR.email);
  });

  it("takes a new author on reopening an existing clone", async () => {
    const other = { name: "Other Bot", email: "other@example.invalid" };
    const again = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "work"), author: other });
    expect(again.dir).toBe(ledger.dir);
    expect(git(again.dir, "config", "--file", path.join(again.dir, "config"), "user.name").trim()).toBe(other.name);
    await again.commit({ branch: "x", message: "x", files: [{ path: "x", content: "x" }] });
    await again.appendEvent({ actor: "a", delivery: null, event: "e", outcome: "o" });
    const merge = await again.mergeBranch("x", "merge x");
    expect(git(remote.path, "log", "-1", "--format=%an <%ae>", merge).trim()).toBe(`${other.name} <${other.email}>`);
  });

  it("sees commits pushed by others only after sync()", async () => {
    const side = path.join(remote.root, "side");
    git(remote.root, "clone", "--quiet", remote.path, side);
    writeFileSync(path.join(side, "outside.txt"), "pushed elsewhere\n");
    git(side, "add", "outside.txt");
    git(side, "commit", "--quiet", "-m", "outside");
    git(side, "push", "--quiet", "origin", "HEAD:main");
    expect(await ledger.read("outside.txt")).toBeNull();
    expect(await ledger.sync()).toBe(git(side, "rev-parse", "HEAD").trim());
    expect((await ledger.read("outside.txt"))?.toString()).toBe("pushed elsewhere\n");
  });
});

describe("commit", () => {
  it("writes 20 files as one commit and one push, authored by the ledger's identity", async () => {
    const pushLog = path.join(remote.root, "pushes.log");
    const hook = path.join(remote.path, "hooks", "post-receive");
    writeFileSync(hook, `#!/bin/sh\ncat >> ${pushLog}\n`);
    chmodSync(hook, 0o755);
    const before = count();
    const files = Array.from({ length: 20 }, (_, i) => ({
      path: `rounds/0001/selection/poscars/${String(i + 1).padStart(3, "0")}-cand${i}/POSCAR`,
      content: `POSCAR of candidate ${i}\n`,
    }));
    const sha = await ledger.commit({ message: "Round 1: selection", files });
    expect(count()).toBe(before + 1);
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(sha);
    const changed = git(remote.path, "show", "--name-only", "--format=", sha).trim().split("\n");
    expect(changed.sort()).toEqual(files.map((f) => f.path).sort());
    expect(git(remote.path, "log", "-1", "--format=%an <%ae>|%cn|%s", sha).trim()).toBe(
      `${AUTHOR.name} <${AUTHOR.email}>|${AUTHOR.name}|Round 1: selection`,
    );
    expect(remoteFile(files[7].path)).toBe("POSCAR of candidate 7\n");
    expect((await ledger.read(files[19].path))?.toString()).toBe("POSCAR of candidate 19\n");
    expect(readFileSync(pushLog, "utf8").trim().split("\n")).toHaveLength(1);
  });

  it("deletes files, keeps the executable bit, and stores paths with spaces, quotes and non-ASCII as given", async () => {
    await ledger.commit({
      message: "stage",
      files: [
        { path: "rounds/0001/stages/train/run.sh", content: "#!/bin/sh\necho train\n", executable: true },
        { path: "rounds/0001/stages/train/params.json", content: "{}\n" },
        { path: 'notes/a "quoted" name é.txt', content: "odd name\n" },
      ],
    });
    expect(git(remote.path, "ls-tree", "main", "rounds/0001/stages/train/run.sh").split(" ")[0]).toBe("100755");
    expect(git(remote.path, "ls-tree", "main", "rounds/0001/stages/train/params.json").split(" ")[0]).toBe("100644");
    expect(remoteFile('notes/a "quoted" name é.txt')).toBe("odd name\n");
    await ledger.commit({ message: "drop params", files: [{ path: "rounds/0001/stages/train/params.json", content: null }] });
    expect(await ledger.read("rounds/0001/stages/train/params.json")).toBeNull();
    expect(await ledger.read("rounds/0001/stages/train/run.sh")).not.toBeNull();
  });

  it("makes no commit when the files already hold the content", async () => {
    const first = await ledger.commit({ message: "jobs", files: [{ path: "rounds/0001/jobs.json", content: "[]\n" }] });
    const before = count();
    const again = await ledger.commit({ message: "jobs again", files: [{ path: "rounds/0001/jobs.json", content: Buffer.from("[]\n") }] });
    expect(again).toBe(first);
    expect(count()).toBe(before);
  });

  it("creates a missing branch from the default branch (or a given base) without touching main", async () => {
    const mainBefore = git(remote.path, "rev-parse", "main").trim();
    const sha = await ledger.commit({
      branch: "relabel/round-0001-selection",
      message: "Round 1: selection",
      files: [{ path: "rounds/0001/selection/ranking.json", content: "[1]\n" }],
    });
    expect(git(remote.path, "rev-parse", "relabel/round-0001-selection").trim()).toBe(sha);
    expect(git(remote.path, "rev-parse", `${sha}^`).trim()).toBe(mainBefore);
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(mainBefore);
    expect(await ledger.head("relabel/round-0001-selection")).toBe(sha);
    expect((await ledger.read("rounds/0001/selection/ranking.json", "relabel/round-0001-selection"))?.toString()).toBe("[1]\n");
    expect(await ledger.read("rounds/0001/selection/ranking.json")).toBeNull();

    const fromBranch = await ledger.commit({
      branch: "relabel/round-0001-results",
      base: "relabel/round-0001-selection",
      message: "results",
      files: [{ path: "rounds/0001/labels/run-a/OUTCAR", content: "outcar\n" }],
    });
    expect(git(remote.path, "rev-parse", `${fromBranch}^`).trim()).toBe(sha);

    const fromSha = await ledger.commit({ branch: "from-sha", base: mainBefore, message: "m", files: [] });
    expect(fromSha).toBe(mainBefore);
    expect(git(remote.path, "rev-parse", "from-sha").trim()).toBe(mainBefore);
    expect((await thrown(ledger.commit({ branch: "from-nowhere", base: "no-such-base", message: "m", files: [] }))).code).toBe("not-found");
  });

  it("names each commit to beforePush before pushing it, and deletes a branch only while its tip is the one given", async () => {
    const heard: Array<{ sha: string; onRemote: boolean }> = [];
    const onRemote = (branch: string) => git(remote.path, "for-each-ref", `refs/heads/${branch}`).trim() !== "";
    const sha = await ledger.commit({
      branch: "results/round-0001",
      message: "runs",
      files: [{ path: "rounds/0001/labels/a/OUTCAR", content: "outcar\n" }],
      beforePush: async (s) => void heard.push({ sha: s, onRemote: onRemote("results/round-0001") }),
    });
    expect(heard).toEqual([{ sha, onRemote: false }]);

    const moved = await ledger.commit({ branch: "results/round-0001", message: "more", files: [{ path: "notes.txt", content: "n\n" }] });
    expect(await ledger.deleteBranch("results/round-0001", sha)).toBe(false);
    expect(git(remote.path, "rev-parse", "results/round-0001").trim()).toBe(moved);
    expect(await ledger.deleteBranch("results/round-0001", moved)).toBe(true);
    expect(onRemote("results/round-0001")).toBe(false);
    expect(await ledger.head("results/round-0001")).toBeNull();
    expect(await ledger.deleteBranch("results/round-0001", moved)).toBe(false);
    expect((await thrown(ledger.deleteBranch("main", git(remote.path, "rev-parse", "main").trim()))).code).toBe("invalid-path");
  });

  it("starts an empty remote with a root commit on the default branch it names", async () => {
    const empty = path.join(remote.root, "empty.git");
    git(remote.root, "init", "--quiet", "--bare", "--initial-branch=main", empty);
    const fresh = await Ledger.open({ remote: `file://${empty}`, workdir: path.join(remote.root, "work"), author: AUTHOR });
    expect(await fresh.head()).toBeNull();
    expect(await fresh.read(".github/relabel.yml")).toBeNull();
    const sha = await fresh.commit({ message: "first", files: [{ path: ".github/relabel.yml", content: CONFIG }] });
    expect(git(empty, "rev-list", "--parents", "main").trim()).toBe(sha);
    expect((await fresh.nextRoundNumber()).round).toBe(1);
  });

  it("refuses a guarded (frozen) path before any git work, naming the path and the step", async () => {
    const before = git(remote.path, "rev-parse", "main").trim();
    const guard = (p: string) => (p.startsWith("rounds/0003/selection/") ? "selection" : null);
    const err = await thrown(
      ledger.commit({
        message: "rewrite history",
        guard,
        files: [
          { path: "rounds/0003/round.json", content: "{}\n" },
          { path: "rounds/0003/selection/ranking.csv", content: "x\n" },
        ],
      }),
    );
    expect(err.code).toBe("frozen");
    expect(err.message).toContain("rounds/0003/selection/ranking.csv");
    expect(err.message).toContain('step "selection"');
    expect(err.paths).toEqual(["rounds/0003/selection/ranking.csv"]);
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(before);
  });

  it("refuses a file over 100 MiB, naming GitHub's limit, and pushes nothing", async () => {
    const before = count();
    const big = Buffer.alloc(100 * 1024 * 1024 + 1);
    const err = await thrown(
      ledger.commit({ message: "dataset", files: [{ path: "datasets/current/train.extxyz", content: big }] }),
    );
    expect(err.code).toBe("too-large");
    expect(err.message).toContain("datasets/current/train.extxyz");
    expect(err.message).toContain("104857601 bytes");
    expect(err.message).toContain("above GitHub's 100 MiB per-file limit; route it to Git LFS in .gitattributes (the ledger then stores it there) or make it smaller");
    expect(count()).toBe(before);
  });

  it("refuses paths that are absolute, climb out, name .git or repeat", async () => {
    for (const bad of ["/etc/passwd", "../outside", "a/../b", "a//b", "rounds/", ".git/config", "x/.GIT/y", "a\nb", "a\\b", ""]) {
      const err = await thrown(ledger.commit({ message: "bad", files: [{ path: bad, content: "x" }] }));
      expect(err.code).toBe("invalid-path");
    }
    const dup = await thrown(
      ledger.commit({ message: "dup", files: [{ path: "a.txt", content: "1" }, { path: "a.txt", content: "2" }] }),
    );
    expect(dup.message).toContain("a.txt appears twice");
    const branch = await thrown(ledger.commit({ branch: "--upload-pack=evil", message: "m", files: [{ path: "a", content: "" }] }));
    expect(branch.code).toBe("invalid-path");
  });
});

describe("push races (a pre-receive hook moves main under the push, like a concurrent writer)", () => {
  /** Installs a hook that, on the first push only, moves main to a commit made elsewhere with `files`. */
  function concurrentWriterOnFirstPush(files: Record<string, string>): string {
    const side = path.join(remote.root, "side");
    git(remote.root, "clone", "--quiet", remote.path, side);
    for (const [file, content] of Object.entries(files)) {
      writeFileSync(path.join(side, file), content);
      git(side, "add", file);
    }
    git(side, "commit", "--quiet", "-m", "concurrent writer");
    git(side, "push", "--quiet", "origin", "HEAD:refs/heads/concurrent");
    const hook = path.join(remote.path, "hooks", "pre-receive");
    writeFileSync(
      hook,
      `#!/bin/sh\ncat >/dev/null\nif [ ! -e moved ]; then\n  touch moved\n` +
        `  env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main refs/heads/concurrent\nfi\nexit 0\n`,
    );
    chmodSync(hook, 0o755);
    return git(side, "rev-parse", "HEAD").trim();
  }

  it("re-applies the commit on the new tip and pushes again", async () => {
    const theirs = concurrentWriterOnFirstPush({ "theirs.txt": "theirs\n" });
    const sha = await ledger.commit({ message: "ours", files: [{ path: "ours.txt", content: "ours\n" }] });
    expect(ledger.pushRetries).toBe(1);
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(sha);
    expect(git(remote.path, "rev-parse", `${sha}^`).trim()).toBe(theirs);
    expect(remoteFile("theirs.txt")).toBe("theirs\n");
    expect(remoteFile("ours.txt")).toBe("ours\n");
  });

  it("fails with a conflict when the other writer changed the same file", async () => {
    await ledger.commit({ message: "manifest", files: [{ path: "round.json", content: '{"state":"ranking"}\n' }] });
    const theirs = concurrentWriterOnFirstPush({ "round.json": '{"state":"failed"}\n' });
    const err = await thrown(ledger.commit({ message: "advance", files: [{ path: "round.json", content: '{"state":"labeling"}\n' }] }));
    expect(err.code).toBe("conflict");
    expect(err.paths).toEqual(["round.json"]);
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(theirs);
  });

  it("re-reads the event log on retry, so neither writer's line is lost", async () => {
    await ledger.appendEvent({ actor: "alice", delivery: "d-1", event: "issues.opened", outcome: "round-opened" });
    const theirLog = `${remoteFile("ledger/events.jsonl")}{"time":"t","actor":"bob","delivery":"d-2","event":"poll","command":null,"outcome":"noop","commit":null}\n`;
    concurrentWriterOnFirstPush({ "ledger/events.jsonl": theirLog });
    await ledger.appendEvent({ actor: "carol", delivery: "d-3", event: "issue_comment.created", command: "status", outcome: "answered" });
    const delivered = remoteFile("ledger/events.jsonl").trim().split("\n").map((l) => JSON.parse(l).delivery);
    expect(delivered).toEqual(["d-1", "d-2", "d-3"]);
  });

  it("gives up after maxAttempts lost races with a push-rejected error", async () => {
    concurrentWriterOnFirstPush({ "theirs.txt": "theirs\n" });
    const once = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "once"), author: AUTHOR, maxAttempts: 1 });
    const err = await thrown(once.commit({ message: "ours", files: [{ path: "ours.txt", content: "ours\n" }] }));
    expect(err.code).toBe("push-rejected");
    expect(err.message).toContain("push to main was rejected on all 1 attempts");
    expect(await once.read("ours.txt")).toBeNull();
  });

  it("does not retry a push the remote declines (a protected branch)", async () => {
    const hook = path.join(remote.path, "hooks", "pre-receive");
    writeFileSync(hook, "#!/bin/sh\necho 'protected branch: main' >&2\nexit 1\n");
    chmodSync(hook, 0o755);
    const err = await thrown(ledger.commit({ message: "m", files: [{ path: "x.txt", content: "x" }] }));
    expect(err.code).toBe("git");
    expect(err.message).toContain("pre-receive hook declined");
    expect(ledger.pushRetries).toBe(0);
  });
});

describe("event log", () => {
  it("appends JSON lines in order and answers seen() by delivery id and comment key", async () => {
    const sha = await ledger.appendEvent({ actor: "alice", delivery: "abc-1", event: "issues.opened", outcome: "round-opened", round: 1, time: "2025-01-02T03:04:05.000Z" });
    await ledger.appendEvent({ actor: "bob", delivery: "abc-2", comment: "comment:99", event: "issue_comment.created", command: "status", outcome: "answered", commit: sha });
    const lines = remoteFile("ledger/events.jsonl").trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(Object.keys(JSON.parse(lines[0]))).toEqual(["time", "actor", "delivery", "event", "command", "outcome", "commit", "round"]);
    expect(JSON.parse(lines[0])).toMatchObject({ time: "2025-01-02T03:04:05.000Z", actor: "alice", command: null, commit: null, round: 1 });
    expect(JSON.parse(lines[1])).toMatchObject({ actor: "bob", comment: "comment:99", command: "status", commit: sha });
    expect(await ledger.seen("abc-1")).toBe(true);
    expect(await ledger.seen("comment:99")).toBe(true);
    expect(await ledger.seen("abc-3")).toBe(false);
  });

  it("appendEventOnce records a delivery once and returns null for its redeliveries", async () => {
    const event = { actor: "alice", delivery: "same-id", event: "issues.opened", outcome: "received" };
    expect(await ledger.appendEventOnce(event)).toMatch(/^[0-9a-f]{40}$/);
    const before = count();
    expect(await ledger.appendEventOnce(event)).toBeNull();
    expect(await ledger.appendEventOnce({ ...event, delivery: "other", comment: null })).not.toBeNull();
    expect(count()).toBe(before + 1);
    await expect(ledger.appendEventOnce({ actor: "x", delivery: null, event: "poll", outcome: "x" })).rejects.toThrow(/delivery id or a comment key/);
  });
});

describe("round locks and numbers", () => {
  it("acquireLock commits the lock file; a second acquire is refused with the holder; release removes it", async () => {
    const now = new Date("2025-03-04T05:06:07.000Z");
    const l = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "work2"), author: AUTHOR, now: () => now });
    const first = await l.acquireLock(3, "alice", "rank", "d-1");
    expect(first.ok).toBe(true);
    expect(JSON.parse(remoteFile("ledger/locks/0003.json"))).toEqual({ holder: "alice", reason: "rank", since: "2025-03-04T05:06:07.000Z", delivery: "d-1" });
    expect(await l.acquireLock(3, "bob", "submit", "d-2")).toEqual({ ok: false, holder: "alice", reason: "rank", since: "2025-03-04T05:06:07.000Z", delivery: "d-1" });
    expect((await l.acquireLock(4, "bob", "submit", "d-2")).ok).toBe(true);
    expect(await l.readLock(3)).toMatchObject({ holder: "alice" });
    expect(await l.releaseLock(3)).toMatch(/^[0-9a-f]{40}$/);
    expect(await l.readLock(3)).toBeNull();
    expect(await l.releaseLock(3)).toBeNull();
    expect((await l.acquireLock(3, "bob", "submit", "d-3")).ok).toBe(true);
    await l.dispose();
  });

  it("nextRoundNumber counts up from the highest rounds/NNNN and writes the given manifest", async () => {
    await ledger.commit({ message: "old rounds", files: [{ path: "rounds/0007/round.json", content: "{}\n" }, { path: "rounds/README.md", content: "x\n" }] });
    const eight = await ledger.nextRoundNumber((n) => `${JSON.stringify({ round: n, state: "ranking" })}\n`);
    expect(eight.round).toBe(8);
    expect(JSON.parse(remoteFile("rounds/0008/round.json"))).toEqual({ round: 8, state: "ranking" });
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(eight.commit);
    const nine = await ledger.nextRoundNumber();
    expect(nine.round).toBe(9);
    expect(JSON.parse(remoteFile("rounds/0009/round.json"))).toEqual({ round: 9 });
  });

  it("starts at round 1 in a ledger without rounds/", async () => {
    expect((await ledger.nextRoundNumber()).round).toBe(1);
  });
});

describe("mergeBranch", () => {
  it("merges a branch with a two-parent merge commit, and returns the tip when already merged", async () => {
    const branchSha = await ledger.commit({ branch: "relabel/round-0001-selection", message: "selection", files: [{ path: "rounds/0001/selection/ranking.json", content: "[]\n" }] });
    const mainSha = await ledger.appendEvent({ actor: "a", delivery: "d", event: "e", outcome: "o" });
    const merge = await ledger.mergeBranch("relabel/round-0001-selection", "Merge round 1 selection");
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(merge);
    expect(git(remote.path, "rev-list", "--parents", "-n", "1", merge).trim().split(" ").slice(1)).toEqual([mainSha, branchSha]);
    expect(git(remote.path, "log", "-1", "--format=%s|%an", merge).trim()).toBe(`Merge round 1 selection|${AUTHOR.name}`);
    expect(remoteFile("rounds/0001/selection/ranking.json")).toBe("[]\n");
    expect(remoteFile("ledger/events.jsonl")).toContain('"delivery":"d"');
    expect(await ledger.mergeBranch("relabel/round-0001-selection", "again")).toBe(merge);
  });

  it("refuses conflicting changes, naming the file, and leaves main as it was", async () => {
    await ledger.commit({ message: "m", files: [{ path: "rounds/0001/round.json", content: '{"v":0}\n' }] });
    await ledger.commit({ branch: "b", message: "b", files: [{ path: "rounds/0001/round.json", content: '{"v":1}\n' }] });
    const mainSha = await ledger.commit({ message: "m2", files: [{ path: "rounds/0001/round.json", content: '{"v":2}\n' }] });
    const err = await thrown(ledger.mergeBranch("b", "merge b"));
    expect(err.code).toBe("merge-conflict");
    expect(err.paths).toEqual(["rounds/0001/round.json"]);
    expect(err.message).toContain("rounds/0001/round.json");
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(mainSha);
  });

  it("refuses a merge that would change a guarded path, and a branch that does not exist", async () => {
    await ledger.commit({ branch: "late", message: "late", files: [{ path: "rounds/0001/selection/ranking.csv", content: "x\n" }] });
    const err = await thrown(ledger.mergeBranch("late", "m", { guard: (p) => (p.startsWith("rounds/0001/selection/") ? "selection" : null) }));
    expect(err.code).toBe("frozen");
    expect(err.message).toContain("rounds/0001/selection/ranking.csv");
    expect((await thrown(ledger.mergeBranch("nope", "m"))).code).toBe("not-found");
  });
});

describe("list and exportTree", () => {
  beforeEach(async () => {
    await ledger.commit({
      message: "labels",
      files: [
        { path: "rounds/0001/labels/run-a/OUTCAR", content: "outcar a\n" },
        { path: "rounds/0001/labels/run-a/vasprun.xml", content: "<xml/>\n" },
        { path: "rounds/0001/labels/run-b/OUTCAR", content: "outcar b\n" },
        { path: "rounds/0001/stages/train/run.sh", content: "#!/bin/sh\n", executable: true },
      ],
    });
  });

  it("lists children (files and dirs) or every file below a directory, at a ref", async () => {
    const seeded = git(remote.path, "rev-list", "--max-parents=0", "main").trim();
    expect(await ledger.list("rounds/0001")).toEqual([
      { path: "rounds/0001/labels", name: "labels", type: "dir" },
      { path: "rounds/0001/stages", name: "stages", type: "dir" },
    ]);
    expect((await ledger.list("rounds/0001/labels/", undefined, { recursive: true })).map((e) => e.path)).toEqual([
      "rounds/0001/labels/run-a/OUTCAR",
      "rounds/0001/labels/run-a/vasprun.xml",
      "rounds/0001/labels/run-b/OUTCAR",
    ]);
    expect((await ledger.list("")).map((e) => e.name)).toEqual([".github", "rounds"]);
    expect(await ledger.list("rounds", seeded)).toEqual([]);
    expect(await ledger.read("rounds/0001/labels/run-a/OUTCAR", seeded)).toBeNull();
    expect((await thrown(ledger.list("rounds", "no-such-branch"))).code).toBe("not-found");
  });

  it("exports the files under the given paths with their modes, and nothing else", async () => {
    const out = mkdtempSync(path.join(remote.root, "export-"));
    const written = await ledger.exportTree("main", out, ["rounds/0001/labels/", "rounds/0001/stages/train/run.sh"]);
    expect(written).toEqual([
      "rounds/0001/labels/run-a/OUTCAR",
      "rounds/0001/labels/run-a/vasprun.xml",
      "rounds/0001/labels/run-b/OUTCAR",
      "rounds/0001/stages/train/run.sh",
    ]);
    expect(readFileSync(path.join(out, "rounds/0001/labels/run-b/OUTCAR"), "utf8")).toBe("outcar b\n");
    expect(statSync(path.join(out, "rounds/0001/stages/train/run.sh")).mode & 0o777).toBe(0o755);
    expect(statSync(path.join(out, "rounds/0001/labels/run-a/OUTCAR")).mode & 0o111).toBe(0);
    expect(existsSync(path.join(out, ".github"))).toBe(false);
  });

  it("refuses to export a symbolic link", async () => {
    const side = path.join(remote.root, "side");
    git(remote.root, "clone", "--quiet", remote.path, side);
    mkdirSync(path.join(side, "rounds/0001/labels/run-c"), { recursive: true });
    symlinkSync("/etc/passwd", path.join(side, "rounds/0001/labels/run-c/OUTCAR"));
    git(side, "add", "rounds");
    git(side, "commit", "--quiet", "-m", "link");
    git(side, "push", "--quiet", "origin", "HEAD:main");
    await ledger.sync();
    const err = await thrown(ledger.exportTree("main", mkdtempSync(path.join(remote.root, "export-")), ["rounds/0001/labels"]));
    expect(err.message).toContain("rounds/0001/labels/run-c/OUTCAR");
    expect(err.message).toContain("symbolic link");
  });
});
