/**
 * The round workflow through the LocalForge: what the results check catches, a rebuild that fails its gates,
 * a training job that fails and is submitted again, frozen selections, the round lock, status.
 * Training runs the MACE test doubles (stand-ins) through the local executor.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { roundPaths } from "../../src/core/app/manifest.js";
import { newAttempt } from "../../src/core/exec/ledger.js";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { parseLfsPointer } from "../../src/ledger/lfs.js";
import type { PullRequestInfo } from "../../src/workflow/forge.js";
import { makeStage } from "../doubles/stage.js";
import { cloneWithGitLfs } from "../helpers/git-remote.js";
import { localConfig, selectedRunFolders, startLocalRound, type LocalRound } from "../helpers/local-round.js";

let r: LocalRound | null = null;
afterEach(async () => {
  delete process.env.MACE_DOUBLE_EXIT;
  await r?.close();
  r = null;
});

async function until(what: string, probe: () => Promise<boolean>, round: LocalRound, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await round.workflow.poll();
  }
}

const comments = async (round: LocalRound, thread: number) => (await round.forge.listComments(thread)).filter((c) => c.author === "relabel-loop").map((c) => c.body);

/** Opens round 1's issue: the round is ranked and its selection PR open, not merged. Returns the issue number. */
async function openRoundIssue(round: LocalRound): Promise<number> {
  const issue = await round.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: round.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
  await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
  return issue.number;
}

/** The selection size in round 1's ranking.json at `ref`. */
const selectionSizeAt = async (round: LocalRound, ref: string) =>
  (JSON.parse((await round.ledger.read(roundPaths(1).rankingJson, ref))!.toString("utf8")) as { selection_size: number }).selection_size;

