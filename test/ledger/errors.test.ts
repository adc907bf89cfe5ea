import { describe, expect, it } from "vitest";
import { scrubSecrets } from "../../src/ledger/errors.js";

describe("scrubSecrets", () => {
  it("removes known secret values wherever they appear", () => {
    expect(scrubSecrets("fatal: ghs_abc123 at /x/ghs_abc123.git", ["ghs_abc123"])).toBe("fatal: *** at /x/***.git");
  });

  it("removes userinfo from URLs, x-access-token pairs and Authorization values without knowing the secret", () => {
    expect(scrubSecrets("fatal: unable to access 'https://x-access-token:ghs_zz@github.com/o/r.git/'")).toBe(
      "fatal: unable to access 'https://***@github.com/o/r.git/'",
    );
    expect(scrubSecrets("user x-access-token:ghs_zz rejected")).toBe("user x-access-token:*** rejected");
    expect(scrubSecrets("> Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hz\n> authorization: bearer abc.def")).toBe(
      "> Authorization: Basic ***\n> authorization: bearer ***",
    );
  });

  it("leaves text without credentials unchanged", () => {
    const text = "! refs/heads/main [rejected] (fetch first) | error: failed to push some refs to '/tmp/data.git'";
    expect(scrubSecrets(text, ["ab"])).toBe(text);
  });
});
