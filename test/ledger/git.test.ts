import { afterEach, describe, expect, it } from "vitest";
import { baseEnv, httpOrigin, oneLine, parseCatBatch } from "../../src/ledger/git.js";

describe("parseCatBatch", () => {
  it("splits objects by their declared size, so contents may hold newlines and binary bytes", () => {
    const blob = Buffer.from([0x0a, 0x00, 0xff, 0x0a]);
    const oid = "a".repeat(40);
    const out = Buffer.concat([Buffer.from(`${oid} blob 4\n`), blob, Buffer.from("\nmain:nope missing\n"), Buffer.from(`${"b".repeat(40)} tree 0\n\n`)]);
    const [first, missing, tree] = parseCatBatch(out, ["main:a", "main:nope", "main:dir"]);
    expect(first).toMatchObject({ spec: "main:a", type: "blob", oid });
    expect(first.content!.equals(blob)).toBe(true);
    expect(missing).toEqual({ spec: "main:nope", type: null, oid: null, content: null });
    expect(tree.type).toBe("tree");
  });
});

describe("httpOrigin", () => {
  it("gives scheme://host/ for http(s) URLs and null for paths and file URLs", () => {
    expect(httpOrigin("https://github.com/owner/data.git")).toBe("https://github.com/");
    expect(httpOrigin("HTTP://127.0.0.1:8080/x.git")).toBe("http://127.0.0.1:8080/");
    expect(httpOrigin("/srv/data.git")).toBeNull();
    expect(httpOrigin("file:///srv/data.git")).toBeNull();
  });
});

describe("oneLine", () => {
  it("joins git's diagnostics on one line without hints", () => {
    expect(oneLine("error: failed to push\nhint: Updates were rejected\n\nfatal: x\n")).toBe("error: failed to push | fatal: x");
  });
});

describe("baseEnv", () => {
  const set = { WEBHOOK_SECRET: "hook-secret", PRIVATE_KEY: "pem", PRIVATE_KEY_PATH: "/keys/app.pem", GITHUB_CLIENT_SECRET: "oauth", GIT_DIR: "/elsewhere", RELABEL_ENV_PROBE: "kept" };
  afterEach(() => {
    for (const name of Object.keys(set)) delete process.env[name];
  });

  it("gives git neither the GitHub App's credentials nor ambient GIT_* variables", () => {
    Object.assign(process.env, set);
    const env = baseEnv();
    expect(env.RELABEL_ENV_PROBE).toBe("kept");
    expect(env.LC_ALL).toBe("C");
    for (const name of ["WEBHOOK_SECRET", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "GITHUB_CLIENT_SECRET", "GIT_DIR"]) expect(env).not.toHaveProperty(name);
  });
});
