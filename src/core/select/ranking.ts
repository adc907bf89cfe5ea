/**
 * The ranking artifacts (the ledger's contract, stable names): ranking.json, ranking.csv and the info keys of
 * selected.extxyz. Pure rendering; the ranking itself happens in fps.ts.
 */
import { ByteWriter } from "../byte-writer.js";
import { stableJson } from "../json.js";
import { groupedBySpecies, type Frame, type InfoValue } from "../structure.js";
import { inVacuumBox, writePoscar } from "../vasp/poscar.js";
import type { DisagreementKind, TrustExclusion, TrustWindow } from "./disagreement.js";
import { TRUST_ACCURATE, TRUST_SUSPECT } from "./disagreement.js";
import type { SelectionResult, SelectionRule } from "./fps.js";

export interface CandidateMeta {
  id: string;
  source: string;
  /** 0-based frame index within the source. */
  frame: number;
  natoms: number;
  formula: string;
}

export interface RankingParameters {
  select: number;
  descriptor: "baseline" | "element-pairs" | "features";
  features_file: string | null;
  features_file_sha256?: string;
  /** With a features_file and a labelled set: the matrix of the labelled structures' features (absent otherwise). */
  labeled_features_file?: string;
  labeled_features_file_sha256?: string;
  /** With features read from extxyz files by structure (absent otherwise): the files with their sha256, and the key read. */
  features_files?: { path: string; sha256: string }[];
  features_key?: string;
  /** With composition-weighted means per element: the elements, in the order of their blocks. */
  features_per_element?: string[];
  scaling: "none" | "standard";
  /** The descriptor's histogram; null with features. */
  bins: number | null;
  rmax: number | null;
  rule: SelectionRule;
  disagreement: DisagreementKind | null;
  committee_source: "files" | "keys" | null;
  /** With committee_source "keys": the info/array key prefix (`--committee-keys`). */
  committee_keys?: string;
  force_trust: TrustWindow | null;
  /** The trust levels left out of the selection; null without a trust window. */
  trust_exclude: TrustExclusion | null;
  /** The elements of LAMMPS dumps' atom types, when given (absent otherwise). */
  type_map?: string[];
}

export interface RankingInputs {
  parameters: RankingParameters;
  /** notes: why a run directory gave fewer structures than it holds steps (absent when there is nothing to say). */
  sources: { path: string; sha256: string; frames: number; notes?: string[] }[];
  /** Pool sources that could not be read and were left out, with the reader's error (ranking.json has them when any). */
  skippedSources: { path: string; problem: string }[];
  /** Files in the pool's folders that are no structures rank reads (ranking.json's unread_files when any). */
  unreadFiles?: string[];
  labeled: { path: string; sha256: string; frames: number }[];
  committee: string[];
  /** With committee_source "files": each member file's sha256, in the order of `committee`. */
  committeeSha256?: string[];
  candidates: CandidateMeta[];
  /** firstOccurrences of the candidates' ids. */
  firstIndex: Int32Array;
  result: SelectionResult;
  /** Raw (unnormalised) disagreement per candidate, in its unit; null without a committee. */
  rawDisagreement: Float64Array | null;
  /** Normalised disagreement per candidate in [0, 1]; null without a committee. */
  disagreement: Float64Array | null;
  trustLevels: Uint8Array | null;
  /** The committee's disagreement is the same for every selectable candidate: it cannot change the ranking. */
  constantDisagreement?: boolean;
  labeledIds: ReadonlySet<string>;
  software: { name: string; version: string };
}

/** What the baseline heuristic is, stated where every ranking is read. */
export const HEURISTIC_NOTE =
  "Baseline heuristic: greedy farthest-point sampling in a structure-descriptor space, plus committee disagreement when a committee is given. It is not calibrated uncertainty, not Bayesian optimisation, and not force-uncertainty active learning (except the DP-GEN force deviation, when chosen).";

/**
 * The ranking rule in words, e.g. "diversity-first (no committee)"; `labeledCount` structures were read as labelled,
 * `labeledDistinct` of them different (a relaxation's last steps may repeat a structure).
 */
