import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { assignSplits, parseFractions, splitDraw, splitOfDraw, testMembershipFingerprint } from "../../../src/core/dataset/split.js";

const F = { train: 0.8, valid: 0.1, test: 0.1 };

describe("parseFractions", () => {
  it("reads three fractions", () => {
    expect(parseFractions("0.7, 0.2,0.1")).toEqual({ train: 0.7, valid: 0.2, test: 0.1 });
    expect(parseFractions("1,0,0")).toEqual({ train: 1, valid: 0, test: 0 });
  });

  it.each([
    ["0.8,0.2", /three comma-separated/],
    ["0.8,0.1,0.2", /sum to 1/],
    ["0.8,-0.1,0.3", /non-negative/],
    ["0.8,,0.2", /non-negative/],
    ["a,b,c", /non-negative/],
    ["0,0.5,0.5", /train fraction must be above 0/],
  ])("refuses %s", (text, why) => {
    expect(() => parseFractions(text)).toThrow(why);
  });
});

describe("splitDraw", () => {
  it("is the first 52 bits of sha256('<run id>\\n<seed>') over 2^52", () => {
    const hex = createHash("sha256").update("batch1/TiO\n7").digest("hex");
    expect(splitDraw("batch1/TiO", 7)).toBe(Number(BigInt(`0x${hex}`) >> 204n) / 2 ** 52);
  });

  it("depends on the seed and spreads runs in proportion to the fractions", () => {
    expect(splitDraw("run", 0)).not.toBe(splitDraw("run", 1));
    const counts = { train: 0, valid: 0, test: 0 };
    for (let i = 0; i < 20000; i++) counts[splitOfDraw(splitDraw(`runs/r${i}`, 3), F)]++;
    // Binomial standard deviation of the train count is sqrt(20000 * 0.8 * 0.2) = 57; allow 5 of them.
    expect(Math.abs(counts.train - 16000)).toBeLessThan(285);
    expect(Math.abs(counts.valid - 2000)).toBeLessThan(5 * Math.sqrt(20000 * 0.1 * 0.9));
    expect(Math.abs(counts.test - 2000)).toBeLessThan(5 * Math.sqrt(20000 * 0.1 * 0.9));
  });
});

describe("splitOfDraw", () => {
  it("compares the draw with the cumulative fractions", () => {
    expect(splitOfDraw(0, F)).toBe("train");
    expect(splitOfDraw(0.7999, F)).toBe("train");
    expect(splitOfDraw(0.8, F)).toBe("valid");
    expect(splitOfDraw(0.8999, F)).toBe("valid");
    expect(splitOfDraw(0.9, F)).toBe("test");
    expect(splitOfDraw(0.9999, F)).toBe("test");
  });

  it("with the test set closed, spreads test draws over train and valid and leaves the others", () => {
    expect(splitOfDraw(0.5, F, true)).toBe("train");
    expect(splitOfDraw(0.85, F, true)).toBe("valid");
    // 0.95 -> (0.95 - 0.9) / 0.1 * 0.9 = 0.45 -> train; 0.995 -> 0.855 -> valid
    expect(splitOfDraw(0.95, F, true)).toBe("train");
    expect(splitOfDraw(0.995, F, true)).toBe("valid");
  });
});

describe("assignSplits", () => {
  const ids = Array.from({ length: 60 }, (_, i) => `campaign/run${i}`);

  it("never moves a run when other runs are added, whatever their order", () => {
    const before = assignSplits(ids.slice(0, 30), null, 0, F, true);
    const after = assignSplits([...ids].reverse(), null, 0, F, true);
    for (const [id, a] of before) expect(after.get(id)).toEqual(a);
  });

  it("keeps previous assignments over the draw and closes test to new runs when asked", () => {
    const previous = new Map([[ids[0], "test" as const], [ids[1], "valid" as const]]);
    const got = assignSplits(ids, previous, 0, F, false);
    expect(got.get(ids[0])).toMatchObject({ split: "test", origin: "previous" });
    expect(got.get(ids[1])).toMatchObject({ split: "valid", origin: "previous" });
    const newTest = ids.slice(2).filter((id) => got.get(id)!.split === "test");
    expect(newTest).toEqual([]);
    // With test open, the same draws put some of the 58 new runs in test.
    const open = assignSplits(ids, previous, 0, F, true);
    expect(ids.slice(2).filter((id) => open.get(id)!.split === "test").length).toBeGreaterThan(0);
    for (const id of ids.slice(2)) expect(got.get(id)!.draw).toBe(splitDraw(id, 0));
  });
});

describe("testMembershipFingerprint", () => {
  it("hashes the sorted test run ids one per line", () => {
    const expected = createHash("sha256").update("a\nc/d\n").digest("hex");
    expect(testMembershipFingerprint({ "c/d": "test", b: "train", a: "test", e: "valid" })).toBe(expected);
    expect(testMembershipFingerprint({ a: "test", "c/d": "test" })).toBe(expected);
  });
});
