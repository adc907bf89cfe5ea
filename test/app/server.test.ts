/**
 * `npm start`'s environment check: what is required, the refused "development" secret, keys given in one line,
 * that no message ever repeats a secret, and that the App's credentials leave the environment once read.
 */
import path from "node:path";
import nock from "nock";
import { describe, expect, it } from "vitest";
import * as appModule from "../../src/app/index.js";
import { createProbot, readServerEnv, SECONDARY_LIMIT_RETRIES, takeServerEnv } from "../../src/app/server.js";
import { appKeys } from "../helpers/app-harness.js";

const base = () => ({ APP_ID: "123", PRIVATE_KEY: appKeys().privateKey, WEBHOOK_SECRET: "s3cr3t-value" });

describe("readServerEnv", () => {
  it("accepts a complete environment with the defaults for the rest", () => {
    const checked = readServerEnv(base());
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(checked.env).toMatchObject({ appId: 123, secret: "s3cr3t-value", port: 3000, host: "0.0.0.0", webhooksPath: "/api/github/webhooks", baseUrl: undefined, logLevel: "info" });
    expect(checked.env.privateKey).toBe(appKeys().privateKey.trim());
  });

  it("lists every missing variable", () => {
    const checked = readServerEnv({});
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems).toEqual([
      "APP_ID is not set (the App ID from the GitHub App's settings page)",
      "PRIVATE_KEY or PRIVATE_KEY_PATH must be set (the App's private key, PEM)",
      "WEBHOOK_SECRET is not set (the webhook secret from the GitHub App's settings page)",
    ]);
  });

  it('refuses Probot\'s default secret "development"', () => {
    const checked = readServerEnv({ ...base(), WEBHOOK_SECRET: "development" });
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.problems).toEqual(['WEBHOOK_SECRET is "development", Probot\'s default: set the secret configured in the GitHub App']);
  });

  it("reads PRIVATE_KEY_PATH, and keys pasted with \\n escapes or as base64", () => {
    const pem = appKeys().privateKey.trim();
    const fromPath = readServerEnv({ APP_ID: "1", WEBHOOK_SECRET: "x1", PRIVATE_KEY_PATH: "/keys/app.pem" }, (file) => (file === "/keys/app.pem" ? `${pem}\n` : ""));
    const escaped = readServerEnv({ ...base(), PRIVATE_KEY: pem.replace(/\n/g, "\\n") });
    const encoded = readServerEnv({ ...base(), PRIVATE_KEY: Buffer.from(pem).toString("base64") });
    for (const checked of [fromPath, escaped, encoded]) {
      expect(checked.ok).toBe(true);
      if (checked.ok) expect(checked.env.privateKey).toBe(pem);
    }
  });

  it("never repeats a secret or a key in its messages", () => {
    const secret = "not-a-pem-but-secret-material";
    const checked = readServerEnv({ APP_ID: "abc", PRIVATE_KEY: secret, WEBHOOK_SECRET: "development", PORT: "99999" });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems).toHaveLength(4);
    for (const p of checked.problems) expect(p).not.toContain(secret);
  });

  it("points the API at GitHub Enterprise Server when GHE_HOST is set", () => {
    const checked = readServerEnv({ ...base(), GHE_HOST: "github.example.com" });
    expect(checked.ok && checked.env.baseUrl).toBe("https://github.example.com/api/v3");
  });
});

