/**
 * `relabel bench` without the file system: paired frames, dataset identity, the previous round and MACE training
 * outputs in; metrics.json, per_config.csv, report.md and SVG plots out, byte-identical for identical inputs.
 */
import { InputError } from "../errors.js";
import { hillFormula } from "../structure.js";
import { NEAR_MATCH_TOLERANCE } from "../select/near-match.js";
import {
  comparabilityProblems,
  METRICS_SCHEMA,
  unknownInBoth,
  type DatasetIdentity,
  type DatasetSummaryInfo,
  type MetricBlockJson,
  type PreviousBench,
} from "./compare.js";
import { energyPolicyOf, labelsHash, structuresHash, type BenchFrame, type LabelKeys } from "./labels.js";
import { finalErrorTables, validationCurves, type MaceLog, type MaceResults, type TrainingMetric } from "./mace-training.js";
import { computeMetrics, type BenchMetrics, type ElementGroup, type MetricGroup } from "./metrics.js";
import { pairFrames } from "./pairing.js";
import { renderPerFrameCsv, renderReport } from "./report.js";
import { curveSvg, paritySvg, type CurvePanel } from "./svg.js";

export interface TrainingRunInput {
  tag: string;
  results: MaceResults | null;
  log: MaceLog | null;
}

export interface BenchInput {
  /** Paths as the user gave them (they appear in the outputs, so keep them stable for byte-identical reruns). */
  predFile: string;
  /** null: the references are the reference keys inside the predictions file. */
  refFile: string | null;
  pred: BenchFrame[];
  ref: BenchFrame[];
  predKeys: LabelKeys;
  refKeys: LabelKeys;
  /** From the dataset's summary.json next to the reference file; null when there is none. */
  summary: (DatasetSummaryInfo & { file: string }) | null;
  /** sha256 of the reference file's bytes, checked against summary.sha256 (null: not computed). */
  refFileSha256: string | null;
  previous: PreviousBench | null;
  training: TrainingRunInput[];
}

export interface FrameRef {
  frame: number;
  line: number;
  candidate_id: string;
  config_type: string;
  formula: string;
}

export interface TrainingJson {
  tag: string;
  results_file: string | null;
  log_file: string | null;
  mace_version: string | null;
  swa_start_epoch: number | null;
  final_error_tables: Array<{
    title: string | null;
    checkpoint: string | null;
    epoch: number | null;
    columns: string[];
    /** values by metric (meV, %); printed: the cells as MACE printed them. */
    rows: Array<{ name: string; values: Record<string, number | null>; printed: string[] }>;
  }>;
  validation_curves: Array<{
    name: string;
    head: string | null;
    source: "results" | "log";
    initial: Partial<Record<TrainingMetric, number>> | null;
    points: Array<{ epoch: number } & Partial<Record<TrainingMetric, number>>>;
  }>;
  notes: string[];
}

export interface MetricsJson {
  schema: typeof METRICS_SCHEMA;
  inputs: {
    predictions: string;
    references: string | null;
    prediction_keys: LabelKeys;
    reference_keys: LabelKeys;
    training_files: string[];
    previous: string | null;
  };
  dataset: DatasetIdentity;
  conventions: Record<string, string>;
  units: Record<string, string>;
  counts: {
    prediction_frames: number;
    reference_frames: number;
    paired_frames: number;
    paired_atoms: number;
    unmatched_predictions: number;
    unmatched_references: number;
    force_frames: number;
    stress_frames: number;
    stress_without_prediction: number;
    /** Paired one-atom IsolatedAtom frames, in their own config_type row only (absent in older metrics.json). */
    isolated_atom_frames?: number;
  };
  overall: MetricBlockJson;
  per_config_type: Record<string, MetricBlockJson>;
  per_element: Record<string, Omit<MetricBlockJson, "stress">>;
  /** At most UNMATCHED_LISTED per side here; per_config.csv lists them all. */
  unmatched: { predictions: FrameRef[]; references: FrameRef[] };
  training: TrainingJson[];
  previous: { metrics: string; comparable: boolean; problems: string[]; unknown_in_both: string[] } | null;
  warnings: string[];
}

