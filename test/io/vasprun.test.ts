import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import type { VaspStep, VaspSummary } from "../../src/core/vasp/types.js";
import { parseVasprun } from "../../src/core/vasp/vasprun.js";
import { readVasprun } from "../../src/io/vasprun.js";
import { realPath } from "../helpers/real-data.js";

const work = mkdtempSync(path.join(tmpdir(), "relabel-vasprun-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function collect(file: string): Promise<{ steps: VaspStep[]; summary: VaspSummary }> {
  const gen = readVasprun(file);
  const steps: VaspStep[] = [];
  for (;;) {
    const next = await gen.next();
    if (next.done) return { steps, summary: next.value };
    steps.push(next.value);
  }
}

async function failure(file: string): Promise<InputError> {
  try {
    await collect(file);
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error("expected an InputError");
}

const FEO = realPath("vasp/custodian_postprocess_FeO_relax_isif3/vasprun.xml");

describe("readVasprun", () => {
  it("streams the same steps and summary as parsing the whole file", async () => {
    const expected = parseVasprun(readFileSync(FEO), FEO);
    const got = await collect(FEO);
    expect(got.steps.length).toBe(28);
    expect(got.steps).toEqual(expected.steps);
    expect(got.summary).toEqual(expected.summary);
  });

  it("reads gzip-compressed files, by name or by magic bytes", async () => {
    const rel = realPath("vasp/aiidavasp_Si_relax_killed_sigterm/vasprun.xml");
    const expected = parseVasprun(readFileSync(rel), rel);
    for (const name of ["vasprun.xml.gz", "vasprun-gzipped.xml"]) {
      const file = path.join(work, name);
      writeFileSync(file, gzipSync(readFileSync(rel)));
      const got = await collect(file);
      expect(got.steps).toEqual(expected.steps);
      expect(got.summary.truncated).toBe(expected.summary.truncated);
      expect(got.summary.file).toBe(file);
    }
  });

  it("treats a gzip stream cut short as a truncated file and keeps the steps read", async () => {
    const file = path.join(work, "cut.xml.gz");
    const gz = gzipSync(readFileSync(FEO));
    writeFileSync(file, gz.subarray(0, Math.floor(gz.length / 2)));
    const full = parseVasprun(readFileSync(FEO), FEO).steps;
    const got = await collect(file);
    expect(got.steps.length).toBeGreaterThan(0);
    expect(got.steps.length).toBeLessThan(28);
    expect(got.steps).toEqual(full.slice(0, got.steps.length));
    expect(got.summary.truncated).toMatch(/^line \d+, /);
  });

  it("names the file when it cannot be read or is not vasprun.xml", async () => {
    const missing = path.join(work, "nope", "vasprun.xml");
    expect((await failure(missing)).message).toBe(`${missing}: no such file`);
    expect((await failure(work)).message).toMatch(new RegExp(`^${work}: is a directory, expected a vasprun\\.xml file$`));
    const outcar = realPath("vasp/dpdata_h2o_md10/OUTCAR");
    expect((await failure(outcar)).message).toMatch(new RegExp(`^${outcar}:1: not a vasprun\\.xml`));
  });
});
