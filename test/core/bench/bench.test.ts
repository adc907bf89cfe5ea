import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildBench, type BenchInput, type MetricsJson } from "../../../src/core/bench/bench.js";
import { datasetSummaryInfo, parsePreviousMetrics } from "../../../src/core/bench/compare.js";
import { benchFrame, labelKeys, type BenchFrame, type LabelKeys } from "../../../src/core/bench/labels.js";
import { parseMaceLog, parseMaceResults } from "../../../src/core/bench/mace-training.js";
import { InputError } from "../../../src/core/errors.js";
import { parseExtxyz } from "../../../src/core/formats/extxyz.js";
import { realPath } from "../../helpers/real-data.js";
import { checkWellFormedXml } from "./xml-check.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../fixtures/bench");
const PRED_FILE = path.join(FIXTURES, "pred.extxyz");
const REF_FILE = path.join(FIXTURES, "dataset/test.extxyz");
const SUMMARY_FILE = path.join(FIXTURES, "dataset/summary.json");

function readFrames(file: string, keys: LabelKeys, requireForces: boolean): BenchFrame[] {
  return parseExtxyz(readFileSync(file), file).map(({ frame, line }, i) => benchFrame(frame, i, line, { file, keys, requireForces, hint: "" }));
}

function fixtureInput(overrides: Partial<BenchInput> = {}): BenchInput {
  return {
    predFile: "pred.extxyz",
    refFile: "dataset/test.extxyz",
    pred: readFrames(PRED_FILE, labelKeys("MACE_"), true),
    ref: readFrames(REF_FILE, labelKeys("REF_"), false),
    predKeys: labelKeys("MACE_"),
    refKeys: labelKeys("REF_"),
    summary: { file: "dataset/summary.json", ...datasetSummaryInfo(readFileSync(SUMMARY_FILE, "utf8"), SUMMARY_FILE) },
    refFileSha256: null,
    previous: null,
    training: [],
    ...overrides,
  };
}

function file(out: ReturnType<typeof buildBench>, name: string): string {
  const f = out.files.find(([n]) => n === name);
  if (!f) throw new Error(`no ${name}`);
  return f[1];
}

/** A previous round: this round's metrics.json with some fields changed. */
function previousFrom(m: MetricsJson, change: (m: MetricsJson) => void) {
  const copy = JSON.parse(JSON.stringify(m)) as MetricsJson;
  change(copy);
  return parsePreviousMetrics(JSON.stringify(copy), "round-1/metrics.json");
}