export const UNMATCHED_LISTED = 100;

export const CONVENTIONS = {
  pairing: "predictions and references are paired by structure identity (candidate id: species, pbc, cell and positions rounded to 1e-6 A), the k-th occurrence of a structure with its k-th occurrence; frame order does not matter",
  energy_per_atom: "e_s = (E_pred - E_ref) / N_s per frame; RMSE = sqrt(mean e_s^2), MAE = mean |e_s|",
  forces: "every Cartesian component of every atom pooled: RMSE = sqrt(sum dF^2 / 3 sum N_s), MAE = sum |dF| / 3 sum N_s; relative RMSE = RMSE / RMS(F_ref) x 100",
  stress: "the 9 components of each 3x3 tensor pooled (as MACE does; 6-value Voigt labels are expanded symmetrically, so off-diagonal errors count twice), over frames with both a reference and a predicted stress; ASE sign (positive = tensile)",
  per_element: "forces over the atoms of the element; energy over the frames that contain the element",
  config_type: "info config_type of the reference frame, Default when missing",
};

export const UNITS = {
  energy_per_atom: "meV/atom",
  forces: "meV/A",
  stress: "meV/A^3",
  rel_rmse_percent: "%",
  training: "meV/atom, meV/A, meV/A^3 and % (MACE results files are converted from eV)",
};

export interface BenchOutput {
  metrics: MetricsJson;
  /** File name -> content, in writing order. */
  files: Array<[string, string]>;
  warnings: string[];
}

/** Values in metrics.json: 4 decimals of the meV unit. */
export function round4(x: number): number {
  const r = Math.round(x * 1e4) / 1e4;
  return r === 0 ? 0 : r;
}

