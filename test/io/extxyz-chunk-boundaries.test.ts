/**
 * Files whose frames straddle the 1 MiB read chunks: the streaming reader must give what the whole-buffer parser
 * gives, frames and errors alike, including a bad frame cut by a chunk boundary.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import { ExtxyzParser, parseExtxyz, type ExtxyzFrameAt } from "../../src/core/formats/extxyz.js";
import { readExtxyzWithLines } from "../../src/io/extxyz.js";

const dir = mkdtempSync(path.join(tmpdir(), "relabel-extxyz-chunks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MIB = 1 << 20;

/** About 2.4 MiB of 24-atom frames. */
function frames(): string[] {
  const out: string[] = [];
  for (let k = 0; k < 2400; k++) {
    const lines = Array.from({ length: 24 }, (_, a) => `${a % 3 ? "O" : "Si"} ${k}.${a} ${-a}.25 ${(a * k) % 97}.125 0.0${a} -1.5e-3 ${a}`);
    out.push(`24\nLattice="9 0 0 0 9 0 0 0 9" Properties=species:S:1:pos:R:3:forces:R:3 energy=-${k}.5 stress="0.1 0.2 0.3 0 0 0" pbc="T T T"\n${lines.join("\n")}\n`);
  }
  return out;
}

async function read(file: string): Promise<{ lines: number[]; energies: unknown[]; error: unknown }> {
  const lines: number[] = [];
  const energies: unknown[] = [];
  try {
    for await (const { frame, line } of readExtxyzWithLines(file)) {
      lines.push(line);
      energies.push(frame.info.get("energy"));
    }
  } catch (error) {
    return { lines, energies, error };
  }
  return { lines, energies, error: undefined };
}

/** What the parser gives for the whole text in one buffer: the frames before the first error, and its message. */
function wholeBuffer(text: string): { lines: number[]; energies: unknown[]; message: string | undefined } {
  const parser = new ExtxyzParser("x");
  const got: ExtxyzFrameAt[] = [];
  let message: string | undefined;
  try {
    got.push(...parser.push(Buffer.from(text)));
    got.push(...parser.end());
  } catch (err) {
    message = (err as Error).message;
  }
  return { lines: got.map((f) => f.line), energies: got.map((f) => f.frame.info.get("energy")), message };
}

describe("extxyz frames across 1 MiB chunks", () => {
  it("reads every frame, plain and gzipped, whatever falls on the chunk boundaries", async () => {
    const text = frames().join("");
    expect(text.length).toBeGreaterThan(2 * MIB);
    const want = parseExtxyz(text);
    const plain = path.join(dir, "all.xyz");
    writeFileSync(plain, text);
    writeFileSync(`${plain}.gz`, gzipSync(text));
    for (const file of [plain, `${plain}.gz`]) {
      const got = await read(file);
      expect(got.error).toBeUndefined();
      expect(got.lines).toEqual(want.map((f) => f.line));
      expect(got.energies).toEqual(want.map((f) => f.frame.info.get("energy")));
    }
  });

  it("yields every frame before a bad frame cut by a chunk boundary, then the error the whole file gives", async () => {
    const parts = frames();
    for (const [k, boundary] of [[0, MIB], [1, 2 * MIB]] as const) {
      // The frame holding byte `boundary`, with its last force column broken on the line that holds that byte.
      let offset = 0;
      let f = 0;
      while (offset + parts[f].length <= boundary) offset += parts[f++].length;
      const broken = [...parts];
      const at = boundary - offset;
      const lineStart = broken[f].lastIndexOf("\n", at - 1) + 1;
      const lineEnd = broken[f].indexOf("\n", at);
      broken[f] = `${broken[f].slice(0, lineStart)}${broken[f].slice(lineStart, lineEnd).replace(/ \S+$/, " x1")}${broken[f].slice(lineEnd)}`;
      const text = broken.join("");
      const file = path.join(dir, `bad${k}.xyz`);
      writeFileSync(file, text);
      const got = await read(file);
      const want = wholeBuffer(text);
      expect(got.error).toBeInstanceOf(InputError);
      expect(want.message).toMatch(/column 7 \(forces\[2\]\): expected a real number, found "x1"/);
      expect((got.error as Error).message).toBe(`${file}:${want.message?.slice(2)}`);
      expect(got.lines).toEqual(want.lines);
      expect(got.lines).toHaveLength(f);
      expect(got.energies).toEqual(want.energies);
    }
  });
});
