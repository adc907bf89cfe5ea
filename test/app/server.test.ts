/**
 * `npm start`'s environment check: what is required, the refused "development" secret, keys given in one line,
 * and that no message ever repeats a secret.
 */
import { describe, expect, it } from "vitest";
import { readServerEnv } from "../../src/app/server.js";
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
