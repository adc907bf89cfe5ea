import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { infoNumber } from "../../src/core/structure.js";
import { readStageRef } from "../../src/exec/stage.js";
import { aseTrajectories } from "../helpers/ase-trajectories.js";
import { lammpsDumps } from "../helpers/lammps-dumps.js";
import { runCli } from "../helpers/run-cli.js";

const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/stage");
const DOUBLES = path.resolve(import.meta.dirname, "../doubles");
const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-stage-"));

beforeAll(() => {
  // Git may not keep the executable bit of the doubles.
  for (const d of ["mace_run_train", "mace_eval_configs"]) chmodSync(path.join(DOUBLES, d), 0o755);
});

/** A copy of the fixture dataset; `edit` changes its summary.json. */
function dataset(edit?: (summary: Record<string, any>) => void): string {
  const dir = path.join(tmp(), "dataset");
  cpSync(path.join(FIXTURES, "dataset"), dir, { recursive: true });
  if (edit) {
    const file = path.join(dir, "summary.json");
    const s = JSON.parse(readFileSync(file, "utf8"));
    edit(s);
    writeFileSync(file, JSON.stringify(s));
  }
  return dir;
}

function writeConfig(config: unknown, dir = tmp()): string {
  const file = path.join(dir, "stage.json");
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/** Every file under dir, relative, sorted bytewise. */
function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(dir, path.join(prefix, e.name)) : [path.join(prefix, e.name)]))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a stage's run.sh from an unrelated directory with the MACE doubles first on PATH. */
function runScript(script: string, env: Record<string, string> = {}): Run {
  const res = spawnSync("bash", [script], {
    cwd: tmpdir(),
    encoding: "utf8",
    env: { ...process.env, PATH: `${DOUBLES}:${process.env.PATH}`, MACE_DOUBLE_EXIT: "0", MACE_DOUBLE_SLEEP: "0", ...env },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe("relabel stage train: rendering", () => {
  it("renders the dataset, params.json, the golden run.sh and a manifest whose hashes sha256sum confirms", async () => {
    const out = path.join(tmp(), "stage");
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", out);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(listFiles(out)).toEqual(["data/summary.json", "data/test.extxyz", "data/train.extxyz", "data/valid.extxyz", "params.json", "run.sh", "stage.json"]);
    expect(readFileSync(path.join(out, "run.sh"), "utf8")).toBe(readFileSync(path.join(FIXTURES, "train-default.run.sh"), "utf8"));
    expect(statSync(path.join(out, "run.sh")).mode & 0o111).toBe(0o111);
    for (const f of ["train.extxyz", "valid.extxyz", "test.extxyz", "summary.json"]) {
      expect(readFileSync(path.join(out, "data", f))).toEqual(readFileSync(path.join(FIXTURES, "dataset", f)));
    }
    // The manifest against coreutils: per-file hashes, then the hash of the sorted sha256sum lines.
    const files = listFiles(out).filter((f) => f !== "stage.json");
    const lines = execFileSync("sha256sum", files, { cwd: out, encoding: "utf8" });
    const manifest = readJson(path.join(out, "stage.json"));
    for (const line of lines.trim().split("\n")) {
      const [sha, file] = line.split(/ {2}/);
      expect(manifest.files[file]).toEqual({ sha256: sha, bytes: statSync(path.join(out, file)).size });
    }
    expect(Object.keys(manifest.files)).toHaveLength(files.length);
    expect(manifest.sha256).toBe(execFileSync("sha256sum", { input: lines, encoding: "utf8" }).split(" ")[0]);
    expect(res.stdout).toContain(`rendered train stage ${out}: 6 files (`);
    expect(res.stdout).toContain(`sha256 ${manifest.sha256}`);
    expect(res.stdout).toMatch(/note: pt_train_file omat is downloaded by MACE at run time: offline clusters fail \(mace#724\)/);
  });

  it("gives the same bytes for the same inputs", async () => {
    const ds = dataset();
    const config = writeConfig({ committee: 2, E0s: { H: -13.6, O: -2041.8 } });
    const [a, b] = [path.join(tmp(), "a"), path.join(tmp(), "b")];
    expect((await runCli("stage", "train", "--dataset", ds, "-o", a, "--config", config)).code).toBe(0);
    expect((await runCli("stage", "train", "--dataset", ds, "-o", b, "--config", config)).code).toBe(0);
    expect(listFiles(a)).toEqual(listFiles(b));
    for (const f of listFiles(a)) expect(readFileSync(path.join(b, f)), f).toEqual(readFileSync(path.join(a, f)));
  });

  it("writes --round into stage.json, where relabel submit reads it; without --round stage.json has none", async () => {
    const ds = dataset();
    const [plain, third] = [path.join(tmp(), "plain"), path.join(tmp(), "third")];
    expect((await runCli("stage", "train", "--dataset", ds, "-o", plain)).code).toBe(0);
    expect((await runCli("stage", "train", "--dataset", ds, "-o", third, "--round", "3")).code).toBe(0);
    const manifest = (dir: string) => JSON.parse(readFileSync(path.join(dir, "stage.json"), "utf8")) as Record<string, unknown>;
    expect(manifest(plain)).not.toHaveProperty("round");
    expect(manifest(third).round).toBe("3");
    // The round says where the stage goes, not what it is: the same stage hash.
    expect(manifest(third).sha256).toBe(manifest(plain).sha256);
    expect((await readStageRef(third)).round).toBe("3");
  });

  it("takes a split kept gzipped (a data repository's datasets/current over 50 MiB) and writes it plain", async () => {
    const [plain, gzipped] = [dataset(), dataset()];
    const train = path.join(gzipped, "train.extxyz");
    writeFileSync(`${train}.gz`, gzipSync(readFileSync(train)));
    rmSync(train);
    const [a, b] = [path.join(tmp(), "a"), path.join(tmp(), "b")];
    expect((await runCli("stage", "train", "--dataset", plain, "-o", a)).code).toBe(0);
    const res = await runCli("stage", "train", "--dataset", gzipped, "-o", b);
    expect(res.code).toBe(0);
    expect(listFiles(b)).toEqual(listFiles(a));
    for (const f of listFiles(a)) expect(readFileSync(path.join(b, f)), f).toEqual(readFileSync(path.join(a, f)));
  });

  it("copies local assets named in the config, resolved relative to the config file", async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, "mh1-local.model"), "weights\n");
    writeFileSync(path.join(dir, "replay.xyz"), "1\n\nH 0 0 0\n");
    writeFileSync(path.join(dir, "e0s.json"), JSON.stringify({ H: -13.6, O: -2041.8, Fe: -3.2 }));
    const config = writeConfig({ foundation_model: "mh1-local.model", pt_train_file: "replay.xyz", E0s: "e0s.json" }, dir);
    const out = path.join(tmp(), "stage");
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", out, "--config", config);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(readFileSync(path.join(out, "assets/foundation/mh1-local.model"), "utf8")).toBe("weights\n");
    expect(readFileSync(path.join(out, "assets/replay/replay.xyz"), "utf8")).toBe("1\n\nH 0 0 0\n");
    expect(readJson(path.join(out, "assets/E0s.json"))).toEqual({ "1": -13.6, "8": -2041.8 });
    expect(res.stdout).toMatch(/note: E0s: left out atomic numbers 26/);
    expect(res.stdout).not.toMatch(/downloaded/);
  });

  it("refuses a missing referenced file before writing anything", async () => {
    const config = writeConfig({ pt_train_file: "replays/omat_local.xyz" });
    const parent = tmp();
    const out = path.join(parent, "stage");
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", out, "--config", config);
    expect(res.code).toBe(1);
    const missing = path.join(path.dirname(config), "replays/omat_local.xyz");
    expect(res.stderr).toBe(`error: ${config}: pt_train_file: "replays/omat_local.xyz" is neither a named MACE replay set nor an existing file (${missing})\n`);
    expect(readdirSync(parent)).toEqual([]);
  });

  it("points out a mistyped named foundation model", async () => {
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", path.join(tmp(), "s"), "--config", writeConfig({ foundation_model: "mh1" }));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/foundation_model: "mh1" is neither a named MACE model nor an existing file .*; did you mean "mh-1"\?\n$/);
  });

  it("rejects unknown config keys with a suggestion, and E0s average with multihead fine-tuning", async () => {
    const ds = dataset();
    const unknown = writeConfig({ e0s: "estimated" });
    let res = await runCli("stage", "train", "--dataset", ds, "-o", path.join(tmp(), "s"), "--config", unknown);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^error: ${unknown.replace(/[.]/g, "\\.")}: unknown key "e0s" \\(did you mean "E0s"\\?\\); valid keys: `));
    res = await runCli("stage", "train", "--dataset", ds, "-o", path.join(tmp(), "s"), "--config", writeConfig({ E0s: "average" }));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/E0s: "average" cannot be used with multiheads_finetuning \(MACE refuses it\)/);
  });

  it("warns when train.extxyz holds IsolatedAtom frames, whose energies MACE takes instead of --E0s", async () => {
    // Hand-written: one-atom IsolatedAtom frames as MACE's data loader recognises them, plus two that it does not.
    const isolated = (symbol: string, energy: number, type: string) =>
      `1\nLattice="10.0 0.0 0.0 0.0 10.0 0.0 0.0 0.0 10.0" Properties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=${energy} head=omat_pbe config_type=${type} pbc="T T T"\n${symbol} 0.0 0.0 0.0 0.0 0.0 0.0\n`;
    // Tagged IsolatedAtom but two atoms: MACE trains on it like any frame.
    const dimer = `2\nLattice="10.0 0.0 0.0 0.0 10.0 0.0 0.0 0.0 10.0" Properties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=-9.8 head=omat_pbe config_type=IsolatedAtom pbc="T T T"\nO 0.0 0.0 0.0 0.0 0.0 0.1\nO 0.0 0.0 1.2 0.0 0.0 -0.1\n`;
    const ds = dataset((s) => delete s.sha256["train.extxyz"]);
    const train = path.join(ds, "train.extxyz");
    writeFileSync(train, readFileSync(train, "utf8") + isolated("H", -1.1, "IsolatedAtom") + isolated("O", -1.9, "IsolatedAtom") + isolated("O", -1.9, "Default") + dimer);
    const out = path.join(tmp(), "stage");
    const res = await runCli("stage", "train", "--dataset", ds, "-o", out);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(`warning: ${train}: 2 IsolatedAtom frames (config_type=IsolatedAtom, one atom): MACE takes the E0s from them instead of --E0s=estimated\n`);
    expect(existsSync(path.join(out, "stage.json"))).toBe(true);
  });

  it("passes foundation_head omat_pbe only with mh-0/mh-1 by default, and warns when it is set for another model", async () => {
    const other = await runCli("stage", "train", "--dataset", dataset(), "-o", path.join(tmp(), "stage"), "--config", writeConfig({ foundation_model: "medium-omat-0" }));
    expect(other.code).toBe(0);
    expect(other.stderr).toBe("");
    const explicit = writeConfig({ foundation_model: "medium-omat-0", foundation_head: "omat_pbe" });
    const out = path.join(tmp(), "stage");
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", out, "--config", explicit);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`^warning: ${explicit.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: foundation_head omat_pbe is a head of mh-0/mh-1, and foundation_model medium-omat-0 may not have it[^\n]*\n$`));
    expect(readJson(path.join(out, "params.json")).commands[0]).toContain("--foundation_head=omat_pbe");
  });

  it("never writes into an existing non-empty directory", async () => {
    const out = tmp();
    writeFileSync(path.join(out, "keep.txt"), "x");
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", out);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${out}: already exists and is not empty: stages are never overwritten, choose a new -o\n`);
    expect(readdirSync(out)).toEqual(["keep.txt"]);
  });

  it("refuses datasets whose files disagree with summary.json", async () => {
    const stale = dataset((s) => (s.files = ["train.extxyz", "test.extxyz"]));
    let res = await runCli("stage", "train", "--dataset", stale, "-o", path.join(tmp(), "s"));
    expect(res.stderr).toBe(`error: ${path.join(stale, "valid.extxyz")}: not listed in summary.json files: a stale split from an earlier build?\n`);
    const missing = dataset();
    rmSync(path.join(missing, "test.extxyz"));
    res = await runCli("stage", "train", "--dataset", missing, "-o", path.join(tmp(), "s"));
    expect(res.stderr).toBe(`error: ${path.join(missing, "test.extxyz")}: listed in summary.json files but missing\n`);
    const edited = dataset();
    writeFileSync(path.join(edited, "train.extxyz"), readFileSync(path.join(edited, "train.extxyz"), "utf8").replace("-14.21", "-14.25"));
    const out = path.join(tmp(), "s");
    res = await runCli("stage", "train", "--dataset", edited, "-o", out);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/summary\.json: sha256\.train\.extxyz: train\.extxyz has sha256 \w+, not the \w+ recorded at build time/);
    expect(existsSync(out)).toBe(false);
    const broken = dataset((s) => delete s.fingerprint);
    res = await runCli("stage", "train", "--dataset", broken, "-o", path.join(tmp(), "s"));
    expect(res.stderr).toMatch(/summary\.json: not a dataset summary: fingerprint: /);
  });

  it("answers usage errors with exit code 2", async () => {
    const ds = dataset();
    expect((await runCli("stage", "--dataset", ds, "-o", "x")).code).toBe(2);
    expect((await runCli("stage", "deploy", "--dataset", ds, "-o", "x")).stderr).toMatch(/expected the stage kind train or eval \(got "deploy"\)/);
    expect((await runCli("stage", "train", "-o", "x")).stderr).toMatch(/--dataset DIR is required/);
    expect((await runCli("stage", "train", "--dataset", ds, "-o", "x", "--model", "m")).code).toBe(2);
    expect(await runCli("stage", "train", "--dataset", ds, "-o", "x", "--round", "a/b")).toMatchObject({ code: 2, stderr: expect.stringMatching(/^relabel stage: --round must be letters, digits, \. _ - \(got "a\/b"\)/) });
    const help = await runCli("stage", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}E0s +"estimated" +/m);
  });
});

