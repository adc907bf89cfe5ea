import { describe, expect, it } from "vitest";
import { StageConfigSchema, configReference, parseStageConfig, parseStageConfigText } from "../../../src/core/stage/config.js";
import { inputErrorOf } from "../../helpers/input-error.js";


describe("stage config schema", () => {
  it("defaults to the validated fine-tune recipe of mace.md 4.1", () => {
    const c = parseStageConfig({}, "defaults");
    expect(c).toMatchObject({
      foundation_model: "mh-1",
      foundation_head: "auto",
      multiheads_finetuning: true,
      pt_train_file: "omat",
      num_samples_pt: 50000,
      filter_type_pt: "combinations",
      subselect_pt: "fps",
      weight_pt_head: 1.0,
      E0s: "estimated",
      energy_weight: 1,
      forces_weight: 10,
      stress_weight: 1,
      max_num_epochs: 25,
      batch_size: 4,
      lr: 1e-4,
      default_dtype: "float32",
      seed: 42,
      restart_latest: true,
      energy_key: "REF_energy",
      forces_key: "REF_forces",
      stress_key: "REF_stress",
      device: "cuda",
      committee: 1,
    });
    expect(c.eval).toMatchObject({ head: "Default", model: null, pool: [], committee_models: [] });
  });

  it("rejects an unknown key, suggests the right spelling and lists the valid keys", () => {
    const err = inputErrorOf(() => parseStageConfig({ e0s: "estimated" }, "stage.json"));
    expect(err.message).toMatch(/^stage\.json: unknown key "e0s" \(did you mean "E0s"\?\); valid keys: name, seed, /);
    expect(err.message).toContain("E0s,");
    expect(err.message).toContain("pt_train_file");
  });

  it("suggests for typos with swapped or missing letters, in nested eval keys too", () => {
    expect(inputErrorOf(() => parseStageConfig({ foundation_modle: "x" }, "c.json")).message).toContain('(did you mean "foundation_model"?)');
    expect(inputErrorOf(() => parseStageConfig({ eval: { modle: "m" } }, "c.json")).message).toMatch(
      /unknown key "eval\.modle" \(did you mean "eval\.model"\?\); valid keys: eval\.command, eval\.model,/,
    );
    expect(inputErrorOf(() => parseStageConfig({ zzz: 1 }, "c.json")).message).toMatch(/unknown key "zzz"; valid keys/);
  });

  it("rejects E0s average with multihead fine-tuning but accepts it without", () => {
    const err = inputErrorOf(() => parseStageConfig({ E0s: "average" }, "c.json"));
    expect(err.message).toMatch(/^c\.json: E0s: "average" cannot be used with multiheads_finetuning/);
    expect(parseStageConfig({ E0s: "average", multiheads_finetuning: false }, "c.json").E0s).toBe("average");
  });

  it("accepts E0s as a keyword, a .json path or an element table, and nothing else", () => {
    expect(parseStageConfig({ E0s: "foundation" }, "c").E0s).toBe("foundation");
    expect(parseStageConfig({ E0s: "fits/e0s.json" }, "c").E0s).toBe("fits/e0s.json");
    expect(parseStageConfig({ E0s: { H: -13.6, "8": -2041.8 } }, "c").E0s).toEqual({ H: -13.6, "8": -2041.8 });
    expect(inputErrorOf(() => parseStageConfig({ E0s: "Estimate" }, "c")).message).toMatch(/E0s: expected "estimated", "foundation", "average", a path ending in \.json/);
    expect(inputErrorOf(() => parseStageConfig({ E0s: 3 }, "c")).message).toMatch(/E0s: expected "estimated"/);
    expect(inputErrorOf(() => parseStageConfig({ E0s: { Xx: 1 } }, "c")).message).toMatch(/E0s: keys must be element symbols or atomic numbers/);
  });

  it("reports every bad value in one line", () => {
    const err = inputErrorOf(() => parseStageConfig({ seed: "1", device: "tpu", batch_size: 0 }, "c.json"));
    expect(err.message.split("\n")).toHaveLength(1);
    expect(err.message).toMatch(/seed: .*expected (number|int)/);
    expect(err.message).toMatch(/device: .*"cuda"\|"cpu"\|"mps"\|"xpu"/);
    expect(err.message).toMatch(/batch_size: /);
  });

  it("refuses names that would need shell quoting or could be read as flags", () => {
    expect(inputErrorOf(() => parseStageConfig({ name: "my run" }, "c")).message).toMatch(/name: expected a name of letters/);
    expect(inputErrorOf(() => parseStageConfig({ name: "-x" }, "c")).message).toMatch(/name: /);
    expect(inputErrorOf(() => parseStageConfig({ train_command: "mace_run_train; rm -rf /" }, "c")).message).toMatch(/train_command: expected one word/);
  });

  it("names the line of a JSON syntax error and refuses a non-object", () => {
    const err = inputErrorOf(() => parseStageConfigText('{\n  "seed": 1,\n  "lr": ,\n}', "cfg.json"));
    expect(err.message).toMatch(/^cfg\.json:3: not valid JSON/);
    expect(inputErrorOf(() => parseStageConfigText("[1]", "cfg.json")).message).toBe("cfg.json:1: expected a JSON object of stage settings");
  });

  it("documents every key with its default in the reference", () => {
    const reference = configReference();
    const keys = [...Object.keys(StageConfigSchema.shape).filter((k) => k !== "eval"), "eval.model", "eval.head", "eval.pool", "eval.committee_models"];
    for (const key of keys) expect(reference).toMatch(new RegExp(`^  ${key.replace(".", "\\.")} +`, "m"));
    expect(reference).toMatch(/^ {2}E0s +"estimated" +/m);
  });
});
