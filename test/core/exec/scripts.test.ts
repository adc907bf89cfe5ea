/** The generated bash scripts, run with the real bash of this host. */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  TAIL_BYTES,
  afterSentinel,
  collectRole,
  expandRootScript,
  inspectScript,
  parseFileList,
  parseInspectOutput,
  parseSha256sum,
  parseSubmitOutput,
  prepareUploadScript,
  listFilesScript,
  remoteRootProblem,
  stderrAfterSentinel,
  shq,
  submitScript,
  withSentinel,
} from "../../../src/core/exec/scripts.js";

function bash(script: string, env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync("bash", ["-s"], { input: script, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    return { code: 0, stdout: String(stdout), stderr: "" };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: e.status, stdout: String(e.stdout), stderr: String(e.stderr) };
  }
}

const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-scripts-"));

describe("shell quoting and output framing", () => {
  it("quotes anything so bash reads it back unchanged", () => {
    for (const text of ["plain", "it's", "a b\tc", "$HOME `id` $(id) \\ \" !", "line\nbreak", ""]) {
      expect(bash(`printf '%s' ${shq(text)}`).stdout).toBe(text);
    }
  });

  it("cuts off whatever a login environment prints before the script's output", () => {
    const stdout = bash(`echo "Welcome to the cluster"\n${withSentinel("echo ours")}`).stdout;
    expect(afterSentinel(stdout)).toBe("ours\n");
    expect(afterSentinel("no sentinel at all\n")).toBe("");
  });

  it("cuts off what a login environment prints on stderr, but keeps a login shell's own failure", () => {
    const run = bash(`echo "Lmod: 3 modules loaded" >&2\n${withSentinel("echo 'sbatch: error: x' >&2; exit 1")}`);
    expect(stderrAfterSentinel(run.stderr)).toBe("sbatch: error: x\n");
    expect(stderrAfterSentinel("tcsh: bash: Command not found.\n")).toBe("tcsh: bash: Command not found.\n");
  });

  it("expands ~ and $VARS in the remote root", () => {
    expect(bash(expandRootScript("~/runs"), { HOME: "/home/alice" }).stdout).toBe("/home/alice/runs\n");
    expect(bash(expandRootScript("${SCRATCH}/relabel"), { SCRATCH: "/scratch/alice" }).stdout).toBe("/scratch/alice/relabel\n");
  });

  it("refuses an expanded remote root that #SBATCH lines cannot hold", () => {
    const home = bash(expandRootScript("~/runs"), { HOME: "/home/Alice Smith" }).stdout.replace(/\n$/, "");
    expect(remoteRootProblem(home, true)).toBe("contains whitespace, which #SBATCH lines cannot hold");
    expect(remoteRootProblem(home, false)).toBeNull();
    expect(remoteRootProblem("/scratch/100%/relabel", true)).toBe("contains %, which #SBATCH lines cannot hold");
    expect(remoteRootProblem("/scratch/alice/relabel", true)).toBeNull();
    expect(remoteRootProblem("relabel", false)).toBe("not an absolute path");
  });
});

describe("prepareUploadScript", () => {
  it("creates the tree and reports the sha256 of files already present, and only those", () => {
    const dir = path.join(tmp(), "stage");
    mkdirSync(path.join(dir, "data"), { recursive: true });
    writeFileSync(path.join(dir, "data", "a b.txt"), "hello\n");
    const result = bash(prepareUploadScript(dir, ["data", "bin"], ["data/a b.txt", "run.sh"]));
    expect(result.code).toBe(0);
    // sha256 of "hello\n", as `echo hello | sha256sum` prints it.
    expect([...parseSha256sum(result.stdout)]).toEqual([["data/a b.txt", "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"]]);
    for (const d of [".relabel", "logs", "bin"]) expect(existsSync(path.join(dir, d))).toBe(true);
  });

  it("parses GNU sha256sum's escaped names and binary markers", () => {
    const h = "a".repeat(64);
    expect([...parseSha256sum(`\\${h}  we\\\\ird\\nname\n${h} *./bin.dat\nnot a line\n`)]).toEqual([
      ["we\\ird\nname", h],
      ["bin.dat", h],
    ]);
  });
});

describe("submitScript", () => {
  it("launches once and then only reports the recorded job id", () => {
    const dir = tmp();
    mkdirSync(path.join(dir, ".relabel"));
    const first = bash(submitScript(dir, 1, "echo '41;cluster'"));
    expect(parseSubmitOutput(first.stdout)).toEqual({ jobId: "41", adopted: false });
    const again = bash(submitScript(dir, 1, "echo 99"));
    expect(parseSubmitOutput(again.stdout)).toEqual({ jobId: "41", adopted: true });
    expect(parseSubmitOutput(bash(submitScript(dir, 2, "echo 99")).stdout)).toEqual({ jobId: "99", adopted: false });
  });

  it("records nothing when the launch fails, and looks up without launching in adopt-only mode", () => {
    const dir = tmp();
    mkdirSync(path.join(dir, ".relabel"));
    const failed = bash(submitScript(dir, 1, "echo 'sbatch: error: invalid partition specified: x' >&2; exit 1"));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("invalid partition specified");
    expect(existsSync(path.join(dir, ".relabel", "attempt-1.jobid"))).toBe(false);
    const lookup = bash(submitScript(dir, 1, "echo 5", true));
    expect(lookup.stdout.trim()).toBe("none");
    expect(existsSync(path.join(dir, ".relabel", "attempt-1.jobid"))).toBe(false);
  });
});