describe("results check", () => {
  it("fails for a run of a structure that was not selected and for a folder named after another candidate", async () => {
    r = await startLocalRound();
    await r.selectAndFreeze();
    const selected = await selectedRunFolders(r);
    const notSelected = r.runs.find((run) => !(run.name in selected))!;
    const h2o = r.runs.find((run) => run.name === "dpdata_h2o_md10")!;
    const tio = r.runs.find((run) => run.name === "dpdata_Ti-O-Ti_static_v630")!;
    const folders: Record<string, string> = { ...selected, [notSelected.name]: notSelected.dir, [`009-${h2o.candidateId}`]: tio.dir };
    await r.openResults(folders);
    const check = r.forge.checkRuns().at(-1)!;
    expect(check.conclusion).toBe("failure");
    expect(check.title).toContain("1 run holds another structure than its folder name says");
    expect(check.title).toContain("1 run matches no selected candidate");
    const report = readFileSync(check.file, "utf8");
    expect(report).toContain(`\`${notSelected.name}/\` | **extra**`);
    expect(report).toContain(`\`009-${h2o.candidateId}/\` | **mismatched**`);
  });

  it("fails with the config's problems when .github/relabel.yml does not parse, and rebuilds a merge once it does", async () => {
    r = await startLocalRound();
    await r.selectAndFreeze();
    const good = (await r.ledger.read(".github/relabel.yml"))!;
    await r.ledger.commit({ message: "break the config", files: [{ path: ".github/relabel.yml", content: "selection: {select: many}\n" }] });
    const number = await r.openResults(await selectedRunFolders(r));
    const check = r.forge.checkRuns().at(-1)!;
    expect(check.conclusion).toBe("failure");
    expect(check.title).toBe("The config does not parse: no dry run");
    expect(readFileSync(check.file, "utf8")).toContain("- `selection.select`: ");

    // Merged anyway: the PR hears why nothing was rebuilt, and the poller rebuilds once the file parses.
    await r.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await r.forge.merge(number), sender: r.me });
    expect((await comments(r, number)).join("\n")).toContain("The dataset was not rebuilt.");
    expect((await r.manifest()).state).toBe("labeling");
    await r.ledger.commit({ message: "fix the config", files: [{ path: ".github/relabel.yml", content: good }] });
    await r.workflow.poll();
    expect((await r.manifest()).finished_steps).toContain("dataset");
  });

  it("gives a failing rebuild's advice as .github/relabel.yml keys, not as relabel dataset build's options", async () => {
    // The bundled runs mix DFT settings, and four runs leave a split empty with the default fractions.
    r = await startLocalRound({ config: (runsRoot) => ({ ...localConfig(runsRoot), dataset: {} }) });
    await r.selectAndFreeze();
    await r.openResults(await selectedRunFolders(r));
    const check = r.forge.checkRuns().at(-1)!;
    expect(check.conclusion).toBe("failure");
    const report = readFileSync(check.file, "utf8");
    expect(report).toContain("set dataset.allow_mixed_settings: true in .github/relabel.yml to build anyway");
    expect(report).toContain("add runs, or try another dataset.seed in .github/relabel.yml");
    expect(report).not.toMatch(/--allow-mixed-settings|--seed|--allow-empty-split/);
  });

  it("passes for exactly the selected runs and reports the dataset the rebuild would write", async () => {
    r = await startLocalRound();
    await r.selectAndFreeze();
    await r.openResults(await selectedRunFolders(r));
    const check = r.forge.checkRuns().at(-1)!;
    expect(check.conclusion).toBe("success");
    const report = readFileSync(check.file, "utf8");
    expect(report).toContain("**Dataset the rebuild would write**");
    // Nothing is written by a dry run.
    expect(await r.ledger.read("datasets/current/summary.json")).toBeNull();
  });

  it("reports a symbolic link in a run folder as a finding, and leaves the round as it was", async () => {
    r = await startLocalRound();
    const round = r;
    await round.selectAndFreeze();
    // The way a user pushes runs whose POTCAR is linked in from the cluster's potential library.
    const clone = mkdtempSync(path.join(tmpdir(), "results-"));
    const git = (...args: string[]) => execFileSync("git", ["-C", clone, "-c", "user.name=t", "-c", "user.email=t@example.org", ...args]);
    execFileSync("git", ["clone", "-q", path.join(round.root, "data.git"), clone]);
    git("checkout", "-q", "-b", "results");
    for (const [name, dir] of Object.entries(await selectedRunFolders(round))) {
      const dest = path.join(clone, roundPaths(1).labels, name);
      cpSync(dir, dest, { recursive: true });
      symlinkSync("/opt/vasp/potpaw_PBE/Si/POTCAR", path.join(dest, "POTCAR"));
    }
    git("add", "-A");
    git("commit", "-qm", "labels");
    git("push", "-q", "origin", "results");
    rmSync(clone, { recursive: true, force: true });
    await round.ledger.sync();
    const number = await round.forge.openPullRequest({ head: "results", base: round.ledger.defaultBranch, title: "labels", body: "", labels: ["labeled-results"], author: round.me.login });
    await round.workflow.onPullRequest({ delivery: null, event: "pull_request.opened", pr: await round.forge.pullRequest(number), sender: round.me });
    const check = round.forge.checkRuns().at(-1)!;
    expect([check.status, check.conclusion]).toEqual(["completed", "failure"]);
    expect(readFileSync(check.file, "utf8")).toMatch(/POTCAR at \S+ is a symbolic link; only regular files can be exported: commit the file itself/);
    expect((await round.manifest()).state).toBe("labeling");
  });

  it("keeps the step of a merge that lands while the check's dry run runs", async () => {
    r = await startLocalRound({ autoSubmit: false });
    const round = r;
    await round.selectAndFreeze();
    const openPullRequest = round.forge.openPullRequest.bind(round.forge);
    let results: number | undefined;
    vi.spyOn(round.forge, "openPullRequest").mockImplementation(async (o) => (results = await openPullRequest(o)));
    const exportTree = round.ledger.exportTree.bind(round.ledger);
    let merging: Promise<void> | undefined;
    // The first export of the check's dry run: the PR is merged, and the merge's rebuild runs, before it goes on.
    vi.spyOn(round.ledger, "exportTree").mockImplementation(async (ref, dir, paths) => {
      if (results !== undefined && merging === undefined) {
        merging = round.forge.merge(results).then((merged) => round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: round.me }));
        await merging;
      }
      return exportTree(ref, dir, paths);
    });
    await round.openResults(await selectedRunFolders(round));
    expect(merging).toBeDefined();
    const m = await round.manifest();
    expect(m.finished_steps).toContain("dataset");
    expect(m.state).not.toBe("labeling");
  });

  it("checks again the results PR that /relabel rebuild --dry-run is typed on", async () => {
    r = await startLocalRound({ autoSubmit: false });
    const round = r;
    await round.selectAndFreeze();
    const selected = await selectedRunFolders(round);
    const complete = await round.openResults(selected);
    // A second results PR, with one run missing, is checked later: the round records it.
    const [name, dir] = Object.entries(selected)[0];
    await round.ledger.commit({ branch: "results-2", message: "one run", files: readdirSync(dir).map((f) => ({ path: `${roundPaths(1).labels}/${name}/${f}`, content: readFileSync(path.join(dir, f)) })) });
    const partial = await round.forge.openPullRequest({ head: "results-2", base: round.ledger.defaultBranch, title: "one run", body: "", labels: ["labeled-results"], author: round.me.login });
    await round.workflow.onPullRequest({ delivery: null, event: "pull_request.opened", pr: await round.forge.pullRequest(partial), sender: round.me });
    expect((await round.manifest()).prs.results).toBe(partial);
    await round.command(complete, "/relabel rebuild --dry-run");
    expect(round.forge.checkRuns().at(-1)!.conclusion).toBe("success");
    await round.command(partial, "/relabel rebuild --dry-run");
    expect(round.forge.checkRuns().at(-1)!.conclusion).toBe("failure");
  });

  it("ends a check that could not run as a failure, never left in progress, without failing the round", async () => {
    r = await startLocalRound();
    await r.selectAndFreeze();
    vi.spyOn(r.ledger, "exportTree").mockRejectedValue(new Error("a bug"));
    await r.openResults(await selectedRunFolders(r));
    const check = r.forge.checkRuns().at(-1)!;
    expect([check.status, check.conclusion, check.title]).toEqual(["completed", "failure", "The dry run could not finish"]);
    expect(readFileSync(check.file, "utf8")).toContain("an internal error (details are in the app's log)");
    expect((await r.manifest()).state).toBe("labeling");
  });
});

