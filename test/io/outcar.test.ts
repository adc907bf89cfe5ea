import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import { parseOutcar } from "../../src/core/vasp/outcar.js";
import type { VaspStep, VaspSummary } from "../../src/core/vasp/types.js";
import { readOutcar } from "../../src/io/outcar.js";
import { realPath } from "../helpers/real-data.js";

async function collect(file: string, species?: string[]): Promise<{ steps: VaspStep[]; summary: VaspSummary }> {
  const gen = readOutcar(file, { species });
  const steps: VaspStep[] = [];
  for (let r = await gen.next(); ; r = await gen.next()) {
    if (r.done) return { steps, summary: r.value };
    steps.push(r.value);
  }
}

const KEY = "vasp/custodian_postprocess_FeO_relax_isif3/OUTCAR";
const dir = mkdtempSync(path.join(tmpdir(), "relabel-outcar-"));

describe("readOutcar", () => {
  it("streams the same steps and summary as the in-memory parser", async () => {
    const file = realPath(KEY);
    const expected = parseOutcar(readFileSync(file, "latin1"), { file });
    expect(await collect(file)).toEqual(expected);
  });

  it("reads a gzipped OUTCAR (recognised by its magic bytes, whatever its name)", async () => {
    const plain = realPath(KEY);
    const expected = parseOutcar(readFileSync(plain, "latin1"), { file: plain });
    for (const name of ["OUTCAR.gz", "OUTCAR"]) {
      const gz = path.join(dir, name);
      writeFileSync(gz, gzipSync(readFileSync(plain)));
      const got = await collect(gz);
      expect(got.steps).toEqual(expected.steps);
      expect(got.summary).toEqual({ ...expected.summary, file: gz });
    }
  });

  it("passes the species hint through", async () => {
    const text = readFileSync(new URL("../fixtures/outcar/GaAs_two_steps.OUTCAR", import.meta.url), "latin1");
    const file = path.join(dir, "OUTCAR_no_potcar");
    writeFileSync(file, text.split("\n").filter((l) => !l.includes("POTCAR:") && !l.includes("TITEL")).join("\n"));
    expect((await collect(file, ["Ga", "As"])).summary.symbols).toEqual(["Ga", "As"]);
    await expect(collect(file)).rejects.toThrow(InputError);
  });

  it("reports a missing file and a corrupt gzip as InputError", async () => {
    const missing = path.join(dir, "nope", "OUTCAR");
    await expect(collect(missing)).rejects.toThrow(`${missing}: no such file`);
    const corrupt = path.join(dir, "corrupt.gz");
    const gz = gzipSync(readFileSync(realPath(KEY)));
    writeFileSync(corrupt, Buffer.concat([gz.subarray(0, 2000), Buffer.alloc(2000, 7)]));
    await expect(collect(corrupt)).rejects.toThrow(new RegExp(`^${corrupt.replace(/[.]/g, "\\.")}: broken gzip data: `));
  });
});
