import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { finalErrorTables, parseMaceLog, parseMaceResults, validationCurves } from "../../../src/core/bench/mace-training.js";
import { InputError } from "../../../src/core/errors.js";
import { realPath } from "../../helpers/real-data.js";

const LOG = realPath("mace/imagdau_mace01_run-123.log");
const RESULTS = realPath("mace/imagdau_mace01_run-123_train.txt");

describe("parseMaceLog on the real MACE 0.3.6 log", () => {
  const log = parseMaceLog(readFileSync(LOG, "utf8"), LOG);

  it("reads the version, the SWA start and both untitled error tables", () => {
    expect(log.version).toBe("0.3.6");
    expect(log.swaStart).toBe(36);
    expect(log.tables).toHaveLength(2);
    expect(log.tables.map((t) => t.title)).toEqual([null, null]);
    expect(log.tables[0].checkpoint).toBe("MACE_models/mace01_run-123_epoch-22.pt");
    expect(log.tables[0].epoch).toBe(22);
  });

  it("takes the last table (the SWA model) as final, with the printed numbers", () => {
    const [final] = finalErrorTables(log.tables);
    expect(finalErrorTables(log.tables)).toHaveLength(1);
    expect(final.checkpoint).toBe("MACE_models/mace01_run-123_epoch-48_swa.pt");
    expect(final.epoch).toBe(48);
    expect(final.headers).toEqual(["RMSE E / meV / atom", "RMSE F / meV / A", "relative F RMSE %"]);
    expect(final.metrics).toEqual(["rmse_e_per_atom", "rmse_f", "rel_rmse_f"]);
    expect(final.rows.map((r) => r.name)).toEqual(["train", "valid", "Default"]);
    expect(final.rows[0].values).toEqual({ rmse_e_per_atom: 19.1, rmse_f: 182.0, rel_rmse_f: 8.36 });
    expect(final.rows[1].printed).toEqual(["16.7", "206.8", "8.00"]);
    expect(final.rows[2].values).toEqual({ rmse_e_per_atom: 20.4, rmse_f: 211.4, rel_rmse_f: 9.23 });
  });

  it("reads the per-evaluation lines, starting with Epoch None", () => {
    expect(log.evals).toHaveLength(26);
    expect(log.evals[0]).toMatchObject({ epoch: null, head: null, loss: 71.3685, values: { rmse_e_per_atom: 6269.3, rmse_f: 2604.0 } });
    expect(log.evals.at(-1)).toMatchObject({ epoch: 48, values: { rmse_e_per_atom: 16.7, rmse_f: 206.8 } });
  });
});

describe("parseMaceResults on the real MACE 0.3.6 results file", () => {
  const results = parseMaceResults(readFileSync(RESULTS, "utf8"), RESULTS);
  const log = parseMaceLog(readFileSync(LOG, "utf8"), LOG);

  it("separates eval records (first with epoch null) from per-batch opt records", () => {
    expect(results.evals).toHaveLength(26);
    expect(results.optRecords).toBe(readFileSync(RESULTS, "utf8").trim().split("\n").length - 26);
    expect(results.evals[0].epoch).toBeNull();
    expect(results.evals[1].epoch).toBe(0);
    expect(results.notes).toEqual([]);
  });

  it("converts eV to meV so that every record agrees with the log line of the same evaluation", () => {
    results.evals.forEach((e, i) => {
      expect(e.epoch).toBe(log.evals[i].epoch);
      expect(e.values.rmse_e_per_atom!.toFixed(1)).toBe(log.evals[i].values.rmse_e_per_atom!.toFixed(1));
      expect(e.values.rmse_f!.toFixed(1)).toBe(log.evals[i].values.rmse_f!.toFixed(1));
    });
    expect(results.evals[0].values.rel_rmse_f).toBeCloseTo(100.67851709016173, 12);
  });

  it("makes one validation curve from the results file, without the initial evaluation", () => {
    const curves = validationCurves("run", results, log);
    expect(curves).toHaveLength(1);
    expect(curves[0].source).toBe("results");
    expect(curves[0].points).toHaveLength(25);
    expect(curves[0].initial!.rmse_f).toBeCloseTo(2604.0042366464924, 9);
    expect(curves[0].points.at(-1)!.epoch).toBe(48);
  });

  it("falls back to the log lines without a results file", () => {
    const curves = validationCurves("run", null, log);
    expect(curves[0].source).toBe("log");
    expect(curves[0].points[0]).toEqual({ epoch: 0, values: { rmse_e_per_atom: 5323.5, rmse_f: 1678.3 } });
  });
});

