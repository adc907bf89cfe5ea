/**
 * Git LFS content for the files the ledger exports and commits. Data repositories keep large pools and VASP
 * outputs in LFS; git itself then holds a small pointer naming the object's sha256 and size. Each object is fetched
 * once into the clone's `lfs/objects/aa/bb/<oid>` (git-lfs's own layout), checked against the pointer's size and
 * sha256. A file the repository's .gitattributes routes to LFS is uploaded, and committed as its pointer.
 *
 * Where objects come from, as git-lfs does it:
 * - a remote that is a path or a file:// URL: its `lfs/objects` (a bare repo, where `git lfs push` puts them)
 *   or `.git/lfs/objects`;
 * - an http(s) remote: the batch API at `<remote>.git/info/lfs/objects/batch`, with git's own token. The token
 *   goes only to the remote's origin; a download elsewhere (GitHub's object storage) gets the headers the batch
 *   answer names and nothing else.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { LedgerError } from "./errors.js";
import { httpOrigin, type GitRunner } from "./git.js";

export interface LfsPointer {
  /** sha256 of the content, 64 hex digits. */
  oid: string;
  size: number;
}

/** A file whose blob is a pointer. */
export interface LfsFile {
  path: string;
  pointer: LfsPointer;
}

/** git-lfs writes pointers well under this size and never reads a larger blob as one. */
const POINTER_MAX_BYTES = 1024;
const POINTER_VERSIONS = new Set(["https://git-lfs.github.com/spec/v1", "https://hawser.github.com/spec/v1"]);
/** Objects per batch request (the LFS API's advice; GitHub refuses more). */
const BATCH_SIZE = 100;
const PARALLEL_DOWNLOADS = 4;
/** A request, upload or download during which nothing moves for this long fails instead of holding the ledger. */
const STALL_MS = 60_000;
/** Uploads are sent in pieces of this size, each one resetting the stall timer. */
const UPLOAD_PIECE = 1 << 20;
const LFS_MEDIA_TYPE = "application/vnd.git-lfs+json";

