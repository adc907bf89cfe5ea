import { describe, expect, it } from "vitest";
import { candidateId } from "../../../src/core/select/candidate-id.js";
import { NEAR_MATCH_TOLERANCE, NearStructureIndex, type Geometry } from "../../../src/core/select/near-match.js";
import { seededRandom } from "./fps-oracle.js";

/** A 40-atom periodic structure with full-precision positions. */
function structure(seed: number, symbols = ["Si", "O"]): Geometry {
  const random = seededRandom(seed);
  const natoms = 40;
  return {
    natoms,
    symbols: Array.from({ length: natoms }, (_, i) => symbols[i % symbols.length]),
    positions: Float64Array.from({ length: 3 * natoms }, () => 10 * random()),
    cell: Float64Array.of(10, 0, 0, 0, 10, 0, 0, 0, 10),
    pbc: [true, true, true],
  };
}

/** The structure as a writer printing `decimals` decimals gives it back (ASE prints positions with 8). */
const printed = (g: Geometry, decimals = 8): Geometry => ({ ...g, positions: g.positions.map((x) => Number(x.toFixed(decimals))) });

const moved = (g: Geometry, atom: number, by: number): Geometry => {
  const positions = g.positions.slice();
  positions[3 * atom] += by;
  return { ...g, positions };
};

describe("NearStructureIndex", () => {
  it("finds structures printed with 8 decimals, whose candidate_id mostly differs from the full-precision one", () => {
    const index = new NearStructureIndex();
    const pool = Array.from({ length: 50 }, (_, i) => structure(i + 1));
    pool.forEach((g, row) => index.add(row, g));
    const differentIds = pool.filter((g) => candidateId(printed(g)) !== candidateId(g)).length;
    // About 1 coordinate in 200 rounds the other way: nearly half of these 120-coordinate structures get another id.
    expect(differentIds).toBeGreaterThan(10);
    pool.forEach((g, row) => expect(index.find(printed(g))).toBe(row));
    pool.forEach((g, row) => expect(index.find(printed(g, 6))).toBe(row));
  });

  it("takes the nearest of structures within the tolerance, ties to the lowest row", () => {
    const index = new NearStructureIndex();
    const base = structure(7);
    index.add(0, moved(base, 3, 4e-6));
    index.add(1, base);
    index.add(2, moved(base, 5, 1e-6));
    index.add(3, base);
    expect(index.find(printed(base))).toBe(1);
    expect(index.find(moved(base, 3, 4e-6))).toBe(0);
  });

  it("matches nothing beyond the tolerance, with other species, another atom order, other pbc or another cell", () => {
    const index = new NearStructureIndex();
    const base = structure(11);
    index.add(0, base);
    expect(index.find(moved(base, 0, 0.9 * NEAR_MATCH_TOLERANCE))).toBe(0);
    expect(index.find(moved(base, 0, 2 * NEAR_MATCH_TOLERANCE))).toBeUndefined();
    expect(index.find({ ...base, symbols: base.symbols.map((s) => (s === "O" ? "N" : s)) })).toBeUndefined();
    expect(index.find({ ...base, symbols: [...base.symbols.slice(1), base.symbols[0]] })).toBeUndefined();
    expect(index.find({ ...base, pbc: [true, true, false] })).toBeUndefined();
    expect(index.find({ ...base, cell: Float64Array.of(10, 0, 0, 0, 10, 0, 0, 0, 10.001) })).toBeUndefined();
  });

  it("leaves pbc out when told to, for structures read back from VASP (always periodic)", () => {
    const slab: Geometry = { ...structure(13), pbc: [true, true, false] };
    const fromVasp: Geometry = { ...printed(slab), pbc: [true, true, true] };
    const strict = new NearStructureIndex();
    strict.add(0, slab);
    expect(strict.find(fromVasp)).toBeUndefined();
    const lenient = new NearStructureIndex(NEAR_MATCH_TOLERANCE, true);
    lenient.add(0, slab);
    expect(lenient.find(fromVasp)).toBe(0);
  });

  it("matches a structure without a cell to VASP's copy in a box by its positions, only when told the copy is from VASP", () => {
    const molecule: Geometry = { ...structure(17), cell: new Float64Array(9), pbc: [false, false, false] };
    const boxed: Geometry = { ...printed(molecule, 5), cell: Float64Array.of(23.5, 0, 0, 0, 23.5, 0, 0, 0, 23.5), pbc: [true, true, true] };
    const strict = new NearStructureIndex(NEAR_MATCH_TOLERANCE);
    strict.add(0, molecule);
    expect(strict.find({ ...boxed, pbc: molecule.pbc })).toBeUndefined();
    const fromVasp = new NearStructureIndex(NEAR_MATCH_TOLERANCE, true);
    fromVasp.add(0, molecule);
    expect(fromVasp.find(boxed)).toBe(0);
    expect(fromVasp.find(moved(boxed, 3, 1e-3))).toBeUndefined();
    // Two cells, however, must still agree.
    const periodic = structure(18);
    fromVasp.add(1, periodic);
    expect(fromVasp.find({ ...printed(periodic, 5), cell: Float64Array.of(10, 0, 0, 0, 10, 0, 0, 0, 10.01) })).toBeUndefined();
  });

  it("finds a structure whose projection lies across a bucket edge", () => {
    const index = new NearStructureIndex();
    // One atom on the x axis projects to +-x / sqrt(3); buckets are 1e-3 wide, so x = (m + 1/2) sqrt(3) 1e-3 is an edge.
    const onX = (x: number): Geometry => ({ natoms: 1, symbols: ["Cu"], positions: Float64Array.of(x, 0, 0), cell: new Float64Array(9), pbc: [false, false, false] });
    const edges = [0, 1, 2, 7].map((m) => (m + 0.5) * Math.sqrt(3) * 1e-3);
    edges.forEach((x, row) => index.add(row, onX(x - 4e-6)));
    edges.forEach((x, row) => expect(index.find(onX(x + 4e-6))).toBe(row));
  });

  it("finds a 1000-atom structure moved by up to the tolerance in every coordinate", () => {
    const index = new NearStructureIndex();
    const base: Geometry = { ...structure(3), natoms: 1000, symbols: Array(1000).fill("Si"), positions: Float64Array.from({ length: 3000 }, (_, i) => (i * 0.618) % 20) };
    index.add(0, base);
    const random = seededRandom(5);
    for (let trial = 0; trial < 200; trial++) {
      const positions = base.positions.map((x) => x + (random() < 0.5 ? -1 : 1) * 0.999 * NEAR_MATCH_TOLERANCE);
      expect(index.find({ ...base, positions })).toBe(0);
    }
    expect(index.find({ ...base, positions: base.positions.map((x, i) => (i === 7 ? x + 1.001 * NEAR_MATCH_TOLERANCE : x)) })).toBeUndefined();
  });
});
