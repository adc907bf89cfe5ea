import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { defaultRelabelConfig, type RelabelConfig } from "../../../src/core/app/config.js";
import { COMMITTEE_OPTIONS, parseRoundIssue, ROUND_FORM_LABELS, roundIssueBody, roundIssueProblemsComment } from "../../../src/core/app/issue-form.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
interface FormField {
  type: string;
  id?: string;
  attributes: { label?: string; options?: string[] };
}
const form = parse(readFileSync(path.join(root, "templates/ISSUE_TEMPLATE/al-round.yml"), "utf8")) as { labels: string[]; body: FormField[] };
const inputs = form.body.filter((f) => f.type !== "markdown");

/** The issue body GitHub renders from a filled form: one `### label` section per field, "_No response_" when empty. */
function rendered(values: Record<string, string>): string {
  return inputs.map((f) => `### ${f.attributes.label}\n\n${values[f.id!] || "_No response_"}`).join("\n\n");
}

const config = defaultRelabelConfig();
const LABELS = [{ name: "al-round" }];

function request(body: string, cfg: RelabelConfig = config) {
  const result = parseRoundIssue(body, LABELS, cfg);
  if (result.kind !== "request") throw new Error(JSON.stringify(result));
  return result.request;
}

function problems(body: string): string[] {
  const result = parseRoundIssue(body, LABELS, config);
  if (result.kind !== "problems") throw new Error(JSON.stringify(result));
  return result.problems;
}

describe("the issue form template", () => {
  it("carries the default round label and the labels the parser reads", () => {
    expect(form.labels).toEqual([config.round_label]);
    const labels = inputs.map((f) => f.attributes.label);
    for (const label of Object.values(ROUND_FORM_LABELS)) expect(labels).toContain(label);
    const dropdown = inputs.find((f) => f.type === "dropdown")!;
    expect(dropdown.attributes.options).toEqual(Object.values(COMMITTEE_OPTIONS));
  });
});

describe("parseRoundIssue", () => {
  it("reads a filled form", () => {
    const body = rendered({
      pool: "pools/md.extxyz\n- `pools/surfaces/`\n",
      select: "16",
      committee: COMMITTEE_OPTIONS.files,
      committee_files: "preds/m0.extxyz\npreds/m1.extxyz",
      weights: "div=1,dis=2",
      notes: "### not a field\nfree text",
    });
    expect(request(body)).toEqual({
      pool: ["pools/md.extxyz", "pools/surfaces/"],
      select: 16,
      committee: { files: ["preds/m0.extxyz", "preds/m1.extxyz"] },
      weights: { div: 1, dis: 2 },
    });
  });

  it("takes the config's defaults for empty fields and for issues written without the form", () => {
    const cfg = { ...config, pool: { paths: ["pools/default.extxyz"] }, committee: "previous-round" as const };
    const expected = { pool: ["pools/default.extxyz"], select: 8, committee: "previous-round", weights: { div: 1, dis: 1 } };
    expect(request(rendered({}), cfg)).toEqual(expected);
    expect(request("Please rank the usual pool.", cfg)).toEqual(expected);
    expect(request(rendered({ committee: COMMITTEE_OPTIONS.none }), cfg).committee).toBe("none");
    expect(request(rendered({ committee: COMMITTEE_OPTIONS.previous, pool: "pools/x.extxyz" })).committee).toBe("previous-round");
  });

  it("ignores issues without the round label", () => {
    expect(parseRoundIssue(rendered({ pool: "pools/md.extxyz" }), [{ name: "bug" }], config)).toEqual({ kind: "not-round" });
    expect(parseRoundIssue(rendered({ pool: "pools/md.extxyz" }), ["al-round"], config).kind).toBe("request");
    expect(parseRoundIssue("", ["al-round"], { ...config, round_label: "round" })).toEqual({ kind: "not-round" });
  });

  it("lists every problem of a badly filled form", () => {
    const found = problems(
      rendered({ pool: "../outside.extxyz", select: "eight", committee: COMMITTEE_OPTIONS.files, committee_files: "preds/m0.extxyz", weights: "div=0,dis=0" }),
    );
    expect(found).toHaveLength(4);
    expect(found[0]).toMatch(/^Pool paths: "\.\.\/outside\.extxyz": /);
    expect(found[1]).toBe('Selection size: expected a whole number of at least 1 (got "eight")');
    expect(found[2]).toBe("Committee prediction files: a committee needs at least 2 prediction files");
    expect(found[3]).toBe("Weights: the weights div and dis cannot both be 0");
  });

  it("asks for a pool when neither the issue nor the config names one", () => {
    expect(problems(rendered({}))).toEqual([expect.stringContaining("Pool paths: none given")]);
  });

  it("refuses prediction files without the matching committee choice", () => {
    expect(problems(rendered({ pool: "pools/a.extxyz", committee_files: "a.xyz\nb.xyz" }))).toEqual([
      'Committee prediction files: files are given but Committee is not "prediction files"',
    ]);
  });

  it("renders the problems as one reply", () => {
    const md = roundIssueProblemsComment(["Selection size: bad", "Weights: bad"]);
    expect(md).toMatch(/^- Selection size: bad$/m);
    expect(md).toMatch(/^- Weights: bad$/m);
  });
});

describe("roundIssueBody", () => {
  it("writes the form as GitHub renders it, so the App's parser reads back what was asked", () => {
    const body = roundIssueBody({ pool: ["pools/a.extxyz", "pools/b"], select: 12, committee: { files: ["preds/m0.xyz", "preds/m1.xyz"] }, weights: "div=1,dis=2" });
    const headings = [...body.matchAll(/^### (.+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual(inputs.map((f) => f.attributes.label).filter((l) => l !== "Notes"));
    expect(request(body)).toEqual({ pool: ["pools/a.extxyz", "pools/b"], select: 12, committee: { files: ["preds/m0.xyz", "preds/m1.xyz"] }, weights: { div: 1, dis: 2 } });
    expect(request(roundIssueBody({ pool: ["pools/a.extxyz"], committee: "previous-round" })).committee).toBe("previous-round");
  });

  it("leaves what is not given to the config's defaults", () => {
    const cfg = { ...config, pool: { ...config.pool, paths: ["pools/default.extxyz"] } };
    expect(request(roundIssueBody({}), cfg)).toEqual({ pool: ["pools/default.extxyz"], select: config.selection.select, committee: config.committee, weights: config.selection.weights });
  });
});
