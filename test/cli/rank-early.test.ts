import { describe, expect, it } from "vitest";
import { selectsWhileReading } from "../../src/cli/commands/rank-early.js";

describe("rank's selection thread booted before the command loads", () => {
  it("is booted for a feature matrix and nothing the selection needs from the pool first", () => {
    expect(selectsWhileReading(["--pool", "p.xyz", "--features", "f.npy", "--select", "5", "-o", "out"])).toBe(true);
    expect(selectsWhileReading(["--features=f.npy", "--pool", "p.xyz"])).toBe(true);
    expect(selectsWhileReading(["--pool", "p.xyz", "--select", "5", "-o", "out"])).toBe(false);
    // Per-structure features read from the pool are another option, not --features.
    expect(selectsWhileReading(["--pool", "p.xyz", "--features-key", "mace"])).toBe(false);
    // One thread reads the pool and then selects.
    expect(selectsWhileReading(["--features", "f.npy", "--threads", "1"])).toBe(false);
    expect(selectsWhileReading(["--features", "f.npy", "--threads=1"])).toBe(false);
    expect(selectsWhileReading(["--features", "f.npy", "--threads", "2"])).toBe(true);
    for (const first of [["--labeled", "l.xyz"], ["--committee", "a.xyz", "b.xyz"], ["--committee-keys", "m"], ["--force-trust", "0.1:0.3"], ["--help"], ["-h"], ["--labeled=l.xyz"]]) {
      expect(selectsWhileReading(["--pool", "p.xyz", "--features", "f.npy", ...first]), first.join(" ")).toBe(false);
    }
  });
});