describe("rebuild on merge", () => {
  it("writes no dataset and fails the round with the gate's reason when the rebuild would fail", async () => {
    r = await startLocalRound({ config: (runs) => localConfig(runs, { allow_mixed_settings: false }) });
    await r.selectAndFreeze();
    const pr = await r.openResults(await selectedRunFolders(r));
    expect(r.forge.checkRuns().at(-1)!.conclusion).toBe("failure");
    await r.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await r.forge.merge(pr), sender: r.me });
    const m = await r.manifest();
    expect(m.state).toBe("failed");
    expect(m.failure?.message).toMatch(/dataset rebuild failed.*mixed/i);
    expect(await r.ledger.read("datasets/current/summary.json")).toBeNull();
    expect((await comments(r, pr)).at(-1)).toContain("the dataset rebuild failed, nothing was written");
  });

  it("stops the round once when training fails; /relabel submit runs the stage again", async () => {
    r = await startLocalRound();
    const round = r;
    await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    process.env.MACE_DOUBLE_EXIT = "3";
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
    await until("the failed round", async () => (await round.manifest()).state === "failed", round);
    await round.workflow.poll();
    const stopped = (await comments(round, pr)).filter((c) => c.startsWith("**Round 1 stopped:**"));
    expect(stopped).toHaveLength(1);
    expect(stopped[0]).toContain("train");
    expect(stopped[0]).toContain("failed");

    delete process.env.MACE_DOUBLE_EXIT;
    await round.command(pr, "/relabel submit");
    await until("the complete round", async () => (await round.manifest()).state === "complete", round);
    const jobs = JSON.parse((await round.ledger.read(roundPaths(1).jobs))!.toString("utf8")) as { jobs: { stage: string; attempts: { outcome: string }[] }[] };
    const train = jobs.jobs.find((j) => j.stage === "train")!;
    expect(train.attempts.map((a) => a.outcome)).toEqual(["failed", "succeeded"]);
  });
});

describe("stages on the App's own host", () => {
  const REFUSAL = /this App does not run stages on its own host: configure an ssh\+shell or ssh\+slurm executor under `executors` in \.github\/relabel\.yml, or have the App's operator set RELABEL_ALLOW_LOCAL_EXECUTOR=1\. No stage was run\.$/;
  const openIssue = async (round: LocalRound) => {
    const issue = await round.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: round.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
    await round.workflow.onIssue({ delivery: "d-1", event: "issues.opened", issue, sender: round.me });
    return issue.number;
  };

  it("refuses to open a round whose stages would run on this host, with or without executors, unless allowed", async () => {
    const withoutExecutors = (runs: string) => {
      const { executor: _e, executors: _x, ...rest } = localConfig(runs);
      return rest;
    };
    for (const [config, says] of [[localConfig, "executors.here in .github/relabel.yml has backend local, and "], [withoutExecutors, ".github/relabel.yml configures no executor, and "]] as const) {
      r = await startLocalRound({ config, allowLocalExecutor: false });
      const issue = await openIssue(r);
      const said = await comments(r, issue);
      expect(said).toHaveLength(1);
      expect(said[0].startsWith(`relabel-loop could not finish \`issues.opened\`: ${says}`)).toBe(true);
      expect(said[0]).toMatch(REFUSAL);
      expect(said[0]).not.toContain("\n");
      // Nothing ranked, no round number taken, nothing run.
      expect(await r.ledger.read(roundPaths(1).manifest)).toBeNull();
      expect(existsSync(path.join(r.root, "runs"))).toBe(false);
      expect(existsSync(path.join(r.stateDir, "runs"))).toBe(false);
      const events = (await r.ledger.read("ledger/events.jsonl"))!.toString("utf8");
      expect(events).toContain(`"outcome":"error: ${says}`);
      await r.close();
      r = null;
    }
  });

  it("runs nothing when the config turns to a local executor whose setup prints the environment before the merge", async () => {
    // The round opens with an SSH executor (never contacted: opening and ranking do not reach it).
    const hpc = { backend: "ssh+slurm", host: "127.0.0.1", port: 1, user: "alice", host_key: `SHA256:${"A".repeat(43)}`, private_key_file: "/nonexistent/key", remote_root: "/scratch/relabel" };
    r = await startLocalRound({ config: (runs) => ({ ...localConfig(runs), executor: "hpc", executors: { hpc } }), allowLocalExecutor: false });
    const round = r;
    await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    // A writer of the data repo points the stages at the App's host.
    const marker = path.join(round.root, "setup-ran");
    const local = { ...localConfig(path.join(round.root, "runs")), executors: { here: { backend: "local", remote_root: path.join(round.root, "runs"), setup: [`touch ${marker}; env >&2; false`] } } };
    await round.ledger.commit({ message: "executor", files: [{ path: ".github/relabel.yml", content: JSON.stringify(local) }] });
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
    await round.command(pr, "/relabel submit");
    await round.workflow.poll();
    const refusals = (await comments(round, pr)).filter((c) => REFUSAL.test(c));
    expect(refusals.map((c) => c.split(":")[0])).toEqual(["relabel-loop could not finish `pull_request.closed` for round 1", "relabel-loop could not finish `/relabel submit` for round 1"]);
    expect((await comments(round, pr)).some((c) => c.includes("Submitting it."))).toBe(false);
    const m = await round.manifest();
    expect(m.state).toBe("failed");
    expect(m.failure?.message).toMatch(REFUSAL);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(path.join(round.root, "runs"))).toBe(false);
    expect(await round.ledger.read(roundPaths(1).jobs)).toBeNull();
  });

  it("refuses a local executor recorded in the data repo's jobs.json (a forged submission the poll would resume)", async () => {
    const hpc = { backend: "ssh+slurm", host: "127.0.0.1", port: 1, user: "alice", host_key: `SHA256:${"A".repeat(43)}`, private_key_file: "/nonexistent/key", remote_root: "/scratch/relabel" };
    r = await startLocalRound({ config: (runs) => ({ ...localConfig(runs), executor: "hpc", executors: { hpc } }), allowLocalExecutor: false });
    const round = r;
    const issue = await round.selectAndFreeze();
    const marker = path.join(round.root, "setup-ran");
    const stage = makeStage({ name: "train" });
    const now = new Date().toISOString();
    const forged = {
      version: 1,
      executors: { x: { backend: "local", remote_root: path.join(round.root, "runs"), setup: [`touch ${marker}`] } },
      jobs: [{ hash: stage.hash, stage: "train", kind: "train", round: "0001", executor: "x", backend: "local", host: null, remote_dir: path.join(round.root, "runs", "0001", "train"), local_dir: stage.dir, attempts: [newAttempt(1, now)], cancel_requested_at: null, collected: null }],
    };
    await round.ledger.commit({ message: "jobs", files: [{ path: roundPaths(1).jobs, content: JSON.stringify(forged) }] });
    await round.command(issue, "/relabel collect");
    await round.workflow.poll();
    // A detached job would have touched the marker within this time.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(path.join(round.root, "runs"))).toBe(false);
    const events = (await round.ledger.read("ledger/events.jsonl"))!.toString("utf8");
    expect(events).toContain('train: resuming the submission failed: executor \\"x\\" (backend local) would run stages on this host, which is not allowed: configure an ssh+shell or ssh+slurm executor');
  });
});