export function rankingRule(p: RankingParameters, labeledCount: number, labeledDistinct = labeledCount, constantDisagreement = false): string {
  const space =
    p.descriptor !== "features" ? `the ${p.descriptor} descriptor space` : p.features_key
        ? `the space of ${p.features_key} (${p.features_per_element ? `composition-weighted means per element: ${p.features_per_element.join(", ")}` : "one mean vector per structure"})`
        : "a user-supplied feature space";
  const what =
    p.disagreement === null ? "committee disagreement" : p.disagreement === "energy" ? "committee energy disagreement (std of energy per atom)" : "committee force disagreement (DP-GEN max force deviation)";
  let rule: string;
  if (p.disagreement === null) rule = `diversity-first (no committee): greedy farthest-point sampling in ${space}`;
  else if (p.rule.kind === "uwfps") rule = `uncertainty-weighted farthest-point sampling, u^${p.rule.alpha} * d^${p.rule.beta}, u = ${what}, d = distance in ${space}`;
  else if (p.rule.wDiv === 0) rule = `${what} only (top-k), no diversity term`;
  else rule = `diversity + ${what}, weights ${p.rule.wDiv}:${p.rule.wDis}, diversity = distance in ${space}`;
  if (constantDisagreement && p.disagreement !== null) {
    const outcome = p.rule.kind === "weighted" && p.rule.wDiv === 0 ? "the picks follow pool order" : "diversity alone decides";
    rule += `; the disagreement is the same for every selectable candidate, so ${outcome}`;
  }
  if (p.force_trust) rule += `; trust window ${trustWindowText(p.force_trust)} (below: accurate, at or above: suspect; ${trustExclusionText(p.trust_exclude ?? [])})`;
  const distinct = labeledDistinct < labeledCount ? ` (${labeledDistinct} distinct)` : "";
  if (labeledCount > 0) rule += `; seeded by ${labeledCount} labelled structures${distinct}, which count as covered`;
  return rule;
}

/** JSON has no Infinity (it would become null): an open upper end is written "inf", as `--force-trust` takes it. */
const trustWindowJson = (w: TrustWindow): { lo: number; hi: number | "inf" } => ({ lo: w.lo, hi: Number.isFinite(w.hi) ? w.hi : "inf" });
const trustWindowText = (w: TrustWindow): string => Object.values(trustWindowJson(w)).join(":");

function trustExclusionText(exclude: TrustExclusion): string {
  if (exclude.length === 2) return "both excluded";
  if (exclude.length === 0) return "both kept, flagged only";
  return exclude[0] === "accurate" ? "accurate excluded, suspect kept" : "suspect excluded, accurate kept";
}

export function renderRankingJson(r: RankingInputs): string {
  const rule = rankingRule(r.parameters, r.labeled.reduce((n, s) => n + s.frames, 0), r.labeledIds.size, r.constantDisagreement);
  return stableJson({
    format: "relabel-ranking/1",
    rule,
    heuristic: HEURISTIC_NOTE,
    parameters: { ...r.parameters, force_trust: r.parameters.force_trust && trustWindowJson(r.parameters.force_trust) },
    sources: r.sources,
    ...(r.skippedSources.length > 0 ? { skipped_sources: r.skippedSources } : {}),
    ...(r.unreadFiles?.length ? { unread_files: r.unreadFiles } : {}),
    labeled: r.labeled,
    labeled_size: r.labeledIds.size,
    committee: {
      size: r.committee.length,
      members: r.committee,
      ...(r.committeeSha256 ? { files: r.committee.map((file, i) => ({ path: file, sha256: r.committeeSha256![i] })) } : {}),
    },
    pool_size: r.candidates.length,
    selectable: r.result.selectable,
    selection_size: r.result.picks.length,
    requested: r.result.requested,
    software: r.software,
    selected: r.result.picks.map((p) => {
      const c = r.candidates[p.index];
      return {
        rank: p.rank,
        candidate_id: c.id,
        source: c.source,
        frame: c.frame,
        natoms: c.natoms,
        formula: c.formula,
        diversity: p.diversity,
        // As ranking.csv: none without a committee (0 would read as a measured agreement).
        disagreement: r.disagreement ? p.disagreement : null,
        disagreement_raw: r.rawDisagreement ? r.rawDisagreement[p.index] : null,
        score: p.score,
      };
    }),
  });
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_ROWS_PER_PART = 4096;

/** The first fields of each candidate's ranking.csv row, which need no selection result (see rankingCsvLeads). */
export interface CsvLeads {
  bytes: Uint8Array;
  /** Row i's fields are bytes[ends[i - 1] .. ends[i]) (from 0 for row 0). */
  ends: Int32Array;
}

/**
 * The fields of ranking.csv that a ranking knows before its selection ends (index, candidate_id, source, frame, natoms,
 * formula and the comma after them), for every candidate: `relabel rank` writes them while its selection runs.
 */
export function rankingCsvLeads(candidates: readonly CandidateMeta[]): CsvLeads {
  // A pool has few sources and many candidates: each source is quoted and encoded once.
  const sourceField = new Map<string, Uint8Array>();
  const encoder = new TextEncoder();
  const out = new ByteWriter(1024);
  const ends = new Int32Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    // Room for rows as long as the first and a little more: 1e6 rows are about 80 MB.
    if (i === 1) out.reserve((candidates.length - 1) * (out.length + 16));
    const c = candidates[i];
    let source = sourceField.get(c.source);
    if (source === undefined) sourceField.set(c.source, (source = encoder.encode(csvField(c.source))));
    out.number(i);
    out.byte(COMMA);
    out.text(c.id);
    out.byte(COMMA);
    out.append(source);
    out.byte(COMMA);
    out.number(c.frame);
    out.byte(COMMA);
    out.number(c.natoms);
    out.byte(COMMA);
    out.text(c.formula);
    out.byte(COMMA);
    ends[i] = out.length;
  }
  return { bytes: out.view(), ends };
}

