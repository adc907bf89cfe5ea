import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import { parseStageConfig, type StageConfigInput } from "../../../src/core/stage/config.js";
import { parseDatasetSummary, type DatasetSummary } from "../../../src/core/stage/dataset.js";
import { e0sTable, stageE0s } from "../../../src/core/stage/e0s.js";
import { checkStageConfig, localAssetRefs, planStage, type PlannedFile, type StageKind, type StagePlan } from "../../../src/core/stage/plan.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../fixtures/stage");
const summaryText = readFileSync(path.join(FIXTURES, "dataset/summary.json"), "utf8");

function summary(edit: (s: Record<string, any>) => void = () => {}): DatasetSummary {
  const raw = JSON.parse(summaryText);
  edit(raw);
  return parseDatasetSummary(JSON.stringify(raw), "/ds/summary.json");
}

/** Plans a stage with sources at /ds/... and each local asset at /src/<its value>. */
function plan(kind: StageKind, input: StageConfigInput = {}, s: DatasetSummary = summary()): StagePlan {
  const config = parseStageConfig(input, "test");
  checkStageConfig(kind, config, "test");
  const assets = new Map(localAssetRefs(kind, config).map((r) => [r.key, `/src/${r.value}`]));
  const dataset = { "summary.json": "/ds/summary.json", ...Object.fromEntries(s.files.map((f) => [f, `/ds/${f}`])) };
  const e0s =
    typeof config.E0s === "object" ? stageE0s(e0sTable(config.E0s, "test"), s.atomicNumbers, "test")
    : config.E0s.endsWith(".json") ? { text: '{\n  "1": -1,\n  "8": -2\n}\n', dropped: [] }
    : undefined;
  return planStage({ kind, config, summary: s, sources: { dataset, assets, e0s }, version: "9.9.9" });
}

function text(p: StagePlan, file: string): string {
  const f = p.files.find((x) => x.path === file);
  if (!f || !("text" in f)) throw new Error(`no rendered ${file}`);
  return f.text;
}

function argv(p: StagePlan, file = "params.json"): string[] {
  return JSON.parse(text(p, file)).commands[0];
}

function copies(p: StagePlan): Record<string, string[]> {
  return Object.fromEntries(p.files.filter((f): f is Extract<PlannedFile, { from: string[] }> => "from" in f).map((f) => [f.path, f.from]));
}

