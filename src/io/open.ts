/**
 * Opening input files for the streaming readers: compression detected by magic bytes (gzip through zlib; xz and
 * bzip2, which archives of VASP runs use too, through their command-line tools) and one-line file errors.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, readFileSync, readSync, statSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { PassThrough, Readable } from "node:stream";
import { constants, createGunzip, gunzipSync } from "node:zlib";
import { InputError } from "../core/errors.js";
import { foreignFormatDetail } from "../core/formats/foreign.js";

/** Large reads keep per-chunk overhead negligible while memory stays a few chunks. */
export const CHUNK_BYTES = 1 << 20;
/** Files up to this size are read whole (readSmallFile). */
const SMALL_FILE_BYTES = 256 * 1024;

export function isGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Compressions read through a program, with the Debian package that has it. */
const PROGRAMS = { xz: { program: "xz", package: "xz-utils" }, bzip2: { program: "bzip2", package: "bzip2" } } as const;
type ProgramCompression = keyof typeof PROGRAMS;
export type Compression = "gzip" | ProgramCompression | null;

/** The compression a file's first bytes announce: gzip (1f 8b), xz (fd 37 7a 58 5a 00), bzip2 ("BZh1".."BZh9"). */
export function compressionOf(bytes: Uint8Array): Compression {
  if (isGzipMagic(bytes)) return "gzip";
  const xz = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
  if (bytes.length >= 6 && xz.every((b, i) => bytes[i] === b)) return "xz";
  if (bytes.length >= 4 && bytes[0] === 0x42 && bytes[1] === 0x5a && bytes[2] === 0x68 && bytes[3] >= 0x31 && bytes[3] <= 0x39) return "bzip2";
  return null;
}

/** A compressed stream that ended early ("unexpected end of input"): the file was cut. */
const CUT_SHORT = /unexpected end of (input|file)|ends unexpectedly/i;

function programError(path: string, kind: ProgramCompression, stderr: string): Error {
  // "xz: /path/vasprun.xml.xz: Unexpected end of input": the message after the program and the file.
  const said = stderr.trim().split("\n")[0]?.replace(/^.*: /, "") ?? "";
  if (CUT_SHORT.test(said)) return Object.assign(new Error(`unexpected end of file (${kind})`), { code: "Z_BUF_ERROR" });
  return new InputError(path, undefined, `broken ${kind} data: ${said || "the program failed"}`);
}

function missingProgram(path: string, kind: ProgramCompression): InputError {
  const { program, package: pkg } = PROGRAMS[kind];
  return new InputError(path, undefined, `is ${kind}-compressed, and reading it needs the ${program} program (Debian: apt-get install ${pkg})`);
}

/** The decompressed bytes of `path` from `xz -dc` or `bzip2 -dc`, as a stream; destroying it stops the program. */
function programStream(path: string, kind: ProgramCompression): Readable {
  const child = spawn(PROGRAMS[kind].program, ["-dc", "--", path], { stdio: ["ignore", "pipe", "pipe"] });
  const out = new PassThrough({ highWaterMark: CHUNK_BYTES });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr = (stderr + text).slice(0, 2000)));
  child.stdout.pipe(out, { end: false });
  child.on("error", (err: NodeJS.ErrnoException) => out.destroy(err.code === "ENOENT" ? missingProgram(path, kind) : err));
  child.on("close", (code, signal) => {
    if (code === 0) out.end();
    else if (signal === null) out.destroy(programError(path, kind, stderr));
  });
  out.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  return out;
}