export function buildBench(input: BenchInput): BenchOutput {
  const pairing = pairFrames(input.pred, input.ref);
  if (pairing.pairs.length === 0) {
    throw new InputError(
      input.predFile,
      undefined,
      `none of the ${input.pred.length} prediction frames matches one of the ${input.ref.length} reference frames of ${input.refFile} by structure (candidate id, or positions and cell within ${NEAR_MATCH_TOLERANCE.toExponential()} A); are these predictions for this test set?`,
    );
  }
  const paired = pairing.pairs.map(([p, r]) => ({ pred: input.pred[p], ref: input.ref[r] }));
  const metrics = computeMetrics(paired);
  const unmatchedPred = pairing.unmatchedPred.map((i) => input.pred[i]);
  const unmatchedRef = pairing.unmatchedRef.map((i) => input.ref[i]);

  const warnings: string[] = [];
  const dataset = datasetIdentity(input, warnings);

  let previous: MetricsJson["previous"] = null;
  if (input.previous) {
    const problems = comparabilityProblems(input.previous.dataset, dataset);
    const unknown = unknownInBoth(input.previous.dataset, dataset);
    previous = { metrics: input.previous.file, comparable: problems.length === 0, problems, unknown_in_both: unknown };
    if (problems.length > 0) {
      warnings.unshift(...problems.map((p) => `not comparable with the previous round (${input.previous!.file}): ${p}`));
    } else {
      const oldPaired = input.previous.counts.paired_frames;
      if (typeof oldPaired === "number" && oldPaired !== pairing.pairs.length) {
        warnings.push(`paired frames differ from the previous round: ${oldPaired} -> ${pairing.pairs.length}; the metrics cover different frames`);
      }
    }
  }
  if (unmatchedPred.length > 0) warnings.push(`${unmatchedPred.length} prediction frame(s) have no reference frame with the same structure (listed in per_config.csv)`);
  if (unmatchedRef.length > 0) warnings.push(`${unmatchedRef.length} reference frame(s) have no prediction (listed in per_config.csv); the metrics do not cover them`);
  if (metrics.stressWithoutPrediction > 0) {
    warnings.push(`${metrics.stressWithoutPrediction} frame(s) have ${input.refKeys.stress} but no ${input.predKeys.stress}: stress is not benchmarked for them (run mace_eval_configs with --compute_stress)`);
  }
  const sign = metrics.stressSignCheck;
  if (sign && sign.asGiven > 0 && sign.flipped < 0.25 * sign.asGiven) {
    warnings.push(`${input.predKeys.stress} looks sign-flipped relative to ${input.refKeys.stress}: the stress RMSE would be ${Math.sqrt(sign.asGiven / sign.flipped).toFixed(1)}x smaller with the opposite sign (check the sign convention, mace#1110)`);
  }
  const training = input.training.map(trainingJson);
  for (const run of input.training) warnings.push(...(run.results?.notes ?? []), ...(run.log?.notes ?? []));

  const forceFrames = metrics.frames.filter((f) => f.forceRmse !== null).length;
  const json: MetricsJson = {
    schema: METRICS_SCHEMA,
    inputs: {
      predictions: input.predFile,
      references: input.refFile,
      prediction_keys: input.predKeys,
      reference_keys: input.refKeys,
      training_files: input.training.flatMap((r) => [r.results?.file, r.log?.file].filter((f): f is string => f !== undefined)),
      previous: input.previous?.file ?? null,
    },
    dataset,
    conventions: CONVENTIONS,
    units: UNITS,
    counts: {
      prediction_frames: input.pred.length,
      reference_frames: input.ref.length,
      paired_frames: pairing.pairs.length,
      paired_atoms: paired.reduce((n, p) => n + p.ref.natoms, 0),
      unmatched_predictions: unmatchedPred.length,
      unmatched_references: unmatchedRef.length,
      force_frames: forceFrames,
      stress_frames: metrics.overall.stress?.frames ?? 0,
      stress_without_prediction: metrics.stressWithoutPrediction,
      isolated_atom_frames: metrics.isolatedAtoms,
    },
    overall: metricBlock(metrics.overall),
    per_config_type: Object.fromEntries(metrics.perConfigType.map(([t, g]) => [t, metricBlock(g)])),
    per_element: Object.fromEntries(metrics.perElement.map(([el, g]) => [el, elementBlock(g)])),
    unmatched: {
      predictions: unmatchedPred.slice(0, UNMATCHED_LISTED).map(frameRef),
      references: unmatchedRef.slice(0, UNMATCHED_LISTED).map(frameRef),
    },
    training,
    previous,
    warnings,
  };

  const files: Array<[string, string]> = [];
  const plots = parityPlots(metrics, input);
  const curve = learningCurve(input.training);
  files.push(["metrics.json", JSON.stringify(json, null, 2) + "\n"]);
  files.push(["per_config.csv", renderPerFrameCsv(metrics, unmatchedPred, unmatchedRef)]);
  files.push(["report.md", renderReport(json, input.previous, plots.map(([name, , alt]) => ({ file: name, alt })), curve !== null)]);
  for (const [name, svg] of plots) files.push([name, svg]);
  if (curve) files.push(["learning_curve.svg", curve]);
  return { metrics: json, files, warnings };
}

