/**
 * report.md (GitHub-flavoured Markdown) and per_config.csv of a benchmark. Numbers have fixed decimals:
 * energy and stress 2, forces 1 (MACE prints 1), percentages 2.
 */
import { hillFormula } from "../structure.js";
import type { MetricsJson, TrainingJson } from "./bench.js";
import { delta, type MetricBlockJson, type PreviousBench } from "./compare.js";
import type { BenchFrame } from "./labels.js";
import type { BenchMetrics } from "./metrics.js";

interface Row {
  label: string;
  digits: number;
  get(b: MetricBlockJson): number | null | undefined;
  /** Counts change without being better or worse. */
  count?: boolean;
}

const OVERALL_ROWS: Row[] = [
  { label: "Energy RMSE (meV/atom)", digits: 2, get: (b) => b.energy_per_atom?.rmse },
  { label: "Energy MAE (meV/atom)", digits: 2, get: (b) => b.energy_per_atom?.mae },
  { label: "Force RMSE (meV/Å)", digits: 1, get: (b) => b.forces?.rmse },
  { label: "Force MAE (meV/Å)", digits: 1, get: (b) => b.forces?.mae },
  { label: "Relative force RMSE (%)", digits: 2, get: (b) => b.forces?.rel_rmse_percent },
  { label: "Stress RMSE (meV/Å³)", digits: 2, get: (b) => b.stress?.rmse },
  { label: "Stress MAE (meV/Å³)", digits: 2, get: (b) => b.stress?.mae },
  { label: "Frames", digits: 0, get: (b) => b.frames, count: true },
  { label: "Atoms", digits: 0, get: (b) => b.atoms, count: true },
  { label: "Frames with stress", digits: 0, get: (b) => b.stress?.frames ?? 0, count: true },
];

function num(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined ? "–" : x.toFixed(digits);
}