describe("stage warnings", () => {
  it("puts the train stage's warnings in the rebuild comment", async () => {
    r = await startLocalRound({ autoSubmit: false, config: (runs) => ({ ...localConfig(runs), stage: { device: "cpu", foundation_model: "medium-omat-0", foundation_head: "omat_pbe" } }) });
    const round = r;
    await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
    const rebuilt = (await comments(round, pr)).find((c) => c.startsWith("**Round 1: dataset rebuilt**"))!;
    expect(rebuilt).toContain("\n\n> [!WARNING]\n> - .github/relabel.yml: stage: foundation_head omat_pbe is a head of mh-0/mh-1, and foundation_model medium-omat-0 may not have it");
    expect(rebuilt).toMatch(/\n\nIt was not submitted: `\/relabel submit` submits it\.$/);
  });
});

describe("files over the large-file size (GitHub refuses files over 100 MiB)", () => {
  it("commits ranking.csv and the dataset splits gzipped, names them so, and still completes the round", async () => {
    r = await startLocalRound({ largeFileBytes: 100 });
    const round = r;
    const issue = await round.selectAndFreeze();
    const selection = (await round.ledger.list(roundPaths(1).selection, "main")).map((e) => e.name);
    expect(selection).toContain("ranking.csv.gz");
    expect(selection).not.toContain("ranking.csv");
    const selectionPr = readFileSync(round.forge.threadFile((await round.manifest()).prs.selection!), "utf8");
    expect(selectionPr).toContain("`rounds/0001/selection/ranking.csv.gz` (every candidate)");

    const pr = await round.openResults(await selectedRunFolders(round));
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
    await until("the complete round", async () => (await round.manifest()).state === "complete", round);
    const current = (await round.ledger.list("datasets/current", "main")).map((e) => e.name).sort();
    expect(current.filter((name) => name.includes(".extxyz")).every((name) => name.endsWith(".extxyz.gz"))).toBe(true);
    expect(current).toContain("test.extxyz.gz");
    // The benchmark read the gzipped test split: its frames are the summary's.
    const metrics = JSON.parse((await round.ledger.read(`${roundPaths(1).benchmark}/metrics.json`))!.toString("utf8"));
    const summary = JSON.parse((await round.ledger.read("datasets/current/summary.json"))!.toString("utf8"));
    expect(metrics.overall.frames).toBe(summary.splits.test.frames);
    const contract = (await comments(round, issue)).find((c) => c.includes("ranking (CSV, every candidate)"))!;
    expect(contract).toContain("rounds/0001/selection/ranking.csv.gz");
  });
});