describe("run.sh with the MACE doubles", () => {
  async function renderTrain(config: unknown = {}, ds = dataset()): Promise<string> {
    const out = path.join(tmp(), "stage");
    const res = await runCli("stage", "train", "--dataset", ds, "-o", out, "--config", writeConfig(config));
    expect(res.stderr).toBe("");
    return out;
  }

  it("records success: status.json, both logs, MACE's outputs and FINISHED, from any working directory", async () => {
    const out = await renderTrain();
    const run = runScript(path.join(out, "run.sh"));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const params = readJson(path.join(out, "params.json"));
    const status = readJson(path.join(out, "status.json"));
    expect(status).toMatchObject({ state: "succeeded", exit_code: 0, failed_command: null, commands: params.commands });
    expect(status.started).toMatch(ISO);
    expect(status.ended).toMatch(ISO);
    expect(status.ended >= status.started).toBe(true);
    const stdout = readFileSync(path.join(out, "logs/stdout.log"), "utf8");
    expect(stdout).toContain(`mace_run_train double argv: ${JSON.stringify(params.commands[0].slice(1))}`);
    expect(readFileSync(path.join(out, "logs/stderr.log"), "utf8")).toContain("WARNING: test double: training on 3 configurations");
    expect(existsSync(path.join(out, "FINISHED"))).toBe(true);
    expect(readJson(path.join(out, "relabel.model"))).toMatchObject({ name: "relabel", seed: 42 });
    const results = readFileSync(path.join(out, "results/relabel_run-42_train.txt"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(results[0]).toMatchObject({ mode: "eval", epoch: null });
    expect(readFileSync(path.join(out, "logs/relabel_run-42.log"), "utf8")).toContain("Epoch 0: head: Default");
  });

  it("keeps MACE's exit code on failure, records it and leaves no FINISHED (even after an earlier success)", async () => {
    const out = await renderTrain();
    expect(runScript(path.join(out, "run.sh")).code).toBe(0);
    const run = runScript(path.join(out, "run.sh"), { MACE_DOUBLE_EXIT: "3" });
    expect(run.code).toBe(3);
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "failed", exit_code: 3, failed_command: 0 });
    expect(existsSync(path.join(out, "FINISHED"))).toBe(false);
    const stderrLog = readFileSync(path.join(out, "logs/stderr.log"), "utf8");
    expect(stderrLog).toContain("RuntimeError: test double asked to fail with exit code 3");
    expect(stderrLog).toMatch(/== \S+ command 0 failed with exit code 3\n$/);
    // Both attempts stay in the appended logs.
    expect(readFileSync(path.join(out, "logs/stdout.log"), "utf8").match(/mace_run_train double argv/g)).toHaveLength(2);
  });

  it("passes MACE's own refusals through (an argparse error exits 2)", async () => {
    const out = await renderTrain();
    // Simulate an older MACE without a flag the stage passes: the double rejects unknown flags like argparse.
    const script = path.join(out, "run.sh");
    writeFileSync(script, readFileSync(script, "utf8").replace("  --restart_latest \\\n", "  --no_such_flag \\\n"));
    const run = runScript(script);
    expect(run.code).toBe(2);
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "failed", exit_code: 2 });
    expect(readFileSync(path.join(out, "logs/stderr.log"), "utf8")).toContain("mace_run_train: error: unrecognized arguments: --no_such_flag");
  });

  it("stops with 66 before running MACE when a stage file is missing", async () => {
    const out = await renderTrain();
    rmSync(path.join(out, "data/valid.extxyz"));
    const run = runScript(path.join(out, "run.sh"));
    expect(run.code).toBe(66);
    expect(run.stderr).toBe("run.sh: missing input data/valid.extxyz: the stage directory is incomplete\n");
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "failed", exit_code: 66, failed_command: null });
    expect(readFileSync(path.join(out, "logs/stdout.log"), "utf8")).not.toContain("double argv");
    expect(existsSync(path.join(out, "FINISHED"))).toBe(false);
  });

  it("records the exit code when the job is terminated (SIGTERM to the process group, as Slurm does)", async () => {
    const out = await renderTrain();
    const child = spawn("bash", [path.join(out, "run.sh")], {
      cwd: tmpdir(),
      detached: true,
      stdio: "ignore",
      env: { ...process.env, PATH: `${DOUBLES}:${process.env.PATH}`, MACE_DOUBLE_SLEEP: "20", MACE_DOUBLE_EXIT: "0" },
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const stdoutLog = path.join(out, "logs/stdout.log");
    for (let i = 0; i < 200 && !(existsSync(stdoutLog) && readFileSync(stdoutLog, "utf8").includes("double argv")); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(readJson(path.join(out, "status.json")).state).toBe("running");
    process.kill(-child.pid!, "SIGTERM");
    expect(await exited).toBe(143);
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "failed", exit_code: 143, failed_command: 0 });
    expect(readFileSync(path.join(out, "logs/stderr.log"), "utf8")).toContain("signal received");
    expect(existsSync(path.join(out, "FINISHED"))).toBe(false);
  });

  it("runs a committee of 3 with seeds 42, 43, 44, each member with its own records", async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, "foundation.model"), "weights\n");
    const out = await renderTrain({ committee: 3, foundation_model: path.join(dir, "foundation.model"), E0s: { H: -13.6, O: -2041.8 } });
    expect(readdirSync(out).sort()).toEqual(["assets", "data", "member-0", "member-1", "member-2", "run.sh", "stage.json"]);
    const run = runScript(path.join(out, "run.sh"));
    expect(run.code).toBe(0);
    const seeds = [0, 1, 2].map((k) => readJson(path.join(out, `member-${k}/relabel.model`)).seed);
    expect(seeds).toEqual([42, 43, 44]);
    for (const k of [0, 1, 2]) {
      expect(existsSync(path.join(out, `member-${k}/FINISHED`))).toBe(true);
      expect(readJson(path.join(out, `member-${k}/status.json`)).commands[0]).toEqual(
        expect.arrayContaining(["--foundation_model=../assets/foundation/foundation.model", "--E0s=../assets/E0s.json"]),
      );
    }
    // The committee as a whole carries the same markers as a single run.
    expect(existsSync(path.join(out, "FINISHED"))).toBe(true);
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "succeeded", exit_code: 0, failed_command: null });
    expect(runScript(path.join(out, "run.sh"), { MACE_DOUBLE_EXIT: "5" }).code).toBe(5);
    expect(existsSync(path.join(out, "FINISHED"))).toBe(false);
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "failed", exit_code: 5, failed_command: 0 });
  });
});

