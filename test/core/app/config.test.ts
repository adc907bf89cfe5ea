import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  defaultRelabelConfig,
  parseRelabelConfig,
  parseWeightsText,
  previousRoundFeatures,
  relabelConfigSchema,
  relabelJsonSchemaText,
  renderConfigProblems,
  type ConfigProblem,
} from "../../../src/core/app/config.js";
import { StageConfigSchema } from "../../../src/core/stage/config.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const template = (rel: string) => readFileSync(path.join(root, "templates", rel), "utf8");

function problems(value: unknown): ConfigProblem[] {
  const result = parseRelabelConfig(value, ".github/relabel.yml");
  if (result.ok) throw new Error("expected the config to be refused");
  return result.problems;
}

const FP = "SHA256:+jhdc21V/zdn5MHHdxqoWycd4s30OlQNHJbhYpbHEPc";

describe("relabel.yml", () => {
  it("gives the documented defaults for an empty file", () => {
    for (const empty of [null, undefined, {}]) {
      const result = parseRelabelConfig(empty);
      expect(result.ok).toBe(true);
    }
    const config = defaultRelabelConfig();
    expect(config.round_label).toBe("al-round");
    expect(config.results_label).toBe("labeled-results");
    expect(config.poll_seconds).toBe(300);
    expect(config.committee).toBe("none");
    expect(config.selection).toMatchObject({ select: 8, weights: { div: 1, dis: 1 }, descriptor: "baseline", scaling: "standard", bins: 80, rmax: 6 });
    expect(config.dataset.fractions).toEqual({ train: 0.8, valid: 0.1, test: 0.1 });
    expect(config.commands.allowlist).toBeNull();
    // the stage block is the CLI's stage schema, defaults included
    expect(config.stage).toEqual(StageConfigSchema.parse({}));
    expect(config.executors).toEqual({});
  });

  it("accepts the commented example template, and the template mentions every key", () => {
    const text = template("relabel.yml");
    const result = parseRelabelConfig(parse(text), "templates/relabel.yml");
    if (!result.ok) throw new Error(renderConfigProblems(result.problems));
    expect(result.config).toEqual(defaultRelabelConfig());
    const sections = ["pool", "selection", "dataset", "vasp_templates", "commands"] as const;
    const keys = [...Object.keys(relabelConfigSchema.shape), ...sections.flatMap((s) => Object.keys(defaultRelabelConfig()[s]))];
    for (const key of keys) expect(text, `templates/relabel.yml does not document "${key}"`).toMatch(new RegExp(`^#?\\s*${key}:`, "m"));
  });

  it("accepts the commented executor example once uncommented (the CLI's executor schema)", () => {
    const text = template("relabel.yml").replace(/^# (executor: hpc|executors:|  hpc:|    .*|      .*)$/gm, "$1").replace(/^executors: \{\}$/m, "");
    const data = parse(text) as { executors: { hpc: Record<string, unknown> } };
    data.executors.hpc.host_key = FP;
    const result = parseRelabelConfig(data);
    if (!result.ok) throw new Error(renderConfigProblems(result.problems));
    expect(result.config.executor).toBe("hpc");
    expect(result.config.executors.hpc).toMatchObject({ backend: "ssh+slurm", port: 22, private_key_env: "RELABEL_SSH_KEY" });
  });

  it("names every unknown key with its path, the valid keys and the closest one", () => {
    const found = problems({
      selecton: { select: 4 },
      dataset: { fractons: { train: 1, valid: 0, test: 0 } },
      stage: { eval: { hed: "Default" } },
      committee: { files: ["a.extxyz", "b.extxyz"], member: 3 },
      executors: { hpc: { backend: "local", remote_root: "/scratch/x", resorces: {} } },
    });
    const byPath = new Map(found.map((p) => [p.path, p]));
    expect([...byPath.keys()].sort()).toEqual(["committee.member", "dataset.fractons", "executors.hpc.resorces", "selecton", "stage.eval.hed"]);
    expect(byPath.get("dataset.fractons")).toMatchObject({ suggestion: "fractions" });
    expect(byPath.get("dataset.fractons")!.message).toContain("did you mean `fractions`?");
    expect(byPath.get("dataset.fractons")!.message).toContain("`allow_mixed_settings`");
    expect(byPath.get("selecton")).toMatchObject({ suggestion: "selection" });
    expect(byPath.get("stage.eval.hed")).toMatchObject({ suggestion: "head" });
    expect(byPath.get("executors.hpc.resorces")).toMatchObject({ suggestion: "resources" });
    // no close key: no guess, but the valid keys are listed
    expect(byPath.get("committee.member")!.suggestion).toBeUndefined();
    expect(byPath.get("committee.member")!.message).toContain("expected one of: `files`");
  });

  it("suggests keys written with dashes", () => {
    expect(problems({ dataset: { "require-converged": true } })[0]).toMatchObject({ path: "dataset.require-converged", suggestion: "require_converged" });
  });

  it("explains bad values at their path", () => {
    const found = problems({
      selection: { select: "8", weights: { div: 0, dis: 0 }, force_trust: "0.3:0.1", trust_exclude: ["suspect", "failed"], descriptor: "soap", type_map: ["Hf", "Ox"] },
      dataset: { fractions: { train: 0.8, valid: 0.1, test: 0.2 } },
      committee: "everyone",
      vasp_templates: { incar: "../INCAR" },
      commands: { allowlist: [] },
    });
    const message = (p: string) => found.find((x) => x.path === p)?.message;
    expect(message("selection.select")).toBe('expected number, got string "8"');
    expect(message("selection.weights")).toBe("the weights div and dis cannot both be 0");
    expect(message("selection.force_trust")).toContain("LO:HI");
    expect(message("selection.trust_exclude.1")).toContain('"accurate"');
    expect(message("selection.descriptor")).toContain('"baseline"');
    expect(message("selection.type_map.1")).toBe("expected an element symbol such as Hf or O");
    expect(message("dataset.fractions")).toContain("must sum to 1");
    expect(message("committee")).toContain('"previous-round"');
    expect(message("vasp_templates.incar")).toContain("'..'");
    expect(message("commands.allowlist")).toContain("leave the key out");
  });

  it("takes selection.features from the previous round's model, per element or not, or from files", () => {
    const features = (value: unknown) => {
      const parsed = parseRelabelConfig({ selection: { features: value } }, ".github/relabel.yml");
      return parsed.ok ? parsed.config.selection.features : parsed.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(features("previous-round")).toBe("previous-round");
    expect(features({ model: "previous-round", per_element: true })).toEqual({ model: "previous-round", per_element: true });
    expect(features({ files: ["features/pool.xyz"] })).toEqual({ files: ["features/pool.xyz"], key: "MACE_descriptors", per_element: false });
    expect(features({ model: "round-3" })).toEqual(['selection.features.model: expected "previous-round" (the only model features are computed with)']);
    expect(features({ files: [] })).toEqual(["selection.features.files: expected extxyz files of features: the pool's and datasets/current's structures"]);
    expect([
      previousRoundFeatures("previous-round"),
      previousRoundFeatures({ model: "previous-round", per_element: true }),
      previousRoundFeatures({ files: ["f.xyz"], key: "MACE_descriptors", per_element: true }),
      previousRoundFeatures(null),
    ]).toEqual([{ perElement: false }, { perElement: true }, null, null]);
  });

  it("reads MAGMOM and DFT+U per element under vasp_templates, and needs an INCAR for them", () => {
    const ok = parseRelabelConfig({ vasp_templates: { incar: "vasp/INCAR", magmom: { Fe: 5, "*": 0.6 }, ldau: { Fe: { l: 2, u: 5.3 } } } }, ".github/relabel.yml");
    expect(ok.ok && ok.config.vasp_templates).toMatchObject({ magmom: { Fe: 5, "*": 0.6 }, ldau: { Fe: { l: 2, u: 5.3, j: 0 } } });
    const found = problems({ vasp_templates: { magmom: { Fx: 5 }, ldau: { "*": { l: 2, u: 1 }, Ni: { l: 4, u: 6 } } } });
    const message = (p: string) => found.find((x) => x.path === p)?.message;
    expect(message("vasp_templates.magmom.Fx")).toBe('expected an element symbol such as Fe, or "*"');
    expect(message("vasp_templates.ldau.*")).toBe("expected an element symbol such as Fe");
    expect(message("vasp_templates.ldau.Ni.l")).toBe("L must be -1 (none), 0, 1, 2 (d) or 3 (f), got 4");
    expect(parseRelabelConfig({ vasp_templates: { incar: "vasp/INCAR", magmom: "pool" } }, ".github/relabel.yml").ok).toBe(true);
    expect(problems({ vasp_templates: { incar: "vasp/INCAR", magmom: 5 } })).toEqual([{ path: "vasp_templates.magmom", message: 'expected moments per element such as {Fe: 5, "*": 0.6}, or "pool"' }]);
    const spec = parseRelabelConfig({ vasp_templates: { potcar_symbols: { Fe: "Fe_pv" } } }, ".github/relabel.yml");
    expect(spec.ok && spec.config.vasp_templates.potcar_symbols).toEqual({ Fe: "Fe_pv" });
    expect(problems({ vasp_templates: { potcar_symbols: { Fe: "O_s" } } })).toEqual([{ path: "vasp_templates.potcar_symbols.Fe", message: '"O_s" is no potential of Fe: expected Fe or a variant such as Fe_pv' }]);
    expect(problems({ vasp_templates: { magmom: { Fe: 5 } } })).toEqual([{ path: "vasp_templates.incar", message: "magmom and ldau are written into each pick's INCAR: set incar too" }]);
  });

  it("keeps the executor schema's own cross-check", () => {
    expect(problems({ executor: "hpc" })).toEqual([{ path: "executor", message: "names no entry of executors" }]);
  });

  it("reports a discriminator typo of the reused executor schema", () => {
    const found = problems({ executors: { hpc: { backend: "slurm", remote_root: "/x" } } });
    expect(found).toHaveLength(1);
    expect(found[0].path).toBe("executors.hpc.backend");
    expect(found[0].message).toContain("ssh+slurm");
  });

  it("refuses a file that is not a mapping", () => {
    expect(problems(["a", "b"])).toEqual([{ path: "", message: "expected a mapping of settings (key: value lines), got a list" }]);
    expect(problems("round_label al-round")[0].message).toContain("got string");
  });

  it("refuses `_extends`: no settings come from another file or repository", () => {
    expect(problems({ _extends: "lab/.github" })).toEqual([
      { path: "_extends", message: "is not supported: relabel-loop reads no settings from other files or repositories; copy the ones you need into .github/relabel.yml" },
    ]);
    // Alongside the file's other problems, once.
    expect(problems({ _extends: ".github", selecton: {} }).map((p) => p.path)).toEqual(["_extends", "selecton"]);
  });

  it("renders one comment that lists each bad key", () => {
    const found = problems({ selecton: {}, dataset: { fractons: 1 } });
    const md = renderConfigProblems(found, ".github/relabel.yml");
    expect(md).toContain("`.github/relabel.yml`");
    expect(md).toContain("(2 problems;");
    expect(md).toMatch(/^- `selecton`: unknown key \(did you mean `selection`\?\)/m);
    expect(md).toMatch(/^- `dataset.fractons`: unknown key \(did you mean `fractions`\?\)/m);
  });

  it("reads weights typed as div=W,dis=W", () => {
    expect(parseWeightsText("div=1,dis=2")).toEqual({ div: 1, dis: 2 });
    expect(parseWeightsText(" dis = 0.5 ")).toEqual({ div: 1, dis: 0.5 });
    expect(parseWeightsText("div=0,dis=0")).toBe("the weights div and dis cannot both be 0");
    expect(parseWeightsText("div=-1")).toContain(">= 0");
    expect(parseWeightsText("diversity=1")).toContain('unknown weight "diversity"');
    expect(parseWeightsText("div:1")).toContain("div=W,dis=W");
  });
});

describe("templates/relabel.schema.json", () => {
  it("is the JSON Schema generated from the zod schema", () => {
    const generated = relabelJsonSchemaText();
    const checkedIn = template("relabel.schema.json");
    expect(checkedIn === generated, "templates/relabel.schema.json is out of date: run `npm run schema` and commit the result").toBe(true);
  });

  it("rejects unknown keys and keeps the defaults, like the zod schema", () => {
    const schema = JSON.parse(template("relabel.schema.json")) as {
      additionalProperties: boolean;
      properties: Record<string, { default?: unknown; additionalProperties?: boolean; properties?: Record<string, { default?: unknown }> }>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.dataset.additionalProperties).toBe(false);
    expect(schema.properties.poll_seconds.default).toBe(300);
    expect(schema.properties.selection.properties?.select.default).toBe(8);
    expect(Object.keys(schema.properties.stage.properties ?? {})).toEqual(Object.keys(StageConfigSchema.shape));
  });
});
