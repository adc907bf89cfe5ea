/**
 * What a stage on this host (the local transport) can see: never the GitHub App's credentials, even while they are
 * in the App's own environment. A real bash and a real local-executor stage print their environment.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lastAttempt } from "../../src/core/exec/ledger.js";
import { readStageRef } from "../../src/exec/stage.js";
import { JobTracker } from "../../src/exec/tracker.js";
import { runBash } from "../../src/exec/transport.js";
import { makeStage } from "../doubles/stage.js";
import { pollUntil } from "../helpers/poll-jobs.js";

const SECRETS = { PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----pem-material", PRIVATE_KEY_PATH: "/keys/app-key.pem", WEBHOOK_SECRET: "hook-secret-value", GITHUB_CLIENT_SECRET: "oauth-secret-value" };
const PROBE = { RELABEL_ENV_PROBE: "probe-is-visible" };

function expectNoSecrets(text: string): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(text).not.toContain(`${name}=`);
    expect(text).not.toContain(value);
  }
}

beforeEach(() => Object.assign(process.env, SECRETS, PROBE));
afterEach(() => {
  for (const name of [...Object.keys(SECRETS), ...Object.keys(PROBE)]) delete process.env[name];
});

describe("the local transport's environment", () => {
  it("runs bash without the App's credentials", async () => {
    const result = await runBash("env");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("RELABEL_ENV_PROBE=probe-is-visible");
    expectNoSecrets(result.stdout);
  });

  it("runs a local-executor stage whose setup prints its environment without them", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-env-"));
    const dump = path.join(dir, "env.txt");
    const tracker = new JobTracker(path.join(dir, "jobs.json"));
    try {
      const stage = await readStageRef(makeStage({ name: "prints-env" }).dir);
      const config = { backend: "local" as const, remote_root: path.join(dir, "runs"), setup: [`env > ${dump}`, "env >&2", "false"], resources: {}, overrides: {}, resubmit: false, poll_interval: 1 };
      await tracker.submit(stage, { executor: "here", config, round: "1" });
      const attempt = lastAttempt(await pollUntil(tracker, stage.hash));
      expect(attempt.outcome).toBe("failed");
      const printed = readFileSync(dump, "utf8");
      expect(printed).toContain("RELABEL_ENV_PROBE=probe-is-visible");
      expectNoSecrets(printed);
      expectNoSecrets(JSON.stringify(attempt.failure));
    } finally {
      await tracker.close();
    }
  });
});

describe("the local transport's output", () => {
  it("hands back the script's own stderr, without the framing line", async () => {
    const result = await runBash("echo 'sbatch: error: invalid partition specified: x' >&2; exit 1");
    expect(result).toEqual({ code: 1, stdout: "", stderr: "sbatch: error: invalid partition specified: x\n" });
  });
});
