import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Frame, Pbc } from "../../../src/core/structure.js";
import { CANDIDATE_ID_LENGTH, candidateId, firstOccurrences } from "../../../src/core/select/candidate-id.js";
import { seededRandom } from "./fps-oracle.js";

function frame(symbols: string[], positions: number[], cell: number[], pbc: Pbc = [true, true, true]): Frame {
  return { natoms: symbols.length, symbols, positions: Float64Array.from(positions), cell: Float64Array.from(cell), pbc, info: new Map(), arrays: new Map() };
}

const cell = [4.05, 0, 0, 0, 4.05, 0, 0, 0, 4.05];
const water = frame(["O", "H", "H"], [0, 0, 0, 0.9572, 0, 0, -0.23999, 0.92663, 0], cell);

describe("candidate ids", () => {
  it("is the documented sha256 prefix of the canonical text", () => {
    const text = [
      "relabel-candidate-v1", "3", "O,H,H", "TTT",
      "4050000 0 0 0 4050000 0 0 0 4050000",
      "0 0 0 957200 0 0 -239990 926630 0",
    ].join("\n");
    expect(candidateId(water)).toBe(createHash("sha256").update(text).digest("hex").slice(0, 20));
    expect(CANDIDATE_ID_LENGTH).toBe(20);
  });

  it("writes every number as the canonical text does, including huge, tiny and negative values", () => {
    const canonical = (f: Frame): string => {
      const micro = (v: Float64Array): string => Array.from(v, (x) => String(Math.round(x * 1e6) || 0)).join(" ");
      const text = ["relabel-candidate-v1", String(f.natoms), f.symbols.join(","), f.pbc.map((p) => (p ? "T" : "F")).join(""), micro(f.cell), micro(f.positions)].join("\n");
      return createHash("sha256").update(text).digest("hex").slice(0, 20);
    };
    const odd = frame(
      ["Å", "H", "Og"],
      [-1e300, 9.007199254740993e9, -0.0000004, 0.0000005, -0.0000005, 123456.7890125, 1e-300, -7e15, 2.5e-7],
      [1e21, -3.3e20, 0, 1, -1, 0.4999999, 5e-7, -5e-7, 4.05],
      [false, true, false],
    );
    expect(candidateId(odd)).toBe(canonical(odd));
    // Every number at its longest spelling (24 bytes with the sign), in a frame larger than any before.
    const longest = frame(Array(200).fill("Zr"), Array(600).fill(-1.2345678901234567e300), Array(9).fill(-1.2345678901234567e300));
    expect(String(Math.round(longest.positions[0] * 1e6))).toHaveLength(24);
    expect(candidateId(longest)).toBe(canonical(longest));
    const random = seededRandom(31);
    for (let k = 0; k < 200; k++) {
      const n = 1 + Math.floor(random() * 20);
      const f = frame(Array.from({ length: n }, () => "Zr"), Array.from({ length: 3 * n }, () => (random() - 0.5) * 10 ** Math.floor(random() * 12 - 4)), cell);
      expect(candidateId(f)).toBe(canonical(f));
    }
  });

  it("does not depend on the frame's position in a file, info, per-atom arrays or float noise below 5e-7 A", () => {
    const others = [frame(["Cu"], [0, 0, 0], cell), frame(["Zr", "O"], [0, 0, 0, 1, 1, 1], cell)];
    const forward = [water, ...others].map(candidateId);
    const reordered = [others[1], water, others[0]].map(candidateId);
    expect(reordered).toEqual([forward[2], forward[0], forward[1]]);
    expect(new Set(forward).size).toBe(3);
    const noisy = frame(["O", "H", "H"], [1e-7, -2e-7, 0, 0.95720004, 0, -1e-9, -0.23999, 0.92663, 3e-7], cell);
    noisy.info.set("REF_energy", { kind: "float", value: -14.2 });
    noisy.arrays.set("REF_forces", { dtype: "R", ncols: 3, data: new Float64Array(9) });
    expect(candidateId(noisy)).toBe(candidateId(water));
  });

  it("treats -0 like 0", () => {
    const negativeZero = frame(["O", "H", "H"], [-0, -0, 0, 0.9572, -0, 0, -0.23999, 0.92663, -1e-9], cell);
    expect(candidateId(negativeZero)).toBe(candidateId(water));
  });

  it("changes with positions, species, atom order, cell and pbc", () => {
    const id = candidateId(water);
    expect(candidateId(frame(["O", "H", "H"], [0, 0, 0, 0.9572, 0, 0, -0.23999, 0.92663, 2e-6], cell))).not.toBe(id);
    expect(candidateId(frame(["O", "H", "F"], [0, 0, 0, 0.9572, 0, 0, -0.23999, 0.92663, 0], cell))).not.toBe(id);
    expect(candidateId(frame(["H", "O", "H"], [0.9572, 0, 0, 0, 0, 0, -0.23999, 0.92663, 0], cell))).not.toBe(id);
    expect(candidateId(frame(["O", "H", "H"], [0, 0, 0, 0.9572, 0, 0, -0.23999, 0.92663, 0], [4.06, 0, 0, 0, 4.05, 0, 0, 0, 4.05]))).not.toBe(id);
    expect(candidateId(frame(["O", "H", "H"], [0, 0, 0, 0.9572, 0, 0, -0.23999, 0.92663, 0], cell, [true, true, false]))).not.toBe(id);
    // The text's header is kept from one frame to the next only while it is the same.
    expect(candidateId(water)).toBe(id);
  });

  it("finds the first candidate of each id", () => {
    expect(Array.from(firstOccurrences(["a", "b", "a", "c", "b", "a"]))).toEqual([0, 1, 0, 3, 1, 0]);
    expect(firstOccurrences([])).toHaveLength(0);
    // Ids that share an 8-digit prefix, ids that are not hex (c0, c1, ...), and many ids: the same answer as a Map gives.
    const random = seededRandom(5);
    const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join("");
    const prefixes = Array.from({ length: 50 }, () => hex(8));
    const distinct = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? prefixes[i % 50] + hex(12) : i % 3 === 1 ? `c${i}` : hex(20)));
    const ids = Array.from({ length: 20000 }, () => distinct[Math.floor(random() * distinct.length)]);
    const byMap = new Map<string, number>();
    const want = ids.map((id, i) => (byMap.has(id) ? byMap.get(id)! : (byMap.set(id, i), i)));
    expect(Array.from(firstOccurrences(ids))).toEqual(want);
  });
});