/** The pointer git-lfs writes for `content`. */
export function lfsPointerFor(content: Buffer): { pointer: LfsPointer; text: Buffer } {
  const oid = createHash("sha256").update(content).digest("hex");
  return { pointer: { oid, size: content.length }, text: Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${content.length}\n`) };
}

/** The pointer a blob holds, or null when the blob is ordinary content. */
export function parseLfsPointer(blob: Buffer): LfsPointer | null {
  if (blob.length === 0 || blob.length >= POINTER_MAX_BYTES || blob[blob.length - 1] !== 0x0a) return null;
  const [first, ...rest] = blob.toString("utf8").slice(0, -1).split("\n");
  const version = /^version (\S+)$/.exec(first);
  if (!version || !POINTER_VERSIONS.has(version[1])) return null;
  let oid: string | undefined;
  let size: number | undefined;
  for (const line of rest) {
    const field = /^([a-z0-9.-]+) (\S+)$/.exec(line);
    if (!field) return null;
    if (field[1] === "oid") oid = /^sha256:([0-9a-f]{64})$/.exec(field[2])?.[1];
    else if (field[1] === "size" && /^\d{1,15}$/.test(field[2])) size = Number(field[2]);
  }
  return oid !== undefined && size !== undefined ? { oid, size } : null;
}

const action = z.object({ href: z.string().url(), header: z.record(z.string(), z.string()).optional() });
const batchAnswer = z.object({
  objects: z.array(
    z.object({
      oid: z.string(),
      actions: z.object({ download: action.optional(), upload: action.optional(), verify: action.optional() }).optional(),
      error: z.object({ code: z.number().optional(), message: z.string().optional() }).optional(),
    }),
  ),
});
type Action = z.infer<typeof action>;

/** The LFS objects of one remote, cached in its clone. */
export class LfsObjects {
  constructor(
    /** The bare clone; objects go under its lfs/objects. */
    private readonly cloneDir: string,
    private readonly remote: string,
    private readonly git: GitRunner,
  ) {}

  /** Where `oid` is cached in the clone (present or not). */
  private cached(oid: string): string {
    return path.join(this.cloneDir, "lfs", this.objectPath(oid));
  }

  /** Whether the clone's cache holds the object (whole: objects land by rename once checked). */
  private async isCached(pointer: LfsPointer): Promise<boolean> {
    return (await stat(this.cached(pointer.oid)).then((s) => s.size, () => -1)) === pointer.size;
  }

  /**
   * Makes every file's object present in the cache; returns oid → cached file. Fails with a one-line
   * LedgerError ("lfs") naming the first file whose object cannot be had or does not match its pointer.
   */
  async fetch(files: readonly LfsFile[]): Promise<Map<string, string>> {
    const wanted = new Map<string, LfsFile>();
    for (const f of files) if (!wanted.has(f.pointer.oid)) wanted.set(f.pointer.oid, f);
    const missing: LfsFile[] = [];
    const now = new Date();
    for (const f of wanted.values()) {
      if (!(await this.isCached(f.pointer))) missing.push(f);
      // Marked as used, so that prune() keeps it.
      else await utimes(this.cached(f.pointer.oid), now, now).catch(() => undefined);
    }
    if (missing.length > 0) {
      if (httpOrigin(this.remote) !== null) await this.download(missing);
      else for (const f of missing) await this.copyLocal(f);
    }
    return new Map([...wanted.keys()].map((oid) => [oid, this.cached(oid)]));
  }

  /**
   * Removes cached objects not used for `days` days (a pool replaced every round would otherwise stay forever);
   * returns how many. Safe at any time: a removed object is fetched again when next needed.
   */
  async prune(days: number, now = new Date()): Promise<number> {
    const root = path.join(this.cloneDir, "lfs", "objects");
    const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
    let removed = 0;
    for (const e of entries) {
      if (!e.isFile()) continue;
      const file = path.join(e.parentPath ?? e.path, e.name);
      const { mtimeMs } = await stat(file);
      if (now.getTime() - mtimeMs > days * 86_400_000) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /**
   * Puts each file's content in the remote's LFS store (and the clone's cache) unless it is there already: what
   * `git lfs push` does before git pushes the pointers. Fails with a one-line LedgerError ("lfs") naming the file.
   */
  async upload(files: ReadonlyArray<LfsFile & { content: Buffer }>): Promise<void> {
    for (const f of files) if (!(await this.isCached(f.pointer))) await this.store(f, Readable.from([f.content]));
    if (httpOrigin(this.remote) === null) {
      for (const f of files) {
        const target = path.join(this.localStore(), this.objectPath(f.pointer.oid));
        if (!existsSync(target)) await this.store(f, Readable.from([f.content]), target);
      }
      return;
    }
    for (let i = 0; i < files.length; i += BATCH_SIZE) {
      const chunk = files.slice(i, i + BATCH_SIZE);
      const answer = await this.batch(chunk, "upload");
      for (const file of chunk) {
        const entry = answer.objects.find((o) => o.oid === file.pointer.oid);
        if (entry?.error) throw this.failure(file, `the LFS server refused the upload: ${entry.error.code ?? "an error"}${entry.error.message ? `: ${oneLine(entry.error.message)}` : ""}`, "stored");
        const upload = entry?.actions?.upload;
        if (!upload) continue; // the server has it
        const put = await this.request(file, upload.href, { method: "PUT", headers: await this.headersFor(upload, { "Content-Type": "application/octet-stream" }), body: file.content }, "stored");
        await put.body?.cancel();
        if (!put.ok) throw this.failure(file, `uploading it answered ${put.status}`, "stored");
        const verify = entry.actions?.verify;
        if (verify) {
          const body = JSON.stringify(file.pointer);
          const res = await this.request(file, verify.href, { method: "POST", headers: await this.headersFor(verify, { Accept: LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE }), body }, "stored");
          await res.body?.cancel();
          if (!res.ok) throw this.failure(file, `the LFS server's verification of the upload answered ${res.status}`, "stored");
        }
      }
    }
  }

  /** A local remote's LFS store: `lfs/` of a bare repository, `.git/lfs/` of one with a work tree. */
  private localStore(): string {
    const root = this.remote.startsWith("file://") ? fileURLToPath(this.remote) : this.remote;
    return existsSync(path.join(root, ".git")) ? path.join(root, ".git", "lfs") : path.join(root, "lfs");
  }

  private objectPath(oid: string): string {
    return path.join("objects", oid.slice(0, 2), oid.slice(2, 4), oid);
  }

  private async copyLocal(file: LfsFile): Promise<void> {
    const source = path.join(this.localStore(), this.objectPath(file.pointer.oid));
    if (!existsSync(source)) throw this.failure(file, `the remote's lfs/${this.objectPath(file.pointer.oid).split(path.sep).join("/")} is missing (was the object pushed with git lfs push?)`);
    await this.store(file, createReadStream(source));
  }

  private async download(files: LfsFile[]): Promise<void> {
    const actions: Array<{ file: LfsFile; action: Action }> = [];
    for (let i = 0; i < files.length; i += BATCH_SIZE) {
      const chunk = files.slice(i, i + BATCH_SIZE);
      const answer = await this.batch(chunk, "download");
      for (const file of chunk) {
        const entry = answer.objects.find((o) => o.oid === file.pointer.oid);
        if (entry?.error) throw this.failure(file, `the LFS server answered ${entry.error.code ?? "an error"}${entry.error.message ? `: ${oneLine(entry.error.message)}` : ""}`);
        if (!entry?.actions?.download) throw this.failure(file, "the LFS server's batch answer gives no download for it");
        actions.push({ file, action: entry.actions.download });
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < actions.length) {
        const { file, action } = actions[next++];
        await this.downloadOne(file, action);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_DOWNLOADS, actions.length) }, worker));
  }

  private batchUrl(): string {
    const base = this.remote.replace(/\/+$/, "");
    return `${base.endsWith(".git") ? base : `${base}.git`}/info/lfs/objects/batch`;
  }

  private async batch(files: LfsFile[], operation: "download" | "upload"): Promise<z.infer<typeof batchAnswer>> {
    const headers: Record<string, string> = { Accept: LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE };
    const authorization = await this.git.authorization();
    if (authorization !== null) headers.Authorization = authorization;
    const body = JSON.stringify({ operation, transfers: ["basic"], hash_algo: "sha256", objects: files.map((f) => f.pointer) });
    const doing = operation === "upload" ? "stored" : "had";
    let res = await this.request(files[0], this.batchUrl(), { method: "POST", headers, body }, doing);
    // A token revoked before it expired: once more with a new one, if auth() gives one.
    const renewed = (res.status === 401 || res.status === 403) && authorization !== null ? await this.git.renewRefusedToken() : null;
    if (renewed !== null) {
      await res.body?.cancel();
      res = await this.request(files[0], this.batchUrl(), { method: "POST", headers: { ...headers, Authorization: renewed }, body }, doing);
    }
    const text = await res.text();
    if (!res.ok) {
      const message = (() => {
        try {
          return String(JSON.parse(text).message ?? "");
        } catch {
          return "";
        }
      })();
      throw this.failure(files[0], `the LFS batch API answered ${res.status}${message ? `: ${oneLine(message)}` : ""}${res.status === 401 || res.status === 403 ? " (credentials missing or refused)" : ""}`, doing);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw this.failure(files[0], "the LFS batch API's answer is not JSON", doing);
    }
    const parsed = batchAnswer.safeParse(json);
    if (!parsed.success) throw this.failure(files[0], "the LFS batch API's answer is not a batch answer (no objects list)", doing);
    return parsed.data;
  }

  /** An action's headers; our token only for the remote's own host, and only when the action brings none. */
  private async headersFor(action: Action, base: Record<string, string> = {}): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...base, ...(action.header ?? {}) };
    const hasAuthorization = Object.keys(headers).some((k) => k.toLowerCase() === "authorization");
    if (!hasAuthorization && httpOrigin(action.href) === httpOrigin(this.remote)) {
      const authorization = await this.git.authorization();
      if (authorization !== null) headers.Authorization = authorization;
    }
    return headers;
  }

  private async downloadOne(file: LfsFile, action: Action): Promise<void> {
    const res = await this.request(file, action.href, { headers: await this.headersFor(action) });
    if (!res.ok || res.body === null) {
      await res.body?.cancel();
      throw this.failure(file, `downloading it answered ${res.status}`);
    }
    await this.store(file, Readable.fromWeb(res.body as WebReadableStream<Uint8Array>));
  }

  /**
   * fetch() with a stall timer that covers sending a Buffer body (streamed in UPLOAD_PIECE slices, so that a large
   * upload that keeps moving is not cut) and reading the answer's body.
   */
  private async request(file: LfsFile, url: string, init: Omit<RequestInit, "body"> & { body?: string | Buffer }, doing: "had" | "stored" = "had"): Promise<Response> {
    const controller = new AbortController();
    // Unreferenced: a body given up unread must not hold the process open.
    const stall = () => setTimeout(() => controller.abort(), STALL_MS).unref();
    let timer = stall();
    const moved = () => {
      clearTimeout(timer);
      timer = stall();
    };
    let body: RequestInit["body"] = init.body;
    if (Buffer.isBuffer(init.body)) {
      const content = init.body;
      let at = 0;
      body = new ReadableStream<Uint8Array>({
        pull(out) {
          moved();
          if (at >= content.length) return out.close();
          out.enqueue(content.subarray(at, (at += UPLOAD_PIECE)));
        },
      });
    }
    try {
      const headers = Buffer.isBuffer(init.body) ? { ...(init.headers as Record<string, string>), "Content-Length": String(init.body.length) } : init.headers;
      const res = await fetch(url, { ...init, headers, body, signal: controller.signal, redirect: "follow", ...(Buffer.isBuffer(init.body) ? { duplex: "half" } : {}) } as RequestInit);
      if (res.body === null) return res;
      const answer = res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, out) {
            moved();
            out.enqueue(chunk);
          },
          flush: () => clearTimeout(timer),
        }),
      );
      return new Response(answer, { status: res.status, headers: res.headers });
    } catch (err) {
      clearTimeout(timer);
      throw this.failure(file, controller.signal.aborted ? `nothing moved to or from the LFS server for ${STALL_MS / 1000} s` : `the LFS server could not be reached: ${this.git.scrub((err as Error).message)}`, doing);
    }
  }

  /** Streams `source` into the cache (or `target`), checking size and sha256 before the object takes its place. */
  private async store(file: LfsFile, source: Readable, target = this.cached(file.pointer.oid)): Promise<void> {
    await mkdir(path.dirname(target), { recursive: true });
    const partial = `${target}.${randomBytes(6).toString("hex")}.partial`;
    const hash = createHash("sha256");
    let size = 0;
    const tally = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, tally, createWriteStream(partial)).catch((err: Error) => {
        throw err instanceof LedgerError ? err : this.failure(file, `reading it failed: ${this.git.scrub(err.message)}`);
      });
      if (size !== file.pointer.size) throw this.failure(file, `got ${size} bytes, the pointer says ${file.pointer.size}`);
      const digest = hash.digest("hex");
      if (digest !== file.pointer.oid) throw this.failure(file, `got content with sha256 ${digest.slice(0, 12)}…, not the pointer's`);
      await rename(partial, target);
    } finally {
      await rm(partial, { force: true });
    }
  }

  private failure(file: LfsFile, reason: string, doing: "had" | "stored" = "had"): LedgerError {
    const { oid, size } = file.pointer;
    const what = doing === "had" ? "is stored in Git LFS" : "goes to Git LFS (.gitattributes)";
    return new LedgerError("lfs", `${file.path} ${what} (sha256 ${oid.slice(0, 12)}…, ${size} bytes) and its content could not be ${doing}: ${this.git.scrub(reason)}`, [file.path]);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