/** The whole decompressed content of a small xz or bzip2 file. */
function programOutputSync(path: string, kind: ProgramCompression): Buffer {
  const run = spawnSync(PROGRAMS[kind].program, ["-dc", "--", path], { maxBuffer: 1 << 30 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") throw missingProgram(path, kind);
  if (run.error) throw run.error;
  if (run.status !== 0) {
    const err = programError(path, kind, run.stderr.toString("utf8"));
    throw err instanceof InputError ? err : new InputError(path, undefined, `the ${kind} data ends early (a cut file?)`);
  }
  return run.stdout;
}

/** Throws a one-line InputError when a file's first bytes (`head`, latin1) are another format's (foreignFormat). */
export function refuseForeignFormat(path: string, head: string, expected: string): void {
  const foreign = foreignFormatDetail(path, head, expected);
  if (foreign) throw new InputError(path, undefined, foreign);
}

/** A file-system or zlib error as a one-line InputError naming the file; `expected` says what the file should be. */
export function fileError(path: string, err: unknown, expected: string): unknown {
  if (err instanceof InputError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "ENOENT") return new InputError(path, undefined, "no such file");
  if (e?.code === "EISDIR") return new InputError(path, undefined, `is a directory, expected ${expected}`);
  if (e?.code === "EACCES") return new InputError(path, undefined, "permission denied");
  if (typeof e?.code === "string" && e.code.startsWith("Z_")) return new InputError(path, undefined, `broken gzip data: ${e.message}`);
  if (typeof e?.code === "string") return new InputError(path, undefined, `cannot read: ${e.message}`);
  return err;
}

/** A compressed stream that ended early: the file was cut, which readers treat like any other truncation. */
export function isTruncatedCompression(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "Z_BUF_ERROR" || /unexpected end of file/i.test(String((err as Error)?.message));
}

/**
 * A byte stream of the file in CHUNK_BYTES chunks, decompressed when it starts with gzip, xz or bzip2 magic bytes
 * (whatever its name; `compressed` then). Errors of the raw file surface through the returned stream; a file in a
 * format of another kind (an ASE trajectory, a CIF: foreignFormat) is refused at once, unless `ownFormat` claims it.
 */
export async function openInput(path: string, expected: string, ownFormat?: (head: string) => boolean): Promise<{ stream: Readable; compressed: boolean }> {
  let compression: Compression;
  let head: string;
  let whole: Buffer | null = null;
  try {
    whole = readSmallFile(path);
    if (whole) {
      compression = compressionOf(whole);
      head = whole.toString("latin1", 0, Math.min(512, whole.length));
    } else {
      const handle = await open(path, "r");
      try {
        const bytes = Buffer.alloc(512);
        const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
        compression = compressionOf(bytes.subarray(0, bytesRead));
        head = bytes.toString("latin1", 0, bytesRead);
      } finally {
        await handle.close();
      }
    }
  } catch (err) {
    throw fileError(path, err, expected);
  }
  if (!ownFormat?.(head)) refuseForeignFormat(path, head, expected);
  if (compression === "xz" || compression === "bzip2") return { stream: programStream(path, compression), compressed: true };
  const raw: Readable = whole ? Readable.from([whole], { objectMode: false }) : createReadStream(path, { highWaterMark: CHUNK_BYTES });
  if (compression === null) return { stream: raw, compressed: false };
  const gunzip = createGunzip({ chunkSize: whole ? Math.min(CHUNK_BYTES, 64 * 1024) : CHUNK_BYTES });
  raw.on("error", (err: Error) => gunzip.destroy(err));
  gunzip.on("close", () => raw.destroy());
  return { stream: raw.pipe(gunzip), compressed: true };
}

/** The first `bytes` of a file as latin1 text, gunzipped when needed ("" when it cannot be read). */
export async function readHead(path: string, bytes = 4096): Promise<string> {
  const handle = await open(path, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    const compression = compressionOf(head);
    if (compression === null) return head.toString("latin1");
    if (compression !== "gzip") return await programHead(path, compression, bytes);
    try {
      return gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH }).toString("latin1");
    } catch {
      return "";
    }
  } finally {
    await handle.close();
  }
}

/** The first `bytes` decompressed bytes of an xz or bzip2 file as latin1 text ("" when they cannot be had). */
async function programHead(path: string, kind: ProgramCompression, bytes: number): Promise<string> {
  const stream = programStream(path, kind);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= bytes) break;
    }
  } catch {
    return "";
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).toString("latin1", 0, Math.min(bytes, length));
}

/**
 * A small file's whole text (UTF-8), decompressed when it starts with gzip, xz or bzip2 magic bytes (a CONTCAR.gz,
 * an INCAR.relax1.xz); a file
 * in a format of another kind is refused, as by openInput.
 */
export async function readSmallText(path: string, expected: string): Promise<string> {
  let text: string;
  try {
    const bytes = readSmallFile(path) ?? (await readFile(path));
    const compression = compressionOf(bytes);
    const plain = compression === null ? bytes : compression === "gzip" ? gunzipSync(bytes) : programOutputSync(path, compression);
    text = plain.toString("utf8");
  } catch (err) {
    throw fileError(path, err, expected);
  }
  refuseForeignFormat(path, text.slice(0, 512), expected);
  return text;
}

/** sha256 (hex) of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  try {
    const whole = readSmallFile(path);
    if (whole) hash.update(whole);
    // In CHUNK_BYTES pieces: at the default 64 KiB a 40 MB file took about 30 ms more CPU.
    else for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) hash.update(chunk as Buffer);
  } catch (err) {
    throw fileError(path, err, "a file");
  }
  return hash.digest("hex");
}

/**
 * sha256 (hex) of a file's bytes, read on the calling thread: for a thread that has a core to itself now and may not
 * later (rank hashes its features file while the selection starts on another thread).
 */
export function sha256FileSync(path: string): string {
  const hash = createHash("sha256");
  const piece = Buffer.allocUnsafe(CHUNK_BYTES);
  try {
    const fd = openSync(path, "r");
    try {
      for (let got = readSync(fd, piece); got > 0; got = readSync(fd, piece)) hash.update(piece.subarray(0, got));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw fileError(path, err, "a file");
  }
  return hash.digest("hex");
}

/**
 * A regular file of at most SMALL_FILE_BYTES, read whole and at once; null for a larger one. Pools can be folders
 * of thousands of one-frame files (a trajectory written a frame per file): a synchronous read of each costs some
 * microseconds, a stream several trips to the thread pool and a CHUNK_BYTES buffer.
 */
function readSmallFile(path: string): Buffer | null {
  const info = statSync(path);
  return info.isFile() && info.size <= SMALL_FILE_BYTES ? readFileSync(path) : null;
}
