import { describe, expect, it } from "vitest";
import { InputError, UsageError } from "../../../src/core/errors.js";
import {
  committeeDisagreement,
  disagreementRange,
  normaliseDisagreement,
  DEFAULT_TRUST_EXCLUSION,
  excludedByTrust,
  parseTrustExclusion,
  parseTrustWindow,
  TRUST_ACCURATE,
  TRUST_CANDIDATE,
  TRUST_SUSPECT,
  trustLevels,
} from "../../../src/core/select/disagreement.js";

const candidates = { natoms: [2, 1], ids: ["a", "b"] };

describe("energy disagreement", () => {
  it("is the population std of the energy per atom (hand computed)", () => {
    // Candidate a, 2 atoms: -10, -10.2, -9.8 eV -> -5, -5.1, -4.9 eV/atom; std = sqrt(0.02 / 3).
    // Candidate b, 1 atom: -3, -3, -3 -> 0.
    const members = [
      { source: "m1.xyz", energies: [-10, -3] },
      { source: "m2.xyz", energies: [-10.2, -3] },
      { source: "m3.xyz", energies: [-9.8, -3] },
    ];
    const raw = committeeDisagreement(members, "energy", candidates);
    expect(raw[0]).toBeCloseTo(Math.sqrt(0.02 / 3), 12);
    expect(raw[1]).toBe(0);
  });
});

describe("force disagreement (DP-GEN)", () => {
  it("is the largest per-atom sqrt(mean |F - <F>|^2) (hand computed)", () => {
    // Candidate a, atom 1: (1,0,0) and (0,1,0): mean (0.5,0.5,0), each deviation^2 = 0.5 -> sqrt(0.5).
    // Atom 2: (0,0,2) and (0,0,1): deviations 0.5^2 -> 0.5. Max: sqrt(0.5).
    // Candidate b: (3,0,0) and (0,0,-1): mean (1.5,0,-0.5), deviation^2 = 2.25 + 0.25 = 2.5 -> sqrt(2.5).
    const members = [
      { source: "m1.xyz", forces: [[1, 0, 0, 0, 0, 2], [3, 0, 0]] },
      { source: "m2.xyz", forces: [[0, 1, 0, 0, 0, 1], [0, 0, -1]] },
    ];
    const raw = committeeDisagreement(members, "force", candidates);
    expect(raw[0]).toBeCloseTo(Math.sqrt(0.5), 12);
    expect(raw[1]).toBeCloseTo(Math.sqrt(2.5), 12);
  });
});

describe("committee errors", () => {
  it("refuses a committee of one", () => {
    expect(() => committeeDisagreement([{ source: "only.xyz", energies: [1, 2] }], "energy", candidates)).toThrow(UsageError);
    expect(() => committeeDisagreement([{ source: "only.xyz", energies: [1, 2] }], "energy", candidates)).toThrow(/at least 2 models.*only\.xyz/);
  });

  it("names the member whose prediction count does not match the candidates", () => {
    const members = [
      { source: "m1.xyz", energies: [1, 2] },
      { source: "m2.xyz", energies: [1, 2, 3] },
    ];
    expect(() => committeeDisagreement(members, "energy", candidates)).toThrow(InputError);
    expect(() => committeeDisagreement(members, "energy", candidates)).toThrow("m2.xyz: has 3 predictions, expected 2 (one per candidate, in candidate order)");
  });

  it("names the member and candidate of a missing energy or a force array of the wrong size", () => {
    const energies = [
      { source: "m1.xyz", energies: [1, 2] },
      { source: "m2.xyz", energies: [1, NaN] },
    ];
    expect(() => committeeDisagreement(energies, "energy", candidates)).toThrow("m2.xyz: candidate 1 (b): predicted energy is NaN");
    const forces = [
      { source: "m1.xyz", forces: [[0, 0, 0, 0, 0, 0], [0, 0, 0]] },
      { source: "m2.xyz", forces: [[0, 0, 0], [0, 0, 0]] },
    ];
    expect(() => committeeDisagreement(forces, "force", candidates)).toThrow("m2.xyz: candidate 0 (a): has 1 force vectors, expected 2");
    expect(() => committeeDisagreement(energies, "force", candidates)).toThrow("m1.xyz: has no predicted forces");
  });
});

