import { describe, expect, it } from "vitest";
import { ByteWriter } from "../../src/core/byte-writer.js";

const decoded = (w: ByteWriter): string => Buffer.from(w.view()).toString("utf8");

describe("byte writer", () => {
  it("spells numbers as String() does, -0 as 0", () => {
    const values = [0, -0, 7, -7, 9, 10, 99, 100, 12345, 2 ** 31 - 1, -(2 ** 31 - 1), 2 ** 31, -(2 ** 31), 1e21, -1.5e300, 0.1, 1 / 3, -2.5e-7, NaN, Infinity, -Infinity];
    for (const v of values) {
      const w = new ByteWriter(4);
      w.number(v);
      expect(decoded(w)).toBe(String(v));
    }
  });

  it("spells every digit count of an integer, on both sides of each power of ten", () => {
    for (let power = 1; power <= 1e9; power *= 10) {
      for (const v of [power - 1, power, power + 1, 2 * power - 1, 9 * power, -(power - 1), -power, -(power + 1)]) {
        const w = new ByteWriter(4);
        w.number(v);
        expect(decoded(w)).toBe(String(v));
      }
    }
  });

  it("appends a range of another buffer's bytes, growing as needed", () => {
    const source = Buffer.from("index,id,source,");
    const w = new ByteWriter(2);
    w.appendRange(source, 6, 9);
    w.appendRange(source, 0, 0);
    w.appendRange(source, 0, 6);
    expect(decoded(w)).toBe("id,index,");
  });

  it("writes ASCII and other text as UTF-8, growing as needed", () => {
    const w = new ByteWriter(2);
    for (const s of ["pool.xyz", "pööl/Å₂.xyz", "", "a,b"]) w.text(s);
    w.byte(10);
    expect(decoded(w)).toBe("pool.xyzpööl/Å₂.xyza,b\n");
    const taken = w.take();
    expect(Buffer.from(taken).toString("utf8")).toBe("pool.xyzpööl/Å₂.xyza,b\n");
    expect(w.length).toBe(0);
    w.text("x");
    expect(Buffer.from(taken).toString("utf8")).toBe("pool.xyzpööl/Å₂.xyza,b\n");
  });
});
