import { describe, expect, it } from "vitest";
import { APP_SECRET_VARIABLES, childEnv, isAppSecretVariable } from "../../src/core/app-secrets.js";

describe("childEnv", () => {
  it("drops the GitHub App's credentials, whatever their case, and keeps everything else", () => {
    const env = { PATH: "/usr/bin", HOME: "/home/bot", PRIVATE_KEY: "pem", private_key_path: "/keys/app.pem", WEBHOOK_SECRET: "hook", GITHUB_CLIENT_SECRET: "oauth", RELABEL_SSH_KEY: "ssh", UNSET: undefined };
    expect(childEnv(env)).toEqual({ PATH: "/usr/bin", HOME: "/home/bot", RELABEL_SSH_KEY: "ssh" });
  });

  it("names the private key, its path and the webhook and OAuth secrets", () => {
    expect([...APP_SECRET_VARIABLES].sort()).toEqual(["GITHUB_CLIENT_SECRET", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET"]);
    expect(isAppSecretVariable("Webhook_Secret")).toBe(true);
    expect(isAppSecretVariable("RELABEL_SSH_KEY")).toBe(false);
  });
});