describe("takeServerEnv", () => {
  it("removes the App's credentials from the environment it read, and keeps the rest", () => {
    const pem = appKeys().privateKey.trim();
    const env: NodeJS.ProcessEnv = { APP_ID: "1", WEBHOOK_SECRET: "s3cr3t-value", PRIVATE_KEY_PATH: "/keys/app.pem", GITHUB_CLIENT_SECRET: "oauth", PATH: "/usr/bin", RELABEL_STATE_DIR: "/srv/relabel" };
    const taken = takeServerEnv(env, () => pem);
    expect(taken.ok).toBe(true);
    if (!taken.ok) return;
    expect(taken.env).toMatchObject({ appId: 1, secret: "s3cr3t-value", privateKey: pem });
    expect(taken.settings).toMatchObject({ stateDir: "/srv/relabel", appKeyFile: "/keys/app.pem", allowLocalExecutor: false });
    expect(env).toEqual({ APP_ID: "1", PATH: "/usr/bin", RELABEL_STATE_DIR: "/srv/relabel" });
    const inline: NodeJS.ProcessEnv = { ...base() };
    expect(takeServerEnv(inline).ok).toBe(true);
    expect(inline).toEqual({ APP_ID: "123" });
  });

  it("lets stages run on this host only when the operator sets RELABEL_ALLOW_LOCAL_EXECUTOR=1", () => {
    for (const [value, allowed] of [["1", true], ["true", true], ["0", false], ["", false]] as const) {
      const taken = takeServerEnv({ ...base(), RELABEL_ALLOW_LOCAL_EXECUTOR: value });
      expect(taken.ok && taken.settings.allowLocalExecutor, value).toBe(allowed);
    }
    const odd = takeServerEnv({ ...base(), RELABEL_ALLOW_LOCAL_EXECUTOR: "yes please" });
    expect(odd).toEqual({ ok: false, problems: ["RELABEL_ALLOW_LOCAL_EXECUTOR must be 1 (repositories may run stages on this host) or 0 (the default)"] });
  });

  it("resolves the App's key file, so that an executor cannot name it by a relative path", () => {
    const taken = takeServerEnv({ ...base(), PRIVATE_KEY: undefined, PRIVATE_KEY_PATH: "keys/app.pem" }, () => appKeys().privateKey);
    expect(taken.ok && taken.settings.appKeyFile).toBe(path.resolve("keys/app.pem"));
    // Likewise the folder of SSH keys offered to repositories.
    const offered = takeServerEnv({ ...base(), RELABEL_SSH_KEY_DIR: "keys/ssh" });
    expect(offered.ok && offered.settings.sshKeyDir).toBe(path.resolve("keys/ssh"));
  });
});

describe("entry points", () => {
  it("has none that would skip the checks: no default export for `probot run` (it would sign with \"development\")", () => {
    expect(Object.keys(appModule)).not.toContain("default");
  });
});

describe("the App's Octokit", () => {
  // As GitHub answers a burst of writes: 403 naming the secondary rate limit, with the seconds to wait.
  const SECONDARY = { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", documentation_url: "https://docs.github.com/rest" };

  async function installationOctokit(refusals: number) {
    nock.disableNetConnect();
    const checked = readServerEnv({ ...base(), GHE_HOST: "ghe.example", LOG_LEVEL: "fatal" });
    if (!checked.ok) throw new Error(checked.problems.join("; "));
    const api = nock("https://ghe.example/api/v3")
      .post("/app/installations/7/access_tokens")
      .reply(201, { token: "ghs_test", expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} })
      .get("/repos/lab/data")
      .times(refusals)
      .reply(403, SECONDARY, { "retry-after": "1", "x-ratelimit-remaining": "4000" })
      .get("/repos/lab/data")
      .reply(200, { name: "data", default_branch: "main" });
    return { octokit: await createProbot(checked.env).auth(7), api };
  }

  it("waits out a secondary rate limit and tries again, instead of failing the step", async () => {
    try {
      const { octokit, api } = await installationOctokit(1);
      const { data } = await octokit.rest.repos.get({ owner: "lab", repo: "data" });
      expect(data.default_branch).toBe("main");
      expect(api.isDone()).toBe(true);
    } finally {
      nock.cleanAll();
      nock.enableNetConnect();
    }
  });

  it("gives up after a bounded number of tries", async () => {
    try {
      const { octokit } = await installationOctokit(SECONDARY_LIMIT_RETRIES + 1);
      await expect(octokit.rest.repos.get({ owner: "lab", repo: "data" })).rejects.toMatchObject({ status: 403 });
    } finally {
      nock.cleanAll();
      nock.enableNetConnect();
    }
  }, 15_000);
});