describe("submitScript and chatty launchers", () => {
  it("finds the job id among other lines a site's sbatch wrapper prints", () => {
    const dir = tmp();
    mkdirSync(path.join(dir, ".relabel"));
    const result = bash(submitScript(dir, 1, "echo 'Your job goes to partition gpu'; echo '4242;cluster2'; echo 'Remaining budget: 12 h'"));
    expect(parseSubmitOutput(result.stdout)).toEqual({ jobId: "4242", adopted: false });
  });

  it("records nothing when the launcher prints no job id, and says what it printed", () => {
    const dir = tmp();
    mkdirSync(path.join(dir, ".relabel"));
    const result = bash(submitScript(dir, 1, "echo 'Submitted batch job soon'"));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("the scheduler printed no job id: Submitted batch job soon\n");
    expect(existsSync(path.join(dir, ".relabel", "attempt-1.jobid"))).toBe(false);
  });
});

describe("inspectScript", () => {
  it("reports FINISHED, status.json and the last bytes of the logs of each stage", () => {
    const done = tmp();
    const failed = tmp();
    mkdirSync(path.join(done, "logs"));
    mkdirSync(path.join(failed, "logs"));
    writeFileSync(path.join(done, "FINISHED"), "");
    writeFileSync(path.join(done, "status.json"), '{"exit_code": 0}\n');
    const stderr = `${"x".repeat(5000)}\nRuntimeError: the end | with a pipe\n`;
    writeFileSync(path.join(failed, "logs", "stderr.log"), stderr);
    writeFileSync(path.join(failed, "logs", "slurm-9.out"), "module: not found\n");
    const rows = parseInspectOutput(
      bash(inspectScript([{ dir: done, outputFile: "logs/slurm-8.out" }, { dir: failed, outputFile: "logs/slurm-9.out" }])).stdout,
      2,
    );
    expect(rows[0]).toEqual({ finished: true, statusText: '{"exit_code": 0}\n', stderrTail: "", outputTail: "" });
    expect(rows[1]).toEqual({ finished: false, statusText: "", stderrTail: stderr.slice(-TAIL_BYTES), outputTail: "module: not found\n" });
  });
});

describe("collection", () => {
  it("lists files with sizes, leaving out .relabel/ and partial uploads", () => {
    const dir = tmp();
    mkdirSync(path.join(dir, ".relabel"));
    mkdirSync(path.join(dir, "results"));
    writeFileSync(path.join(dir, ".relabel", "job-1.sh"), "x");
    writeFileSync(path.join(dir, "results", "m_run-1_train.txt"), "12345");
    writeFileSync(path.join(dir, "big.part"), "x");
    expect(parseFileList(bash(listFilesScript(dir)).stdout)).toEqual([{ path: "results/m_run-1_train.txt", bytes: 5 }]);
  });

  it("downloads what the benchmark needs and only records models", () => {
    const roles = Object.fromEntries(
      [
        "predictions/test.extxyz",
        "predictions/sub/x.extxyz",
        "results/model_run-42_train.txt",
        "results/model_run-42.txt",
        "logs/model_run-42.log",
        "status.json",
        "stage.json",
        "metrics.json",
        "metrics/per_element.json",
        "model.model",
        "model_stagetwo.model",
        "member-1/model.model",
        "models/test.model",
        "assets/foundation/mace-mh-1.model",
        "checkpoints/model_run-42_epoch-3.pt",
        "data/train.extxyz",
        "run.sh",
      ].map((p) => [p, collectRole(p)]),
    );
    expect(roles).toEqual({
      "predictions/test.extxyz": "download",
      "predictions/sub/x.extxyz": "download",
      "results/model_run-42_train.txt": "download",
      "results/model_run-42.txt": null,
      "logs/model_run-42.log": "download",
      "status.json": "download",
      "stage.json": "download",
      "metrics.json": "download",
      "metrics/per_element.json": "download",
      "model.model": "model",
      "model_stagetwo.model": "model",
      "member-1/model.model": "model",
      "models/test.model": null,
      "assets/foundation/mace-mh-1.model": null,
      "checkpoints/model_run-42_epoch-3.pt": null,
      "data/train.extxyz": null,
      "run.sh": null,
    });
  });
});