function datasetIdentity(input: BenchInput, warnings: string[]): DatasetIdentity {
  const s = input.summary;
  const heads = [...new Set(input.ref.map((f) => f.head))];
  const frameHead = heads.length === 1 && heads[0] !== undefined ? heads[0] : null;
  const inferred = energyPolicyOf(input.ref);
  const energy = s?.energy ?? (inferred === "free" || inferred === "sigma0" ? inferred : null);
  if (s?.energy && inferred && inferred !== s.energy) {
    warnings.push(`${s.file} says energy policy "${s.energy}" but ${input.refKeys.energy} in the reference frames is ${inferred === "mixed" ? "a mix of free and sigma->0 energies" : `the ${inferred} energy`}`);
  } else if (!s?.energy && inferred === "mixed") {
    warnings.push(`${input.refKeys.energy} in the reference frames is a mix of free and sigma->0 energies`);
  }
  const built = s && input.refFile ? s.sha256[baseName(input.refFile)] : undefined;
  if (built && input.refFileSha256 && built !== input.refFileSha256) {
    warnings.push(`${input.refFile} changed after the dataset was built: sha256 ${input.refFileSha256.slice(0, 12)}, ${s!.file} says ${built.slice(0, 12)}; its fingerprint no longer describes these frames`);
  }
  if (s?.head && frameHead !== null && frameHead !== s.head) {
    warnings.push(`${s.file} says head "${s.head}" but the reference frames are tagged head=${frameHead}`);
  }
  let source: string | null = null;
  if (s) source = s.file;
  else if (energy !== null || frameHead !== null) source = "reference frames";
  return {
    test_membership: s?.test_membership ?? null,
    test_content: s?.test_content ?? null,
    energy,
    head: s?.head ?? frameHead,
    source,
    ref_structures_sha256: structuresHash(input.ref),
    ref_labels_sha256: labelsHash(input.ref),
  };
}

function baseName(file: string): string {
  return file.slice(Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\")) + 1);
}

function metricBlock(g: MetricGroup): MetricBlockJson {
  return {
    frames: g.frames,
    atoms: g.atoms,
    energy_per_atom: { frames: g.energy.frames, rmse: round4(g.energy.rmse), mae: round4(g.energy.mae) },
    forces: g.forces && {
      atoms: g.forces.atoms,
      components: g.forces.components,
      rmse: round4(g.forces.rmse),
      mae: round4(g.forces.mae),
      rel_rmse_percent: g.forces.relRmsePercent === null ? null : round4(g.forces.relRmsePercent),
    },
    stress: g.stress && { frames: g.stress.frames, components: g.stress.components, rmse: round4(g.stress.rmse), mae: round4(g.stress.mae) },
  };
}

function elementBlock(g: ElementGroup): Omit<MetricBlockJson, "stress"> {
  const { stress: _, ...rest } = metricBlock({ ...g, stress: null });
  return rest;
}

function frameRef(f: BenchFrame): FrameRef {
  return { frame: f.index, line: f.line, candidate_id: f.id, config_type: f.configType, formula: hillFormula(f.symbols) };
}

function roundValues(values: Partial<Record<TrainingMetric, number>>): Partial<Record<TrainingMetric, number>> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, round4(v!)]));
}

function trainingJson(run: TrainingRunInput): TrainingJson {
  const tables = run.log ? finalErrorTables(run.log.tables) : [];
  return {
    tag: run.tag,
    results_file: run.results?.file ?? null,
    log_file: run.log?.file ?? null,
    mace_version: run.log?.version ?? null,
    swa_start_epoch: run.log?.swaStart ?? null,
    final_error_tables: tables.map((t) => ({
      title: t.title,
      checkpoint: t.checkpoint,
      epoch: t.epoch,
      columns: t.headers,
      rows: t.rows.map((r) => ({ name: r.name, values: r.values, printed: r.printed })),
    })),
    validation_curves: validationCurves(run.tag, run.results, run.log).map((c) => ({
      name: c.name,
      head: c.head,
      source: c.source,
      initial: c.initial && roundValues(c.initial),
      points: c.points.map((p) => ({ epoch: p.epoch, ...roundValues(p.values) })),
    })),
    notes: [...(run.results?.notes ?? []), ...(run.log?.notes ?? [])],
  };
}

function fmt(x: number, digits: number): string {
  return x.toFixed(digits);
}