const NEWER_LOG = `2026-03-18 15:30:00.000 INFO: MACE version: 0.3.15
2026-03-18 15:30:01.000 INFO: Stage Two (after 3 epochs) with loss function: WeightedEnergyForcesStressLoss
2026-03-18 15:31:00.000 INFO: Initial: head: Default, loss=1.2, RMSE_E_per_atom=  120.50 meV, RMSE_F=  300.25 meV / A, RMSE_stress=  9.50 meV / A^3
2026-03-18 15:31:00.000 INFO: Initial: head: pt_head, loss=0.5, RMSE_E_per_atom=   20.00 meV, RMSE_F=   80.00 meV / A
2026-03-18 15:32:00.000 INFO: Epoch 0: head: Default, loss=0.3, RMSE_E_per_atom=   12.00 meV, RMSE_F=   45.50 meV / A, RMSE_stress=  3.25 meV / A^3
2026-03-18 15:36:41.482 INFO: Error-table on TRAIN and VALID:
+---------------+---------------------+------------------+-------------------+---------------------------------------+
|  config_type  | RMSE E / meV / atom | RMSE F / meV / A | relative F RMSE % | RMSE Stress (Virials) / meV / A (A^3) |
+---------------+---------------------+------------------+-------------------+---------------------------------------+
| train_Default |         27.5        |       84.2       |        9.35       |                  3.1                  |
| valid_Default |         32.6        |      113.9       |       12.84       |                  4.0                  |
+---------------+---------------------+------------------+-------------------+---------------------------------------+
2026-03-18 15:36:47.673 INFO: Error-table on TEST:
+-----------------+--------------------+-----------------+------------------+
|   config_type   | MAE E / meV / atom | MAE F / meV / A | relative F MAE % |
+-----------------+--------------------+-----------------+------------------+
| Default_Default |        20.0        |       60.0      |       7.00       |
+-----------------+--------------------+-----------------+------------------+
2026-03-18 15:40:00.000 INFO: Loading checkpoint: checkpoints/ft_run-42_epoch-5_swa.pt
2026-03-18 15:40:00.000 INFO: Loaded model from epoch 5
2026-03-18 15:41:41.482 INFO: Error-table on TRAIN and VALID:
+---------------+---------------------+------------------+-------------------+---------------------------------------+
|  config_type  | RMSE E / meV / atom | RMSE F / meV / A | relative F RMSE % | RMSE Stress (Virials) / meV / A (A^3) |
+---------------+---------------------+------------------+-------------------+---------------------------------------+
| train_Default |         20.5        |       70.2       |        8.35       |                  2.1                  |
| valid_Default |         22.6        |       93.9       |       10.84       |                  3.0                  |
+---------------+---------------------+------------------+-------------------+---------------------------------------+
2026-03-18 15:41:47.673 INFO: Error-table on TEST:
+-----------------+--------------------+-----------------+------------------+
|   config_type   | MAE E / meV / atom | MAE F / meV / A | relative F MAE % |
+-----------------+--------------------+-----------------+------------------+
| Default_Default |        15.0        |       50.0      |       6.00       |
+-----------------+--------------------+-----------------+------------------+
2026-03-18 15:41:48.000 INFO: Done
`;