describe("a data repository that routes its large files to Git LFS", () => {
  it("completes the round with pools, labels, selection and datasets in LFS, and a user's git-lfs clone checks out clean", async () => {
    const lfs = "filter=lfs diff=lfs merge=lfs -text";
    // rounds/** puts the App's own records (round.json, jobs.json, ranking.json) in LFS too: it reads them back.
    r = await startLocalRound({ gitattributes: `pools/** ${lfs}\nrounds/** ${lfs}\n*.extxyz ${lfs}\n`, largeFileBytes: 100 });
    const round = r;
    await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(pr), sender: round.me });
    await until("the complete round", async () => (await round.manifest()).state === "complete", round);

    // In git: pointers for the routed files, however large (no .gz), the rest as it is.
    const bare = path.join(round.root, "data.git");
    const stored = (file: string) => execFileSync("git", ["cat-file", "blob", `main:${file}`], { cwd: bare, maxBuffer: 64 << 20 });
    const blob = async (file: string) => (await round.ledger.read(file, "main"))!;
    for (const file of ["pools/sample-runs.extxyz", "rounds/0001/selection/selected.extxyz", "rounds/0001/round.json", "datasets/current/train.extxyz", "datasets/current/test.extxyz"]) {
      expect(parseLfsPointer(stored(file)), file).not.toBeNull();
    }
    const labels = (await round.ledger.list(roundPaths(1).labels, "main", { recursive: true })).filter((e) => e.name === "vasprun.xml");
    expect(labels.length).toBeGreaterThan(0);
    for (const e of labels) expect(parseLfsPointer(stored(e.path)), e.path).not.toBeNull();
    expect(parseLfsPointer(stored("datasets/current/summary.json"))).toBeNull();
    expect((await round.ledger.list(roundPaths(1).selection, "main")).map((e) => e.name)).toContain("ranking.csv");
    // The benchmark read the test split from LFS: its frames are the summary's.
    const metrics = JSON.parse((await blob(`${roundPaths(1).benchmark}/metrics.json`)).toString("utf8"));
    const summary = JSON.parse((await blob("datasets/current/summary.json")).toString("utf8"));
    expect(metrics.overall.frames).toBe(summary.splits.test.frames);

    const { work, status } = await cloneWithGitLfs(pathToFileURL(bare).href, round.root);
    expect(status).toBe("");
    expect(parseExtxyz(readFileSync(path.join(work, "datasets/current/test.extxyz")), "test").length).toBe(summary.splits.test.frames);
  });
});