describe("trust window and normalisation", () => {
  it("parses LO:HI and refuses bad windows", () => {
    expect(parseTrustWindow("0.05:0.3")).toEqual({ lo: 0.05, hi: 0.3 });
    expect(parseTrustWindow("0:inf")).toEqual({ lo: 0, hi: Infinity });
    for (const bad of ["0.3:0.05", "0.1", "a:b", "-1:2", "0.2:0.2"]) expect(() => parseTrustWindow(bad)).toThrow(UsageError);
  });

  it("flags accurate below LO and suspect at or above HI", () => {
    const levels = trustLevels(Float64Array.of(0.01, 0.05, 0.2, 0.3, 0.9), { lo: 0.05, hi: 0.3 });
    expect(Array.from(levels)).toEqual([TRUST_ACCURATE, TRUST_CANDIDATE, TRUST_CANDIDATE, TRUST_SUSPECT, TRUST_SUSPECT]);
  });

  it("excludes the chosen trust levels: both by default, either, or none", () => {
    const levels = trustLevels(Float64Array.of(0.01, 0.1, 0.5), { lo: 0.05, hi: 0.3 });
    expect(parseTrustExclusion("accurate,suspect")).toEqual(DEFAULT_TRUST_EXCLUSION);
    expect(parseTrustExclusion("suspect, accurate")).toEqual(["accurate", "suspect"]);
    expect(Array.from(excludedByTrust(levels, DEFAULT_TRUST_EXCLUSION))).toEqual([1, 0, 1]);
    expect(Array.from(excludedByTrust(levels, parseTrustExclusion("accurate")))).toEqual([1, 0, 0]);
    expect(Array.from(excludedByTrust(levels, parseTrustExclusion("suspect")))).toEqual([0, 0, 1]);
    expect(Array.from(excludedByTrust(levels, parseTrustExclusion("none")))).toEqual([0, 0, 0]);
    for (const bad of ["", "both", "accurate,accurate", "none,suspect", "candidate"]) {
      expect(() => parseTrustExclusion(bad)).toThrow(`trust levels to exclude "${bad}" are not accurate, suspect, both (accurate,suspect) or none`);
    }
  });

  it("for uwfps divides by the largest of the counted candidates, ones when constant (zero included)", () => {
    expect(Array.from(normaliseDisagreement(Float64Array.of(2, 4, 3), undefined, "max"))).toEqual([0.5, 1, 0.75]);
    expect(Array.from(normaliseDisagreement(Float64Array.of(0, 0, 0), undefined, "max"))).toEqual([1, 1, 1]);
    expect(Array.from(normaliseDisagreement(Float64Array.of(7, 7, 7), undefined, "max"))).toEqual([1, 1, 1]);
    // A candidate left out of the range (labelled, say) neither sets it nor escapes the clamp.
    expect(Array.from(normaliseDisagreement(Float64Array.of(2, 4, 8), Uint8Array.of(1, 1, 0), "max"))).toEqual([0.5, 1, 1]);
    expect(Array.from(normaliseDisagreement(Float64Array.of(2, 4, 8, 1), Uint8Array.of(1, 1, 0, 0)))).toEqual([0, 1, 1, 0]);
    expect(disagreementRange(Float64Array.of(2, 4, 8), Uint8Array.of(1, 0, 0))).toEqual({ min: 2, max: 2, constant: true });
  });

  it("min-max normalises over the window, clamps outside, zeros when constant", () => {
    expect(Array.from(normaliseDisagreement(Float64Array.of(2, 4, 3)))).toEqual([0, 1, 0.5]);
    expect(Array.from(normaliseDisagreement(Float64Array.of(7, 7, 7)))).toEqual([0, 0, 0]);
    // Two members a constant 0.01 eV/atom apart: the stds differ only by float64 rounding, which must not rank.
    const natoms = [29, 1, 17];
    const energies = [-1234.56789, -10.707211383396714, -702.1];
    const offsetRaw = committeeDisagreement(
      [{ source: "m1.xyz", energies }, { source: "m2.xyz", energies: energies.map((e, i) => e + 0.01 * natoms[i]) }],
      "energy",
      { natoms, ids: ["a", "b", "c"] },
    );
    expect(new Set(offsetRaw).size).toBeGreaterThan(1);
    expect(Array.from(normaliseDisagreement(offsetRaw))).toEqual([0, 0, 0]);
    expect(Array.from(normaliseDisagreement(Float64Array.of(0.005, 0.005 * (1 + 1e-6))))).toEqual([0, 1]);
    const raw = Float64Array.of(0.01, 0.1, 0.2, 0.5);
    const levels = trustLevels(raw, { lo: 0.05, hi: 0.3 });
    const u = normaliseDisagreement(raw, levels.map((level) => Number(level === TRUST_CANDIDATE)));
    expect(u[0]).toBe(0);
    expect(u[1]).toBe(0);
    expect(u[2]).toBe(1);
    expect(u[3]).toBe(1);
  });
});
