import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { benchFrame, labelKeys, type BenchFrame, type LabelKeys } from "../../../src/core/bench/labels.js";
import { computeMetrics } from "../../../src/core/bench/metrics.js";
import { pairByIdentity } from "../../../src/core/bench/pairing.js";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { realPath } from "../../helpers/real-data.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../fixtures/bench");

function readFrames(file: string, keys: LabelKeys, requireForces: boolean): BenchFrame[] {
  return parseExtxyz(readFileSync(file), file).map(({ frame, line }, i) => benchFrame(frame, i, line, { file, keys, requireForces, hint: "" }));
}

function pairFiles(predFile: string, refFile: string) {
  const pred = readFrames(predFile, labelKeys("MACE_"), true);
  const ref = readFrames(refFile, labelKeys("REF_"), false);
  const p = pairByIdentity(
    pred.map((f) => f.id),
    ref.map((f) => f.id),
  );
  return { pred, ref, pairing: p, metrics: computeMetrics(p.pairs.map(([a, b]) => ({ pred: pred[a], ref: ref[b] }))) };
}

/*
 * Hand computation for test/fixtures/bench (see its README.md), eV -> meV:
 * energy per atom errors: A (-5.9+6)/2 = +50, B (-10.2+10)/2 = -100, C (-3.97+4)/1 = +30 meV/atom
 *   RMSE = sqrt((50^2+100^2+30^2)/3) = sqrt(13400/3) = 66.8331, MAE = 180/3 = 60
 * force component errors (15 components of 5 atoms): A 0.1 (H1 x), 0.2 (H2 y); B 0.3 (O z); C -0.4 (O z)
 *   RMSE = sqrt(0.30/15) = 141.4214 meV/A, MAE = 1.0/15 = 66.6667; RMS(F_ref) = sqrt(10/15) -> rel 17.3205 %
 * stress, 9 components pooled: A Voigt ref vs 3x3 pred: xx 0.001, xy and yx 0.002 each -> 9e-6;
 *   C zero ref vs 9-value pred: xx 0.003 -> 9e-6; RMSE = sqrt(18e-6/18) = 1.0 meV/A^3, MAE = 0.008/18 = 0.4444
 *   (pooling the 6 Voigt values instead would give sqrt(14e-6/12) = 1.0801)
 * per element: H atoms (A H1, A H2, B H): RMSE sqrt(0.05/9) = 74.5356, MAE 0.3/9 = 33.3333; energy over A, B:
 *   sqrt((2500+10000)/2) = 79.0569, MAE 75; O atoms (B O, C O): sqrt(0.25/6) = 204.1241, MAE 0.7/6 = 116.6667;
 *   energy over B, C: sqrt((10000+900)/2) = 73.8241, MAE 65
 */
describe("computeMetrics on the hand-made fixture", () => {
  const { pairing, metrics, pred, ref } = pairFiles(path.join(FIXTURES, "pred.extxyz"), path.join(FIXTURES, "dataset/test.extxyz"));

  it("pairs the reordered frames by structure and reports the unmatched ones", () => {
    expect(pairing.pairs).toEqual([
      [0, 2],
      [2, 0],
      [3, 1],
    ]);
    expect(pairing.unmatchedPred.map((i) => pred[i].symbols.join(""))).toEqual(["H"]);
    expect(pairing.unmatchedRef.map((i) => ref[i].symbols.join(""))).toEqual(["OO"]);
  });

  it("gives energy per atom, force and 9-component stress errors as computed by hand", () => {
    const o = metrics.overall;
    expect(o.frames).toBe(3);
    expect(o.atoms).toBe(5);
    expect(o.energy.rmse).toBeCloseTo(Math.sqrt(13400 / 3), 9);
    expect(o.energy.mae).toBeCloseTo(60, 9);
    expect(o.forces!.components).toBe(15);
    expect(o.forces!.rmse).toBeCloseTo(Math.sqrt(0.3 / 15) * 1000, 9);
    expect(o.forces!.mae).toBeCloseTo((1.0 / 15) * 1000, 9);
    expect(o.forces!.relRmsePercent).toBeCloseTo(Math.sqrt(0.3 / 10) * 100, 9);
    expect(o.stress!.frames).toBe(2);
    expect(o.stress!.components).toBe(18);
    expect(o.stress!.rmse).toBeCloseTo(1.0, 9);
    expect(o.stress!.mae).toBeCloseTo((0.008 / 18) * 1000, 9);
  });

  it("breaks down per config_type, with Default for a frame without one", () => {
    const byType = Object.fromEntries(metrics.perConfigType);
    expect(Object.keys(byType)).toEqual(["Default", "bulk", "surface"]);
    expect(byType.bulk.energy.rmse).toBeCloseTo(50, 9);
    expect(byType.bulk.forces!.rmse).toBeCloseTo(Math.sqrt(0.05 / 6) * 1000, 9);
    expect(byType.bulk.stress!.rmse).toBeCloseTo(1.0, 9);
    expect(byType.surface.energy.mae).toBeCloseTo(100, 9);
    expect(byType.surface.stress).toBeNull();
    expect(byType.Default.forces!.rmse).toBeCloseTo(Math.sqrt(0.16 / 3) * 1000, 9);
    expect(byType.Default.forces!.relRmsePercent).toBeNull();
  });

  it("breaks down per element: forces over its atoms, energy over frames containing it", () => {
    const byEl = Object.fromEntries(metrics.perElement);
    expect(byEl.H.atoms).toBe(3);
    expect(byEl.H.frames).toBe(2);
    expect(byEl.H.forces!.rmse).toBeCloseTo(Math.sqrt(0.05 / 9) * 1000, 9);
    expect(byEl.H.forces!.mae).toBeCloseTo((0.3 / 9) * 1000, 9);
    expect(byEl.H.energy.rmse).toBeCloseTo(Math.sqrt(12500 / 2), 9);
    expect(byEl.O.atoms).toBe(2);
    expect(byEl.O.forces!.rmse).toBeCloseTo(Math.sqrt(0.25 / 6) * 1000, 9);
    expect(byEl.O.energy.rmse).toBeCloseTo(Math.sqrt(10900 / 2), 9);
    expect(byEl.O.energy.mae).toBeCloseTo(65, 9);
  });

  it("keeps per-frame errors and parity points (6 stress components per tensor)", () => {
    expect(metrics.frames.map((f) => f.energyErrorPerAtom.toFixed(6))).toEqual(["30.000000", "50.000000", "-100.000000"]);
    expect(metrics.frames[0].forceMaxAbs).toBeCloseTo(400, 9);
    expect(metrics.parity.forces.ref.length).toBe(15);
    expect(metrics.parity.stress!.ref.length).toBe(12);
    expect(metrics.parity.groupNames).toEqual(["Default", "bulk", "surface"]);
  });

  it("counts reference stress without predicted stress and detects a flipped stress sign", () => {
    const a = ref[0];
    const flipped: BenchFrame = { ...a, labels: { ...a.labels, stress: a.labels.stress!.map((x) => -x) } };
    const m = computeMetrics([
      { pred: flipped, ref: a },
      { pred: { ...ref[1], labels: { ...ref[1].labels, stress: undefined } }, ref: { ...ref[1], labels: { ...ref[1].labels, stress: a.labels.stress } } },
    ]);
    expect(m.stressWithoutPrediction).toBe(1);
    expect(m.stressSignCheck!.flipped).toBe(0);
    expect(m.stressSignCheck!.asGiven).toBeGreaterThan(0);
  });
});