/**
 * ranking.csv, every candidate: its rank (empty when not picked), distance to the final selection or the labelled set,
 * whichever is nearer (empty when there is neither), disagreement and flags. In parts of a few thousand rows (UTF-8
 * bytes), to be written as they come: a million candidates are not held as one string. `leads`: rankingCsvLeads of
 * the candidates, when made already.
 */
export function* rankingCsvParts(r: RankingInputs, leads = rankingCsvLeads(r.candidates)): Generator<Uint8Array, void, void> {
  const N = r.candidates.length;
  const rankOf = new Int32Array(N);
  for (const p of r.result.picks) rankOf[p.index] = p.rank;
  const out = new ByteWriter(CSV_ROWS_PER_PART * 128);
  out.text("index,candidate_id,source,frame,natoms,formula,rank,distance_to_selection,disagreement,disagreement_raw,flags\n");
  for (let from = 0; from < N; from += CSV_ROWS_PER_PART) {
    writeCsvRows(out, r, leads, rankOf, from, Math.min(N, from + CSV_ROWS_PER_PART));
    yield out.take();
  }
  if (N === 0) yield out.take();
}

/** Rows [from, to) of ranking.csv. A function of its own: V8 optimises a generator's loop only between its turns. */
function writeCsvRows(out: ByteWriter, r: RankingInputs, leads: CsvLeads, rankOf: Int32Array, from: number, to: number): void {
  const flagged = r.labeledIds.size > 0 || r.trustLevels !== null;
  // With no pick and no labelled structure, distanceToCovered is the distance to the centroid: nothing covers.
  const covered = r.result.picks.length > 0 || r.labeledIds.size > 0;
  for (let i = from; i < to; i++) {
    out.appendRange(leads.bytes, i === 0 ? 0 : leads.ends[i - 1], leads.ends[i]);
    if (rankOf[i] !== 0) out.number(rankOf[i]);
    out.byte(COMMA);
    if (covered) out.number(r.result.distanceToCovered[i]);
    out.byte(COMMA);
    // NaN: a labelled structure the committee did not predict.
    const predicted = r.rawDisagreement !== null && !Number.isNaN(r.rawDisagreement[i]);
    if (r.disagreement && predicted) out.number(r.disagreement[i]);
    out.byte(COMMA);
    if (predicted) out.number(r.rawDisagreement![i]);
    out.byte(COMMA);
    if (flagged || r.firstIndex[i] !== i) {
      const flags: string[] = [];
      if (r.labeledIds.has(r.candidates[i].id)) flags.push("labelled");
      if (r.firstIndex[i] !== i) flags.push(`duplicate-of-${r.firstIndex[i]}`);
      if (r.trustLevels?.[i] === TRUST_ACCURATE) flags.push("accurate");
      if (r.trustLevels?.[i] === TRUST_SUSPECT) flags.push("suspect");
      if (flags.length > 0) out.text(flags.join(" "));
    }
    out.byte(NEWLINE);
  }
}

const COMMA = 44;
const NEWLINE = 10;

/** Why candidates could not be picked, each counted once, by the first reason of: labelled, duplicate, trust level. */
export function leftOutCounts(r: RankingInputs): { labelled: number; duplicates: number; accurate: number; suspect: number } {
  const trustExclude = r.parameters.trust_exclude;
  const counts = { labelled: 0, duplicates: 0, accurate: 0, suspect: 0 };
  for (let i = 0; i < r.candidates.length; i++) {
    const level = r.trustLevels?.[i];
    if (r.labeledIds.size > 0 && r.labeledIds.has(r.candidates[i].id)) counts.labelled++;
    else if (r.firstIndex[i] !== i) counts.duplicates++;
    else if (level === TRUST_ACCURATE && trustExclude?.includes("accurate")) counts.accurate++;
    else if (level === TRUST_SUSPECT && trustExclude?.includes("suspect")) counts.suspect++;
  }
  return counts;
}

