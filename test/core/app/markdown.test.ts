import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultRelabelConfig } from "../../../src/core/app/config.js";
import { matchLabelRuns, type DryRunResult } from "../../../src/core/app/dry-run.js";
import { advance, failRound, newRoundManifest } from "../../../src/core/app/manifest.js";
import {
  benchmarkComment,
  COMMENT_LIMIT,
  dryRunReport,
  escapeCell,
  fitComment,
  formatCount,
  formatFixed,
  HEURISTIC_NAME,
  inlineCode,
  jobsComment,
  pollProblemsComment,
  pollRecoveredComment,
  marker,
  outputContract,
  selectionSummary,
  statusComment,
  stickyComment,
} from "../../../src/core/app/markdown.js";
import { parseRankingJson, type RankingJson } from "../../../src/core/app/ranking-json.js";
import { ledgerSchema } from "../../../src/core/exec/ledger.js";
import { rankToDir } from "../../../src/io/rank.js";
import { realPath } from "../../helpers/real-data.js";

// ---------------------------------------------------------------------------------------------------------------
// fitComment

const CONTINUED = /^_\(continued from the previous comment: part (\d+) of (\d+)\)_\n\n/;

/** Fence lines and <details> tags must pair up inside every part. */
function expectBalanced(part: string): void {
  let fence: string | null = null;
  let depth = 0;
  for (const line of part.split("\n")) {
    const m = /^(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === null) fence = m[1];
      else if (line.trim() === fence) fence = null;
      continue;
    }
    if (fence !== null) continue;
    depth += (line.match(/<details/g) ?? []).length - (line.match(/<\/details>/g) ?? []).length;
    expect(depth).toBeGreaterThanOrEqual(0);
  }
  expect(fence, "a code fence is left open").toBeNull();
  expect(depth, "a <details> is left open").toBe(0);
}

function expectParts(parts: string[], limit = COMMENT_LIMIT): void {
  parts.forEach((part, i) => {
    expect(part.length).toBeLessThanOrEqual(limit);
    if (i > 0) expect(CONTINUED.exec(part)?.slice(1)).toEqual([String(i + 1), String(parts.length)]);
    expectBalanced(part);
  });
}

