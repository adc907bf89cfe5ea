/**
 * Every real extxyz file in shared/data/real (extxyz/ and mace/) against what ASE 3.22.1 read from it
 * (reference/ASE_READ.json), and read -> write -> read identity on each. ASE reads all of these files; none needs an
 * exception. ASE's naming differs from ours in two places, mapped below: the `charge` column is ASE's
 * `initial_charges`, and `move_mask` becomes a FixAtoms constraint instead of an array.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseExtxyz, stressVoigt, writeExtxyzFrame } from "../../../src/core/formats/extxyz.js";
import { hillFormula, infoNumber, type Frame, type InfoValue } from "../../../src/core/structure.js";
import { aseReference, realPath, type AseFrameRef } from "../../helpers/real-data.js";

const TOL = 1e-6;
const reference = aseReference();
const files = Object.keys(reference)
  .filter((rel) => /^(extxyz|mace)\/.*\.(ext)?xyz$/.test(rel))
  .sort();

function close(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(expected)));
}

function closeAll(actual: ArrayLike<number>, expected: number[], what: string): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let k = 0; k < expected.length; k++) close(actual[k], expected[k], `${what}[${k}]`);
}

/** ASE's name for one of our per-atom arrays, or null where ASE keeps it elsewhere. */
function aseArrayName(name: string): string | null {
  if (name === "charge") return "initial_charges";
  if (name === "move_mask" || name === "Z") return null;
  return name;
}

function row(data: ArrayLike<number>, ncols: number, atom: number): number[] {
  return Array.from({ length: ncols }, (_, j) => data[atom * ncols + j]);
}

function maxRowNorm(data: ArrayLike<number>, ncols: number, natoms: number): number {
  let best = 0;
  for (let a = 0; a < natoms; a++) best = Math.max(best, Math.hypot(...row(data, ncols, a)));
  return best;
}

function expectInfoValue(ours: InfoValue | undefined, ref: unknown, what: string): void {
  expect(ours, what).toBeDefined();
  const v = ours as InfoValue;
  if (typeof ref === "number") {
    expect(["int", "float"], what).toContain(v.kind);
    close((v as { value: number }).value, ref, what);
  } else if (typeof ref === "string") {
    expect(v, what).toEqual({ kind: "string", value: ref });
  } else if (typeof ref === "boolean") {
    expect(v, what).toEqual({ kind: "bool", value: ref });
  } else if (Array.isArray(ref)) {
    expect(v.kind, what).toBe("array");
    const a = v as Extract<InfoValue, { kind: "array" }>;
    const nested = Array.isArray(ref[0]);
    expect(a.shape, what).toEqual(nested ? [ref.length, (ref[0] as unknown[]).length] : [ref.length]);
    closeAll(a.data as number[], (ref as unknown[]).flat() as number[], what);
  } else {
    throw new Error(`${what}: reference value ${JSON.stringify(ref)} of an unexpected kind`);
  }
}

