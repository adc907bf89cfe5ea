/** Reads ASE trajectories (.traj) from disk through the pure reader in src/core/formats/ase-trajectory.ts. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { InputError } from "../core/errors.js";
import { AseTrajectoryReader, TrajectoryCut, type ByteSource } from "../core/formats/ase-trajectory.js";
import { isUlm } from "../core/formats/format-heads.js";
import type { Frame } from "../core/structure.js";
import { CHUNK_BYTES, fileError, isGzipMagic, refuseForeignFormat } from "./open.js";

const EXPECTED = "an ASE trajectory";
const BATCH = 1000;

/** A file's bytes through a window of CHUNK_BYTES: a trajectory's items are read in file order, mostly from it. */
class FileBytes implements ByteSource {
  private window = Buffer.alloc(0);
  private windowAt = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  read(offset: number, length: number): Uint8Array {
    const from = offset - this.windowAt;
    if (from >= 0 && from + length <= this.window.length) return this.window.subarray(from, from + length);
    const bytes = Buffer.alloc(Math.max(length, Math.min(CHUNK_BYTES, this.size - offset)));
    for (let done = 0; done < bytes.length; ) {
      const n = readSync(this.fd, bytes, done, bytes.length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    // Each window is a new buffer, so what earlier reads returned stays valid.
    this.window = bytes;
    this.windowAt = offset;
    return bytes.subarray(0, length);
  }
}

/**
 * The frames of an ASE trajectory in batches; returns notes on what was left out: the frames beyond the end of a cut
 * file, info keys that are not scalars. A file that cannot be read at all is an InputError naming it.
 */
export async function* readAseTrajectory(path: string): AsyncGenerator<Frame[], string[], void> {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw fileError(path, err, EXPECTED);
  }
  try {
    const bytes = new FileBytes(fd, fstatSync(fd).size);
    const head = bytes.read(0, Math.min(512, bytes.size));
    if (isGzipMagic(head)) throw new InputError(path, undefined, "gzip-compressed: an ASE trajectory is read uncompressed (gunzip it first)");
    const headText = Buffer.from(head).toString("latin1");
    // A .traj that is a Git LFS pointer, say, is named as such; a ULM file is the reader's to judge.
    if (!isUlm(headText)) refuseForeignFormat(path, headText, EXPECTED);
    const reader = new AseTrajectoryReader(bytes, path);
    const notes: string[] = [];
    let batch: Frame[] = [];
    for (let i = 0; i < reader.length; i++) {
      try {
        batch.push(reader.frame(i));
      } catch (err) {
        if (!(err instanceof TrajectoryCut)) throw err;
        notes.push(`trajectory cut short: frame ${i}: ${err.detail}; ${reader.length - i} of ${reader.length} frames dropped`);
        break;
      }
      if (batch.length === BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
    if (reader.leftOutInfo.size > 0) notes.push(`info ${[...reader.leftOutInfo].join(", ")}: lists, dicts or arrays, not carried to selected.extxyz`);
    return notes;
  } catch (err) {
    throw fileError(path, err, EXPECTED);
  } finally {
    closeSync(fd);
  }
}