describe("parseMaceLog on the newer log format", () => {
  const log = parseMaceLog(NEWER_LOG, "ft.log");

  it("reads titled tables (stress and MAE variants) and keeps the last of each title", () => {
    expect(log.tables.map((t) => t.title)).toEqual(["TRAIN and VALID", "TEST", "TRAIN and VALID", "TEST"]);
    const final = finalErrorTables(log.tables);
    expect(final.map((t) => t.title)).toEqual(["TRAIN and VALID", "TEST"]);
    expect(final[0].metrics).toEqual(["rmse_e_per_atom", "rmse_f", "rel_rmse_f", "rmse_stress"]);
    expect(final[0].rows[1]).toMatchObject({ name: "valid_Default", values: { rmse_e_per_atom: 22.6, rmse_f: 93.9, rel_rmse_f: 10.84, rmse_stress: 3.0 } });
    expect(final[1].metrics).toEqual(["mae_e_per_atom", "mae_f", "rel_mae_f"]);
    expect(final[1].rows[0]).toMatchObject({ name: "Default_Default", values: { mae_e_per_atom: 15.0, mae_f: 50.0, rel_mae_f: 6.0 } });
    expect(final[1].checkpoint).toBe("checkpoints/ft_run-42_epoch-5_swa.pt");
    expect(final[1].epoch).toBe(5);
  });

  it("reads Initial/Epoch lines with heads and the stress variant, and the stage-two start", () => {
    expect(log.version).toBe("0.3.15");
    expect(log.swaStart).toBe(3);
    expect(log.evals).toHaveLength(3);
    expect(log.evals[0]).toEqual({ line: 3, epoch: null, head: "Default", loss: 1.2, values: { rmse_e_per_atom: 120.5, rmse_f: 300.25, rmse_stress: 9.5 } });
    expect(log.evals[1].head).toBe("pt_head");
    const curves = validationCurves("ft", null, log);
    expect(curves.map((c) => c.name)).toEqual(["ft (Default)", "ft (pt_head)"]);
    expect(curves[0].points).toEqual([{ epoch: 0, values: { rmse_e_per_atom: 12, rmse_f: 45.5, rmse_stress: 3.25 } }]);
  });

  it("rejects a table row whose cell count differs from the header, in one line", () => {
    const broken = NEWER_LOG.replace("| Default_Default |        15.0        |", "| Default_Default |");
    expect(() => parseMaceLog(broken, "ft.log")).toThrow(/^ft\.log:\d+: error-table row: expected 4 cells like the header, found 3$/);
  });

  it("notes a table cut off at the end of the log instead of failing", () => {
    const cut = NEWER_LOG.slice(0, NEWER_LOG.lastIndexOf("| Default_Default |"));
    const log2 = parseMaceLog(cut, "ft.log");
    expect(log2.tables).toHaveLength(3);
    expect(log2.notes[0]).toMatch(/^ft\.log:\d+: error table cut off/);
  });
});

describe("parseMaceResults on newer records and bad input", () => {
  it("keeps head and stress keys, ignores unknown keys and modes", () => {
    const text = [
      '{"mode": "eval", "epoch": null, "head": "Default", "loss": 1.3, "rmse_e_per_atom": 0.03, "rmse_f": 0.6, "rmse_stress": 0.002, "valid_hessian_term": 0.6}',
      '{"mode": "opt", "epoch": 0, "loss": 1.5}',
      '{"mode": "eval", "epoch": 0, "head": "Default", "loss": 1.2, "mae_f": 0.03, "rmse_f": 0.4, "rmse_e_per_atom": 0.01}',
      '{"mode": "something_new", "epoch": 0}',
    ].join("\n");
    const r = parseMaceResults(text + "\n", "r_train.txt");
    expect(r.optRecords).toBe(1);
    expect(r.evals).toHaveLength(2);
    expect(r.evals[0].head).toBe("Default");
    expect(r.evals[0].values.rmse_stress).toBeCloseTo(2, 12);
    expect(r.evals[1].values).toEqual({ rmse_e_per_atom: 10, mae_f: 30, rmse_f: 400 });
  });

  it("notes a last line cut mid-write but rejects garbage elsewhere with file and line", () => {
    const cut = parseMaceResults('{"mode": "eval", "epoch": null, "rmse_f": 0.5}\n{"mode": "ev', "r_train.txt");
    expect(cut.evals).toHaveLength(1);
    expect(cut.notes).toEqual(["r_train.txt:2: last line is incomplete (training still running or killed); ignored"]);
    expect(() => parseMaceResults('{"mode": "eval"}\nnot json\n{"mode": "opt"}\n', "r_train.txt")).toThrow(InputError);
    expect(() => parseMaceResults('{"mode": "eval"}\nnot json\n{"mode": "opt"}\n', "r_train.txt")).toThrow(/^r_train\.txt:2: expected one JSON object per line/);
    expect(() => parseMaceResults('{"mode": "eval", "epoch": "x"}\n', "r_train.txt")).toThrow(/^r_train\.txt:1: "epoch": expected an integer or null/);
    expect(() => parseMaceResults("\n\n", "r_train.txt")).toThrow(/^r_train\.txt: no JSON records/);
  });
});
