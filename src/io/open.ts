/** Opening input files for the streaming readers: gzip detection by magic bytes and one-line file errors. */
import { createHash } from "node:crypto";
import { createReadStream, readFileSync, statSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { Readable } from "node:stream";
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

/** A gzip stream that ended early: the file was cut, which readers treat like any other truncation. */
export function isTruncatedGzip(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "Z_BUF_ERROR" || /unexpected end of file/i.test(String((err as Error)?.message));
}

/**
 * A byte stream of the file in CHUNK_BYTES chunks, gunzipped when it starts with the gzip magic bytes
 * (whatever its name). Errors of the raw file surface through the returned stream; a file in a format of
 * another kind (an ASE trajectory, a CIF: foreignFormat) is refused at once, unless `ownFormat` claims it.
 */
export async function openInput(path: string, expected: string, ownFormat?: (head: string) => boolean): Promise<{ stream: Readable; gzipped: boolean }> {
  let gzipped: boolean;
  let head: string;
  let whole: Buffer | null = null;
  try {
    whole = readSmallFile(path);
    if (whole) {
      gzipped = isGzipMagic(whole);
      head = whole.toString("latin1", 0, Math.min(512, whole.length));
    } else {
      const handle = await open(path, "r");
      try {
        const bytes = Buffer.alloc(512);
        const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
        gzipped = isGzipMagic(bytes.subarray(0, bytesRead));
        head = bytes.toString("latin1", 0, bytesRead);
      } finally {
        await handle.close();
      }
    }
  } catch (err) {
    throw fileError(path, err, expected);
  }
  if (!ownFormat?.(head)) refuseForeignFormat(path, head, expected);
  const raw: Readable = whole ? Readable.from([whole], { objectMode: false }) : createReadStream(path, { highWaterMark: CHUNK_BYTES });
  if (!gzipped) return { stream: raw, gzipped };
  const gunzip = createGunzip({ chunkSize: whole ? Math.min(CHUNK_BYTES, 64 * 1024) : CHUNK_BYTES });
  raw.on("error", (err: Error) => gunzip.destroy(err));
  gunzip.on("close", () => raw.destroy());
  return { stream: raw.pipe(gunzip), gzipped };
}

/** The first `bytes` of a file as latin1 text, gunzipped when needed ("" when it cannot be read). */
export async function readHead(path: string, bytes = 4096): Promise<string> {
  const handle = await open(path, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    if (!isGzipMagic(head)) return head.toString("latin1");
    try {
      return gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH }).toString("latin1");
    } catch {
      return "";
    }
  } finally {
    await handle.close();
  }
}

/**
 * A small file's whole text (UTF-8), gunzipped when it starts with the gzip magic bytes (a CONTCAR.gz, say); a file
 * in a format of another kind is refused, as by openInput.
 */
export async function readSmallText(path: string, expected: string): Promise<string> {
  let text: string;
  try {
    const bytes = readSmallFile(path) ?? (await readFile(path));
    text = (isGzipMagic(bytes) ? gunzipSync(bytes) : bytes).toString("utf8");
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
    else for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
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