/** Numbered lines, so that every line can be found again exactly once and in order. */
const numbered = (from: number, to: number, text = "") => Array.from({ length: to - from }, (_, i) => `line ${String(from + i).padStart(6, "0")}${text}`);
const lineNumbers = (parts: string[]) => parts.join("\n").match(/line \d{6}/g)!.map((s) => Number(s.slice(5)));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("fitComment", () => {
  it("leaves a body within the limit alone", () => {
    expect(fitComment("short")).toEqual(["short"]);
    const exact = "x".repeat(COMMENT_LIMIT);
    expect(fitComment(exact)).toEqual([exact]);
  });

  it("splits long prose at blank lines, keeping every line once and in order", () => {
    const paragraphs: string[] = [];
    for (let p = 0; p < 400; p++) paragraphs.push(numbered(p * 10, p * 10 + 10, " lorem ipsum dolor sit amet, consectetur adipiscing elit").join("\n"));
    const body = paragraphs.join("\n\n");
    expect(body.length).toBeGreaterThan(3 * COMMENT_LIMIT);
    const parts = fitComment(body);
    expect(parts.length).toBeGreaterThanOrEqual(Math.ceil(body.length / COMMENT_LIMIT));
    expectParts(parts);
    expect(lineNumbers(parts)).toEqual(range(4000));
    // every cut falls between paragraphs: each part ends a paragraph (10 lines)
    for (const part of parts.slice(0, -1)) expect(lineNumbers([part]).length % 10).toBe(0);
  });

  it("closes and reopens a long code fence with its info string", () => {
    const body = ["Log:", "", "```python", ...numbered(0, 8000, " = compute(x)  # some python"), "```", "", "done"].join("\n");
    const parts = fitComment(body);
    expect(parts.length).toBeGreaterThan(3);
    expectParts(parts);
    for (const part of parts.slice(1)) expect(part.replace(CONTINUED, "").startsWith("```python\n")).toBe(true);
    for (const part of parts.slice(0, -1)) expect(part.endsWith("```\n")).toBe(true);
    expect(lineNumbers(parts)).toEqual(range(8000));
    expect(parts.at(-1)!.endsWith("done")).toBe(true);
  });

  it("closes and reopens nested <details> around a fence, marking the summary continued", () => {
    const body = [
      "<details><summary>Outer report</summary>",
      "",
      "<details>",
      "<summary>Inner log</summary>",
      "",
      "~~~text",
      ...numbered(0, 6000, " ".padEnd(40, "x")),
      "~~~",
      "",
      "</details>",
      "",
      "</details>",
      "",
      "after",
    ].join("\n");
    const parts = fitComment(body);
    expect(parts.length).toBeGreaterThan(3);
    expectParts(parts);
    expect(parts[1].replace(CONTINUED, "")).toMatch(/^<details>\n<summary>Outer report \(continued\)<\/summary>\n\n<details>\n<summary>Inner log \(continued\)<\/summary>\n\n~~~text\nline \d{6}/);
    expect(lineNumbers(parts)).toEqual(range(6000));
  });

  it("cuts tables between tables, not inside one", () => {
    const tables: string[] = [];
    for (let t = 0; t < 60; t++) tables.push(["| n | value |", "|---|---:|", ...numbered(t * 60, t * 60 + 60).map((l) => `| ${l} | ${"9".repeat(30)} |`)].join("\n"));
    const parts = fitComment(tables.join("\n\n"));
    expect(parts.length).toBeGreaterThan(1);
    expectParts(parts);
    for (const part of parts) {
      // each part holds whole tables: every row block starts with the header
      for (const block of part.replace(CONTINUED, "").trim().split(/\n\n+/)) expect(block.startsWith("| n | value |")).toBe(true);
    }
    expect(lineNumbers(parts)).toEqual(range(3600));
  });

  it("cuts a single enormous line at spaces", () => {
    const words = Array.from({ length: 40_000 }, (_, i) => `w${i}`);
    const body = words.join(" ");
    const parts = fitComment(body);
    expectParts(parts);
    const rejoined = parts.map((p) => p.replace(CONTINUED, "").replace(/\n$/, "")).join("");
    expect(rejoined).toBe(body);
  });

  it("works with other limits (check-run output)", () => {
    const body = numbered(0, 20_000).join("\n");
    const parts = fitComment(body, 65_535);
    expectParts(parts, 65_535);
    expect(lineNumbers(parts)).toEqual(range(20_000));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// sticky comments

describe("sticky comments", () => {
  it("marks a comment by kind and id, each a simple name", () => {
    expect(marker("benchmark", 12)).toBe("<!-- relabel-loop:benchmark:12 -->");
    // The closing " -->" keeps round 1's marker from matching inside round 12's.
    expect(marker("benchmark", 12).includes(marker("benchmark", 1))).toBe(false);
    expect(() => marker("bench mark", 1)).toThrow(RangeError);
  });

  it("keeps earlier versions collapsed, newest first, at most `keep`", () => {
    const v1 = stickyComment({ kind: "benchmark", id: 7, body: "RMSE 10", label: "commit aaa", previous: null });
    expect(v1.startsWith(marker("benchmark", 7))).toBe(true);
    expect(v1).not.toContain("Earlier versions");
    const v2 = stickyComment({ kind: "benchmark", id: 7, body: "RMSE 9", label: "commit bbb", previous: v1 });
    const v3 = stickyComment({ kind: "benchmark", id: 7, body: "RMSE 8", label: "commit ccc", previous: v2 });
    expect(v3).toContain("Earlier versions (2)");
    expect(v3.indexOf("RMSE 8")).toBeLessThan(v3.indexOf("<summary>commit bbb</summary>\n\nRMSE 9"));
    expect(v3.indexOf("RMSE 9")).toBeLessThan(v3.indexOf("<summary>commit aaa</summary>\n\nRMSE 10"));
    expect(v3.match(/relabel-loop:benchmark:7/g)).toHaveLength(1);
    expectBalanced(v3);
    const v4 = stickyComment({ kind: "benchmark", id: 7, body: "RMSE 7", label: "commit ddd", previous: v3, keep: 2 });
    expect(v4).toContain("Earlier versions (2)");
    expect(v4).not.toContain("RMSE 10");
  });

  it("drops the oldest versions and shortens the text to stay within the limit", () => {
    const big = (n: number) => numbered(n * 1000, n * 1000 + 900, " ".padEnd(30, "y")).join("\n");
    let body: string | null = null;
    for (let v = 0; v < 4; v++) body = stickyComment({ kind: "report", id: 1, body: big(v), label: `v${v}`, previous: body });
    expect(body!.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(body).toContain("line 003000");
    expect(body).not.toContain("line 000000");
    expectBalanced(body!);
    const huge = stickyComment({ kind: "report", id: 1, body: numbered(0, 5000, " ".padEnd(40, "z")).join("\n"), label: "x", previous: body });
    expect(huge.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(huge).toContain("_(shortened to fit one comment; the full text is in the ledger)_");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// formatting

describe("formatting", () => {
  it("formats numbers one way everywhere", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatFixed(0.5)).toBe("0.500");
    expect(formatFixed(-0.0001)).toBe("0.000");
    expect(formatFixed(12.3456, 2)).toBe("12.35");
    expect(formatFixed(null)).toBe("–");
    expect(formatFixed(Number.NaN)).toBe("–");
  });

  it("keeps table cells and code spans intact", () => {
    expect(escapeCell("a|b\nc")).toBe("a\\|b<br>c");
    expect(inlineCode("x")).toBe("`x`");
    expect(inlineCode("a`b")).toBe("`` a`b ``");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// selection summary, from a real ranking

describe("selectionSummary", () => {
  let dir: string;
  let ranking: RankingJson;
  const pool = [realPath("extxyz/metatrain_carbon_reduced_100.xyz"), realPath("extxyz/imagdau_solvent_xtb_train_20.xyz")];
  /** Frames of an extxyz file: its atom-count lines. */
  const framesOf = async (file: string) => (await readFile(file, "utf8")).split("\n").filter((l) => /^\d+\s*$/.test(l)).length;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "relabel-summary-"));
    await rankToDir({ pool, select: 25, out: path.join(dir, "selection"), software: { name: "relabel-loop", version: "0.1.0" } });
    const parsed = parseRankingJson(await readFile(path.join(dir, "selection", "ranking.json"), "utf8"), "ranking.json");
    if (!parsed.ok) throw new Error(parsed.problem);
    ranking = parsed.ranking;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps a long selection within GitHub's limit, leaving the picks that do not fit to the ranking files", () => {
    const many = { ...ranking, selection_size: 1000, selected: Array.from({ length: 1000 }, (_, i) => ({ ...ranking.selected[i % ranking.selected.length], rank: i + 1 })) };
    const md = selectionSummary(many, { round: 3 });
    expect(md.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(md).toContain("<details><summary>Picks 21–1000</summary>");
    expectBalanced(md);
    const listed = [...md.matchAll(/^\| (\d+) \| `/gm)].map((m) => Number(m[1]));
    expect(listed).toEqual(range(listed.length).map((i) => i + 1));
    expect(listed.length).toBeGreaterThan(100);
    expect(md).toContain(`_Picks ${listed.length + 1}–1000 are in \`rounds/0003/selection/ranking.csv\` and \`ranking.json\``);
    // A selection that fits is listed whole.
    expect(selectionSummary(many, { round: 3, limit: 10 * COMMENT_LIMIT })).not.toContain("GitHub caps");
  });

  it("lists the pool sources with their sha256 and frame counts", async () => {
    const md = selectionSummary(ranking, { round: 3 });
    for (const file of pool) {
      const sha = createHash("sha256").update(await readFile(file)).digest("hex");
      const frames = await framesOf(file);
      expect(md).toContain(`| \`${file.split(path.sep).join("/")}\` | ${frames} | \`${sha}\` |`);
    }
  });

  it("says what the diversity is measured in, and lists the feature files it was ranked in", () => {
    expect(selectionSummary(ranking, { round: 3 })).toContain("when the pick was made, in standard-scaled descriptor units");
    const files = [{ path: "features/pool.xyz", sha256: "ab".repeat(32) }];
    const features = { ...ranking, parameters: { ...ranking.parameters, descriptor: "features", scaling: "none", features_files: files, features_key: "MACE_descriptors" } };
    const md = selectionSummary(features, { round: 3 });
    expect(md).toContain("when the pick was made, in unscaled feature units");
    expect(md).toContain("- **Features:** `MACE_descriptors` per structure from `features/pool.xyz` (sha256 `abababababab`…)\n");
    expect(md).not.toContain("features_files=");
  });

  it("names ranking.csv as committed: gzipped for a very large pool", () => {
    expect(selectionSummary(ranking, { round: 3 })).toContain("Files: `rounds/0003/selection/ranking.json`, `rounds/0003/selection/ranking.csv` (every candidate)");
    expect(selectionSummary(ranking, { round: 3, rankingCsv: "rounds/0003/selection/ranking.csv.gz" })).toContain(", `rounds/0003/selection/ranking.csv.gz` (every candidate)");
  });

  it("says when each pick's INCAR got per-element values, and only then", () => {
    expect(selectionSummary(ranking, { perElementIncar: ["MAGMOM", "DFT+U (LDAUL/LDAUU/LDAUJ)"] })).toContain(
      "- **INCAR per pick:** MAGMOM and DFT+U (LDAUL/LDAUU/LDAUJ) per element from `vasp_templates`, in the order of each POSCAR's species line\n",
    );
    expect(selectionSummary(ranking, { perElementIncar: [] })).not.toContain("INCAR per pick");
    expect(selectionSummary(ranking, { potcarSymbols: { Fe: "Fe_pv" } })).toContain(
      "- **POTCAR.spec per pick:** the potentials in the order of each POSCAR's species line (Fe `Fe_pv`, other elements by their symbol), for the cluster to assemble the POTCAR\n",
    );
    expect(selectionSummary(ranking, { potcarSymbols: null })).not.toContain("POTCAR.spec");
  });

  it("warns of a KPOINTS mesh that does not suit the picks, one paragraph per point", () => {
    expect(selectionSummary(ranking, { kpointsAdvice: ["vasp/KPOINTS gives a 4x4x4 k-point mesh to <boxed>", "spacing runs"] })).toContain(
      "> [!WARNING]\n> vasp/KPOINTS gives a 4x4x4 k-point mesh to &lt;boxed&gt;.\n>\n> spacing runs.\n\n",
    );
    expect(selectionSummary(ranking, { kpointsAdvice: [] })).not.toContain("[!WARNING]");
  });

  it("states the sizes, the committee, the rule in words and the heuristic by name", async () => {
    const md = selectionSummary(ranking, { round: 3 });
    const candidates = (await framesOf(pool[0])) + (await framesOf(pool[1]));
    expect(md).toContain("### Round 3: selection");
    expect(md).toContain(`**25 structures selected** for DFT labelling from ${candidates} candidates in 2 pool sources.`);
    expect(md).toContain(`- **Ranking rule:** ${ranking.rule}`);
    expect(ranking.rule).toMatch(/^diversity-first \(no committee\)/);
    expect(md).toContain(`- **Method:** ${HEURISTIC_NAME}.`);
    expect(HEURISTIC_NAME).toContain("not calibrated uncertainty");
    expect(md).toContain("- **Committee:** none: no disagreement term, diversity only");
    expect(md).toContain("rounds/0003/selection/ranking.json");
  });

  it("shows the top 20 in a table and the rest collapsed, without a disagreement column when there is no committee", () => {
    const md = selectionSummary(ranking, { round: 3 });
    const rows = md.split("\n").filter((l) => /^\| \d+ \| `[0-9a-f]{20}` \|/.test(l));
    expect(rows).toHaveLength(25);
    expect(md).toContain("| rank | candidate_id | formula | atoms | source | frame | diversity | score |");
    expect(md).toContain("<details><summary>Picks 21–25</summary>");
    const first = ranking.selected.find((p) => p.rank === 1)!;
    // three decimals, as documented
    const expected = `| 1 | \`${first.candidate_id}\` | ${first.formula} | ${first.natoms} | \`${first.source}\` | ${first.frame} | ${first.diversity.toFixed(3)} | ${first.score.toFixed(3)} |`;
    expect(rows[0]).toBe(expected);
    expectBalanced(md);
  });

  it("lists the steps run directories left out of the pool, with VASP's tag names shown as text", () => {
    const note = "run stopped early: cut at line 680, inside <calculation> 1, in <scstep>; kept 0 complete steps";
    const md = selectionSummary({ ...ranking, sources: [{ ...ranking.sources[0], frames: 0, notes: [note] }, ranking.sources[1]] });
    const path0 = ranking.sources[0].path;
    expect(md).toContain(
      `> [!NOTE]\n> **Run directories** (only their complete DFT steps are candidates):\n> - \`${path0}\`: run stopped early: cut at line 680, inside &lt;calculation&gt; 1, in &lt;scstep&gt;; kept 0 complete steps\n`,
    );
    expect(selectionSummary(ranking)).not.toContain("[!NOTE]");
  });

  it("lists the files in pool folders that are no structures, ten at most", () => {
    const one = selectionSummary({ ...ranking, unread_files: ["pools/README.md"] });
    expect(one).toContain(
      "> [!NOTE]\n> **1 file in the pool's folders is not a structure relabel reads** (convert other formats to extxyz: `python3 -m ase convert FILE OUT.extxyz`):\n> - `pools/README.md`\n\n",
    );
    const many = selectionSummary({ ...ranking, unread_files: Array.from({ length: 12 }, (_, i) => `pools/s${i}.cif`) });
    expect(many).toContain("> **12 files in the pool's folders are not a structure relabel reads**");
    expect(many).toContain("> - `pools/s9.cif`\n> - … 2 more in ranking.json (`unread_files`)\n");
    expect(many).not.toContain("s10.cif");
    expect(selectionSummary(ranking)).not.toContain("pool's folders");
  });

  it("warns about pool sources that could not be read, above the sources", () => {
    const skipped = [{ path: "pool/cut.xyz", problem: "pool/cut.xyz:4: frame has 1 atom line(s), expected 5: the file ends at line 6" }];
    const md = selectionSummary({ ...ranking, skipped_sources: skipped });
    expect(md).toContain("> [!WARNING]\n> **1 pool source could not be read and was left out of the ranking:**\n> - pool/cut.xyz:4: frame has 1 atom line(s), expected 5: the file ends at line 6\n\n**Pool sources**");
    expect(selectionSummary(ranking)).not.toContain("[!WARNING]");
  });

  it("says which picks had no cell and went into a vacuum box", () => {
    expect(selectionSummary(ranking, { boxed: [2, 5], vacuum: 12 })).toContain(
      "> [!NOTE]\n> 2 picks have no cell (rank 2, 5): their POSCARs put them in a cubic box with at least 12 Å of vacuum between periodic copies (`vasp_templates.vacuum`), positions unchanged, so the results check still finds them.\n",
    );
    expect(selectionSummary(ranking, { boxed: [], vacuum: 12 })).not.toContain("no cell");
  });

  it("adds the disagreement column and the members with a committee", () => {
    const withCommittee: RankingJson = {
      ...ranking,
      committee: { size: 2, members: ["preds/m0.extxyz", "preds/m1.extxyz"] },
      selected: ranking.selected.map((p) => ({ ...p, disagreement: 0.25 })),
    };
    const md = selectionSummary(withCommittee);
    expect(md).toContain("- **Committee:** 2 models: `preds/m0.extxyz`, `preds/m1.extxyz`");
    expect(md).toContain("| diversity | disagreement | score |");
    expect(md).toMatch(/\| 0\.250 \| \d+\.\d{3} \|\n/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// results check, jobs, status, benchmark, outputs

const ID = (c: string) => c.repeat(20);

function dryRun(overrides: Partial<DryRunResult> = {}): DryRunResult {
  const selected = [
    { rank: 1, candidate_id: ID("a"), formula: "C8" },
    { rank: 2, candidate_id: ID("b"), formula: "H2O" },
  ];
  const match = matchLabelRuns(selected, [
    { folder: `001-${ID("a")}`, initialId: ID("a"), steps: 12, converged: true, error: null },
    { folder: "water-run", initialId: ID("b"), steps: 3, converged: false, error: null },
  ]);
  return { round: 4, match, dataset: null, errors: [], warnings: [], ...overrides };
}

describe("dryRunReport", () => {
  it("passes when every run matches and the rebuild would succeed", () => {
    const report = dryRunReport(dryRun());
    expect(report.conclusion).toBe("success");
    expect(report.title).toBe("Round 4: 2 of 2 selected structures labelled; the rebuild would succeed");
    expect(report.summary).toContain(`| \`001-${ID("a")}\` | matched | 1 | \`${ID("a")}\` | 12 | yes |  |`);
    expect(report.summary).toContain(`| \`water-run\` | matched | 2 | \`${ID("b")}\` | 3 | **no** |  |`);
  });

  it("says which runs were matched by geometry and shows the selected candidate_id", () => {
    const at = (x: number) => ({ natoms: 1, symbols: ["Si"], positions: Float64Array.of(x, 0, 0), cell: Float64Array.of(4, 0, 0, 0, 4, 0, 0, 0, 4), pbc: [true, true, true] as [boolean, boolean, boolean] });
    const match = matchLabelRuns([{ rank: 1, candidate_id: ID("a"), formula: "Si", geometry: at(1) }], [
      { folder: "si-run", initialId: ID("e"), initial: at(1 + 3e-6), steps: 2, converged: true, error: null },
    ]);
    const report = dryRunReport({ round: 4, match, dataset: null, errors: [], warnings: [] });
    expect(report.conclusion).toBe("success");
    expect(report.summary).toContain(`| \`si-run\` | matched | 1 | \`${ID("a")}\` | 2 | yes | matched by geometry (within 1e-4 Å up to lattice vectors: VASP prints fewer digits, and atoms may have been wrapped into the cell, so its own id is \`${ID("e")}\`) |`);
  });

  it("shows an unreadable run's error with its tag names as text", () => {
    const match = matchLabelRuns([{ rank: 1, candidate_id: ID("a"), formula: "C8" }], [
      { folder: "cut-run", initialId: null, steps: 0, converged: null, error: "vasprun.xml: cut at line 442, after </parameters>, before any <calculation>" },
    ]);
    const report = dryRunReport({ round: 4, match, dataset: null, errors: [], warnings: ["run <x> & co"] });
    expect(report.summary).toContain("| `cut-run` | **unreadable** | – | – | 0 | – | vasprun.xml: cut at line 442, after &lt;/parameters&gt;, before any &lt;calculation&gt; |");
    expect(report.summary).toContain("- warning: run &lt;x&gt; &amp; co");
  });

  it("fails on mismatched and extra runs and on rebuild errors, listing them", () => {
    const selected = [{ rank: 1, candidate_id: ID("a"), formula: "C8" }];
    const match = matchLabelRuns(selected, [
      { folder: `001-${ID("a")}`, initialId: ID("c"), steps: 5, converged: true, error: null },
      { folder: "other", initialId: ID("d"), steps: 5, converged: true, error: null },
    ]);
    const report = dryRunReport({ round: 4, match, dataset: null, errors: ["mixed DFT settings: ENCUT"], warnings: [] });
    expect(report.conclusion).toBe("failure");
    expect(report.title).toBe("Round 4: the rebuild would fail (mixed DFT settings: ENCUT; 1 run holds another structure than its folder name says; 1 run matches no selected candidate)");
    expect(report.summary).toContain(`folder name says \`${ID("a")}\`; the structure is not in the selection`);
    expect(report.summary).toContain("<details><summary>Selected structures without a run</summary>");
    expectBalanced(report.summary);
  });

  it("stays within one check-run output for thousands of runs", () => {
    const selected = Array.from({ length: 3000 }, (_, i) => ({ rank: i + 1, candidate_id: i.toString(16).padStart(20, "0"), formula: "Si64" }));
    const runs = selected.map((c) => ({ folder: `run-${c.rank}-with-a-rather-long-folder-name`, initialId: c.candidate_id, steps: 40, converged: true, error: null }));
    const report = dryRunReport({ round: 9, match: matchLabelRuns(selected, runs), dataset: null, errors: [], warnings: [] });
    expect(report.summary.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(report.summary).toMatch(/_\(shortened: the full report would fill \d+ check outputs; this is the first\)_\n$/);
    expectBalanced(report.summary);
  });
});

const jobsFile = ledgerSchema.parse({
  version: 1,
  executors: {},
  jobs: [
    {
      hash: "0123456789abcdef",
      stage: "train-member-0",
      kind: "train",
      round: "0004",
      executor: "hpc",
      backend: "ssh+slurm",
      host: "alice@login.cluster.example:22",
      remote_dir: "/scratch/alice/relabel/0004/train-member-0",
      local_dir: "rounds/0004/stages/train-member-0",
      attempts: [
        { number: 1, job_id: "912345", submitted_at: "2026-01-31T12:00:00Z", state: "RUNNING", reason: null, exit_code: null, updated_at: "2026-01-31T12:05:00Z", outcome: null, failure: null },
      ],
      cancel_requested_at: null,
      collected: null,
    },
    {
      hash: "fedcba9876543210",
      stage: "eval",
      kind: "eval",
      round: "0004",
      executor: "hpc",
      backend: "ssh+slurm",
      host: "alice@login.cluster.example:22",
      remote_dir: "/scratch/alice/relabel/0004/eval",
      local_dir: "rounds/0004/stages/eval",
      attempts: [
        { number: 1, job_id: "912340", submitted_at: "2026-01-31T11:00:00Z", state: "FAILED", reason: null, exit_code: 1, updated_at: "2026-01-31T11:30:00Z", outcome: "failed", failure: null },
        { number: 2, job_id: "912346", submitted_at: "2026-01-31T12:00:00Z", state: "COMPLETED", reason: null, exit_code: 0, updated_at: "2026-01-31T12:30:00Z", outcome: "succeeded", failure: null },
      ],
      cancel_requested_at: null,
      collected: null,
    },
  ],
});

describe("jobs and status comments", () => {
  it("lists job ids, states and where the logs are", () => {
    const md = jobsComment(jobsFile, { round: 4 });
    expect(md).toContain("### Round 4: 2 jobs submitted");
    expect(md).toContain("| `train-member-0` | train | hpc (ssh+slurm) | `912345` | RUNNING | `alice@login.cluster.example:22:/scratch/alice/relabel/0004/train-member-0` |");
    expect(md).toContain("| `eval` | eval | hpc (ssh+slurm) | `912346` | COMPLETED (succeeded, exit 0), attempt 2 |");
    expect(md).toContain("relabel jobs --jobs rounds/0004/jobs.json");
  });

  it("says which jobs the scheduler has not taken yet", () => {
    const waitingAttempt = { number: 1, job_id: null, submitted_at: "2026-01-31T12:00:00Z", state: "SUBMITTING", reason: null, exit_code: null, updated_at: "2026-01-31T12:00:00Z", outcome: null, failure: null };
    const [train, evaluation] = jobsFile.jobs;
    const oneWaiting = { ...jobsFile, jobs: [{ ...train, attempts: [waitingAttempt] }, evaluation] };
    const md = jobsComment(oneWaiting, { round: 4 });
    expect(md).toContain("### Round 4: 2 jobs submitted, 1 not yet taken by the scheduler");
    expect(md).toContain("| `train-member-0` | train | hpc (ssh+slurm) | – | SUBMITTING |");
    expect(jobsComment({ ...jobsFile, jobs: [oneWaiting.jobs[0]] }, { round: 4 })).toContain("### Round 4: 1 job, not yet taken by the scheduler");
  });

  it("shows state, steps with commits, the lock and the open jobs", () => {
    const config = defaultRelabelConfig();
    let m = newRoundManifest({
      round: 4,
      issue: 20,
      opened_by: "alice",
      time: "2026-01-31T10:00:00Z",
      pool: [{ path: "pools/md.extxyz", sha256: "e".repeat(64) }],
      parameters: { ...config.selection, committee: "none" },
    });
    m = advance(m, "ranked", "1".repeat(40), "2026-01-31T10:05:00Z");
    m = { ...m, prs: { selection: 21 } };
    m = advance(m, "frozen", "2".repeat(40), "2026-01-31T10:30:00Z");
    const md = statusComment(m, jobsFile, { holder: "app", reason: "rebuild", since: "2026-01-31T10:31:00Z" });
    expect(md).toContain("### Round 4: `labeling`");
    expect(md).toContain("- Selection PR: #21 (branch `relabel/round-0004-selection`)");
    expect(statusComment({ ...m, selection_size: 1, committee_size: 0 }, null, null)).toContain("- Selection: 1 structure, no committee");
    expect(statusComment({ ...m, selection_size: 12, committee_size: 3 }, null, null)).toContain("- Selection: 12 structures, committee of 3");
    expect(md).toContain("| selection frozen | done | `222222222222` |");
    expect(md).toContain("| dataset rebuilt | – | – |");
    // The author is named, not @-mentioned again at every status.
    expect(md).toContain("- Opened by `alice` on issue #20");
    expect(md).not.toContain("@alice");
    const failed = statusComment(failRound(m, "poll", "vasprun.xml: <calculation> 3 has no <energy>", "2026-01-31T11:00:00Z"), null, null);
    expect(failed).toContain("(while labeling): vasprun.xml: &lt;calculation&gt; 3 has no &lt;energy&gt;");
    expect(md).toContain("- Lock: held by `app` since 2026-01-31T10:31:00Z (rebuild); `/relabel unlock` releases it");
    expect(statusComment(m, jobsFile, { holder: "app", reason: "rebuild", since: "2026-01-31T10:31:00Z", stale: true })).toContain(
      "- Lock: held by `app` since 2026-01-31T10:31:00Z (rebuild); left by an App process that has stopped: the next step that needs it releases it",
    );
    expect(md).toContain("**Jobs** (1 open of 2)");
    expect(md).not.toContain("- Polling:");
    const troubled = statusComment(m, jobsFile, null, { since: "2026-01-31T11:00:00Z", at: "2026-01-31T11:30:00Z", problems: ["hpc: squeue failed: timed out"] });
    expect(troubled).toContain("- Lock: free\n- Polling: problems since 2026-01-31T11:00:00Z, last at 2026-01-31T11:30:00Z: hpc: squeue failed: timed out\n");
    expect(pollProblemsComment(4, ["a", "b"])).toBe(
      "**Round 4:** polling the jobs runs into a problem: a; b. The App keeps polling and carries on once it clears; `/relabel status` shows the latest.",
    );
    expect(pollRecoveredComment(4, "2026-01-31T11:00:00Z")).toBe("**Round 4:** polling works again (it had problems since 2026-01-31T11:00:00Z); the round carries on.");

    const contract = outputContract(m, { stages: ["train-member-0"], url: (p) => `https://github.com/o/r/blob/${"2".repeat(40)}/${p}` });
    expect(contract).toContain(`| ranking (JSON) | [\`rounds/0004/selection/ranking.json\`](https://github.com/o/r/blob/${"2".repeat(40)}/rounds/0004/selection/ranking.json) | yes |`);
    expect(contract).toContain("| dataset summary |");
    expect(contract).toMatch(/\| stage `train-member-0` \| .*rounds\/0004\/stages\/train-member-0\/.* \| not yet \|/);
    expect(contract).toContain("| ranking (CSV, every candidate) | [`rounds/0004/selection/ranking.csv`]");
    // A ranking.csv committed gzipped (a pool of about a million candidates) is linked by its own name.
    expect(outputContract(m, { rankingCsv: "rounds/0004/selection/ranking.csv.gz" })).toContain("| ranking (CSV, every candidate) | `rounds/0004/selection/ranking.csv.gz` |");
  });
});

describe("benchmarkComment", () => {
  it("puts the warnings first, demotes the report's headings and points its plots at the commit", () => {
    const report = "# Benchmark: `pred.extxyz`\n\n## Overall\n\n```\n# not a heading\n```\n\n![Energy parity](parity_energy.svg)\n";
    const url = "https://github.com/o/r/blob/abc/rounds/0004/benchmark/parity_energy.svg?raw=true";
    const md = benchmarkComment(report, ["the held-out test split differs from round 3"], [{ file: "parity_energy.svg", url }], { round: 4, commit: "abcdef0123456789" });
    expect(md.startsWith("### Round 4: benchmark (commit `abcdef012345`)\n\n> [!WARNING]\n> **Compare with care:**\n> - the held-out test split differs from round 3\n")).toBe(true);
    expect(md).toContain("#### Benchmark: `pred.extxyz`");
    expect(md).toContain("##### Overall");
    expect(md).toContain("```\n# not a heading\n```");
    expect(md).toContain(`![Energy parity](${url})`);
    expect(md).not.toContain("](parity_energy.svg)");
    expect(md).toContain(`**Plots:** [parity_energy.svg](${url})`);
  });

  it("has no warning block when the rounds are comparable", () => {
    expect(benchmarkComment("# Benchmark\n", [], [])).not.toContain("[!WARNING]");
    // Tags in a warning stay visible text.
    expect(benchmarkComment("# Benchmark\n", ["a <calculation> was cut"], [])).toContain("> - a &lt;calculation&gt; was cut\n");
  });
});