describe("buildBench", () => {
  const out = buildBench(fixtureInput());
  const metrics = JSON.parse(file(out, "metrics.json")) as MetricsJson;

  it("writes metrics.json, per_config.csv, report.md and the parity plots (stress included)", () => {
    expect(out.files.map(([n]) => n)).toEqual(["metrics.json", "per_config.csv", "report.md", "parity_energy.svg", "parity_forces.svg", "parity_stress.svg"]);
    for (const [name, text] of out.files) if (name.endsWith(".svg")) checkWellFormedXml(text);
  });

  it("records the dataset identity from summary.json, counts and the hand-computed metrics rounded to 4 decimals", () => {
    expect(metrics.dataset).toMatchObject({ test_membership: "m-1111", test_content: "c-2222", energy: "free", head: "Default", source: "dataset/summary.json" });
    expect(metrics.counts).toMatchObject({ prediction_frames: 4, reference_frames: 4, paired_frames: 3, paired_atoms: 5, unmatched_predictions: 1, unmatched_references: 1, stress_frames: 2 });
    expect(metrics.overall.energy_per_atom).toEqual({ frames: 3, rmse: 66.8331, mae: 60 });
    expect(metrics.overall.forces).toEqual({ atoms: 5, components: 15, rmse: 141.4214, mae: 66.6667, rel_rmse_percent: 17.3205 });
    expect(metrics.overall.stress).toEqual({ frames: 2, components: 18, rmse: 1, mae: 0.4444 });
    expect(Object.keys(metrics.per_config_type)).toEqual(["Default", "bulk", "surface"]);
    expect(metrics.per_element.O.forces!.rmse).toBe(204.1241);
    expect(metrics.conventions.stress).toMatch(/9 components of each 3x3 tensor pooled/);
  });

  it("reports unmatched frames in warnings, metrics.json and per_config.csv, never dropping them", () => {
    expect(out.warnings).toEqual([
      "1 prediction frame(s) have no reference frame with the same structure (listed in per_config.csv)",
      "1 reference frame(s) have no prediction (listed in per_config.csv); the metrics do not cover them",
    ]);
    expect(metrics.unmatched.predictions).toEqual([expect.objectContaining({ frame: 1, line: 4, formula: "H", config_type: "bulk" })]);
    expect(metrics.unmatched.references).toEqual([expect.objectContaining({ frame: 3, line: 12, formula: "O2" })]);
    const csv = file(out, "per_config.csv").trim().split("\n");
    expect(csv).toHaveLength(1 + 3 + 2);
    expect(csv[1]).toMatch(/^paired,0,1,2,9,[0-9a-f]{20},Default,1,O,-4\.000000,-3\.970000,30\.000,230\.940,400\.000,1\.000$/);
    expect(csv.slice(4).map((l) => l.split(",")[0])).toEqual(["unmatched_prediction", "unmatched_reference"]);
  });

  it("gives byte-identical outputs for identical inputs", () => {
    const again = buildBench(fixtureInput());
    expect(again.files).toEqual(out.files);
  });

  it("fails in one line when no prediction matches any reference", () => {
    const input = fixtureInput();
    expect(() => buildBench({ ...input, ref: input.ref.slice(3) })).toThrow(InputError);
    expect(() => buildBench({ ...input, ref: input.ref.slice(3) })).toThrow(/^pred\.extxyz: none of the 4 prediction frames matches one of the 1 reference frames/);
  });

  it("shows the metrics against a comparable previous round with signed changes", () => {
    const previous = previousFrom(metrics, (m) => {
      m.overall.energy_per_atom!.rmse = 70;
      m.overall.forces!.rmse = 120;
      m.per_config_type.bulk.energy_per_atom!.rmse = 40;
    });
    const next = buildBench(fixtureInput({ previous }));
    const m = JSON.parse(file(next, "metrics.json")) as MetricsJson;
    expect(m.previous).toEqual({ metrics: "round-1/metrics.json", comparable: true, problems: [], unknown_in_both: [] });
    const report = file(next, "report.md");
    expect(report).toContain("| metric | previous | this round | change |");
    expect(report).toContain("| Energy RMSE (meV/atom) | 70.00 | 66.83 | -3.17 (-4.5%) ▼ better |");
    expect(report).toContain("| Force RMSE (meV/Å) | 120.0 | 141.4 | +21.4 (+17.9%) ▲ worse |");
    expect(report).toContain("| Energy MAE (meV/atom) | 60.00 | 60.00 | ±0.00 = |");
    expect(report).toMatch(/\| bulk \| 1 \| 2 \| 50\.00 .*\| \+10\.00 \(\+25\.0%\) ▲ \| ±0\.0 = \|/);
    const lines = report.split("\n");
    expect(lines[2]).toBe("> [!WARNING]");
    expect(lines[3]).toMatch(/^> - 1 prediction frame/);
  });

  for (const [field, label, value] of [
    ["test_membership", "test set membership", "m-9999"],
    ["test_content", "test set content", "c-9999"],
    ["energy", "energy policy", "sigma0"],
    ["head", "head", "omat_pbe"],
  ] as const) {
    it(`warns loudly when the ${label} differs from the previous round`, () => {
      const previous = previousFrom(metrics, (m) => {
        m.dataset[field] = value;
      });
      const next = buildBench(fixtureInput({ previous }));
      const expected = `not comparable with the previous round (round-1/metrics.json): ${label} changed: \`${value}\` -> \`${metrics.dataset[field]}\``;
      expect(next.warnings[0]).toBe(expected);
      const m = JSON.parse(file(next, "metrics.json")) as MetricsJson;
      expect(m.warnings[0]).toBe(expected);
      expect(m.previous!.comparable).toBe(false);
      const report = file(next, "report.md");
      const lines = report.split("\n");
      expect(lines[2]).toBe("> [!WARNING]");
      expect(lines[3]).toMatch(/^> \*\*This round is NOT comparable with the previous round\*\*/);
      expect(report).toContain(`> - ${expected}`);
      expect(report).toContain("| metric | previous | this round | change (not comparable) |");
    });
  }

  it("warns when the same fingerprint covers different paired frames", () => {
    const previous = previousFrom(metrics, (m) => {
      m.counts.paired_frames = 2;
    });
    expect(buildBench(fixtureInput({ previous })).warnings[0]).toBe("paired frames differ from the previous round: 2 -> 3; the metrics cover different frames");
  });

  it("without --ref and summary: identity unknown, said in the report; the frames' head is used", () => {
    const pred = readFrames(PRED_FILE, labelKeys("MACE_"), true);
    const ref = readFrames(PRED_FILE, labelKeys("REF_"), false);
    const next = buildBench(fixtureInput({ refFile: null, pred, ref, summary: null }));
    const m = JSON.parse(file(next, "metrics.json")) as MetricsJson;
    expect(m.dataset).toMatchObject({ test_membership: null, test_content: null, energy: null, head: "Default", source: "reference frames" });
    expect(m.counts.unmatched_predictions).toBe(0);
    expect(file(next, "report.md")).toContain("> The dataset identity is unknown: without --ref DATASET/test.extxyz");
  });

  it("flags a summary.json whose energy policy disagrees with the reference frames", () => {
    const text = "1\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3:REF_forces:R:3:MACE_forces:R:3 REF_energy=-5.1 REF_free_energy=-5.0 REF_energy_sigma0=-5.1 MACE_energy=-5.0\nH 0 0 0 0 0 0 0 0 0\n";
    const frame = parseExtxyz(text, "x")[0].frame;
    const pred = [benchFrame(frame, 0, 1, { file: "x", keys: labelKeys("MACE_"), requireForces: true, hint: "" })];
    const ref = [benchFrame(frame, 0, 1, { file: "x", keys: labelKeys("REF_"), requireForces: false, hint: "", freeEnergyKey: "REF_free_energy", sigma0EnergyKey: "REF_energy_sigma0" })];
    const next = buildBench(fixtureInput({ pred, ref }));
    expect(next.warnings).toContain('dataset/summary.json says energy policy "free" but REF_energy in the reference frames is the sigma0 energy');
  });

  it("adds the MACE training section and learning curve from the real run-123 files", () => {
    const log = realPath("mace/imagdau_mace01_run-123.log");
    const results = realPath("mace/imagdau_mace01_run-123_train.txt");
    const training = [{ tag: "mace01_run-123", log: parseMaceLog(readFileSync(log, "utf8"), log), results: parseMaceResults(readFileSync(results, "utf8"), results) }];
    const next = buildBench(fixtureInput({ training }));
    expect(next.files.map(([n]) => n)).toContain("learning_curve.svg");
    const svg = file(next, "learning_curve.svg");
    expect(checkWellFormedXml(svg).filter((e) => e === "polyline")).toHaveLength(2);
    const m = JSON.parse(file(next, "metrics.json")) as MetricsJson;
    expect(m.training[0].final_error_tables[0].rows[1]).toEqual({ name: "valid", values: { rmse_e_per_atom: 16.7, rmse_f: 206.8, rel_rmse_f: 8 }, printed: ["16.7", "206.8", "8.00"] });
    const lastEval = JSON.parse(readFileSync(results, "utf8").trim().split("\n").filter((l) => l.includes('"eval"')).at(-1)!) as Record<string, number>;
    const lastPoint = m.training[0].validation_curves[0].points.at(-1)!;
    expect(lastPoint.epoch).toBe(lastEval.epoch);
    expect(lastPoint.rmse_e_per_atom).toBeCloseTo(lastEval.rmse_e_per_atom * 1000, 3);
    expect(lastPoint.rmse_f).toBeCloseTo(lastEval.rmse_f * 1000, 3);
    expect(lastPoint.rel_rmse_f).toBeCloseTo(lastEval.rel_rmse_f, 3);
    const report = file(next, "report.md");
    expect(report).toContain("| valid | 16.7 | 206.8 | 8.00 |");
    expect(report).toContain("![Validation learning curve](learning_curve.svg)");
  });
});
