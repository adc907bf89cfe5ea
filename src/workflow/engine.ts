/**
 * The engine steps as the round workflow runs them: files exported from the ledger into a scratch directory, the
 * engine (rank, dataset build, stage, bench) run on them, and the outputs returned as ledger files under their
 * repository paths. Paths inside the outputs are repository paths, never the scratch directory's.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { buildBench } from "../core/bench/bench.js";
import { labelKeys } from "../core/bench/labels.js";
import { asRoundAdvice, previousRoundFeatures, type DatasetConfig, type RelabelConfig } from "../core/app/config.js";
import type { DryRunResult, LabelRun, SelectedCandidate } from "../core/app/dry-run.js";
import { matchLabelRuns } from "../core/app/dry-run.js";
import { poscarDir, roundPaths } from "../core/app/manifest.js";
import { parseRankingJson, type RankingJson } from "../core/app/ranking-json.js";
import { InputError, UsageError } from "../core/errors.js";
import type { DatasetSummary } from "../core/dataset/summary.js";
import { parseExtxyz } from "../core/formats/extxyz.js";
import { candidateId } from "../core/select/candidate-id.js";
import { DEFAULT_FEATURES_KEY } from "../core/select/frame-features.js";
import { geometryOf, type Geometry } from "../core/select/near-match.js";
import type { SelectionRule } from "../core/select/fps.js";
import { parseTrustWindow, TRUST_LEVEL_NAMES } from "../core/select/disagreement.js";
import { RUN_SCRIPT_LOGS } from "../core/stage/render.js";
import { checkIncarTemplate, type SpeciesIncarValues } from "../core/vasp/incar.js";
import { kpointsAdvice, type PickCell } from "../core/vasp/kpoints.js";
import { readBenchFrames, readDatasetSummary, readPreviousBench, readTrainingRuns } from "../io/bench.js";
import { buildDataset } from "../io/dataset.js";
import { rankToDir } from "../io/rank.js";
import { pickPoscars, type PickIncar } from "../io/selected.js";
import { discoverRuns, readRun } from "../io/rundir.js";
import { LedgerError } from "../ledger/errors.js";
import type { Ledger, LedgerFile } from "../ledger/ledger.js";
import { CURRENT_DATASET, exportCurrentDataset, splitFileForLedger } from "./current-dataset.js";
import { gzippedIfLarge, LARGE_FILE_BYTES } from "./large-files.js";
import { sha256File } from "../io/open.js";

/**
 * Runs `task` in a fresh directory under `root`, removed afterwards. A bad-input error it throws names files by their
 * repository paths (what the thread shows), not by the scratch directory's.
 */
