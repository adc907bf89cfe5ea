/**
 * Reading a large extxyz file on worker threads (what ranking keeps of each frame) must give what the
 * one-thread reader gives: the same summaries in the same order, and the same error for a bad frame.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { InputError, StructureError } from "../../src/core/errors.js";
import { candidateId, type CandidateSummaries } from "../../src/core/select/candidate-id.js";
import { projectionsOf } from "../../src/core/select/near-match.js";
import { computeDescriptors, descriptorSpecies, placeDescriptorRows, type DescriptorOptions } from "../../src/core/select/descriptors.js";
import { createFeatureMatrix } from "../../src/core/select/feature-matrix.js";
import { hillFormula, type Frame } from "../../src/core/structure.js";
import { ExtxyzReadTrace, readExtxyz } from "../../src/io/extxyz.js";
import { sha256File } from "../../src/io/open.js";
import { ExtxyzScanner } from "../../src/io/extxyz-scan.js";
import { realPath } from "../helpers/real-data.js";

const dir = mkdtempSync(path.join(tmpdir(), "relabel-extxyz-scan-"));
let scanner: ExtxyzScanner;
beforeAll(() => {
  const opened = ExtxyzScanner.open(2);
  if (!opened) throw new Error("the scan worker is missing: build first (npm test does)");
  scanner = opened;
});
afterAll(async () => {
  await scanner.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The real extxyz files three times over: about 6 MiB, several 2 MiB segments. */
function bigText(): Buffer {
  const files = readdirSync(realPath("extxyz")).sort().map((f) => readFileSync(path.join(realPath("extxyz"), f)));
  return Buffer.concat([...files, ...files, ...files]);
}

function mergeSummaries(parts: CandidateSummaries[]): CandidateSummaries {
  return {
    ids: parts.flatMap((p) => p.ids),
    natoms: parts.flatMap((p) => p.natoms),
    formulas: parts.flatMap((p) => p.formulas),
    projections: parts.flatMap((p) => p.projections),
    species: [...new Set(parts.flatMap((p) => p.species))].sort(),
  };
}

async function scanAll(file: string, trace?: ExtxyzReadTrace): Promise<{ summary: CandidateSummaries; batches: number; error: unknown }> {
  const parts: CandidateSummaries[] = [];
  try {
    for await (const batch of scanner.scan(file, trace)) parts.push(batch);
  } catch (error) {
    return { summary: mergeSummaries(parts), batches: parts.length, error };
  }
  return { summary: mergeSummaries(parts), batches: parts.length, error: undefined };
}

/** bigText() written to `name`, with its frames as the one-thread reader reads them and their species. */
async function bigFile(name: string): Promise<{ file: string; frames: Frame[]; species: string[] }> {
  const file = path.join(dir, name);
  writeFileSync(file, bigText());
  const frames: Frame[] = [];
  for await (const frame of readExtxyz(file)) frames.push(frame);
  return { file, frames, species: descriptorSpecies(frames) };
}

/** The summaries computed directly from parsed frames. */
function summarizeCandidates(frames: Frame[]): CandidateSummaries {
  return {
    ids: frames.map((f) => candidateId(f)),
    natoms: frames.map((f) => f.natoms),
    formulas: frames.map((f) => hillFormula(f.symbols)),
    projections: frames.flatMap((f) => Array.from(projectionsOf(f))),
    species: [...new Set(frames.flatMap((f) => f.symbols))].sort(),
  };
}

async function readOnOneThread(file: string): Promise<{ summary: CandidateSummaries; error: unknown }> {
  const frames: Frame[] = [];
  try {
    for await (const frame of readExtxyz(file)) frames.push(frame);
  } catch (error) {
    return { summary: summarizeCandidates(frames), error };
  }
  return { summary: summarizeCandidates(frames), error: undefined };
}

