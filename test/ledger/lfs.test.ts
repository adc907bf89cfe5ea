/**
 * Files kept in Git LFS, written by real git-lfs: the ledger exports their content, not the pointer git holds,
 * from a path remote's lfs/objects and from an https-style remote's batch API, and says in one line which file's
 * object could not be had and why.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { LedgerError } from "../../src/ledger/errors.js";
import { parseLfsPointer } from "../../src/ledger/lfs.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { cloneWithGitLfs, createBareRemote, LFS_STORAGE_AUTH, pushWithGitLfs, startGitHttpServer, tokenCache, type BareRemote, type GitHttpServer } from "../helpers/git-remote.js";
import { realPath } from "../helpers/real-data.js";

const AUTHOR = { name: "relabel-loop[bot]", email: "bot@example.invalid" };
const TOKEN = "ghs_9f3Lq0ZbW1c2Xy7Tt5Rr8Pp6Nn4Mm2Kk0Jj1";
const BASIC = `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}`;
const POOL = readFileSync(realPath("extxyz/gpumd_nep_PbTe_train.xyz"));
const RUN = readFileSync(realPath("vasp/dpdata_h2o_md10/vasprun.xml"));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function bareRemote(): BareRemote {
  const remote = createBareRemote();
  cleanups.push(() => remote.cleanup());
  return remote;
}

async function httpServer(remote: BareRemote): Promise<GitHttpServer> {
  const server = await startGitHttpServer(remote.root, TOKEN);
  cleanups.push(() => server.close());
  return server;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const pointerText = (content: Buffer) => `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(content)}\nsize ${content.length}\n`;

async function failure(promise: Promise<unknown>): Promise<LedgerError> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(LedgerError);
  expect((err as LedgerError).code).toBe("lfs");
  expect((err as Error).message).not.toContain("\n");
  return err as LedgerError;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("parseLfsPointer", () => {
  it("reads the pointer git-lfs writes, and takes nothing else for one", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-lfs-pointer-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, "pool.xyz"), POOL);
    const written = execFileSync("git", ["lfs", "pointer", "--file", path.join(dir, "pool.xyz")], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    expect(written).toBe(pointerText(POOL));
    expect(parseLfsPointer(Buffer.from(written))).toEqual({ oid: sha256(POOL), size: POOL.length });
    // git-lfs's first spec URL is still read.
    expect(parseLfsPointer(Buffer.from(written.replace("git-lfs.github.com", "hawser.github.com")))).toEqual({ oid: sha256(POOL), size: POOL.length });

    expect(parseLfsPointer(POOL)).toBeNull();
    expect(parseLfsPointer(Buffer.from(written.trimEnd()))).toBeNull();
    expect(parseLfsPointer(Buffer.from(written.replace("sha256:", "md5:")))).toBeNull();
    expect(parseLfsPointer(Buffer.from(written.replace(/size \d+\n/, "")))).toBeNull();
    expect(parseLfsPointer(Buffer.from(written.replace("spec/v1", "spec/v9")))).toBeNull();
    expect(parseLfsPointer(Buffer.from(written + "x".repeat(1100) + "\n"))).toBeNull();
  });
});

describe("a path remote (the demo's and the CLI's local ledger)", () => {
  it("exports what git-lfs pushed with its content, and keeps the object in the clone for the next export", async () => {
    const remote = bareRemote();
    await pushWithGitLfs(pathToFileURL(remote.path).href, { "pools/pool.xyz": POOL, "rounds/0001/labels/h2o/vasprun.xml": RUN });
    const ledger = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "work"), author: AUTHOR });
    // git holds pointers only; read() gives the content, as exportTree does.
    expect(parseLfsPointer(execFileSync("git", ["cat-file", "blob", "main:pools/pool.xyz"], { cwd: remote.path }))).toEqual({ oid: sha256(POOL), size: POOL.length });
    expect((await ledger.read("pools/pool.xyz"))!.equals(POOL)).toBe(true);

    const out = path.join(remote.root, "out");
    const written = await ledger.exportTree("main", out, ["pools", "rounds/0001/labels", ".gitattributes"]);
    expect(written.sort()).toEqual([".gitattributes", "pools/pool.xyz", "rounds/0001/labels/h2o/vasprun.xml"]);
    expect(readFileSync(path.join(out, "pools/pool.xyz")).equals(POOL)).toBe(true);
    expect(readFileSync(path.join(out, "rounds/0001/labels/h2o/vasprun.xml")).equals(RUN)).toBe(true);
    expect(readFileSync(path.join(out, ".gitattributes"), "utf8")).toContain("filter=lfs");

    // The remote's store is gone: the clone's copy serves the next export.
    rmSync(path.join(remote.path, "lfs"), { recursive: true });
    const again = path.join(remote.root, "again");
    await ledger.exportTree("main", again, ["pools"]);
    expect(readFileSync(path.join(again, "pools/pool.xyz")).equals(POOL)).toBe(true);
  });

  it("forgets cached objects unused for 30 days when the ledger opens, and fetches them again when needed", async () => {
    const remote = bareRemote();
    await pushWithGitLfs(pathToFileURL(remote.path).href, { "pools/old.xyz": POOL, "pools/recent.xyz": RUN });
    const open = () => Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "work"), author: AUTHOR });
    const ledger = await open();
    await ledger.exportTree("main", path.join(remote.root, "out"), ["pools"]);
    const cached = (content: Buffer) => {
      const oid = sha256(content);
      return path.join(ledger.dir, "lfs", "objects", oid.slice(0, 2), oid.slice(2, 4), oid);
    };
    const longAgo = new Date(Date.now() - 31 * 86_400_000);
    utimesSync(cached(POOL), longAgo, longAgo);
    await open();
    expect(existsSync(cached(POOL))).toBe(false);
    expect(existsSync(cached(RUN))).toBe(true);
    await ledger.exportTree("main", path.join(remote.root, "again"), ["pools"]);
    expect(readFileSync(path.join(remote.root, "again", "pools/old.xyz")).equals(POOL)).toBe(true);
    expect(existsSync(cached(POOL))).toBe(true);
  });

  it("names the file whose object was never pushed, and refuses an object whose content is not the pointer's", async () => {
    const remote = bareRemote();
    const ledger = await Ledger.open({ remote: pathToFileURL(remote.path).href, workdir: path.join(remote.root, "work"), author: AUTHOR });
    await ledger.commit({ message: "pointer only", files: [{ path: "pools/missing.xyz", content: pointerText(POOL) }] });
    const missing = await failure(ledger.exportTree("main", path.join(remote.root, "out"), ["pools"]));
    expect(missing.message).toMatch(new RegExp(`^pools/missing\\.xyz is stored in Git LFS \\(sha256 ${sha256(POOL).slice(0, 12)}…, ${POOL.length} bytes\\) and its content could not be had: the remote's lfs/objects/\\S+ is missing \\(was the object pushed with git lfs push\\?\\)$`));
    expect(missing.paths).toEqual(["pools/missing.xyz"]);

    // Same size, other bytes: refused, and nothing is cached.
    const oid = sha256(POOL);
    const stored = path.join(remote.path, "lfs", "objects", oid.slice(0, 2), oid.slice(2, 4), oid);
    execFileSync("mkdir", ["-p", path.dirname(stored)]);
    const forged = Buffer.from(POOL);
    forged[0] ^= 1;
    writeFileSync(stored, forged);
    const corrupt = await failure(ledger.exportTree("main", path.join(remote.root, "out2"), ["pools"]));
    expect(corrupt.message).toMatch(/could not be had: got content with sha256 [0-9a-f]{12}…, not the pointer's$/);
    expect(existsSync(path.join(ledger.dir, "lfs", "objects", oid.slice(0, 2), oid.slice(2, 4), oid))).toBe(false);
    expect(readdirSync(path.join(ledger.dir, "lfs", "objects", oid.slice(0, 2), oid.slice(2, 4)))).toEqual([]);
  });
});

describe("an http remote (GitHub): the LFS batch API with the installation token", () => {
  it("exports what real git-lfs pushed over http; the token goes to the batch API, never to the object storage", async () => {
    const remote = bareRemote();
    const server = await httpServer(remote);
    await pushWithGitLfs(server.url("data.git"), { "pools/pool.xyz": POOL, "pools/more/run.xml": RUN }, BASIC);
    expect(server.lfs.objectRequests.filter((r) => r.method === "PUT")).toHaveLength(2);
    const ledger = await Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work"), author: AUTHOR, auth: async () => TOKEN });

    const out = path.join(remote.root, "out");
    await ledger.exportTree("main", out, ["pools"]);
    expect(readFileSync(path.join(out, "pools/pool.xyz")).equals(POOL)).toBe(true);
    expect(readFileSync(path.join(out, "pools/more/run.xml")).equals(RUN)).toBe(true);
    const downloads = server.lfs.objectRequests.filter((r) => r.method === "GET");
    expect(downloads.map((r) => r.path).sort()).toEqual([`data.git/${sha256(RUN)}`, `data.git/${sha256(POOL)}`].sort());
    expect(downloads.every((r) => r.authorization === LFS_STORAGE_AUTH)).toBe(true);
    // Nothing on disk holds the token.
    for (const file of filesUnder(ledger.dir)) expect(readFileSync(file).includes(TOKEN)).toBe(false);

    // Cached: a second export downloads nothing.
    await ledger.exportTree("main", path.join(remote.root, "again"), ["pools"]);
    expect(server.lfs.objectRequests.filter((r) => r.method === "GET")).toHaveLength(2);
  });

  it("names the file and the server's answer: an object the server lacks, a failed or wrong download, a refused token", async () => {
    const remote = bareRemote();
    const server = await httpServer(remote);
    let token = TOKEN;
    const ledger = await Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work"), author: AUTHOR, auth: async () => token });
    await ledger.commit({ message: "pointers", files: [{ path: "pools/pool.xyz", content: pointerText(POOL) }] });
    const exportPools = () => ledger.exportTree("main", path.join(remote.root, "out"), ["pools"]);

    expect((await failure(exportPools())).message).toMatch(/^pools\/pool\.xyz is stored in Git LFS .* could not be had: the LFS server answered 404: Object does not exist$/);

    server.lfs.put("data.git", POOL);
    server.lfs.failDownloads({ status: 500, body: Buffer.from("storage is down") });
    expect((await failure(exportPools())).message).toMatch(/could not be had: downloading it answered 500$/);
    server.lfs.failDownloads({ status: 200, body: POOL.subarray(0, 100) });
    expect((await failure(exportPools())).message).toMatch(new RegExp(`could not be had: got 100 bytes, the pointer says ${POOL.length}$`));
    server.lfs.failDownloads(null);

    token = "ghs_refusedrefusedrefusedrefusedrefused0";
    const refused = await failure(exportPools());
    expect(refused.message).toMatch(/could not be had: the LFS batch API answered 401 \(credentials missing or refused\)$/);
    expect(refused.message).not.toContain(token);

    token = TOKEN;
    await exportPools();
    expect(readFileSync(path.join(remote.root, "out", "pools/pool.xyz")).equals(POOL)).toBe(true);

    // A token revoked before it expired: the batch API's refusal gets a new one from auth(), and the export goes on.
    const revoked = "ghs_revokedrevokedrevokedrevokedrevoked0";
    const cache = tokenCache(TOKEN, TOKEN);
    const renewing = await Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work2"), author: AUTHOR, auth: cache.auth });
    cache.cached = revoked;
    await renewing.exportTree("main", path.join(remote.root, "out2"), ["pools"]);
    expect(readFileSync(path.join(remote.root, "out2", "pools/pool.xyz")).equals(POOL)).toBe(true);
    expect(cache.refused).toEqual([revoked]);
  });
});

describe("committing into a repository whose .gitattributes routes files to Git LFS", () => {
  const ATTRIBUTES = "*.extxyz filter=lfs diff=lfs merge=lfs -text\nrounds/*/keep/*.extxyz !filter\n";

  /** A user's clone with git-lfs: its file, and whether its work tree is clean. */
  async function userClone(url: string, file: string, authorization?: string): Promise<{ content: Buffer; status: string }> {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-lfs-clone-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { work, status } = await cloneWithGitLfs(url, dir, authorization);
    return { content: readFileSync(path.join(work, file)), status };
  }

  it("commits those files as pointers with their content in the remote's store (a path remote), others as they are, and lifts the 100 MiB limit for them", async () => {
    const remote = createBareRemote({ ".gitattributes": ATTRIBUTES });
    cleanups.push(() => remote.cleanup());
    const ledger = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "work"), author: AUTHOR });
    const big = Buffer.alloc(100 * 1024 * 1024 + 1, 7);
    await ledger.commit({
      message: "selection",
      files: [
        { path: "rounds/0001/selection/selected.extxyz", content: POOL },
        { path: "rounds/0001/keep/plain.extxyz", content: POOL },
        { path: "rounds/0001/selection/ranking.json", content: "{}\n" },
        { path: "datasets/current/train.extxyz", content: big },
      ],
    });
    const blob = (file: string) => execFileSync("git", ["cat-file", "blob", `main:${file}`], { cwd: remote.path, maxBuffer: 1 << 20 });
    expect(parseLfsPointer(blob("rounds/0001/selection/selected.extxyz"))).toEqual({ oid: sha256(POOL), size: POOL.length });
    expect(parseLfsPointer(blob("datasets/current/train.extxyz"))).toEqual({ oid: sha256(big), size: big.length });
    expect(blob("rounds/0001/keep/plain.extxyz").equals(POOL)).toBe(true);
    expect(blob("rounds/0001/selection/ranking.json").toString()).toBe("{}\n");
    const oid = sha256(POOL);
    expect(readFileSync(path.join(remote.path, "lfs", "objects", oid.slice(0, 2), oid.slice(2, 4), oid)).equals(POOL)).toBe(true);

    // A user's clone with git-lfs gets the content, and its work tree is clean (no "should have been pointers").
    const clone = await userClone(pathToFileURL(remote.path).href, "rounds/0001/selection/selected.extxyz");
    expect(clone.content.equals(POOL)).toBe(true);
    expect(clone.status).toBe("");
    // The ledger reads it back as it was.
    await ledger.exportTree("main", path.join(remote.root, "out"), ["rounds/0001/selection"]);
    expect(readFileSync(path.join(remote.root, "out", "rounds/0001/selection/selected.extxyz")).equals(POOL)).toBe(true);
  });

  it("follows .gitattributes as the branch has it when the commit lands, also when another writer added it meanwhile", async () => {
    const remote = createBareRemote();
    cleanups.push(() => remote.cleanup());
    const stale = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "stale"), author: AUTHOR });
    const other = await Ledger.open({ remote: remote.path, workdir: path.join(remote.root, "other"), author: AUTHOR });
    await other.commit({ message: "attributes", files: [{ path: ".gitattributes", content: ATTRIBUTES }] });
    // `stale` has not fetched since: its last known tip has no .gitattributes.
    await stale.commit({ message: "selection", files: [{ path: "rounds/0001/selection/selected.extxyz", content: POOL }] });
    const blob = execFileSync("git", ["cat-file", "blob", "main:rounds/0001/selection/selected.extxyz"], { cwd: remote.path });
    expect(parseLfsPointer(blob)).toEqual({ oid: sha256(POOL), size: POOL.length });
    const oid = sha256(POOL);
    expect(readFileSync(path.join(remote.path, "lfs", "objects", oid.slice(0, 2), oid.slice(2, 4), oid)).equals(POOL)).toBe(true);
  });

  it("uploads through the batch API over http, storage credentials only for the storage, and a user's clone checks it out", async () => {
    const remote = createBareRemote({ ".gitattributes": ATTRIBUTES });
    cleanups.push(() => remote.cleanup());
    const server = await httpServer(remote);
    const ledger = await Ledger.open({ remote: server.url("data.git"), workdir: path.join(remote.root, "work"), author: AUTHOR, auth: async () => TOKEN });
    // Several megabytes: sent in pieces.
    const train = Buffer.concat(Array.from({ length: 9 }, () => POOL));
    await ledger.commit({ message: "dataset", files: [{ path: "datasets/current/train.extxyz", content: train }] });
    const puts = server.lfs.objectRequests.filter((r) => r.method === "PUT");
    expect(puts).toEqual([{ method: "PUT", path: `data.git/${sha256(train)}`, authorization: LFS_STORAGE_AUTH }]);
    // The same content again: the server has it, nothing is uploaded.
    await ledger.commit({ message: "same dataset elsewhere", files: [{ path: "datasets/copy.extxyz", content: train }] });
    expect(server.lfs.objectRequests.filter((r) => r.method === "PUT")).toHaveLength(1);
    const clone = await userClone(server.url("data.git"), "datasets/current/train.extxyz", BASIC);
    expect(clone.content.equals(train)).toBe(true);
    expect(clone.status).toBe("");
  });
});