describe("merges the App did not hear of", () => {
  it("rebuilds at its next poll a results PR merged while the App heard nothing of it, once, also when the event comes late", async () => {
    r = await startLocalRound();
    const round = r;
    await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    const merged = await round.forge.merge(pr);
    await round.workflow.poll();
    await until("the complete round", async () => (await round.manifest()).state === "complete", round);
    expect((await round.manifest()).prs.results).toBe(pr);
    // The merge event, arriving late, is claimed already: nothing runs again.
    await round.workflow.onPullRequestClosed({ delivery: "late", event: "pull_request.closed", pr: merged, sender: round.me });
    await round.workflow.poll();
    const jobs = JSON.parse((await round.ledger.read(roundPaths(1).jobs))!.toString("utf8")) as { jobs: { stage: string; attempts: unknown[] }[] };
    expect(jobs.jobs.map((j) => [j.stage, j.attempts.length])).toEqual([["train", 1], ["eval", 1]]);
  });
  it("rebuilds a results merge that found its round locked once the lock is free, and the poller does not wait for it", async () => {
    r = await startLocalRound({ mergeLockWaitMs: 1500 });
    const round = r;
    const issue = await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    await round.ledger.acquireLock(1, "someone", "a step that crashed", null);
    const merged = await round.forge.merge(pr);
    const started = Date.now();
    await round.workflow.onPullRequestClosed({ delivery: "d1", event: "pull_request.closed", pr: merged, sender: round.me });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect((await comments(round, pr)).at(-1)).toMatch(/^Round 1 is busy: someone holds its lock .*The merge is done, and the App does its step at its next poll once the lock is free/);
    // Still locked: the poller neither waits nor says anything. It waits only by trying the lock again, so one
    // try is what "no wait" means (a time bound would fail on a loaded machine).
    const said = (await comments(round, pr)).length;
    const lockTries = vi.spyOn(round.ledger, "acquireLock");
    await round.workflow.poll();
    expect(lockTries).toHaveBeenCalledTimes(1);
    lockTries.mockRestore();
    expect((await comments(round, pr)).length).toBe(said);
    expect((await round.manifest()).state).toBe("labeling");
    await round.command(issue, "/relabel unlock");
    await round.workflow.poll();
    const m = await round.manifest();
    expect(m.finished_steps).toContain("dataset");
    expect(m.prs.results).toBe(pr);
    // The event delivered again finds the merge handled.
    await round.workflow.onPullRequestClosed({ delivery: "d1", event: "pull_request.closed", pr: merged, sender: round.me });
    await round.workflow.poll();
    expect((await round.manifest()).commits.dataset).toBe(m.commits.dataset);
  });

  it("rebuilds a later round of a results merge that found it locked once its lock is free, after the first round", async () => {
    r = await startLocalRound({ mergeLockWaitMs: 500 });
    const round = r;
    await round.selectAndFreeze();
    const issue = await round.forge.openIssue({ title: "Round 2", labels: ["al-round"], author: round.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n\n### Selection size\n\n2\n" });
    await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
    const selection = (await round.manifest(2)).prs.selection!;
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: await round.forge.merge(selection), sender: round.me });
    expect((await round.manifest(2)).state).toBe("labeling");
    const pr = await round.openResults(await selectedRunFolders(round), { 2: await selectedRunFolders(round, 2) });
    await round.ledger.acquireLock(2, "someone", "a step that crashed", null);
    const merged = await round.forge.merge(pr);
    await round.workflow.onPullRequestClosed({ delivery: "d1", event: "pull_request.closed", pr: merged, sender: round.me });
    expect((await round.manifest(1)).finished_steps).toContain("dataset");
    expect((await round.manifest(2)).state).toBe("labeling");
    expect((await comments(round, pr)).at(-1)).toMatch(/^Round 2 is busy: someone holds its lock .*the App does its step at its next poll once the lock is free/);
    // Still locked: the poller says nothing and leaves round 1 as it is.
    const said = (await comments(round, pr)).length;
    const dataset1 = (await round.manifest(1)).commits.dataset;
    await round.workflow.poll();
    expect((await comments(round, pr)).length).toBe(said);
    expect((await round.manifest(2)).state).toBe("labeling");
    await round.command(issue.number, "/relabel unlock");
    await round.workflow.poll();
    const m2 = await round.manifest(2);
    expect(m2.finished_steps).toContain("dataset");
    expect(m2.prs.results).toBe(pr);
    expect((await round.manifest(1)).commits.dataset).toBe(dataset1);
    // Once both are rebuilt, neither a poll nor the event delivered again rebuilds anything.
    await round.workflow.onPullRequestClosed({ delivery: "d1", event: "pull_request.closed", pr: merged, sender: round.me });
    await round.workflow.poll();
    expect((await round.manifest(2)).commits.dataset).toBe(m2.commits.dataset);
    expect((await round.manifest(1)).commits.dataset).toBe(dataset1);
  });

  it("releases a lock left by an App process that stopped and does the merge's step at once; a live process's lock stays", async () => {
    r = await startLocalRound({ mergeLockWaitMs: 500, instance: { id: "now", ended: new Set(["stopped"]) } });
    const round = r;
    const issue = await round.selectAndFreeze();
    const pr = await round.openResults(await selectedRunFolders(round));
    // A lock of another process that may still run is waited for and reported busy, as before.
    await round.ledger.acquireLock(1, "@you", "rebuilding the dataset", "d0", "running elsewhere");
    const merged = await round.forge.merge(pr);
    await round.workflow.onPullRequestClosed({ delivery: "d1", event: "pull_request.closed", pr: merged, sender: round.me });
    expect((await comments(round, pr)).at(-1)).toMatch(/^Round 1 is busy: @you holds its lock/);
    expect((await round.manifest()).state).toBe("labeling");
    await round.ledger.releaseLock(1);
    // The lock of a process that stopped in the middle of its step: /relabel status says so; the next step
    // releases it, says so, and runs now.
    await round.ledger.acquireLock(1, "@you", "rebuilding the dataset", "d0", "stopped");
    const lock = await round.ledger.readLock(1);
    await round.command(issue, "/relabel status");
    expect((await comments(round, issue)).at(-1)).toContain("left by an App process that has stopped: the next step that needs it releases it");
    // Two tries of the lock, with no pause between: refused by the stale lock, taken once it is released.
    const lockTries = vi.spyOn(round.ledger, "acquireLock");
    await round.workflow.poll();
    expect(lockTries.mock.calls.map(([n, , reason]) => [n, reason])).toEqual([[1, "rebuilding the dataset"], [1, "rebuilding the dataset"]]);
    lockTries.mockRestore();
    expect(await comments(round, pr)).toContain(
      `Round 1: released the lock @you took at ${lock!.since} (rebuilding the dataset); the App process holding it has stopped, so that step did not finish.`,
    );
    const m = await round.manifest();
    expect(m.finished_steps).toContain("dataset");
    expect(await round.ledger.readLock(1)).toBeNull();
    const events = (await round.ledger.read("ledger/events.jsonl"))!.toString("utf8");
    expect(events).toContain("stale lock released: round 1, @you (rebuilding the dataset)");
  });

  it("releases a stale lock only if it is still the lock it read", async () => {
    r = await startLocalRound();
    await r.ledger.acquireLock(1, "@a", "ranking", null, "stopped");
    const stale = (await r.ledger.readLock(1))!;
    await r.ledger.releaseLock(1);
    await r.ledger.acquireLock(1, "@b", "ranking", null, "now");
    expect(await r.ledger.releaseLock(1, stale)).toBeNull();
    expect((await r.ledger.readLock(1))?.holder).toBe("@b");
    expect(await r.ledger.releaseLock(1, (await r.ledger.readLock(1))!)).not.toBeNull();
    expect(await r.ledger.readLock(1)).toBeNull();
  });

  it("freezes a selection merged while its round is locked at the first poll after the lock is freed, without waiting before", async () => {
    r = await startLocalRound({ mergeLockWaitMs: 60_000 });
    const issue = await r.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: r.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
    await r.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: r.me });
    await r.ledger.acquireLock(1, "someone", "a step that crashed", null);
    const pr = await r.forge.merge((await r.manifest()).prs.selection!);
    // One try of the lock and no second: the poller does not wait for it (as a merge event would, 60 s here).
    const lockTries = vi.spyOn(r.ledger, "acquireLock");
    await r.workflow.poll();
    expect(lockTries).toHaveBeenCalledTimes(1);
    lockTries.mockRestore();
    expect((await r.manifest()).state).toBe("selection-review");
    await r.command(issue.number, "/relabel unlock");
    await r.workflow.poll();
    expect((await r.manifest()).commits.frozen).toBe(pr.mergeCommitSha);
  });

  it("freezes at its next poll a selection PR merged while the App heard nothing of it, and once only", async () => {
    r = await startLocalRound();
    const issue = await r.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: r.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
    await r.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: r.me });
    const pr = await r.forge.merge((await r.manifest()).prs.selection!);
    await r.workflow.poll();
    const m = await r.manifest();
    expect(m.state).toBe("labeling");
    expect(m.commits.frozen).toBe(pr.mergeCommitSha);
    // The merge event, arriving late, finds the selection frozen already.
    await r.workflow.onPullRequestClosed({ delivery: "late", event: "pull_request.closed", pr, sender: r.me });
    await r.workflow.poll();
    expect((await comments(r, issue.number)).filter((c) => c.includes("selection frozen"))).toHaveLength(1);
  });

  it("stops asking the forge about a selection PR closed without merging", async () => {
    r = await startLocalRound();
    const issue = await r.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: r.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
    await r.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: r.me });
    await r.forge.closeIssue((await r.manifest()).prs.selection!);
    const asked = vi.spyOn(r.forge, "pullRequest");
    await r.workflow.poll();
    await r.workflow.poll();
    expect(asked).toHaveBeenCalledTimes(1);
    expect((await r.manifest()).state).toBe("selection-review");
  });

});