/** Table cells must not break the Markdown table. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function code(s: string): string {
  return "`" + s.replace(/`/g, "'") + "`";
}

function changeText(old: number | null | undefined, now: number | null | undefined, row: Row): string {
  const d = delta(old, now, row.digits);
  if (d === null) return "n/a";
  if (row.count) return d.text.replace(/ [▼▲=]$/, "");
  if (d.direction === 0) return d.text;
  return `${d.text} ${d.direction < 0 ? "better" : "worse"}`;
}

export interface PlotLink {
  file: string;
  alt: string;
}

export function renderReport(m: MetricsJson, previous: PreviousBench | null, plots: PlotLink[], hasCurve: boolean): string {
  const out: string[] = [];
  out.push(`# Benchmark: ${code(m.inputs.predictions)}`, "");

  if (m.warnings.length > 0) {
    const notComparable = m.previous !== null && !m.previous.comparable;
    out.push("> [!WARNING]");
    if (notComparable) {
      out.push(`> **This round is NOT comparable with the previous round** (${code(m.previous!.metrics)}): the test set, energy policy or head differs, so the changes below do not measure the model.`, ">");
    }
    for (const w of m.warnings) out.push(`> - ${w}`);
    out.push("");
  }

  const c = m.counts;
  // The stress keys are named only when some paired frame had both: a key nobody found would read as used.
  const withStress = (m.overall.stress?.frames ?? 0) > 0;
  const keys = (k: { energy: string; forces: string; stress: string }) => [k.energy, k.forces, ...(withStress ? [k.stress] : [])].map(code);
  const stressNote = withStress ? "" : "; no frame has a predicted and a reference stress";
  out.push("## Inputs", "");
  out.push(`- Predictions: ${code(m.inputs.predictions)} (${c.prediction_frames} frames; keys ${keys(m.inputs.prediction_keys).join(", ")}${stressNote})`);
  if (m.inputs.references !== null) {
    out.push(`- References: ${code(m.inputs.references)} (${c.reference_frames} frames; keys ${keys(m.inputs.reference_keys).join(", ")})`);
  } else {
    const names = keys(m.inputs.reference_keys);
    out.push(`- References: the ${names.slice(0, -1).join(", ")} and ${names.at(-1)} keys inside the predictions file (no --ref)`);
  }
  const d = m.dataset;
  const known = (v: string | null) => (v === null ? "unknown" : code(v));
  out.push(`- Test set: membership ${known(d.test_membership)}, content ${known(d.test_content)}; energy policy ${known(d.energy)}; head ${known(d.head)}${d.source ? ` (from ${code(d.source)})` : ""}`);
  out.push(`- Reference hashes: structures ${code(d.ref_structures_sha256)}, labels ${code(d.ref_labels_sha256)}`);
  out.push(`- Paired ${c.paired_frames} frames (${c.paired_atoms} atoms) by structure identity; unmatched: ${c.unmatched_predictions} prediction(s), ${c.unmatched_references} reference(s)`);
  if (c.isolated_atom_frames) {
    out.push(`- ${c.isolated_atom_frames} IsolatedAtom frame(s) (the E0s' reference) are in their own config_type row only, not in the overall or per-element errors and plots, as MACE reports them`);
  }
  if (m.inputs.previous) out.push(`- Previous round: ${code(m.inputs.previous)}`);
  out.push("");
  if (d.test_membership === null && d.test_content === null) {
    out.push("> [!NOTE]");
    out.push(
      m.inputs.references === null
        ? "> The dataset identity is unknown: without --ref DATASET/test.extxyz there is no summary.json with the frozen test fingerprint. Rounds can only be matched by the reference hashes above."
        : "> The dataset identity is unknown: no summary.json with a test fingerprint next to the reference file. Rounds can only be matched by the reference hashes above.",
    );
    out.push("");
  }
  if (m.previous && m.previous.unknown_in_both.length > 0) {
    out.push(`Unknown in both rounds: ${m.previous.unknown_in_both.join(", ")}; comparability rests on the reference hashes.`, "");
  }

  out.push("## Overall", "");
  const prevOverall = previous?.overall ?? null;
  if (prevOverall) {
    out.push(`| metric | previous | this round | change${m.previous?.comparable ? "" : " (not comparable)"} |`, "|---|---:|---:|---|");
    for (const row of OVERALL_ROWS) {
      const old = row.get(prevOverall);
      const now = row.get(m.overall);
      out.push(`| ${row.label} | ${num(old, row.digits)} | ${num(now, row.digits)} | ${changeText(old, now, row)} |`);
    }
  } else {
    out.push("| metric | value |", "|---|---:|");
    for (const row of OVERALL_ROWS) out.push(`| ${row.label} | ${num(row.get(m.overall), row.digits)} |`);
  }
  out.push("");

  out.push("## Per config_type", "");
  const withPrev = previous !== null;
  out.push(
    `| config_type | frames | atoms | E RMSE | E MAE | F RMSE | F MAE | rel. F RMSE % | stress RMSE | stress MAE | stress frames |${withPrev ? " Δ E RMSE | Δ F RMSE |" : ""}`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${withPrev ? "---|---|" : ""}`,
  );
  for (const [type, b] of Object.entries(m.per_config_type)) {
    const cells = [
      cell(type),
      String(b.frames),
      String(b.atoms),
      num(b.energy_per_atom?.rmse, 2),
      num(b.energy_per_atom?.mae, 2),
      num(b.forces?.rmse, 1),
      num(b.forces?.mae, 1),
      num(b.forces?.rel_rmse_percent, 2),
      num(b.stress?.rmse, 2),
      num(b.stress?.mae, 2),
      String(b.stress?.frames ?? 0),
    ];
    if (withPrev) {
      const old = previous!.per_config_type[type];
      cells.push(old ? (delta(old.energy_per_atom?.rmse, b.energy_per_atom?.rmse, 2)?.text ?? "n/a") : "new");
      cells.push(old ? (delta(old.forces?.rmse, b.forces?.rmse, 1)?.text ?? "n/a") : "new");
    }
    out.push(`| ${cells.join(" | ")} |`);
  }
  if (withPrev) {
    const gone = Object.keys(previous!.per_config_type).filter((t) => !(t in m.per_config_type));
    if (gone.length > 0) out.push("", `config_type(s) in the previous round only: ${gone.map(code).join(", ")}`);
  }
  out.push("", "Energies in meV/atom, forces in meV/Å, stress in meV/Å³.", "");

  out.push("## Per element", "");
  out.push("| element | frames containing it | atoms | E RMSE | E MAE | F RMSE | F MAE | rel. F RMSE % |", "|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const [el, b] of Object.entries(m.per_element)) {
    out.push(
      `| ${cell(el)} | ${b.frames} | ${b.atoms} | ${num(b.energy_per_atom?.rmse, 2)} | ${num(b.energy_per_atom?.mae, 2)} | ${num(b.forces?.rmse, 1)} | ${num(b.forces?.mae, 1)} | ${num(b.forces?.rel_rmse_percent, 2)} |`,
    );
  }
  out.push("", "Energy errors over the frames containing the element, force errors over the element's atoms.", "");

  out.push("## Plots", "");
  for (const p of plots) out.push(`![${p.alt}](${p.file})`, "");
  if (hasCurve) out.push("![Validation learning curve](learning_curve.svg)", "");

  if (m.training.length > 0) {
    out.push("## MACE training", "");
    for (const run of m.training) out.push(...trainingSection(run));
  }

  if (c.unmatched_predictions + c.unmatched_references > 0) {
    out.push("## Unmatched frames", "");
    out.push("Frames without a partner of the same structure (candidate id). All of them are listed in `per_config.csv`.", "");
    const list = (title: string, refs: MetricsJson["unmatched"]["predictions"], total: number) => {
      if (total === 0) return;
      out.push(`${title} (${total}${total > refs.length ? `, first ${refs.length} shown` : ""}):`, "");
      out.push("| frame | line | candidate id | config_type | formula |", "|---:|---:|---|---|---|");
      for (const f of refs.slice(0, 20)) out.push(`| ${f.frame} | ${f.line} | ${code(f.candidate_id)} | ${cell(f.config_type)} | ${f.formula} |`);
      if (refs.length > 20) out.push(`| … | | | | ${refs.length - 20} more in metrics.json |`);
      out.push("");
    };
    list("Predictions without a reference", m.unmatched.predictions, c.unmatched_predictions);
    list("References without a prediction", m.unmatched.references, c.unmatched_references);
  }

  out.push("## Conventions", "");
  for (const [k, v] of Object.entries(m.conventions)) out.push(`- **${k.replace(/_/g, " ")}**: ${v}`);
  out.push("");
  return out.join("\n");
}

function trainingSection(run: TrainingJson): string[] {
  const out: string[] = [];
  const files = [run.log_file, run.results_file].filter((f): f is string => f !== null).map(code).join(", ");
  out.push(`### ${cell(run.tag)}`, "");
  out.push(`Files: ${files}${run.mace_version ? `; MACE ${run.mace_version}` : ""}${run.swa_start_epoch !== null ? `; SWA from epoch ${run.swa_start_epoch}` : ""}.`, "");
  for (const t of run.final_error_tables) {
    const from = t.checkpoint ? ` (checkpoint ${code(t.checkpoint)}${t.epoch !== null ? `, epoch ${t.epoch}` : ""})` : "";
    out.push(`Final error table${t.title ? ` on ${t.title}` : ""}${from}, as printed by MACE:`, "");
    out.push(`| config_type | ${t.columns.map(cell).join(" | ")} |`, `|---|${t.columns.map(() => "---:").join("|")}|`);
    for (const r of t.rows) out.push(`| ${cell(r.name)} | ${r.printed.map(cell).join(" | ")} |`);
    out.push("");
  }
  for (const c of run.validation_curves) {
    const last = c.points.at(-1);
    if (!last) continue;
    const best = c.points.reduce((a, b) => ((b.rmse_f ?? Infinity) < (a.rmse_f ?? Infinity) ? b : a));
    out.push(
      `Validation (${c.name}, from the ${c.source === "results" ? "results file" : "log"}): ${c.points.length} evaluations; last at epoch ${last.epoch}: RMSE E/atom ${num(last.rmse_e_per_atom, 1)} meV, RMSE F ${num(last.rmse_f, 1)} meV/Å; lowest RMSE F ${num(best.rmse_f, 1)} meV/Å at epoch ${best.epoch}.`,
      "",
    );
  }
  if (run.notes.length > 0) out.push(...run.notes.map((n) => `- ${n}`), "");
  return out;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function opt(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined ? "" : x.toFixed(digits);
}

const CSV_HEADER = [
  "status",
  "pred_frame",
  "pred_line",
  "ref_frame",
  "ref_line",
  "candidate_id",
  "config_type",
  "natoms",
  "formula",
  "ref_energy_eV",
  "pred_energy_eV",
  "energy_error_meV_per_atom",
  "force_rmse_meV_per_A",
  "force_max_abs_error_meV_per_A",
  "stress_rmse_meV_per_A3",
];

/** One row per frame: paired frames (prediction order) with their errors, then unmatched predictions and references. */
export function renderPerFrameCsv(m: BenchMetrics, unmatchedPred: readonly BenchFrame[], unmatchedRef: readonly BenchFrame[]): string {
  const lines = [CSV_HEADER.join(",")];
  for (const f of m.frames) {
    lines.push(
      [
        "paired",
        String(f.pred.index),
        String(f.pred.line),
        String(f.ref.index),
        String(f.ref.line),
        f.ref.id,
        csvField(f.ref.configType),
        String(f.ref.natoms),
        hillFormula(f.ref.symbols),
        opt(f.ref.labels.energy, 6),
        opt(f.pred.labels.energy, 6),
        opt(f.energyErrorPerAtom, 3),
        opt(f.forceRmse, 3),
        opt(f.forceMaxAbs, 3),
        opt(f.stressRmse, 3),
      ].join(","),
    );
  }
  const unmatched = (status: string, f: BenchFrame, side: "pred" | "ref") =>
    [
      status,
      side === "pred" ? String(f.index) : "",
      side === "pred" ? String(f.line) : "",
      side === "ref" ? String(f.index) : "",
      side === "ref" ? String(f.line) : "",
      f.id,
      csvField(f.configType),
      String(f.natoms),
      hillFormula(f.symbols),
      side === "ref" ? opt(f.labels.energy, 6) : "",
      side === "pred" ? opt(f.labels.energy, 6) : "",
      "",
      "",
      "",
      "",
    ].join(",");
  for (const f of unmatchedPred) lines.push(unmatched("unmatched_prediction", f, "pred"));
  for (const f of unmatchedRef) lines.push(unmatched("unmatched_reference", f, "ref"));
  return lines.join("\n") + "\n";
}
