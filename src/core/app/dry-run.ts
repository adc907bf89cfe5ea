/**
 * The results PR's check: which label runs belong to which selected candidate. A run is matched through the
 * candidate_id of its initial structure, else its geometry (folder names are free); a folder named like the selection's POSCAR
 * folders (`003-<candidate_id>`) must hold that candidate. The rules for a failing check live here so the check
 * run and `/relabel rebuild --dry-run` agree.
 */
import { CANDIDATE_ID_LENGTH } from "../select/candidate-id.js";
import { DFT_OUTPUT_TOLERANCE, NearStructureIndex, type Geometry } from "../select/near-match.js";
import type { DatasetSummary } from "../dataset/summary.js";

/** One run folder under rounds/NNNN/labels/, as read by the App. */
export interface LabelRun {
  /** Path relative to labels/, e.g. "003-4f1c…/". */
  folder: string;
  /** candidate_id of the run's initial structure; null when the run could not be read. */
  initialId: string | null;
  /** The initial structure itself, for matching by geometry when its id differs (absent: by id only). */
  initial?: Geometry | null;
  /** DFT steps read. */
  steps: number;
  /** Every SCF loop converged (null when unknown). */
  converged: boolean | null;
  /** Why the run could not be read. */
  error: string | null;
}

export interface SelectedCandidate {
  rank: number;
  candidate_id: string;
  formula: string;
  /** The selected structure (selected.extxyz), for matching runs by geometry (absent: by id only). */
  geometry?: Geometry;
}

export type RunStatus = "matched" | "duplicate" | "mismatched" | "extra" | "unreadable";

export interface MatchedRun extends LabelRun {
  status: RunStatus;
  /** Rank of the selected candidate the structure is (null when it is none of them). */
  rank: number | null;
  /**
   * The candidate_id of that selected structure: the initial structure's own, or that of the selected structure
   * within DFT_OUTPUT_TOLERANCE of it (VASP printed fewer digits); the initial structure's own when none is.
   */
  candidateId: string | null;
  /** The candidate id the folder name claims, when it has one. */
  claimedId: string | null;
}

export interface LabelMatch {
  runs: MatchedRun[];
  /** Selected candidates without a matched run. */
  missing: SelectedCandidate[];
}

const CLAIMED_ID = new RegExp(`(?:^|[^0-9a-f])([0-9a-f]{${CANDIDATE_ID_LENGTH}})$`);

/** Matches runs (in folder order) to the selection; the first run of a candidate wins, later ones are duplicates. */
export function matchLabelRuns(selected: readonly SelectedCandidate[], runs: readonly LabelRun[]): LabelMatch {
  const rankOf = new Map(selected.map((c) => [c.candidate_id, c.rank]));
  const near = new NearStructureIndex(DFT_OUTPUT_TOLERANCE, true);
  selected.forEach((c, i) => c.geometry && near.add(i, c.geometry));
  const candidateOf = (run: LabelRun): string | null => {
    if (run.initialId === null || rankOf.has(run.initialId) || !run.initial) return run.initialId;
    const i = near.find(run.initial);
    return i === undefined ? run.initialId : selected[i].candidate_id;
  };
  const taken = new Set<string>();
  const sorted = [...runs].sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
  const matched = sorted.map((run): MatchedRun => {
    const last = run.folder.replace(/\/+$/, "").split("/").at(-1) ?? "";
    const claimedId = CLAIMED_ID.exec(last)?.[1] ?? null;
    const candidateId = candidateOf(run);
    const rank = candidateId === null ? null : (rankOf.get(candidateId) ?? null);
    let status: RunStatus;
    if (run.error !== null || candidateId === null) status = "unreadable";
    else if (claimedId !== null && claimedId !== candidateId) status = "mismatched";
    else if (rank === null) status = "extra";
    else if (taken.has(candidateId)) status = "duplicate";
    else status = "matched";
    if (status === "matched") taken.add(candidateId!);
    return { ...run, status, rank, claimedId, candidateId };
  });
  return { runs: matched, missing: selected.filter((c) => !taken.has(c.candidate_id)) };
}

/** Everything the dry run of a rebuild found, for the check run and the comment. */
export interface DryRunResult {
  round: number;
  match: LabelMatch;
  /** The summary the rebuild would write (gates, split counts); null when it did not get that far. */
  dataset: DatasetSummary | null;
  /** Why the rebuild itself would fail (gate errors, unusable input). */
  errors: string[];
  warnings: string[];
}

/**
 * The check fails when the rebuild would fail or the labels do not correspond to the selection: an unreadable,
 * mismatched, extra or duplicate run. Selected candidates without a run only warn (some DFT runs may fail).
 */
export function dryRunFailures(result: DryRunResult): string[] {
  const failures = [...result.errors];
  const count = (status: RunStatus) => result.match.runs.filter((r) => r.status === status).length;
  const describe: [RunStatus, string, string][] = [
    ["unreadable", "could not be read", "could not be read"],
    ["mismatched", "holds another structure than its folder name says", "hold other structures than their folder names say"],
    ["extra", "matches no selected candidate", "match no selected candidate"],
    ["duplicate", "repeats a candidate another run already labels", "repeat candidates other runs already label"],
  ];
  for (const [status, one, many] of describe) {
    const n = count(status);
    if (n > 0) failures.push(n === 1 ? `1 run ${one}` : `${n} runs ${many}`);
  }
  return failures;
}