describe("ExtxyzScanner", () => {
  it("summarises every frame as the one-thread reader does, plain and gzipped", async () => {
    const text = bigText();
    expect(text.length).toBeGreaterThan(5 << 20);
    const plain = path.join(dir, "big.xyz");
    writeFileSync(plain, text);
    writeFileSync(`${plain}.gz`, gzipSync(text));
    const want = await readOnOneThread(plain);
    expect(want.error).toBeUndefined();
    expect(want.summary.ids.length).toBeGreaterThan(1500);
    for (const file of [plain, `${plain}.gz`]) {
      const trace = new ExtxyzReadTrace();
      const got = await scanAll(file, trace);
      expect(got.error).toBeUndefined();
      expect(got.batches).toBeGreaterThan(2);
      expect(got.summary).toEqual(want.summary);
      // The plain file's sha256 and frame ranges come from this one read; a gzipped file's do not.
      const last = want.summary.ids.length - 1;
      if (file === plain) {
        expect(trace.sha256).toBe(await sha256File(plain));
        const [first, end] = [trace.starts.range(0)!, trace.starts.range(last)!];
        expect([first.start, first.line, end.end]).toEqual([0, 1, text.length]);
      } else {
        expect(trace.sha256).toBeUndefined();
        expect(trace.starts.range(0)).toBeUndefined();
      }
    }
  });

  it("without projections (no labelled set), summarises as the one-thread reader does, with the native frame reader or without", async () => {
    const plain = path.join(dir, "big-no-projections.xyz");
    writeFileSync(plain, bigText());
    const want = { ...(await readOnOneThread(plain)).summary, projections: [] };
    const scanWithout = async (on: ExtxyzScanner): Promise<CandidateSummaries> => {
      const parts: CandidateSummaries[] = [];
      for await (const batch of on.scan(plain, undefined, false)) parts.push(batch);
      return mergeSummaries(parts);
    };
    // The workers read RELABEL_KERNELS when they start: these read with JavaScript alone.
    vi.stubEnv("RELABEL_KERNELS", "wasm");
    const javascriptOnly = ExtxyzScanner.open(2)!;
    vi.unstubAllEnvs();
    try {
      expect(await scanWithout(scanner)).toEqual(want);
      expect(await scanWithout(javascriptOnly)).toEqual(want);
    } finally {
      await javascriptOnly.close();
    }
  });

  it("gives the one-thread reader's error for a bad frame deep in the file, and reads the next file after it", async () => {
    const lines = bigText().toString("latin1").split("\n");
    // A broken number on an atom line about two thirds in (past the first segments).
    let k = Math.floor(lines.length * 0.66);
    while (!/^[A-Z][a-z]? +-?\d/.test(lines[k])) k++;
    lines[k] = lines[k].replace(/^(\S+ +)\S+/, "$1x0.5");
    const bad = path.join(dir, "bad.xyz");
    writeFileSync(bad, lines.join("\n"), "latin1");
    const want = await readOnOneThread(bad);
    expect(want.error).toBeInstanceOf(InputError);
    expect((want.error as Error).message).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${k + 1}: `));
    const got = await scanAll(bad);
    expect(got.error).toBeInstanceOf(InputError);
    expect((got.error as Error).message).toBe((want.error as Error).message);
    expect(got.summary.ids).toEqual(want.summary.ids.slice(0, got.summary.ids.length));

    const good = path.join(dir, "good.xyz");
    writeFileSync(good, readFileSync(realPath("extxyz/gpumd_nep_PbTe_train.xyz")));
    expect((await scanAll(good)).summary).toEqual((await readOnOneThread(good)).summary);
  });

  it("computes every frame's descriptors as computeDescriptors does on the one-thread reader's frames", async () => {
    const { file: plain, frames, species } = await bigFile("described.xyz");
    writeFileSync(`${plain}.gz`, gzipSync(readFileSync(plain)));
    for (const kind of ["baseline", "element-pairs"] as const) {
      const options: DescriptorOptions = { kind, species, rMax: 4, bins: 12 };
      const want = computeDescriptors(frames, options);
      for (const file of [plain, `${plain}.gz`]) {
        const parts: Float32Array[] = [];
        for await (const part of scanner.describe(file, options, "pool")) {
          expect(part.cols).toBe(want.cols);
          parts.push(part.data);
        }
        expect(parts.length).toBeGreaterThan(2);
        expect(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))).equals(Buffer.from(want.data.buffer))).toBe(true);
      }
    }
    // A frame that cannot be described (a species the columns lack, in the last segment) is named by its frame in
    // the file, as on one thread, as a StructureError (not a file that cannot be read).
    const xenon = path.join(dir, "xenon.xyz");
    writeFileSync(xenon, Buffer.concat([readFileSync(plain), Buffer.from('1\nLattice="5 0 0 0 5 0 0 0 5" pbc="T T T"\nXe 0 0 0\n')]));
    const withXenon: Frame[] = [];
    for await (const frame of readExtxyz(xenon)) withXenon.push(frame);
    const options: DescriptorOptions = { kind: "baseline", species };
    let oneThread = "";
    try {
      computeDescriptors(withXenon, options, withXenon.map((_, k) => ({ file: "pool", where: `frame ${k}` })));
    } catch (error) {
      oneThread = (error as Error).message;
    }
    expect(oneThread).toMatch(new RegExp(`^pool: frame ${frames.length}: species Xe is not among the descriptor species`));
    await expect(async () => {
      for await (const _ of scanner.describe(xenon, options, "pool"));
    }).rejects.toThrow(oneThread);
    await expect(async () => {
      for await (const _ of scanner.describe(xenon, options, "pool"));
    }).rejects.toBeInstanceOf(StructureError);
  });

  it("summarises and describes in one read, rows in their frames' species that place into the file's columns", async () => {
    const { file: plain, frames, species } = await bigFile("fused.xyz");
    for (const kind of ["baseline", "element-pairs"] as const) {
      const options: DescriptorOptions = { kind, species, rMax: 4, bins: 12 };
      const want = computeDescriptors(frames, options);
      const got = createFeatureMatrix(frames.length, want.cols);
      const summaries: CandidateSummaries[] = [];
      const blockSpecies = new Set<string>();
      let row = 0;
      for await (const { summary, described } of scanner.scanAndDescribe(plain, { kind, rMax: 4, bins: 12 }, "pool")) {
        summaries.push(summary);
        for (const block of described) {
          blockSpecies.add(block.species.join(","));
          placeDescriptorRows(block, got, row, options);
          row += block.rows;
        }
        expect(row).toBe(summaries.reduce((n, s) => n + s.ids.length, 0));
      }
      expect(mergeSummaries(summaries)).toEqual(summarizeCandidates(frames));
      // The real files have different species: blocks with fewer species than the file occur.
      expect(blockSpecies.size).toBeGreaterThan(1);
      expect(Buffer.from(got.data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
    }
    // A frame that cannot be described is named by its frame in the file.
    const noCell = path.join(dir, "no-cell.xyz");
    writeFileSync(noCell, Buffer.concat([readFileSync(plain), Buffer.from('1\nLattice="0 0 0 0 0 0 0 0 0" pbc="T T T"\nXe 0 0 0\n')]));
    const withBad: Frame[] = [];
    for await (const frame of readExtxyz(noCell)) withBad.push(frame);
    let oneThread = "";
    try {
      computeDescriptors(withBad, { kind: "baseline", species: descriptorSpecies(withBad) }, withBad.map((_, k) => ({ file: "pool", where: `frame ${k}` })));
    } catch (error) {
      oneThread = (error as Error).message;
    }
    expect(oneThread).toMatch(new RegExp(`^pool: frame ${frames.length}: `));
    await expect(async () => {
      for await (const _ of scanner.scanAndDescribe(noCell, { kind: "baseline" }, "pool"));
    }).rejects.toThrow(oneThread);
    await expect(async () => {
      for await (const _ of scanner.scanAndDescribe(noCell, { kind: "baseline" }, "pool"));
    }).rejects.toBeInstanceOf(StructureError);
  });

  it("names a missing file as the one-thread reader does", async () => {
    const missing = path.join(dir, "missing.xyz");
    const got = await scanAll(missing);
    expect(got.error).toBeInstanceOf(InputError);
    expect((got.error as Error).message).toBe(((await readOnOneThread(missing)).error as Error).message);
  });
});