/** [file name, svg, alt text] for each parity plot. */
function parityPlots(m: BenchMetrics, input: BenchInput): Array<[string, string, string]> {
  const o = m.overall;
  const names = m.parity.groupNames;
  const plots: Array<[string, string, string]> = [];
  plots.push([
    "parity_energy.svg",
    paritySvg({
      title: `Energy per atom: RMSE ${fmt(o.energy.rmse, 2)}, MAE ${fmt(o.energy.mae, 2)} meV/atom`,
      subtitle: `${o.energy.frames} frames; ${input.predKeys.energy} vs ${input.refKeys.energy}`,
      xLabel: "reference energy (eV/atom)",
      yLabel: "predicted energy (eV/atom)",
      x: m.parity.energy.ref,
      y: m.parity.energy.pred,
      group: m.parity.energy.group,
      groupNames: names,
    }),
    "Energy per atom parity plot",
  ]);
  if (o.forces) {
    plots.push([
      "parity_forces.svg",
      paritySvg({
        title: `Force components: RMSE ${fmt(o.forces.rmse, 1)}, MAE ${fmt(o.forces.mae, 1)} meV/Å`,
        subtitle: `${o.forces.components} components of ${o.forces.atoms} atoms; relative RMSE ${o.forces.relRmsePercent === null ? "n/a" : fmt(o.forces.relRmsePercent, 2) + "%"}`,
        xLabel: "reference force component (eV/Å)",
        yLabel: "predicted force component (eV/Å)",
        x: m.parity.forces.ref,
        y: m.parity.forces.pred,
        group: m.parity.forces.group,
        groupNames: names,
      }),
      "Force component parity plot",
    ]);
  }
  if (o.stress && m.parity.stress) {
    plots.push([
      "parity_stress.svg",
      paritySvg({
        title: `Stress: RMSE ${fmt(o.stress.rmse, 2)}, MAE ${fmt(o.stress.mae, 2)} meV/Å³`,
        subtitle: `${o.stress.frames} frames; metrics pool 9 components, plot shows the 6 independent ones`,
        xLabel: "reference stress component (eV/Å³)",
        yLabel: "predicted stress component (eV/Å³)",
        x: m.parity.stress.ref,
        y: m.parity.stress.pred,
        group: m.parity.stress.group,
        groupNames: names,
      }),
      "Stress component parity plot",
    ]);
  }
  return plots;
}

function learningCurve(runs: readonly TrainingRunInput[]): string | null {
  const curves = runs.flatMap((r) => validationCurves(r.tag, r.results, r.log));
  const panel = (title: string, yLabel: string, metric: TrainingMetric): CurvePanel => ({
    title,
    yLabel,
    series: curves.map((c) => ({
      name: c.name,
      points: c.points.filter((p) => p.values[metric] !== undefined).map((p) => ({ x: p.epoch, y: p.values[metric]! })),
    })),
  });
  const panels = [panel("Validation RMSE E / atom", "RMSE E (meV/atom)", "rmse_e_per_atom"), panel("Validation RMSE F", "RMSE F (meV/Å)", "rmse_f")];
  const stress = panel("Validation RMSE stress", "RMSE stress (meV/Å³)", "rmse_stress");
  if (stress.series.some((s) => s.points.length > 0)) panels.push(stress);
  const used = panels.filter((p) => p.series.some((s) => s.points.length > 0));
  if (used.length === 0) return null;
  const markers = runs
    .filter((r) => r.log?.swaStart !== null && r.log?.swaStart !== undefined)
    .map((r) => ({ x: r.log!.swaStart!, label: runs.length > 1 ? `SWA ${r.tag}` : "SWA starts" }));
  const sources = [...new Set(curves.map((c) => (c.source === "results" ? "results file" : "log")))].join(" and ");
  return curveSvg({
    title: "MACE validation learning curve",
    subtitle: `from the ${sources}; the evaluation before training (epoch None) is not drawn`,
    xLabel: "epoch",
    panels: used,
    markers,
  });
}
