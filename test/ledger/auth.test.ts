/**
 * The token path: the ledger talks smart HTTP to a local git http-backend that demands
 * `Authorization: Basic base64("x-access-token:<token>")`, as GitHub does for an installation token. The token
 * must reach the server on every request and never reach disk or an error message.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LedgerError } from "../../src/ledger/errors.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { createBareRemote, git, startGitHttpServer, tokenCache, type BareRemote, type GitHttpServer } from "../helpers/git-remote.js";

const TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";
const BASIC = Buffer.from(`x-access-token:${TOKEN}`).toString("base64");
const AUTHOR = { name: "relabel-loop[bot]", email: "bot@example.invalid" };

let remote: BareRemote;
let server: GitHttpServer;

beforeEach(async () => {
  remote = createBareRemote();
  server = await startGitHttpServer(remote.root, TOKEN);
});

afterEach(async () => {
  await server.close();
  remote.cleanup();
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

async function failure(promise: Promise<unknown>): Promise<LedgerError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LedgerError);
  return err as LedgerError;
}

function expectNoSecret(text: string, secret = TOKEN): void {
  expect(text).not.toContain(secret);
  expect(text).not.toContain(Buffer.from(`x-access-token:${secret}`).toString("base64"));
}

describe("https remote with an installation token", () => {
  it("fetches and pushes with the token as a Basic header, asking auth() before each network call", async () => {
    let calls = 0;
    const ledger = await Ledger.open({
      remote: server.url("data.git"),
      workdir: path.join(remote.root, "work"),
      author: AUTHOR,
      auth: async () => {
        calls++;
        return TOKEN;
      },
    });
    expect(ledger.defaultBranch).toBe("main");
    const sha = await ledger.commit({ message: "over http", files: [{ path: "ledger/events.jsonl", content: "{}\n" }] });
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(sha);
    // ls-remote and fetch at open, fetch and push for the commit.
    expect(calls).toBe(4);
    expect(server.authorizations.length).toBeGreaterThan(0);
    expect(server.authorizations.every((h) => h === `Basic ${BASIC}`)).toBe(true);
    for (const file of filesUnder(ledger.dir)) expectNoSecret(readFileSync(file, "latin1"));
  });

  it("fails with a one-line error free of the token when the token is refused", async () => {
    const wrong = "ghs_wrongwrongwrongwrongwrongwrongwrong0";
    const err = await failure(
      Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work"), author: AUTHOR, auth: async () => wrong }),
    );
    expect(err.code).toBe("git");
    expect(err.message).toContain("credentials missing or refused");
    expect(err.message).not.toContain("\n");
    expectNoSecret(err.message, wrong);
    expectNoSecret(err.stack ?? "", wrong);
  });

  it("tells auth() which token the remote refused and tries once more with the one it gives instead", async () => {
    await server.close();
    const revoked = "ghs_revokedrevokedrevokedrevokedrevoked0";
    server = await startGitHttpServer(remote.root, (t) => t === TOKEN);
    // Hands out the revoked token until told it was refused.
    const cache = tokenCache(revoked, TOKEN);
    const ledger = await Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work"), author: AUTHOR, auth: cache.auth });
    const sha = await ledger.commit({ message: "after a refusal", files: [{ path: "ledger/events.jsonl", content: "{}\n" }] });
    expect(git(remote.path, "rev-parse", "main").trim()).toBe(sha);
    expect(cache.refused).toEqual([revoked]);

    // An auth() that gives the refused token again gets no second try: one refusal per network call.
    const stubborn: (string | undefined)[] = [];
    const err = await failure(
      Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work2"), author: AUTHOR, auth: async (refused) => (stubborn.push(refused), revoked) }),
    );
    expect(err.message).toContain("credentials missing or refused");
    expect(stubborn).toEqual([undefined, revoked]);
    expectNoSecret(err.message, revoked);
  });

  it("scrubs the token from git's own messages when they echo it", async () => {
    // The token as part of the repository path: git's "not found" message repeats the URL.
    const err = await failure(
      Ledger.open({ remote: server.url(`${TOKEN}.git`), workdir: path.join(remote.root, "work"), author: AUTHOR, auth: async () => TOKEN }),
    );
    expect(err.message).toContain("***");
    expectNoSecret(err.message);
  });

  it("refuses a URL with embedded credentials without repeating them", async () => {
    const url = server.url("data.git").replace("http://", `http://x-access-token:${TOKEN}@`);
    const err = await failure(Ledger.open({ remote: url, workdir: path.join(remote.root, "work"), author: AUTHOR }));
    expect(err.message).toContain("auth");
    expectNoSecret(err.message);
  });
});