/** A committee of 2 trained by the mace_run_train double: its members' model files. */
async function trainedCommittee(): Promise<string[]> {
  const trainDir = path.join(tmp(), "train");
  expect((await runCli("stage", "train", "--dataset", dataset(), "-o", trainDir, "--config", writeConfig({ committee: 2 }))).code).toBe(0);
  expect(runScript(path.join(trainDir, "run.sh")).code).toBe(0);
  return [0, 1].map((k) => path.join(trainDir, `member-${k}/relabel.model`));
}

describe("relabel stage eval with the MACE doubles", () => {
  it("predicts the test split with the trained model and the pool with every committee member", async () => {
    const models = await trainedCommittee();

    const poolDir = tmp();
    const frame = (e: number) => `2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 cand=${e} pbc="T T T"\nH 0 0 0\nH 0 0 0.74`;
    writeFileSync(path.join(poolDir, "a.extxyz"), `${frame(1)}\n${frame(2)}`); // no final newline
    writeFileSync(path.join(poolDir, "b.extxyz.gz"), gzipSync(`${frame(3)}\n`));
    const config = writeConfig({ device: "cpu", eval: { pool: ["a.extxyz", "b.extxyz.gz"], committee_models: models } }, poolDir);

    const out = path.join(tmp(), "eval");
    const res = await runCli("stage", "eval", "--dataset", dataset(), "-o", out, "--config", config, "--model", models[0]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(listFiles(out)).toEqual([
      "data/summary.json", "data/test.extxyz", "models/member-0.model", "models/member-1.model", "models/test.model",
      "params.json", "pool/pool.extxyz", "run.sh", "stage.json",
    ]);
    const run = runScript(path.join(out, "run.sh"));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(existsSync(path.join(out, "FINISHED"))).toBe(true);
    const status = readJson(path.join(out, "status.json"));
    expect(status.commands).toHaveLength(3);
    expect(status.commands[0]).toEqual(expect.arrayContaining(["--head=Default", "--compute_stress", "--info_prefix=MACE_", "--device=cpu"]));

    const test = parseExtxyz(readFileSync(path.join(out, "predictions/test.extxyz")), "test").map((f) => f.frame);
    expect(test).toHaveLength(1);
    expect(infoNumber(test[0], "REF_energy")).toBe(-14.18);
    expect(infoNumber(test[0], "MACE_energy")).toBeCloseTo(-3 * 1.042, 8);
    expect(test[0].arrays.get("MACE_forces")?.ncols).toBe(3);
    const pools = [0, 1].map((k) => parseExtxyz(readFileSync(path.join(out, `predictions/pool.member-${k}.extxyz`)), "pool").map((f) => f.frame));
    expect(pools.map((p) => p.map((f) => infoNumber(f, "cand")))).toEqual([[1, 2, 3], [1, 2, 3]]);
    expect(pools.map((p) => infoNumber(p[0], "MACE_energy"))).toEqual([-2 * 1.042, -2 * 1.043]);
  });

  it("with eval.descriptors, writes the features relabel rank --features ranks in, seeded by the dataset", async () => {
    const models = await trainedCommittee();
    const poolDir = tmp();
    // H2 molecules at the centre of a box, moved along x: the double's descriptor is the mean position.
    const frame = (x: number) => `2\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3 pbc="T T T"\nH ${x} 4 4\nH ${x} 4 4.74`;
    writeFileSync(path.join(poolDir, "pool.extxyz"), `${[4.5, 2, 1, 6, 4].map(frame).join("\n")}\n`);
    const config = writeConfig({ device: "cpu", eval: { pool: ["pool.extxyz"], committee_models: models, descriptors: true } }, poolDir);
    const out = path.join(tmp(), "eval");
    const data = dataset();
    expect((await runCli("stage", "eval", "--dataset", data, "-o", out, "--config", config, "--model", models[0])).code).toBe(0);
    const run = runScript(path.join(out, "run.sh"));
    expect([run.code, run.stderr]).toEqual([0, ""]);
    const predictions = (name: string) => path.join(out, "predictions", name);
    // The benchmark reads the test predictions as before, descriptors and all.
    const bench = await runCli("bench", "--pred", predictions("test.extxyz"), "--ref", path.join(data, "test.extxyz"), "-o", path.join(tmp(), "bench"));
    expect([bench.code, bench.stderr]).toEqual([0, ""]);
    const ranked = path.join(tmp(), "ranked");
    const res = await runCli(
      "rank", "--pool", path.join(poolDir, "pool.extxyz"), "--labeled", data, "--select", "2", "--scaling", "none",
      "--committee", predictions("pool.member-0.extxyz"), predictions("pool.member-1.extxyz"), "--weights", "div=1,dis=0",
      "--features", ...["pool.member-0.extxyz", "train.extxyz", "valid.extxyz", "test.extxyz"].map(predictions), "-o", ranked,
    );
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(ranked, "ranking.json"), "utf8"));
    expect(ranking.rule).toContain("in the space of MACE_descriptors (one mean vector per structure); seeded by 5 labelled structures");
    // The dataset's water molecules sit near x = 4: the farthest H2 is at x = 1, then x = 6.
    expect(ranking.selected.map((p: { frame: number }) => p.frame)).toEqual([2, 3]);
  });

  it("keeps the failing evaluation's exit code", async () => {
    const trainDir = path.join(tmp(), "train");
    await runCli("stage", "train", "--dataset", dataset(), "-o", trainDir);
    runScript(path.join(trainDir, "run.sh"));
    const out = path.join(tmp(), "eval");
    expect((await runCli("stage", "eval", "--dataset", dataset(), "-o", out, "--model", path.join(trainDir, "relabel.model"))).code).toBe(0);
    const run = runScript(path.join(out, "run.sh"), { MACE_DOUBLE_EXIT: "4" });
    expect(run.code).toBe(4);
    expect(readJson(path.join(out, "status.json"))).toMatchObject({ state: "failed", exit_code: 4, failed_command: 0 });
    expect(existsSync(path.join(out, "FINISHED"))).toBe(false);
  });

  it("writes an ASE trajectory in the candidate pool as extxyz, every digit kept", async () => {
    const dir = tmp();
    const ase = aseTrajectories();
    writeFileSync(path.join(dir, "m.model"), "{}\n");
    cpSync(path.join(ase.dir, "md.traj"), path.join(dir, "md.traj"));
    cpSync(path.join(ase.dir, "grid.extxyz"), path.join(dir, "grid.extxyz"));
    const config = writeConfig({ eval: { model: "m.model", pool: ["md.traj", "grid.extxyz"] } }, dir);
    const out = path.join(tmp(), "e");
    const res = await runCli("stage", "eval", "--dataset", dataset(), "-o", out, "--config", config);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const pool = parseExtxyz(readFileSync(path.join(out, "pool/pool.extxyz")), "pool").map((f) => f.frame);
    expect(pool).toHaveLength(60 + 12);
    pool.slice(0, 60).forEach((frame, i) => expect(Array.from(frame.positions)).toEqual(ase.frames["md.traj"][i].positions.flat()));
    expect(pool.slice(60).map((f) => Array.from(f.positions))).toEqual(ase.frames["grid.traj"].map((f) => f.positions.flat()));
  });

  it("writes LAMMPS dumps in the candidate pool as extxyz with the species of eval.type_map, and names a dump without one", async () => {
    const dir = tmp();
    const dumps = lammpsDumps();
    writeFileSync(path.join(dir, "m.model"), "{}\n");
    cpSync(path.join(dumps.dir, "unscaled.lammpstrj"), path.join(dir, "md.lammpstrj"));
    const config = writeConfig({ eval: { model: "m.model", pool: ["md.lammpstrj"], type_map: ["Hf", "O"] } }, dir);
    const out = path.join(tmp(), "e");
    const res = await runCli("stage", "eval", "--dataset", dataset(), "-o", out, "--config", config);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const pool = parseExtxyz(readFileSync(path.join(out, "pool/pool.extxyz")), "pool").map((f) => f.frame);
    expect(pool.map((f) => f.symbols)).toEqual(dumps.ase["unscaled.lammpstrj"].map((f) => f.symbols));
    expect(pool.map((f) => Array.from(f.positions))).toEqual(dumps.ase["unscaled.lammpstrj"].map((f) => f.positions.flat()));

    const untyped = writeConfig({ eval: { model: "m.model", pool: ["md.lammpstrj"] } }, dir);
    const refused = await runCli("stage", "eval", "--dataset", dataset(), "-o", path.join(tmp(), "u"), "--config", untyped);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`error: ${path.join(dir, "md.lammpstrj")}:9: atom types but no element column: the element of each type is needed, type 1 first (relabel rank --type-map Hf,O; type_map: [Hf, O] in the App's selection config or a stage's eval config)\n`);
  });

  it("refuses a candidate pool without data and leaves nothing behind", async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, "m.model"), "{}\n");
    writeFileSync(path.join(dir, "empty.extxyz.gz"), gzipSync(""));
    const config = writeConfig({ eval: { model: "m.model", pool: ["empty.extxyz.gz"] } }, dir);
    const parent = tmp();
    const res = await runCli("stage", "eval", "--dataset", dataset(), "-o", path.join(parent, "e"), "--config", config);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${config}: eval.pool: the candidate pool files hold no data\n`);
    expect(readdirSync(parent)).toEqual([]);
  });

  it("refuses an eval stage without a model or with a missing one", async () => {
    let res = await runCli("stage", "eval", "--dataset", dataset(), "-o", path.join(tmp(), "e"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe("error: defaults: eval.model: the eval stage needs the trained model: set eval.model or pass --model FILE\n");
    const gone = path.join(tmp(), "gone.model");
    res = await runCli("stage", "eval", "--dataset", dataset(), "-o", path.join(tmp(), "e"), "--model", gone);
    expect(res.stderr).toBe(`error: defaults: eval.model: "${gone}" is not an existing file (${gone})\n`);
  });
});

describe("relabel stage with a data repo's .github/relabel.yml", () => {
  it("uses its stage: section, with paths relative to the repository root", async () => {
    const repo = tmp();
    mkdirSync(path.join(repo, ".github"));
    mkdirSync(path.join(repo, "models"));
    writeFileSync(path.join(repo, "models", "start.model"), "weights\n");
    writeFileSync(path.join(repo, ".github", "relabel.yml"), "stage:\n  foundation_model: models/start.model\n  max_num_epochs: 5\n");
    const out = path.join(tmp(), "stage");
    const res = await runCli("stage", "train", "--dataset", dataset(), "-o", out, "--config", path.join(repo, ".github", "relabel.yml"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const command = readJson(path.join(out, "params.json")).commands[0] as string[];
    expect(command).toContain("--max_num_epochs=5");
    expect(command).toContain("--foundation_model=assets/foundation/start.model");
    expect(readFileSync(path.join(out, "assets", "foundation", "start.model"), "utf8")).toBe("weights\n");
  });
});
