import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import type { VaspStep } from "../../../src/core/vasp/types.js";
import { parsePoscar } from "../../../src/core/vasp/poscar.js";
import { XdatcarParser } from "../../../src/core/vasp/xdatcar.js";
import { readRun } from "../../../src/io/rundir.js";
import { realPath } from "../../helpers/real-data.js";
import { fractional, xdatcarText } from "../../helpers/xdatcar.js";

function parse(text: string, chunk = text.length): ReturnType<XdatcarParser["end"]> {
  const parser = new XdatcarParser("XDATCAR");
  const frames = [];
  for (let at = 0; at < text.length; at += chunk) frames.push(...parser.push(text.slice(at, at + chunk)));
  const last = parser.end();
  return { frames: [...frames, ...last.frames], truncated: last.truncated };
}

describe("XdatcarParser", () => {
  let npt: VaspStep[];
  beforeAll(async () => {
    // custodian_npt_common_LiPS_md_npt: ten steps of NpT MD (84 atoms), whose cell changes from step to step.
    npt = [];
    for await (const step of readRun(realPath("vasp/custodian_npt_common_LiPS_md_npt"))) npt.push(step);
  });

  it("reads the real XDATCAR of a VASP run: its one step is the run's POSCAR", () => {
    const dir = realPath("vasp/custodian_lobster_NaCl_static");
    const { frames, truncated } = parse(readFileSync(path.join(dir, "XDATCAR"), "latin1"));
    const poscar = parsePoscar(readFileSync(path.join(dir, "POSCAR"), "utf8"), { file: "POSCAR" }).frame;
    expect(truncated).toBeNull();
    expect(frames).toHaveLength(1);
    expect(frames[0].symbols).toEqual(poscar.symbols);
    frames[0].positions.forEach((x, i) => expect(x).toBeCloseTo(poscar.positions[i], 5));
    frames[0].cell.forEach((x, i) => expect(x).toBeCloseTo(poscar.cell[i], 5));
  });

  it("reads every step, with the header once or before each step (the cell changing), in any chunks", () => {
    expect(npt).toHaveLength(10);
    expect(new Set(npt.map((s) => s.cell[0])).size).toBeGreaterThan(1);
    for (const variableCell of [false, true]) {
      const text = xdatcarText(npt, variableCell);
      for (const chunk of [text.length, 4096, 7]) {
        const { frames, truncated } = parse(text, chunk);
        expect(truncated).toBeNull();
        expect(frames).toHaveLength(10);
        frames.forEach((frame, k) => {
          const cell = variableCell ? npt[k].cell : npt[0].cell;
          // The cell printed with 6 decimals, the fractional coordinates with 8: within a few 1e-6 A.
          frame.cell.forEach((x, i) => expect(Math.abs(x - cell[i])).toBeLessThan(1e-6));
          expect(frame.symbols).toEqual(npt[k].symbols);
          // With the header once, each step's fractional coordinates are read in the first step's cell.
          const expected = fractional(npt[k].cell, npt[k].positions).flatMap((f) => [0, 1, 2].map((j) => f[0] * cell[j] + f[1] * cell[3 + j] + f[2] * cell[6 + j]));
          frame.positions.forEach((x, i) => expect(Math.abs(x - expected[i])).toBeLessThan(5e-6));
        });
      }
    }
  });

  it("keeps the steps before a cut, and says where it was cut", () => {
    const text = xdatcarText(npt, true);
    const lines = text.split("\n");
    // Steps take 8 + 84 lines each: cut 40 positions into step 3.
    const cut = lines.slice(0, 2 * 92 + 8 + 40).join("\n") + "\n";
    const { frames, truncated } = parse(cut);
    expect(frames).toHaveLength(2);
    expect(truncated).toBe(`line ${2 * 92 + 8 + 40}: the file ends inside step 3 (40 of 84 positions; dropped)`);
    expect(parse(lines.slice(0, 2 * 92 + 3).join("\n")).truncated).toBe(`line ${2 * 92 + 3}: the file ends inside the header of step 3`);
  });

  it("names the XDATCAR's own line of a bad value, and refuses a file without configurations", () => {
    const lines = xdatcarText(npt, true).split("\n");
    lines[92 + 8 + 4] = "  0.1  zero  0.3";
    expect(() => parse(lines.join("\n"))).toThrow(new RegExp(`^XDATCAR:${92 + 8 + 5}: step 2: `));
    const counts = xdatcarText(npt, false).split("\n");
    counts[6] = "  Li P S";
    expect(() => parse(counts.join("\n"))).toThrow('XDATCAR:7: expected the atom counts before the configuration line, found "  Li P S"');
    expect(() => parse("Si\n1.0\n")).toThrow(InputError);
    expect(() => parse("Si\n1.0\n")).toThrow("XDATCAR: no configuration found");
  });
});