/** A pick's folder for its VASP run: its rank (three digits at least) and candidate_id, e.g. 007-<id>. */
export function poscarFolderName(rank: number, candidateId: string): string {
  return `${String(rank).padStart(3, "0")}-${candidateId}`;
}

/**
 * A pick's POSCAR: its comment names the candidate and rank; a structure without a cell goes in a vacuum box
 * (inVacuumBox), and its atoms are grouped by species, one block each as a POTCAR needs them: the species in
 * `speciesOrder` (a POTCAR's order; it must hold them all), else in the order their first atoms come, each
 * species' atoms in their order. The comment states both changes. `source` names the frame in errors.
 */
export function selectedPoscar(
  frame: Frame, pick: { rank: number; candidate_id: string; formula: string },
  opts: { vacuum: number; source: string; round?: number; speciesOrder?: readonly string[] },
): { text: string; boxed: boolean } {
  const { frame: boxedFrame, boxed } = inVacuumBox(frame, opts.vacuum);
  const present = new Set(boxedFrame.symbols);
  const grouped = groupedBySpecies(boxedFrame, opts.speciesOrder?.filter((s) => present.has(s)));
  const round = opts.round === undefined ? "" : ` (round ${opts.round})`;
  const box = boxed ? `; no cell: cubic box of ${boxedFrame.cell[0]} A, at least ${opts.vacuum} A vacuum` : "";
  const regrouped = grouped !== boxedFrame ? "; atoms grouped by species" : "";
  const comment = `${pick.formula} candidate ${pick.candidate_id} rank ${pick.rank}${round}${box}${regrouped}`;
  return { text: writePoscar(grouped, { source: opts.source, comment }), boxed };
}

/**
 * The info and per-atom keys that ASE's extxyz reader takes as a calculator's results (ase/io/extxyz.py, 3.22), with
 * the selection's own info keys (a pool that is an earlier selected.extxyz has them) and the labels this project
 * writes (REF_energy, REF_forces, ...: a pool taken from a dataset).
 */
const SELECTION_INFO = ["candidate_id", "source", "frame", "selection_rank"];
const isKeptInfo = (key: string): boolean => ["energy", "free_energy", "stress", "dipole", "magmom", ...SELECTION_INFO].includes(key) || key.startsWith("REF_");
const isKeptArray = (key: string): boolean => ["forces", "stresses", "charges", "magmoms", "energies"].includes(key) || key.startsWith("REF_");
/** What those keys become in selected.extxyz: pool values, not labels. */
export const POOL_RESULT_PREFIX = "pool_";

/** `key` under the pool prefix, prefixed again while `taken` has it (nothing is written over). */
function poolKey(key: string, taken: { has(key: string): boolean }): string {
  let renamed = `${POOL_RESULT_PREFIX}${key}`;
  while (taken.has(renamed)) renamed = `${POOL_RESULT_PREFIX}${renamed}`;
  return renamed;
}

function renamedKeys<V>(entries: Map<string, V>, renamed: (key: string) => boolean): Map<string, V> {
  if (![...entries.keys()].some(renamed)) return entries;
  return new Map([...entries].map(([key, value]) => [renamed(key) ? poolKey(key, entries) : key, value]));
}

/**
 * The frame with the values ASE would read back as calculator results (energy, forces, stress, ...) and this
 * project's labels (REF_*) under `pool_<key>`: a pick is a structure to label, and what the pool says of it (a model's
 * prediction, an earlier calculation) must not come back as its label. So are a pool's own selection keys (source,
 * frame, ...), which the pick's get. Positions and so the candidate_id are unchanged.
 */
export function withPoolResultsRenamed(frame: Frame): Frame {
  const info = renamedKeys(frame.info, isKeptInfo);
  const arrays = renamedKeys(frame.arrays, isKeptArray);
  return info === frame.info && arrays === frame.arrays ? frame : { ...frame, info, arrays };
}

/** Info keys a selected frame carries in selected.extxyz. */
export function selectionInfo(c: CandidateMeta, rank: number): [string, InfoValue][] {
  const values: InfoValue[] = [
    { kind: "string", value: c.id },
    { kind: "string", value: c.source },
    { kind: "int", value: c.frame },
    { kind: "int", value: rank },
  ];
  return SELECTION_INFO.map((key, i) => [key, values[i]]);
}