describe("train stage plan", () => {
  it("renders the golden run.sh for the default config", () => {
    expect(text(plan("train"), "run.sh")).toBe(readFileSync(path.join(FIXTURES, "train-default.run.sh"), "utf8"));
  });

  it("passes the validated recipe flags and the dataset's atomic numbers", () => {
    const a = argv(plan("train"));
    expect(a[0]).toBe("mace_run_train");
    // mace.md 4.1, flag by flag.
    for (const flag of [
      "--foundation_model=mh-1", "--foundation_head=omat_pbe", "--multiheads_finetuning=True", "--pt_train_file=omat",
      "--num_samples_pt=50000", "--filter_type_pt=combinations", "--subselect_pt=fps", "--weight_pt_head=1",
      "--E0s=estimated", "--energy_weight=1", "--forces_weight=10", "--stress_weight=1", "--max_num_epochs=25",
      "--batch_size=4", "--lr=0.0001", "--default_dtype=float32", "--seed=42", "--checkpoints_dir=checkpoints",
      "--restart_latest", "--energy_key=REF_energy", "--forces_key=REF_forces", "--stress_key=REF_stress",
      "--atomic_numbers=[1, 8]", "--train_file=data/train.extxyz", "--valid_file=data/valid.extxyz", "--test_file=data/test.extxyz",
    ]) expect(a).toContain(flag);
    // Each flag appears once.
    const names = a.slice(1).map((x) => x.split("=")[0]);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each<[StageConfigInput, string, string]>([
    [{ lr: 0.001 }, "--lr=0.0001", "--lr=0.001"],
    [{ seed: 7 }, "--seed=42", "--seed=7"],
    [{ batch_size: 8 }, "--batch_size=4", "--batch_size=8"],
    [{ max_num_epochs: 15 }, "--max_num_epochs=25", "--max_num_epochs=15"],
    [{ energy_weight: 2 }, "--energy_weight=1", "--energy_weight=2"],
    [{ forces_weight: 100 }, "--forces_weight=10", "--forces_weight=100"],
    [{ stress_weight: 0.5 }, "--stress_weight=1", "--stress_weight=0.5"],
    [{ default_dtype: "float64" }, "--default_dtype=float32", "--default_dtype=float64"],
    [{ device: "cpu" }, "--device=cuda", "--device=cpu"],
    [{ name: "round3" }, "--name=relabel", "--name=round3"],
    [{ foundation_model: "mh-0" }, "--foundation_model=mh-1", "--foundation_model=mh-0"],
    [{ foundation_model: "medium-omat-0", foundation_head: "omat_pbe" }, "--foundation_model=mh-1", "--foundation_model=medium-omat-0"],
    [{ foundation_head: "matpes_r2scan" }, "--foundation_head=omat_pbe", "--foundation_head=matpes_r2scan"],
    [{ pt_train_file: "mp" }, "--pt_train_file=omat", "--pt_train_file=mp"],
    [{ num_samples_pt: 10000 }, "--num_samples_pt=50000", "--num_samples_pt=10000"],
    [{ filter_type_pt: "inclusive" }, "--filter_type_pt=combinations", "--filter_type_pt=inclusive"],
    [{ subselect_pt: "random" }, "--subselect_pt=fps", "--subselect_pt=random"],
    [{ weight_pt_head: 0.5 }, "--weight_pt_head=1", "--weight_pt_head=0.5"],
    [{ E0s: "foundation" }, "--E0s=estimated", "--E0s=foundation"],
    [{ loss: "huber" }, "--loss=stress", "--loss=huber"],
    [{ ema_decay: 0.999 }, "--ema_decay=0.99999", "--ema_decay=0.999"],
    [{ energy_key: "DFT_energy" }, "--energy_key=REF_energy", "--energy_key=DFT_energy"],
    [{ forces_key: "DFT_forces" }, "--forces_key=REF_forces", "--forces_key=DFT_forces"],
    [{ stress_key: "DFT_stress" }, "--stress_key=REF_stress", "--stress_key=DFT_stress"],
    [{ train_command: "/opt/mace/bin/mace_run_train" }, "mace_run_train", "/opt/mace/bin/mace_run_train"],
  ])("override %j changes exactly %s to %s", (override, before, after) => {
    const base = argv(plan("train"));
    const changed = argv(plan("train", override));
    expect(changed).toHaveLength(base.length);
    const diff = base.map((x, i) => [x, changed[i]]).filter(([x, y]) => x !== y);
    expect(diff).toEqual([[before, after]]);
  });

  it.each<[StageConfigInput, string]>([
    [{ restart_latest: false }, "--restart_latest"],
    [{ foundation_head: null }, "--foundation_head=omat_pbe"],
  ])("override %j removes exactly %s", (override, removed) => {
    const base = argv(plan("train"));
    expect(argv(plan("train", override))).toEqual(base.filter((x) => x !== removed));
  });

  it("drops the replay flags and may use E0s average without multihead fine-tuning", () => {
    const a = argv(plan("train", { multiheads_finetuning: false, E0s: "average" }));
    expect(a).toContain("--multiheads_finetuning=False");
    expect(a).toContain("--E0s=average");
    expect(a.filter((x) => /pt_|force_mh_ft_lr/.test(x))).toEqual([]);
  });

  it("trains stress (loss stress) only when the dataset has stress labels, weighted otherwise", () => {
    expect(argv(plan("train"))).toContain("--loss=stress");
    const noStress = summary((s) => (s.labels.stress_frames = 0));
    expect(argv(plan("train", {}, noStress))).toContain("--loss=weighted");
    expect(argv(plan("train", { loss: "universal" }, noStress))).toContain("--loss=universal");
    expect(JSON.parse(text(plan("train", { multiheads_finetuning: false }, noStress), "params.json")).derived).toMatchObject({ loss_requested: "weighted", loss_used: "weighted" });
  });

  it("records in params.json that MACE trains multihead fine-tuning with loss universal, whatever --loss says", () => {
    const p = plan("train");
    expect(argv(p)).toContain("--loss=stress");
    const derived = JSON.parse(text(p, "params.json")).derived;
    expect(derived).toMatchObject({ loss_requested: "stress", loss_used: "universal" });
    expect(derived.loss_note).toMatch(/universal/);
    const noStress = summary((s) => (s.labels.stress_frames = 0));
    expect(JSON.parse(text(plan("train", {}, noStress), "params.json")).derived).toMatchObject({ loss_requested: "weighted", loss_used: "universal" });
    const single = JSON.parse(text(plan("train", { multiheads_finetuning: false, E0s: "foundation" }), "params.json")).derived;
    expect(single).toMatchObject({ loss_requested: "stress", loss_used: "stress" });
    expect(single).not.toHaveProperty("loss_note");
  });

  it("passes the default foundation_head omat_pbe only for mh-0 and mh-1, unless a head is named", () => {
    const headFlags = (input: StageConfigInput) => argv(plan("train", input)).filter((x) => x.startsWith("--foundation_head"));
    expect(headFlags({})).toEqual(["--foundation_head=omat_pbe"]);
    expect(headFlags({ foundation_model: "mh-0" })).toEqual(["--foundation_head=omat_pbe"]);
    for (const foundation_model of ["medium-omat-0", "small", "mace-matpes-pbe-0", "models/my-mh.model"]) {
      expect(headFlags({ foundation_model })).toEqual([]);
      expect(headFlags({ foundation_model, foundation_head: "auto" })).toEqual([]);
    }
    expect(headFlags({ foundation_model: "models/my-mh.model", foundation_head: "spice_wB97M" })).toEqual(["--foundation_head=spice_wB97M"]);
    expect(headFlags({ foundation_model: "medium", foundation_head: "omat_pbe" })).toEqual(["--foundation_head=omat_pbe"]);
    expect(JSON.parse(text(plan("train", { foundation_model: "medium" }), "params.json")).derived.foundation_head).toBeNull();
    expect(JSON.parse(text(plan("train"), "params.json")).derived.foundation_head).toBe("omat_pbe");
  });

  it("passes only the split files the dataset has, and says MACE then splits valid off train", () => {
    const trainOnly = summary((s) => {
      s.files = ["train.extxyz", "test.extxyz"];
    });
    const p = plan("train", {}, trainOnly);
    const a = argv(p);
    expect(a.filter((x) => x.includes("_file=data/"))).toEqual(["--train_file=data/train.extxyz", "--test_file=data/test.extxyz"]);
    expect(Object.keys(copies(p)).filter((f) => f.startsWith("data/"))).toEqual(["data/train.extxyz", "data/test.extxyz", "data/summary.json"]);
    expect(p.notes.join("\n")).toMatch(/no valid\.extxyz: MACE splits off a random 10%/);
  });

  it("takes --atomic_numbers as the sorted atomic numbers of the dataset's elements", () => {
    const s = summary((raw) => (raw.elements = ["O", "Fe", "H"]));
    expect(argv(plan("train", {}, s))).toContain("--atomic_numbers=[1, 8, 26]");
  });

  it("copies local foundation model, replay file and E0s JSON into the stage and points MACE at the copies", () => {
    const p = plan("train", { foundation_model: "models/my mh1.model", pt_train_file: "replay/omat_sub.xyz", E0s: "fits/e0s.json" });
    expect(copies(p)).toMatchObject({
      "assets/foundation/my_mh1.model": ["/src/models/my mh1.model"],
      "assets/replay/omat_sub.xyz": ["/src/replay/omat_sub.xyz"],
    });
    expect(text(p, "assets/E0s.json")).toBe('{\n  "1": -1,\n  "8": -2\n}\n');
    const a = argv(p);
    expect(a).toContain("--foundation_model=assets/foundation/my_mh1.model");
    expect(a).toContain("--pt_train_file=assets/replay/omat_sub.xyz");
    expect(a).toContain("--E0s=assets/E0s.json");
    // run.sh refuses to start when a copy is missing.
    expect(text(p, "run.sh")).toContain("inputs=(\n  data/train.extxyz\n  data/valid.extxyz\n  data/test.extxyz\n  assets/foundation/my_mh1.model\n  assets/replay/omat_sub.xyz\n  assets/E0s.json\n)");
    const params = JSON.parse(text(p, "params.json"));
    expect(params.config.foundation_model).toBe("assets/foundation/my_mh1.model");
    expect(params.assets.foundation_model).toEqual({ path: "assets/foundation/my_mh1.model", source_name: "my mh1.model" });
    expect(p.notes.join("\n")).not.toMatch(/downloaded/);
  });

  it("notes the run-time downloads of named models and replay sets (offline pitfall)", () => {
    const notes = plan("train").notes.join("\n");
    expect(notes).toMatch(/foundation_model mh-1 is downloaded by MACE at run time/);
    expect(notes).toMatch(/pt_train_file omat is downloaded by MACE at run time: offline clusters fail \(mace#724\)/);
  });

  it("writes an E0s table given in the config as assets/E0s.json for the dataset's elements only", () => {
    const p = plan("train", { E0s: { O: -2041.8, H: -13.6, Fe: -3.1 } });
    expect(text(p, "assets/E0s.json")).toBe('{\n  "1": -13.6,\n  "8": -2041.8\n}\n');
    expect(argv(p)).toContain("--E0s=assets/E0s.json");
    expect(p.notes.join("\n")).toMatch(/E0s: left out atomic numbers 26/);
  });

  it("renders K committee members with seeds seed..seed+K-1 sharing data and assets", () => {
    const p = plan("train", { committee: 3, seed: 42, E0s: "fits/e0s.json" });
    const seeds = [0, 1, 2].map((k) => argv(p, `member-${k}/params.json`).find((x) => x.startsWith("--seed=")));
    expect(seeds).toEqual(["--seed=42", "--seed=43", "--seed=44"]);
    const a = argv(p, "member-1/params.json");
    expect(a).toContain("--train_file=../data/train.extxyz");
    expect(a).toContain("--E0s=../assets/E0s.json");
    expect(a).toContain("--work_dir=.");
    expect(text(p, "member-2/run.sh")).toContain("  ../data/train.extxyz\n");
    expect(text(p, "run.sh")).toContain("for member in member-0 member-1 member-2; do");
    // One copy of the dataset for the whole committee.
    expect(p.files.filter((f) => f.path.endsWith("train.extxyz"))).toHaveLength(1);
    expect(JSON.parse(text(p, "member-2/params.json")).member).toEqual({ index: 2, of: 3, seed: 44 });
  });

  it("records the dataset fingerprint and the tool version, with sorted keys and no timestamps", () => {
    const raw = text(plan("train"), "params.json");
    const params = JSON.parse(raw);
    expect(params.dataset).toMatchObject({ energy: "free", head: "omat_pbe", test_membership: "3f1d0c2a9b7e4d5c", stress_frames: 5 });
    expect(params.relabel_version).toBe("9.9.9");
    expect(Object.keys(params)).toEqual([...Object.keys(params)].sort());
    expect(raw).not.toMatch(/\d{4}-\d\d-\d\dT/);
  });
});

describe("eval stage plan", () => {
  const model = { eval: { model: "runs/r1/relabel.model" } };

  it("runs mace_eval_configs on the test split with the head always passed and stress when labelled", () => {
    const p = plan("eval", model);
    expect(argv(p)).toEqual([
      "mace_eval_configs", "--configs=data/test.extxyz", "--model=models/test.model", "--output=predictions/test.extxyz",
      "--head=Default", "--device=cuda", "--default_dtype=float32", "--batch_size=64", "--info_prefix=MACE_", "--compute_stress",
    ]);
    expect(copies(p)).toEqual({
      "data/test.extxyz": ["/ds/test.extxyz"],
      "data/summary.json": ["/ds/summary.json"],
      "models/test.model": ["/src/runs/r1/relabel.model"],
    });
    const noStress = summary((s) => (s.labels.stress_frames = 0));
    expect(argv(plan("eval", model, noStress))).not.toContain("--compute_stress");
    expect(argv(plan("eval", { eval: { ...model.eval, head: "omat_pbe" } }))).toContain("--head=omat_pbe");
  });

  it("predicts the pool once per committee model into predictions/pool.member-K.extxyz", () => {
    const p = plan("eval", { eval: { ...model.eval, pool: ["cands/a.extxyz", "cands/b.extxyz.gz"], committee_models: ["m0.model", "m1.model"] } });
    const commands: string[][] = JSON.parse(text(p, "params.json")).commands;
    expect(commands.map((c) => c.filter((x) => /^--(configs|model|output)=/.test(x)))).toEqual([
      ["--configs=data/test.extxyz", "--model=models/test.model", "--output=predictions/test.extxyz"],
      ["--configs=pool/pool.extxyz", "--model=models/member-0.model", "--output=predictions/pool.member-0.extxyz"],
      ["--configs=pool/pool.extxyz", "--model=models/member-1.model", "--output=predictions/pool.member-1.extxyz"],
    ]);
    for (const c of commands) expect(c).toContain("--head=Default");
    expect(commands[1]).not.toContain("--compute_stress");
    expect(p.files.find((f) => f.path === "pool/pool.extxyz")).toEqual({ path: "pool/pool.extxyz", from: ["/src/cands/a.extxyz", "/src/cands/b.extxyz.gz"], join: "extxyz" });
  });

  it("with descriptors, writes each structure's mean descriptors for every split (eval.model) and the pool (member 0 only)", () => {
    const p = plan("eval", { eval: { ...model.eval, pool: ["cands/a.extxyz"], committee_models: ["m0.model", "m1.model"], descriptors: true } });
    const commands: string[][] = JSON.parse(text(p, "params.json")).commands;
    const described = ["--return_descriptors", "--descriptor_aggregation_method=mean"];
    expect(commands.map((c) => [c.find((x) => x.startsWith("--output="))!, described.every((d) => c.includes(d))])).toEqual([
      ["--output=predictions/test.extxyz", true],
      ["--output=predictions/train.extxyz", true],
      ["--output=predictions/valid.extxyz", true],
      ["--output=predictions/pool.member-0.extxyz", true],
      ["--output=predictions/pool.member-1.extxyz", false],
    ]);
    expect(commands[1]).toContain("--configs=data/train.extxyz");
    expect(commands[1]).toContain("--model=models/test.model");
    expect(commands[1]).not.toContain("--compute_stress");
    expect(Object.keys(copies(p)).filter((f) => f.startsWith("data/")).sort()).toEqual(["data/summary.json", "data/test.extxyz", "data/train.extxyz", "data/valid.extxyz"]);
    expect(JSON.parse(text(p, "params.json")).derived.outputs).toEqual([
      "predictions/train.extxyz", "predictions/valid.extxyz", "predictions/test.extxyz", "predictions/pool.member-0.extxyz", "predictions/pool.member-1.extxyz",
    ]);
    expect(argv(plan("eval", model))).not.toContain("--return_descriptors");
    const perElement = plan("eval", { eval: { ...model.eval, descriptors: "per-element" } });
    expect(argv(perElement)).toEqual(expect.arrayContaining(["--return_descriptors", "--descriptor_aggregation_method=per_element_mean"]));
  });

  it("predicts the pool with the evaluated model when no committee is given", () => {
    const p = plan("eval", { eval: { ...model.eval, pool: ["cands/a.extxyz"] } });
    const commands: string[][] = JSON.parse(text(p, "params.json")).commands;
    expect(commands[1]).toContain("--model=models/test.model");
    expect(commands[1]).toContain("--output=predictions/pool.member-0.extxyz");
  });

  it("needs a model, a device mace_eval_configs knows, a pool for committee models and a test split", () => {
    const check = (input: StageConfigInput) => () => checkStageConfig("eval", parseStageConfig(input, "c.json"), "c.json");
    expect(check({})).toThrow(/c\.json: eval\.model: the eval stage needs the trained model/);
    expect(check({ ...model, device: "mps" })).toThrow(/device: mace_eval_configs runs on cuda or cpu, not mps/);
    expect(check({ eval: { ...model.eval, committee_models: ["a.model"] } })).toThrow(/eval\.pool is empty/);
    const noTest = summary((s) => (s.files = ["train.extxyz", "valid.extxyz"]));
    expect(() => plan("eval", model, noTest)).toThrow(InputError);
    expect(() => plan("eval", model, noTest)).toThrow(/no test\.extxyz/);
  });
});