function compareFrame(f: Frame, r: AseFrameRef, what: string): void {
  expect(f.natoms, `${what} natoms`).toBe(r.n_atoms);
  expect(hillFormula(f.symbols), `${what} formula`).toBe(r.formula);
  if (r.species_in_order_of_first_appearance) expect([...new Set(f.symbols)], `${what} species`).toEqual(r.species_in_order_of_first_appearance);
  expect(f.pbc, `${what} pbc`).toEqual(r.pbc);
  closeAll(f.cell, r.cell.flat(), `${what} cell`);
  const last = f.natoms - 1;
  expect(f.symbols[0], `${what} first symbol`).toBe(r.first_atom.symbol);
  expect(f.symbols[last], `${what} last symbol`).toBe(r.last_atom.symbol);
  closeAll(row(f.positions, 3, 0), r.first_atom.position, `${what} first position`);
  closeAll(row(f.positions, 3, last), r.last_atom.position, `${what} last position`);

  // ASE's calculator results come only from the literal keys energy, free_energy, stress and forces.
  for (const key of ["energy", "free_energy"] as const) {
    const ours = infoNumber(f, key);
    if (r[key] === null) expect(ours, `${what} ${key}`).toBeUndefined();
    else close(ours as number, r[key] as number, `${what} ${key}`);
  }
  const forces = f.arrays.get("forces");
  if (r.force_first_atom === null || r.force_first_atom === undefined) {
    expect(forces, `${what} forces`).toBeUndefined();
  } else {
    expect(forces?.dtype, `${what} forces`).toBe("R");
    const data = forces?.data as Float64Array;
    closeAll(row(data, 3, 0), r.force_first_atom, `${what} force on the first atom`);
    closeAll(row(data, 3, last), r.force_last_atom as number[], `${what} force on the last atom`);
    close(maxRowNorm(data, 3, f.natoms), r.max_force_norm as number, `${what} max force norm`);
    if (typeof r.max_abs_force_component === "number") close(Math.max(...Array.from(data, Math.abs)), r.max_abs_force_component, `${what} max |force|`);
  }
  const stress = f.info.get("stress");
  if (r.stress_voigt_eV_per_A3 === null) expect(stress, `${what} stress`).toBeUndefined();
  else closeAll(stressVoigt(stress as InfoValue) ?? [], r.stress_voigt_eV_per_A3, `${what} stress (Voigt)`);
  for (const key of r.calc_result_keys ?? []) {
    const perAtom = ["forces", "energies", "charges", "magmoms", "stresses"].includes(key);
    expect(perAtom ? f.arrays.has(key) : f.info.has(key), `${what} calculator result ${key}`).toBe(true);
  }

  expect([...f.info.keys()], `${what} info keys`).toEqual(Object.keys(r.info ?? {}));
  for (const [key, ref] of Object.entries(r.info ?? {})) expectInfoValue(f.info.get(key), ref, `${what} info ${key}`);

  const ours = new Map<string, { dtype: string; ncols: number; data: ArrayLike<number> }>();
  for (const [name, arr] of f.arrays) {
    const aseName = aseArrayName(name);
    if (aseName !== null) ours.set(aseName, arr as { dtype: string; ncols: number; data: ArrayLike<number> });
  }
  expect([...ours.keys()].sort(), `${what} arrays`).toEqual(Object.keys(r.arrays ?? {}).sort());
  for (const [name, ref] of Object.entries(r.arrays ?? {})) {
    const arr = ours.get(name) as { dtype: string; ncols: number; data: ArrayLike<number> };
    const label = `${what} array ${name}`;
    expect(arr.dtype, label).toBe(ref.dtype === "float64" ? "R" : ref.dtype === "int32" ? "I" : ref.dtype);
    expect(arr.ncols === 1 ? [f.natoms] : [f.natoms, arr.ncols], label).toEqual(ref.shape);
    if (Array.isArray(ref.first_row)) closeAll(row(arr.data, arr.ncols, 0), ref.first_row as number[], `${label} first row`);
    if (typeof ref.max_row_norm === "number") close(maxRowNorm(arr.data, arr.ncols, f.natoms), ref.max_row_norm, `${label} max row norm`);
    if (typeof ref.first === "number") close(arr.data[0], ref.first, `${label} first`);
    if (typeof ref.sum === "number") close(Array.from(arr.data).reduce((s, x) => s + x, 0), ref.sum, `${label} sum`);
    if (Array.isArray(ref.first_values)) expect(Array.from(arr.data).slice(0, ref.first_values.length), label).toEqual(ref.first_values);
  }
}

describe("real extxyz files against ASE 3.22.1", () => {
  it("covers all 17 extxyz files of the developer set", () => {
    expect(files).toHaveLength(17);
  });

  describe.each(files)("%s", (rel) => {
    const ref = reference[rel];
    const parsed = parseExtxyz(readFileSync(realPath(rel)), rel);
    const frames = parsed.map((p) => p.frame);

    it("reads the same frames as ASE", () => {
      expect(ref.ase_ok).toBe(true);
      expect(frames.length).toBe(ref.n_frames);
      frames.forEach((f, k) => compareFrame(f, (ref.frames as AseFrameRef[])[k], `frame ${k}`));
    });

    it("numbers frames by the line of their atom count", () => {
      let line = 1;
      for (const p of parsed) {
        expect(p.line).toBe(line);
        line += p.frame.natoms + 2;
      }
    });

    it("reads back identical frames after writing", () => {
      const text = frames.map(writeExtxyzFrame).join("");
      const again = parseExtxyz(text, `${rel} (rewritten)`).map((p) => p.frame);
      expect(again).toEqual(frames);
      again.forEach((f, k) => {
        expect([...f.info.keys()], `frame ${k} info order`).toEqual([...frames[k].info.keys()]);
        expect([...f.arrays.keys()], `frame ${k} array order`).toEqual([...frames[k].arrays.keys()]);
      });
    });
  });
});