/*
 * imagdau_mace01_eval_solvent_train.xyz is mace_eval_configs output of the run-123 SWA model on the tutorial
 * training file: 3 isolated atoms + the 200 configurations MACE 0.3.6 split into train (180) and valid (20).
 * MACE drops isolated atoms (keep_isolated_atoms=False) and then takes the valid set as the last 20 of
 * list(range(200)) shuffled by np.random.default_rng(123) (mace/data/utils.py random_train_valid_split);
 * numpy 1.24.2 gives these indices. The log's last error table (SWA model, epoch 48) prints
 * train 19.1 / 182.0 / 8.36 and valid 16.7 / 206.8 / 8.00 (RMSE E meV/atom, RMSE F meV/A, relative F RMSE %).
 */
const VALID_INDICES = [5, 6, 12, 33, 35, 44, 45, 46, 73, 75, 76, 88, 104, 105, 121, 136, 144, 150, 153, 177];

describe("computeMetrics on real mace_eval_configs output", () => {
  const file = realPath("mace/imagdau_mace01_eval_solvent_train.xyz");
  const text = readFileSync(file);
  const frames = parseExtxyz(text, file);
  const pred = frames.map(({ frame, line }, i) => benchFrame(frame, i, line, { file, keys: labelKeys("MACE_"), requireForces: true, hint: "" }));
  const ref = frames.map(({ frame, line }, i) =>
    benchFrame(frame, i, line, { file, keys: labelKeys("REF_", { energy: "energy_xtb", forces: "forces_xtb" }), requireForces: true, hint: "" }),
  );

  it("holds 3 isolated atoms and 200 configurations", () => {
    expect(ref.slice(0, 3).map((f) => f.configType)).toEqual(["IsolatedAtom", "IsolatedAtom", "IsolatedAtom"]);
    expect(ref.length).toBe(203);
  });

  const metricsOf = (indices: number[]) => computeMetrics(indices.map((i) => ({ pred: pred[i + 3], ref: ref[i + 3] }))).overall;
  const valid = new Set(VALID_INDICES);
  const all = Array.from({ length: 200 }, (_, i) => i);

  it("agrees with MACE's own error table on the train split to the printed precision", () => {
    const m = metricsOf(all.filter((i) => !valid.has(i)));
    expect(m.frames).toBe(180);
    expect(m.energy.rmse.toFixed(1)).toBe("19.1");
    expect(m.forces!.rmse.toFixed(1)).toBe("182.0");
    expect(m.forces!.relRmsePercent!.toFixed(2)).toBe("8.36");
  });

  it("agrees with MACE's own error table on the valid split to the printed precision", () => {
    const m = metricsOf(VALID_INDICES);
    expect(m.frames).toBe(20);
    expect(m.energy.rmse.toFixed(1)).toBe("16.7");
    expect(m.forces!.rmse.toFixed(1)).toBe("206.8");
    expect(m.forces!.relRmsePercent!.toFixed(2)).toBe("8.00");
  });

  it("gives zero error on the isolated atoms, whose energies are MACE's E0s, in their own row only", () => {
    const m = computeMetrics([0, 1, 2].map((i) => ({ pred: pred[i], ref: ref[i] })));
    expect(m.isolatedAtoms).toBe(3);
    const [type, row] = m.perConfigType[0];
    expect([type, row.energy.frames, row.energy.rmse, row.forces!.rmse]).toEqual(["IsolatedAtom", 3, 0, 0]);
    // As MACE reports them: never pooled with the other frames, nor in the per-element errors and plots.
    expect(m.overall.energy.frames).toBe(0);
    expect(m.perElement).toEqual([]);
    expect(m.parity.energy.ref).toHaveLength(0);
  });
});
