import { describe, expect, it } from "vitest";
import { candidateId } from "../../../src/core/select/candidate-id.js";
import { DFT_OUTPUT_TOLERANCE, NEAR_MATCH_TOLERANCE, NearStructureIndex, projectionsOf, type Geometry } from "../../../src/core/select/near-match.js";
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

  it("finds a molecule whose atoms are absurdly far apart, instead of looping over buckets that round to one", () => {
    const index = new NearStructureIndex();
    const far: Geometry = { natoms: 2, symbols: ["H", "H"], positions: Float64Array.of(0, 0, 0, 1e20, 0, 0), cell: new Float64Array(9), pbc: [false, false, false] };
    index.add(0, far);
    expect(index.find(far)).toBe(0);
    expect(index.mayHold(2, projectionsOf(far))).toBe(true);
  });

  it("finds a structure whose projection lies across a bucket edge", () => {
    const index = new NearStructureIndex();
    // Without a cell, positions count relative to the first atom's: with it at the origin and the second on the x
    // axis, the pair projects to +-x / sqrt(6); buckets are 1e-3 wide, so x = (m + 1/2) sqrt(6) 1e-3 is an edge.
    const onX = (x: number): Geometry => ({ natoms: 2, symbols: ["Cu", "Cu"], positions: Float64Array.of(0, 0, 0, x, 0, 0), cell: new Float64Array(9), pbc: [false, false, false] });
    const edges = [0, 1, 2, 7].map((m) => (m + 0.5) * Math.sqrt(6) * 1e-3);
    edges.forEach((x, row) => index.add(row, onX(x - 4e-6)));
    edges.forEach((x, row) => expect(index.find(onX(x + 4e-6))).toBe(row));
  });

  it("finds a periodic structure with atoms moved by lattice vectors (wrapped into the cell, or unwrapped from MD)", () => {
    const cell = Float64Array.of(9.8, 0, 0, 3.1, 8.7, 0, -1.2, 2.4, 11.3);
    const base: Geometry = { ...structure(21), cell };
    const byLattice = (g: Geometry, atom: number, n: [number, number, number]): Geometry => {
      const positions = g.positions.slice();
      for (let k = 0; k < 3; k++) positions[3 * atom + k] += n[0] * cell[k] + n[1] * cell[3 + k] + n[2] * cell[6 + k];
      return { ...g, positions };
    };
    let unwrapped = byLattice(base, 0, [1, 0, 0]);
    unwrapped = byLattice(unwrapped, 5, [-1, 2, 0]);
    unwrapped = byLattice(unwrapped, 39, [0, -3, 7]);
    const strict = new NearStructureIndex();
    strict.add(0, unwrapped);
    strict.add(1, structure(22));
    expect(strict.find(printed(base))).toBe(0);
    expect(strict.find(moved(base, 5, 2 * NEAR_MATCH_TOLERANCE))).toBeUndefined();
    // Along an axis that is not periodic, a lattice vector moves the atom for real.
    const slab = (g: Geometry): Geometry => ({ ...g, pbc: [true, true, false] });
    const slabs = new NearStructureIndex();
    slabs.add(0, slab(byLattice(base, 3, [1, -1, 0])));
    expect(slabs.find(slab(base))).toBe(0);
    slabs.add(1, slab(byLattice(base, 3, [0, 0, 1])));
    expect(slabs.find(slab(byLattice(base, 3, [0, 0, 1])))).toBe(1);
    expect(slabs.find(slab(byLattice(base, 3, [0, 0, 2])))).toBeUndefined();
    // VASP takes every structure as periodic.
    const fromVasp = new NearStructureIndex(DFT_OUTPUT_TOLERANCE, true);
    fromVasp.add(0, slab(base));
    expect(fromVasp.find({ ...printed(byLattice(base, 3, [0, 0, -1]), 5), pbc: [true, true, true] })).toBe(0);
  });

  it("finds a copy whose atoms were grouped by species (a POSCAR's blocks), but not one with a species' atoms swapped", () => {
    const base = structure(41, ["Zr", "O", "O"]);
    const grouped = (g: Geometry, species: string[]): Geometry => {
      const order = species.flatMap((s) => g.symbols.flatMap((t, i) => (t === s ? [i] : [])));
      return { ...g, symbols: order.map((i) => g.symbols[i]), positions: Float64Array.from(order.flatMap((i) => Array.from(g.positions.subarray(3 * i, 3 * i + 3)))) };
    };
    for (const fromVasp of [false, true]) {
      const index = new NearStructureIndex(fromVasp ? DFT_OUTPUT_TOLERANCE : NEAR_MATCH_TOLERANCE, fromVasp);
      index.add(0, base);
      expect(index.find(printed(grouped(base, ["Zr", "O"]), 6))).toBe(0);
      expect(index.find(grouped(base, ["O", "Zr"]))).toBe(0);
      const swapped = grouped(base, ["Zr", "O"]);
      const positions = swapped.positions.slice();
      positions.copyWithin(0, 3, 6);
      positions.set(swapped.positions.subarray(0, 3), 3);
      expect(index.find({ ...swapped, positions })).toBeUndefined();
    }
  });

  it("finds a molecule in VASP's box with its atoms moved into the box", () => {
    // Centred on the origin, as ASE builds molecules: half its coordinates are negative.
    const random = seededRandom(31);
    const molecule: Geometry = {
      natoms: 5, symbols: ["C", "H", "H", "H", "H"], positions: Float64Array.from({ length: 15 }, () => 2 * random() - 1),
      cell: new Float64Array(9), pbc: [false, false, false],
    };
    const edge = 12.5;
    const wrapped = molecule.positions.map((x) => Number((((x % edge) + edge) % edge).toFixed(5)));
    const boxed: Geometry = { ...molecule, positions: wrapped, cell: Float64Array.of(edge, 0, 0, 0, edge, 0, 0, 0, edge), pbc: [true, true, true] };
    const fromVasp = new NearStructureIndex(DFT_OUTPUT_TOLERANCE, true);
    fromVasp.add(0, molecule);
    expect(fromVasp.find(boxed)).toBe(0);
    expect(fromVasp.find(moved(boxed, 2, 1e-3))).toBeUndefined();
    // And the other way round: the box copies indexed, the molecule looked up (labelled runs against the pool).
    const runs = new NearStructureIndex(DFT_OUTPUT_TOLERANCE, true);
    runs.add(0, boxed);
    expect(runs.mayHold(molecule.natoms, projectionsOf(molecule))).toBe(true);
    expect(runs.find(molecule)).toBe(0);
  });

  it.each([
    ["in a cell (atoms up to twice its edge outside)", Float64Array.of(10, 0, 0, 0, 10, 0, 0, 0, 10)],
    ["without a cell (positions relative to the first atom's)", new Float64Array(9)],
  ])("finds a 1000-atom structure moved by up to the tolerance in every coordinate, %s", (_, cell) => {
    const index = new NearStructureIndex();
    const base: Geometry = { ...structure(3), cell, natoms: 1000, symbols: Array(1000).fill("Si"), positions: Float64Array.from({ length: 3000 }, (_, i) => (i * 0.618) % 20) };
    index.add(0, base);
    const random = seededRandom(5);
    for (let trial = 0; trial < 200; trial++) {
      const positions = base.positions.map((x) => x + (random() < 0.5 ? -1 : 1) * 0.999 * NEAR_MATCH_TOLERANCE);
      expect(index.find({ ...base, positions })).toBe(0);
    }
    expect(index.find({ ...base, positions: base.positions.map((x, i) => (i === 7 ? x + 1.001 * NEAR_MATCH_TOLERANCE : x)) })).toBeUndefined();
  });
});