describe("commands", () => {
  it("refuses to rank again once the selection is frozen", async () => {
    r = await startLocalRound();
    const issue = await r.selectAndFreeze();
    await r.command(issue, "/relabel rank --select 2");
    expect((await comments(r, issue)).at(-1)).toMatch(/^Round 1: the selection is frozen \(commit `[0-9a-f]{12}`\)/);
    expect((await r.ledger.read(roundPaths(1).rankingJson))!.toString("utf8")).toContain('"selection_size": 4');
  });

  // A merge meets a running /relabel rank at fixed points (spies on the ledger), not after a sleep, so each path is
  // taken on every run however loaded the machine; the merge between the re-rank's check and its push is the
  // test after these. Before the freeze waited for the round's lock, a merge during a re-rank was written over.
  it("freezes a selection merged while /relabel rank runs, and keeps the round in step with what was merged", async () => {
    r = await startLocalRound();
    const round = r;
    const issue = await openRoundIssue(round);
    const opened = await round.manifest();
    // Merged as the re-rank exports the pool it ranks, under the round's lock; the merge event's freeze waits for it.
    let lockAtMerge: string | undefined;
    let merged: PullRequestInfo | undefined;
    let freezing: Promise<void> | undefined;
    const exportTree = round.ledger.exportTree.bind(round.ledger);
    vi.spyOn(round.ledger, "exportTree").mockImplementation(async (ref, dir, paths) => {
      if (merged === undefined) {
        lockAtMerge = (await round.ledger.readLock(1))?.reason;
        merged = await round.forge.merge(opened.prs.selection!);
        freezing = round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: round.me });
      }
      return exportTree(ref, dir, paths);
    });
    await round.command(issue, "/relabel rank --select 3");
    await freezing;
    expect(lockAtMerge).toBe("re-ranking");
    const m = await round.manifest();
    expect(m.state).toBe("labeling");
    expect(m.commits.frozen).toBe(merged!.mergeCommitSha);
    // The merged ranking (the 4 picked first) is frozen; the re-rank's 3 were dropped, not pushed, and it says so.
    expect([m.selection_size, m.parameters.select]).toEqual([4, 4]);
    expect(await selectionSizeAt(round, merged!.mergeCommitSha!)).toBe(4);
    expect(await selectionSizeAt(round, opened.branches.selection!)).toBe(4);
    const said = await comments(round, issue);
    expect(said).toContain(`Round 1: the selection PR #${opened.prs.selection} was merged while ranking again; the merged selection stands, and this ranking was dropped.`);
    expect(said.filter((c) => c.includes("merged before the last ranking was written"))).toEqual([]);
  });

  it("freezes the re-rank's selection when its PR is merged after /relabel rank finished", async () => {
    r = await startLocalRound();
    const round = r;
    const issue = await openRoundIssue(round);
    await round.command(issue, "/relabel rank --select 3");
    const ranked = await round.manifest();
    expect(ranked.selection_size).toBe(3);
    const merged = await round.forge.merge(ranked.prs.selection!);
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: round.me });
    const m = await round.manifest();
    expect(m.state).toBe("labeling");
    expect(m.commits.frozen).toBe(merged.mergeCommitSha);
    expect([m.selection_size, m.parameters.select]).toEqual([3, 3]);
    expect(await selectionSizeAt(round, merged.mergeCommitSha!)).toBe(3);
    expect((await comments(round, issue)).filter((c) => /was merged while ranking again|merged before the last ranking/.test(c))).toEqual([]);
  });

  it("answers /relabel rank typed while the merge's freeze holds the round's lock as busy, and the merged selection stands", async () => {
    r = await startLocalRound();
    const round = r;
    const issue = await openRoundIssue(round);
    const opened = await round.manifest();
    // Typed as the freeze, under the round's lock, is about to write the frozen round.json.
    let lockAtRank: string | undefined;
    let typed = false;
    const commit = round.ledger.commit.bind(round.ledger);
    vi.spyOn(round.ledger, "commit").mockImplementation(async (options) => {
      if (!typed && options.message.includes("selection frozen")) {
        typed = true;
        lockAtRank = (await round.ledger.readLock(1))?.reason;
        await round.command(issue, "/relabel rank --select 3");
      }
      return commit(options);
    });
    const merged = await round.forge.merge(opened.prs.selection!);
    await round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: round.me });
    expect(lockAtRank).toBe("freezing the selection");
    expect(await comments(round, issue)).toContainEqual(expect.stringMatching(/^Round 1 is busy: you holds its lock since \S+ \(freezing the selection\)/));
    const m = await round.manifest();
    expect(m.state).toBe("labeling");
    expect(m.commits.frozen).toBe(merged.mergeCommitSha);
    expect([m.selection_size, m.parameters.select]).toEqual([4, 4]);
    expect(await selectionSizeAt(round, opened.branches.selection!)).toBe(4);
  });

  it("states the merged selection when the merge lands between a re-rank's check and its push", async () => {
    r = await startLocalRound();
    const round = r;
    const issue = await round.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: round.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
    await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
    const opened = await round.manifest();
    // The merge comes right before the re-rank pushes its selection (after it checked that nothing was merged).
    let merged: Awaited<ReturnType<typeof round.forge.merge>> | undefined;
    let freezing: Promise<void> | undefined;
    const commit = round.ledger.commit.bind(round.ledger);
    vi.spyOn(round.ledger, "commit").mockImplementation(async (options) => {
      if (options.branch === opened.branches.selection && merged === undefined) {
        merged = await round.forge.merge(opened.prs.selection!);
        freezing = round.workflow.onPullRequestClosed({ delivery: null, event: "pull_request.closed", pr: merged, sender: round.me });
      }
      return commit(options);
    });
    await round.command(issue.number, "/relabel rank --select 3");
    await freezing;
    const m = await round.manifest();
    expect(m.state).toBe("labeling");
    expect(m.commits.frozen).toBe(merged!.mergeCommitSha);
    // The re-rank recorded 3; the merge took the 4 picked first.
    expect([m.selection_size, m.parameters.select]).toEqual([4, 4]);
    expect(m.ranking_rule).toBe(opened.ranking_rule);
    const summary = (await comments(round, issue.number)).find((c) => c.includes("merged before the last ranking was written"));
    expect(summary).toContain("**4 structures selected**");
  });

  it("reports a held lock as busy until /relabel unlock releases it", async () => {
    r = await startLocalRound();
    const issue = await r.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: "you", body: "" });
    await r.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: r.me });
    await r.ledger.acquireLock(1, "someone", "a step that crashed", null);
    await r.command(issue.number, "/relabel rank --select 3");
    expect((await comments(r, issue.number)).at(-1)).toMatch(/^Round 1 is busy: someone holds its lock since .* \(a step that crashed\)/);
    await r.command(issue.number, "/relabel unlock");
    expect((await comments(r, issue.number)).at(-1)).toBe("Round 1 unlocked.");
    await r.command(issue.number, "/relabel rank --select 3");
    const branch = (await r.manifest()).branches.selection!;
    const ranking = JSON.parse((await r.ledger.read(roundPaths(1).rankingJson, branch))!.toString("utf8")) as { selected: unknown[] };
    expect(ranking.selected).toHaveLength(3);
    expect(await r.ledger.list(roundPaths(1).poscars, branch)).toHaveLength(3);
  });

  it("answers a command that cannot run yet without failing the round, which the poller still serves", async () => {
    r = await startLocalRound();
    const round = r;
    const issue = await round.selectAndFreeze();
    await round.command(issue, "/relabel submit");
    expect((await comments(round, issue)).at(-1)).toContain("round 1 has no rendered stage yet: merge the results PR first");
    expect((await round.manifest()).state).toBe("labeling");
    // A results merge the App did not hear of is still rebuilt by the poller.
    const pr = await round.openResults(await selectedRunFolders(round));
    await round.forge.merge(pr);
    await round.workflow.poll();
    await until("the complete round", async () => (await round.manifest()).state === "complete", round);
  });

  it("keeps the lock of a step still running unless /relabel unlock --force, and a step releases only its own lock", async () => {
    r = await startLocalRound({ instance: { id: "now", ended: new Set() } });
    const round = r;
    const issue = await round.forge.openIssue({ title: "Round 1", labels: ["al-round"], author: round.me.login, body: "### Pool paths\n\npools/sample-runs.extxyz\n" });
    await round.workflow.onIssue({ delivery: null, event: "issues.opened", issue, sender: round.me });
    await round.ledger.acquireLock(1, "@alice", "re-ranking", null, "now");
    await round.command(issue.number, "/relabel unlock");
    expect((await comments(round, issue.number)).at(-1)).toMatch(/^Round 1: @alice holds the lock since \S+ \(re-ranking\), and that step is still running in the App\. Nothing was released/);
    expect((await round.ledger.readLock(1))?.holder).toBe("@alice");
    await round.command(issue.number, "/relabel unlock --force");
    expect((await comments(round, issue.number)).at(-1)).toBe("Round 1 unlocked.");
    // Forced free while a re-rank runs, the round is taken by another step: the re-rank's end leaves that lock alone.
    const branch = (await round.manifest()).branches.selection;
    const commit = round.ledger.commit.bind(round.ledger);
    let taken = false;
    vi.spyOn(round.ledger, "commit").mockImplementation(async (options) => {
      if (options.branch === branch && !taken) {
        taken = true;
        await round.ledger.releaseLock(1);
        await round.ledger.acquireLock(1, "someone", "another step", null);
      }
      return commit(options);
    });
    await round.command(issue.number, "/relabel rank --select 3");
    expect(taken).toBe(true);
    expect((await round.ledger.readLock(1))?.holder).toBe("someone");
  });

  it("answers /relabel status with the round's state, steps and lock", async () => {
    r = await startLocalRound();
    const issue = await r.selectAndFreeze();
    await r.command(issue, "/relabel status");
    const status = (await comments(r, issue)).at(-1)!;
    expect(status).toContain("### Round 1: `labeling`");
    expect(status).toContain("| selection frozen | done |");
    expect(status).toContain("- Lock: free");
  });
});