export async function withScratch<T>(root: string, task: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(path.join(root, "scratch-"));
  try {
    return await task(dir);
  } catch (err) {
    throw withRepoPaths(err, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Scratch paths under `dir` (the repository's files are exported to `dir` or `dir/repo`) as repository paths. */
function scratchNames(dir: string): Array<[string, string]> {
  return [[`${dir}${path.sep}repo${path.sep}`, ""], [`${dir}${path.sep}`, ""]];
}

function withRepoPaths(err: unknown, dir: string): unknown {
  const names = scratchNames(dir);
  if (err instanceof InputError) return new InputError(displayPaths(err.file, names), err.where, displayPaths(err.detail, names));
  if (err instanceof UsageError) return new UsageError(displayPaths(err.message, names));
  return err;
}

/** Replaces every `from` prefix in `text` (scratch paths) with its repository or remote name. */
/** `text` with the paths under a withScratch directory as repository paths (as its errors are rewritten). */
export function scratchAsRepoPaths(text: string, dir: string): string {
  return displayPaths(text, scratchNames(dir));
}

export function displayPaths(text: string, map: ReadonlyArray<[string, string]>): string {
  let out = text;
  for (const [from, to] of map) out = out.split(from).join(to);
  return out;
}

export interface SelectionRequest {
  /** The ref the pool, labelled set, committee files and templates are read from (the default branch). */
  ref: string;
  pool: string[];
  select: number;
  weights: { div: number; dis: number };
  selection: RelabelConfig["selection"];
  /** Committee prediction files: repository paths at `ref`, or local files (previous round's eval outputs). */
  committeeRepoFiles: string[];
  committeeLocalFiles: Array<{ file: string; display: string }>;
  /** With selection.features previous-round: the descriptors the previous round's model wrote (its pool-eval stage). */
  featuresLocalFiles?: Array<{ file: string; display: string }>;
  templates: RelabelConfig["vasp_templates"];
  software: { name: string; version: string };
  /** The round the selection belongs to, decided once the ranking worked (a new round is allocated then). */
  roundFor: (ranking: RankingJson) => Promise<number>;
  /** ranking.csv above this many bytes is committed gzipped (default LARGE_FILE_BYTES; tests lower it). */
  largeFileBytes?: number;
}

export interface SelectionOutcome {
  files: LedgerFile[];
  ranking: RankingJson;
  pool: Array<{ path: string; sha256: string }>;
  /** Ranks of the picks without a cell, whose POSCARs put them in a vacuum box. */
  boxed: number[];
  /** What vasp_templates.kpoints does not suit among the picks (kpointsAdvice). */
  kpointsAdvice: string[];
  /** Where ranking.csv went: gzipped (ranking.csv.gz) for a pool whose ranking.csv passes LARGE_FILE_BYTES. */
  rankingCsv: string;
}

/** Ranks the pool and lays out rounds/NNNN/selection/: ranking.json, ranking.csv, selected.extxyz, one POSCAR folder per pick. */
export async function rankSelection(ledger: Ledger, scratchRoot: string, r: SelectionRequest): Promise<SelectionOutcome> {
  return withScratch(scratchRoot, async (dir) => {
    const repo = path.join(dir, "repo");
    // previous-round: the descriptors of a previous-round committee's pool predictions; a round without them (the
    // first, or another committee) ranks by the descriptor, and its rule says which space it was.
    const fromModel = previousRoundFeatures(r.selection.features);
    const repoFeatures = typeof r.selection.features === "object" && r.selection.features !== null && "files" in r.selection.features ? r.selection.features : null;
    const featureFiles = repoFeatures?.files ?? [];
    const exported = await ledger.exportTree(r.ref, repo, [...r.pool, ...r.committeeRepoFiles, ...featureFiles]);
    for (const p of r.pool) {
      if (!exported.some((e) => e === p || e.startsWith(`${p.replace(/\/+$/, "")}/`))) throw new InputError(p, undefined, `not found in the data repository (${r.ref})`);
    }
    for (const p of r.committeeRepoFiles) if (!exported.includes(p)) throw new InputError(p, undefined, `committee prediction file not found in the data repository (${r.ref})`);
    for (const p of featureFiles) if (!exported.includes(p)) throw new InputError(".github/relabel.yml", "selection.features", `${p} is not a file in the data repository (${r.ref})`);
    const labeled = await labelledSet(ledger, r.ref, repo);
    // Read (and checked) before ranking: a broken template must not cost a round number.
    const templates = await templateFiles(ledger, r.ref, r.templates);
    const out = path.join(dir, "out");
    const committee = [...r.committeeRepoFiles.map((f) => path.join(repo, f)), ...r.committeeLocalFiles.map((c) => c.file)];
    const rule: SelectionRule = { kind: "weighted", wDiv: r.weights.div, wDis: committee.length ? r.weights.dis : 0 };
    const forceTrust = committee.length && r.selection.force_trust ? parseTrustWindow(r.selection.force_trust) : undefined;
    await rankToDir({
      pool: r.pool.map((p) => path.join(repo, p)),
      select: r.select,
      out,
      labeled,
      committee,
      disagreement: r.selection.disagreement,
      forceTrust,
      trustExclude: forceTrust && TRUST_LEVEL_NAMES.filter((level) => r.selection.trust_exclude.includes(level)),
      rule,
      descriptor: r.selection.descriptor,
      featuresFrom:
        fromModel && r.featuresLocalFiles?.length
          ? { files: r.featuresLocalFiles.map((f) => f.file), key: DEFAULT_FEATURES_KEY, perElement: fromModel.perElement }
          : repoFeatures
            ? { files: featureFiles.map((f) => path.join(repo, f)), key: repoFeatures.key, perElement: repoFeatures.per_element }
            : undefined,
      scaling: r.selection.scaling,
      bins: r.selection.bins,
      rmax: r.selection.rmax,
      typeMap: r.selection.type_map ?? undefined,
      software: r.software,
    });
    const local = [...r.committeeLocalFiles, ...(r.featuresLocalFiles ?? [])];
    const names: Array<[string, string]> = [[`${repo}/`, ""], ...local.map((c): [string, string] => [c.file, c.display])];
    const text: Record<string, string> = {};
    for (const name of ["ranking.json", "ranking.csv", "selected.extxyz"]) text[name] = displayPaths(await readFile(path.join(out, name), "utf8"), names);
    const parsed = parseRankingJson(text["ranking.json"], "ranking.json");
    if (!parsed.ok) throw new Error(parsed.problem);
    // An INCAR whose own MAGMOM or LDAU lists misfit a pick stops here, before a round number is taken.
    if (templates.incar) for await (const pick of pickPoscars(path.join(out, "selected.extxyz"), parsed.ranking.selected, { vacuum: r.templates.vacuum, shownAs: "selected.extxyz", incar: templates.incar })) void pick;
    const round = await r.roundFor(parsed.ranking);
    const paths = roundPaths(round);
    // ranking.csv holds a row per candidate: gzipped when a very large pool makes it too large for GitHub.
    const rankingCsv = await gzippedIfLarge(ledger, paths.rankingCsv, Buffer.from(text["ranking.csv"]), r.largeFileBytes);
    const files: LedgerFile[] = [
      { path: paths.rankingJson, content: text["ranking.json"] },
      rankingCsv,
      { path: paths.selectedExtxyz, content: text["selected.extxyz"] },
    ];
    const written: PickCell[] = [];
    const potcarSymbols = r.templates.potcar_symbols === null ? undefined : new Map(Object.entries(r.templates.potcar_symbols));
    const picks = pickPoscars(path.join(out, "selected.extxyz"), parsed.ranking.selected, { vacuum: r.templates.vacuum, shownAs: paths.selectedExtxyz, round, incar: templates.incar, potcarSymbols });
    for await (const poscar of picks) {
      const folder = poscarDir(round, poscar.rank, poscar.candidate_id);
      written.push({ rank: poscar.rank, cell: poscar.cell, pbc: poscar.pbc, boxed: poscar.boxed });
      files.push({ path: `${folder}/POSCAR`, content: poscar.text });
      if (poscar.potcarSpec !== undefined) files.push({ path: `${folder}/POTCAR.spec`, content: poscar.potcarSpec });
      for (const t of templates.files) files.push({ path: `${folder}/${t.name}`, content: t.name === "INCAR" && poscar.incar !== undefined ? Buffer.from(poscar.incar, "latin1") : t.content });
    }
    const kpoints = templates.files.find((f) => f.name === "KPOINTS");
    return {
      files,
      ranking: parsed.ranking,
      pool: parsed.ranking.sources.map((s) => ({ path: s.path, sha256: s.sha256 })),
      boxed: written.filter((p) => p.boxed).map((p) => p.rank),
      kpointsAdvice: kpoints ? kpointsAdvice(kpoints.content.toString("latin1"), written, r.templates.kpoints!) : [],
      rankingCsv: rankingCsv.path,
    };
  });
}

/** datasets/current's split files at `ref`, exported: the structures already labelled, never picked again. */
async function labelledSet(ledger: Ledger, ref: string, repo: string): Promise<string[]> {
  const present = (await ledger.list(CURRENT_DATASET, ref).catch(() => [])).filter((e) => /^(train|valid|test)\.extxyz(\.gz)?$/.test(e.name));
  if (present.length === 0) return [];
  const folder = await exportCurrentDataset(ledger, ref, repo);
  return present.map((e) => path.join(folder, e.name.replace(/\.gz$/, "")));
}

/**
 * vasp_templates' INCAR and KPOINTS at `ref`; the INCAR, checked against the per-element values, becomes each
 * pick's template.
 */
async function templateFiles(ledger: Ledger, ref: string, t: RelabelConfig["vasp_templates"]): Promise<{ files: Array<{ name: string; content: Buffer }>; incar?: PickIncar }> {
  const files: Array<{ name: string; content: Buffer }> = [];
  for (const [name, repoPath] of [["INCAR", t.incar], ["KPOINTS", t.kpoints]] as const) {
    if (repoPath === null) continue;
    const content = await ledger.read(repoPath, ref);
    if (content === null) throw new InputError(".github/relabel.yml", `vasp_templates.${name.toLowerCase()}`, `${repoPath} is not in the data repository`);
    files.push({ name, content });
  }
  const incar = files.find((f) => f.name === "INCAR");
  if (!incar) return { files };
  const values: SpeciesIncarValues = {
    ...(t.magmom === null ? {} : { magmom: new Map(t.magmom === "pool" ? [] : Object.entries(t.magmom)) }),
    ...(t.ldau === null ? {} : { ldau: new Map(Object.entries(t.ldau)) }),
    names: { magmom: "vasp_templates.magmom", ldau: "vasp_templates.ldau" },
  };
  const text = incar.content.toString("latin1");
  checkIncarTemplate(text, t.incar!, values);
  return { files, incar: { text, file: t.incar!, values } };
}

/** Every run folder below `labelsDir`: its initial structure's candidate_id, DFT steps, SCF convergence. */
export async function inspectLabelRuns(labelsDir: string): Promise<LabelRun[]> {
  if (!existsSync(labelsDir)) return [];
  const runs: LabelRun[] = [];
  for (const dir of await discoverRuns(labelsDir)) {
    const folder = `${path.relative(labelsDir, dir).split(path.sep).join("/") || "."}/`;
    let initial: Geometry | null = null;
    let steps = 0;
    let converged = true;
    let error: string | null = null;
    try {
      const gen = readRun(dir);
      for (;;) {
        const next = await gen.next();
        if (next.done) {
          error = next.value.error;
          break;
        }
        const step = next.value;
        if (steps === 0) initial = { natoms: step.symbols.length, symbols: step.symbols, positions: step.positions, cell: step.cell, pbc: [true, true, true] };
        steps++;
        if (!step.scfConverged) converged = false;
      }
    } catch (err) {
      error = (err as Error).message;
    }
    if (steps === 0 && error === null) error = "no complete DFT step";
    runs.push({ folder, initialId: initial && candidateId(initial), initial, steps, converged: steps > 0 ? converged : null, error: steps > 0 ? null : error });
  }
  return runs;
}

export interface DatasetInputs {
  /** Rounds whose labels the dataset holds (earlier rounds with a dataset, and this one). */
  rounds: number[];
  /** Ref to read each round's labels from (the results PR head for the current round in a dry run). */
  labelsRef: (round: number) => string;
  /** Ref of datasets/current (the previous dataset), or null for none. */
  previousRef: string | null;
  dataset: DatasetConfig;
}

/** Exports the labels of `rounds` and the previous dataset, builds the new dataset into `<dir>/dataset`. */
export async function buildRoundDataset(ledger: Ledger, dir: string, o: DatasetInputs): Promise<{ written: boolean; errors: string[]; summary: DatasetSummary; datasetDir: string; runsRoot: string }> {
  const repo = path.join(dir, "repo");
  for (const round of o.rounds) await ledger.exportTree(o.labelsRef(round), repo, [roundPaths(round).labels]);
  const runsRoot = path.join(repo, "rounds");
  let previous: string | null = null;
  if (o.previousRef !== null && (await ledger.read(`${CURRENT_DATASET}/split.json`, o.previousRef)) !== null) {
    previous = await exportCurrentDataset(ledger, o.previousRef, repo);
  }
  if (!existsSync(runsRoot) || (await discoverRuns(runsRoot)).length === 0) {
    throw new InputError(roundPaths(o.rounds.at(-1)!).labels, undefined, "no VASP run folder (vasprun.xml or OUTCAR) found");
  }
  const datasetDir = path.join(dir, "dataset");
  const d = o.dataset;
  const result = await buildDataset({
    runRoots: [runsRoot],
    previous,
    out: datasetDir,
    energy: d.energy,
    frames: d.frames,
    requireConverged: d.require_converged,
    head: d.head,
    configType: d.config_type,
    fractions: d.fractions,
    seed: d.seed,
    maxForce: d.max_force,
    energyZ: d.energy_z,
    allowMixedSettings: d.allow_mixed_settings,
    allowEmptySplit: false,
    growTest: false,
  });
  // Run ids and the previous dataset appear as repository paths in summary.json.
  const summary = JSON.parse(displayPaths(JSON.stringify(result.summary), [[`${repo}/`, ""]])) as DatasetSummary;
  summary.warnings = summary.warnings.map(asRoundAdvice);
  return { ...result, errors: result.errors.map(asRoundAdvice), summary, datasetDir, runsRoot };
}

/**
 * The round's selected structures by candidate_id: selected.extxyz holds them in ranking.json's greedy order. None
 * when the file is missing, unreadable or of another length.
 */
async function selectedGeometries(ledger: Ledger, round: number, ranking: RankingJson): Promise<Map<string, Geometry>> {
  const file = roundPaths(round).selectedExtxyz;
  const text = await ledger.read(file);
  if (text === null) return new Map();
  try {
    const frames = parseExtxyz(text, file);
    if (frames.length !== ranking.selected.length) return new Map();
    return new Map(frames.map(({ frame }, k) => [ranking.selected[k].candidate_id, geometryOf(frame)]));
  } catch (err) {
    // Runs are then matched by candidate_id alone.
    if (!(err instanceof InputError)) throw err;
    return new Map();
  }
}

/** The dry run of the results PR: runs matched to the selection, and the dataset the rebuild would write. */
export async function dryRunRebuild(
  ledger: Ledger,
  scratchRoot: string,
  o: { round: number; ranking: RankingJson; inputs: DatasetInputs },
): Promise<DryRunResult> {
  return withScratch(scratchRoot, async (dir) => {
    const geometries = await selectedGeometries(ledger, o.round, o.ranking);
    const selected: SelectedCandidate[] = o.ranking.selected.map((s) => ({ rank: s.rank, candidate_id: s.candidate_id, formula: s.formula, geometry: geometries.get(s.candidate_id) }));
    let dataset: DatasetSummary | null = null;
    const errors: string[] = [];
    let runs: LabelRun[] = [];
    try {
      const built = await buildRoundDataset(ledger, dir, o.inputs);
      dataset = built.summary;
      errors.push(...built.errors);
      runs = await inspectLabelRuns(path.join(built.runsRoot, `${String(o.round).padStart(4, "0")}`, "labels"));
    } catch (err) {
      // A symbolic link (a POTCAR linked in from the cluster, say) is not exported: a finding, like a bad run.
      const refusedPath = err instanceof LedgerError && err.code === "invalid-path";
      if (!(err instanceof InputError) && !refusedPath) throw err;
      errors.push(refusedPath ? `${err.message}: commit the file itself, or leave it out (the rebuild reads vasprun.xml and OUTCAR)` : displayPaths(err.message, scratchNames(dir)));
      runs = await inspectLabelRuns(path.join(dir, "repo", roundPaths(o.round).labels));
    }
    return { round: o.round, match: matchLabelRuns(selected, runs), dataset, errors, warnings: dataset?.warnings ?? [] };
  });
}

/**
 * The dataset files a rebuild commits: the round's summary and split, and datasets/current (a split file over
 * `gzipAbove` bytes gzipped: splitFileForLedger).
 */
export async function datasetFiles(ledger: Ledger, round: number, datasetDir: string, summary: DatasetSummary, gzipAbove = LARGE_FILE_BYTES): Promise<LedgerFile[]> {
  const paths = roundPaths(round);
  const files: LedgerFile[] = [];
  const summaryText = `${JSON.stringify(summary, null, 2)}\n`;
  const split = await readFile(path.join(datasetDir, "split.json"));
  files.push({ path: paths.datasetSummary, content: summaryText }, { path: paths.datasetSplit, content: split });
  files.push({ path: `${CURRENT_DATASET}/summary.json`, content: summaryText }, { path: `${CURRENT_DATASET}/split.json`, content: split });
  for (const name of ["train.extxyz", "valid.extxyz", "test.extxyz"]) {
    const file = path.join(datasetDir, name);
    files.push(...(await splitFileForLedger(ledger, name, existsSync(file) ? await readFile(file) : null, gzipAbove)));
  }
  return files;
}

export interface BenchInputs {
  /** mace_eval_configs output (local file) and how to name it. */
  predictions: { file: string; display: string };
  /** The round's test split and summary.json, exported; named datasets/current/test.extxyz. */
  testFile: string;
  testDisplay: string;
  /** The previous round's benchmark metrics.json (local copy) and its repository path. */
  previous: { file: string; display: string } | null;
  /** MACE training outputs (results/*_train.txt, logs/<tag>.log), local, with the name prefix to show. */
  training: { files: string[]; localPrefix: string; display: string } | null;
  keys: { energy: string; forces: string; stress: string };
}

/** `relabel bench` on the round's predictions: the files of rounds/NNNN/benchmark/ and the warnings. */
export async function benchRound(b: BenchInputs): Promise<{ files: Array<[string, string]>; warnings: string[]; reportMd: string }> {
  const predKeys = labelKeys("MACE_");
  const refKeys = labelKeys("REF_", { energy: b.keys.energy, forces: b.keys.forces, stress: b.keys.stress });
  const { pred, ref } = await readBenchFrames(b.predictions.file, b.testFile, { predKeys, refKeys, refPrefix: "REF_" });
  const summary = await readDatasetSummary(b.testFile);
  const refFileSha256 = summary && Object.keys(summary.sha256).length > 0 ? await sha256File(b.testFile) : null;
  const previous = b.previous ? await readPreviousBench(b.previous.file) : null;
  const training = b.training && b.training.files.length > 0 ? await readTrainingRuns(b.training.files) : [];
  const result = buildBench({
    predFile: b.predictions.display,
    refFile: b.testDisplay,
    pred,
    ref,
    predKeys,
    refKeys,
    summary: summary ? { ...summary, file: path.posix.join(path.posix.dirname(b.testDisplay), path.basename(summary.file)) } : null,
    refFileSha256,
    previous: previous && b.previous ? { ...previous, file: b.previous.display } : null,
    training,
  });
  const names: Array<[string, string]> = b.training ? [[b.training.localPrefix, b.training.display]] : [];
  const files = result.files.map(([name, content]): [string, string] => [name, displayPaths(content, names)]);
  return { files, warnings: result.warnings.map((w) => displayPaths(w, names)), reportMd: files.find(([n]) => n === "report.md")?.[1] ?? "" };
}

/** MACE's own training outputs in a collected train stage: results/*_train.txt and logs/<tag>.log (not run.sh's logs). */
export async function trainingOutputs(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(child);
      else if (/(^|\/)results\/[^/]+_train\.txt$/.test(child)) found.push(path.join(dir, child));
      else if (/(^|\/)logs\/[^/]+\.log$/.test(child) && !RUN_SCRIPT_LOGS.includes(e.name) && !e.name.endsWith("_debug.log")) found.push(path.join(dir, child));
    }
  };
  await walk("");
  return found.sort();
}
