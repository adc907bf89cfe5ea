/**
 * rounds/NNNN/round.json: one active-learning round's state in the data repo, its schema, where its files live,
 * and the only legal ways it moves forward. A finished step's directory is frozen: nothing may be written under
 * it again, so a round's selection, dataset, stages and benchmark stay what they were when recorded.
 */
import { z } from "zod";
import { poscarFolderName } from "../select/ranking.js";
import { committeeSchema, repoPathSchema, selectionConfigSchema } from "./config.js";
import type { RankingJson } from "./ranking-json.js";

export const ROUND_STATES = ["ranking", "selection-review", "labeling", "training", "benchmarking", "complete", "failed"] as const;
export type RoundState = (typeof ROUND_STATES)[number];

/** Steps whose outputs freeze once finished, in round order. */
export const FINISHED_STEPS = ["selection", "dataset", "stages", "jobs", "benchmark"] as const;
export type FinishedStep = (typeof FINISHED_STEPS)[number];

/** What `advance` records: one event of the round's life. */
export const ROUND_EVENTS = ["ranked", "frozen", "dataset", "stages", "jobs", "collected", "benchmark", "complete"] as const;
export type RoundEvent = (typeof ROUND_EVENTS)[number];

const isoTime = z.iso.datetime({ offset: true, error: "expected an ISO 8601 time such as 2026-01-31T12:00:00Z" });
const sha = z.string().regex(/^[0-9a-f]{40}$|^[0-9a-f]{64}$/, "expected a full git commit sha");
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 in hex");
const count = z.int().nonnegative();

/** Selection settings of the round (the config's selection block as resolved for this round) plus its committee. */
export const roundParametersSchema = selectionConfigSchema.extend({ committee: committeeSchema });
export type RoundParameters = z.output<typeof roundParametersSchema>;

export const roundManifestSchema = z.strictObject({
  round: z.int().min(1),
  issue: z.int().min(1),
  opened_by: z.string().min(1),
  state: z.enum(ROUND_STATES),
  pool: z.array(z.strictObject({ path: repoPathSchema, sha256 })).min(1),
  parameters: roundParametersSchema,
  /** The ranking rule in words, as ranking.json states it; null until ranked. */
  ranking_rule: z.string().nullable(),
  committee_size: count.nullable(),
  selection_size: count.nullable(),
  branches: z.strictObject({ selection: z.string().optional(), results: z.string().optional() }),
  prs: z.strictObject({ selection: z.int().min(1).optional(), results: z.int().min(1).optional() }),
  timestamps: z.strictObject({
    opened: isoTime,
    selection_opened: isoTime.optional(),
    frozen: isoTime.optional(),
    labels_merged: isoTime.optional(),
    stages_rendered: isoTime.optional(),
    submitted: isoTime.optional(),
    collected: isoTime.optional(),
    benchmarked: isoTime.optional(),
    completed: isoTime.optional(),
    failed: isoTime.optional(),
  }),
  commits: z.strictObject({
    selection: sha.optional(),
    frozen: sha.optional(),
    dataset: sha.optional(),
    stages: sha.optional(),
    jobs: sha.optional(),
    benchmark: sha.optional(),
  }),
  finished_steps: z.array(z.enum(FINISHED_STEPS)),
  /** Why the round stopped; the state it stopped in is where `advance` resumes. */
  failure: z.strictObject({ state: z.enum(ROUND_STATES).exclude(["failed"]), event: z.string(), message: z.string() }).nullable().default(null),
});
export type RoundManifest = z.output<typeof roundManifestSchema>;

/** A new round, as the round issue opens it: state ranking, nothing recorded yet. */
export function newRoundManifest(init: {
  round: number;
  issue: number;
  opened_by: string;
  time: string;
  pool: { path: string; sha256: string }[];
  parameters: RoundParameters;
}): RoundManifest {
  return roundManifestSchema.parse({
    round: init.round,
    issue: init.issue,
    opened_by: init.opened_by,
    state: "ranking",
    pool: init.pool,
    parameters: init.parameters,
    ranking_rule: null,
    committee_size: null,
    selection_size: null,
    branches: { selection: selectionBranch(init.round) },
    prs: {},
    timestamps: { opened: init.time },
    commits: {},
    finished_steps: [],
    failure: null,
  });
}

/**
 * The round's account of its selection (size, rule, committee, select and weights) as the given ranking.json states
 * it. The freeze takes it from the ranking.json that was merged: a re-rank that lost a race with the merge records
 * its own figures, while the merge took the selection before them.
 */
export function withRankingFigures(m: RoundManifest, ranking: RankingJson): RoundManifest {
  const { select, rule } = ranking.parameters as { select?: unknown; rule?: { kind?: unknown; wDiv?: unknown; wDis?: unknown } };
  const weights = { ...m.parameters.weights };
  if (rule?.kind === "weighted" && typeof rule.wDiv === "number" && typeof rule.wDis === "number") {
    weights.div = rule.wDiv;
    // Without a committee the ranking ran with dis = 0 whatever was asked; the request stays on record.
    if (ranking.committee.size > 0) weights.dis = rule.wDis;
  }
  return {
    ...m,
    ranking_rule: ranking.rule,
    committee_size: ranking.committee.size,
    selection_size: ranking.selection_size,
    parameters: { ...m.parameters, select: typeof select === "number" && Number.isInteger(select) ? select : m.parameters.select, weights },
  };
}

/** Parses round.json text; the reason names the file and the first bad key. */
export function parseRoundManifest(text: string, file: string): { ok: true; manifest: RoundManifest } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `${file}: not valid JSON (${(err as Error).message})` };
  }
  const result = roundManifestSchema.safeParse(value);
  if (result.success) return { ok: true, manifest: result.data };
  const issue = result.error.issues[0];
  return { ok: false, problem: `${file}: ${issue.path.map(String).join(".") || "(top level)"}: ${issue.message.replace(/^Invalid input: /, "")}` };
}

interface Transition {
  from: readonly RoundState[];
  to: RoundState;
  /** Steps that must have finished first. */
  needs: readonly FinishedStep[];
  finishes?: FinishedStep;
  /** The step whose directory the event writes into (refused once that step finished). */
  writes?: FinishedStep;
  commit?: keyof RoundManifest["commits"];
  timestamp?: Exclude<keyof RoundManifest["timestamps"], "opened">;
}

/** The round's life: ranked PR open → merged (frozen) → labels merged → stages → jobs → collected → benchmark → complete. */
const TRANSITIONS: Record<RoundEvent, Transition> = {
  ranked: { from: ["ranking", "selection-review"], to: "selection-review", needs: [], writes: "selection", commit: "selection", timestamp: "selection_opened" },
  frozen: { from: ["selection-review"], to: "labeling", needs: [], finishes: "selection", commit: "frozen", timestamp: "frozen" },
  dataset: { from: ["labeling"], to: "training", needs: ["selection"], finishes: "dataset", commit: "dataset", timestamp: "labels_merged" },
  stages: { from: ["training"], to: "training", needs: ["dataset"], finishes: "stages", commit: "stages", timestamp: "stages_rendered" },
  jobs: { from: ["training"], to: "training", needs: ["stages"], finishes: "jobs", commit: "jobs", timestamp: "submitted" },
  collected: { from: ["training"], to: "benchmarking", needs: ["jobs"], timestamp: "collected" },
  benchmark: { from: ["benchmarking"], to: "benchmarking", needs: ["jobs"], finishes: "benchmark", commit: "benchmark", timestamp: "benchmarked" },
  complete: { from: ["benchmarking"], to: "complete", needs: ["benchmark"], timestamp: "completed" },
};

export class RoundTransitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RoundTransitionError";
  }
}

/** Why `event` cannot be recorded now, or null when it can. A failed round resumes from the state it failed in. */
export function refuseAdvance(manifest: RoundManifest, event: RoundEvent): string | null {
  const t = TRANSITIONS[event];
  const state = effectiveState(manifest);
  const missing = t.needs.filter((step) => !manifest.finished_steps.includes(step));
  if (missing.length > 0) {
    return `round ${manifest.round}: cannot record "${event}" before the ${missing.join(", ")} step${missing.length > 1 ? "s" : ""} finished (the round is "${state}")`;
  }
  const writes = t.writes ?? t.finishes;
  if (writes !== undefined && manifest.finished_steps.includes(writes)) {
    const commit = manifest.commits[stepCommit(writes)];
    return `round ${manifest.round}: the ${writes} step already finished${commit ? ` in commit ${commit}` : ""}; its outputs are frozen`;
  }
  if (!t.from.includes(state)) {
    return `round ${manifest.round}: cannot record "${event}" while the round is "${state}" (allowed from ${t.from.map((s) => `"${s}"`).join(" or ")})`;
  }
  return null;
}

/**
 * The manifest after `event` (pure): state, finished step, commit and time recorded. `commit` is the sha of the
 * commit holding the step's outputs (null for events without one, e.g. collected). Throws RoundTransitionError
 * for an illegal event (e.g. benchmark before jobs).
 */
export function advance(manifest: RoundManifest, event: RoundEvent, commit: string | null, time: string): RoundManifest {
  const refusal = refuseAdvance(manifest, event);
  if (refusal !== null) throw new RoundTransitionError(refusal);
  const t = TRANSITIONS[event];
  if (t.commit !== undefined && commit === null) throw new RoundTransitionError(`round ${manifest.round}: "${event}" needs the commit holding its outputs`);
  const next: RoundManifest = {
    ...manifest,
    state: t.to,
    failure: null,
    timestamps: t.timestamp === undefined ? manifest.timestamps : { ...manifest.timestamps, [t.timestamp]: time },
    commits: t.commit === undefined || commit === null ? manifest.commits : { ...manifest.commits, [t.commit]: commit },
    finished_steps: t.finishes === undefined ? manifest.finished_steps : FINISHED_STEPS.filter((s) => s === t.finishes || manifest.finished_steps.includes(s)),
  };
  return roundManifestSchema.parse(next);
}

/** The manifest of a round that stopped at `event` with `message`; `advance` later resumes from the state it had. */
export function failRound(manifest: RoundManifest, event: string, message: string, time: string): RoundManifest {
  if (manifest.state === "complete") throw new RoundTransitionError(`round ${manifest.round} is complete; it cannot fail any more`);
  return roundManifestSchema.parse({
    ...manifest,
    state: "failed",
    failure: { state: effectiveState(manifest), event, message },
    timestamps: { ...manifest.timestamps, failed: time },
  });
}

/** The commit that finished a step: the merge of the selection PR for the selection, else the step's own. */
function stepCommit(step: FinishedStep): keyof RoundManifest["commits"] {
  return step === "selection" ? "frozen" : step;
}

/** The state a round is in, or was in when it failed. */
export function effectiveState(manifest: RoundManifest): Exclude<RoundState, "failed"> {
  if (manifest.state !== "failed") return manifest.state;
  if (manifest.failure === null) throw new RoundTransitionError(`round ${manifest.round} is failed without a recorded failure`);
  return manifest.failure.state;
}

/** The selection can still be re-ranked (before the selection PR is merged). */
export function selectionOpen(manifest: RoundManifest): boolean {
  return !manifest.finished_steps.includes("selection") && ["ranking", "selection-review"].includes(effectiveState(manifest));
}

/** 4-digit zero-padded round number, as in rounds/0003. */
export function roundId(round: number): string {
  if (!Number.isSafeInteger(round) || round < 1) throw new RangeError(`round numbers start at 1 (got ${round})`);
  return String(round).padStart(4, "0");
}

export function roundDir(round: number): string {
  return `rounds/${roundId(round)}`;
}

/** Every path of a round's ledger layout (templates/LEDGER.md). */
export function roundPaths(round: number) {
  const dir = roundDir(round);
  return {
    dir,
    manifest: `${dir}/round.json`,
    selection: `${dir}/selection`,
    rankingJson: `${dir}/selection/ranking.json`,
    rankingCsv: `${dir}/selection/ranking.csv`,
    selectedExtxyz: `${dir}/selection/selected.extxyz`,
    poscars: `${dir}/selection/poscars`,
    labels: `${dir}/labels`,
    dataset: `${dir}/dataset`,
    datasetSummary: `${dir}/dataset/summary.json`,
    datasetSplit: `${dir}/dataset/split.json`,
    stages: `${dir}/stages`,
    jobs: `${dir}/jobs.json`,
    benchmark: `${dir}/benchmark`,
    lock: `ledger/locks/${roundId(round)}.json`,
  };
}

/** The folder of one selected structure: poscars/<rank:03d>-<candidate_id>. */
export function poscarDir(round: number, rank: number, candidateId: string): string {
  return `${roundPaths(round).poscars}/${poscarFolderName(rank, candidateId)}`;
}

export function selectionBranch(round: number): string {
  return `relabel/round-${roundId(round)}-selection`;
}

/** The round of a selection branch (relabel/round-0003-selection → 3), or null for any other branch. */
export function roundOfSelectionBranch(branch: string): number | null {
  const match = /^(?:refs\/heads\/)?relabel\/round-(\d{4,})-selection$/.exec(branch);
  return match ? Number(match[1]) : null;
}

/** The round a repository path lies in (rounds/0003/... → 3), or null. */
export function roundNumberFromPath(path: string): number | null {
  const match = /^rounds\/(\d{4,})(?:\/|$)/.exec(normalizePath(path));
  return match && Number(match[1]) >= 1 ? Number(match[1]) : null;
}

/**
 * Which finished step freezes which directory of a round. jobs.json is not frozen: the executor keeps recording
 * job states and collections in it after submission.
 */
const FROZEN_BY: { sub: string; step: FinishedStep }[] = [
  { sub: "selection", step: "selection" },
  // The dataset was built from these runs: changing them afterwards would break its provenance.
  { sub: "labels", step: "dataset" },
  { sub: "dataset", step: "dataset" },
  { sub: "stages", step: "stages" },
  { sub: "benchmark", step: "benchmark" },
];

/** The finished step that freezes `path` (selection/; labels/ and dataset/ by dataset; stages/; benchmark/), or null. */
export function isFrozenPath(manifest: RoundManifest, path: string): FinishedStep | null {
  const normal = normalizePath(path);
  const dir = roundDir(manifest.round);
  if (!normal.startsWith(`${dir}/`) && normal !== dir) return null;
  const rest = normal.slice(dir.length + 1);
  for (const { sub, step } of FROZEN_BY) {
    if ((rest === sub || rest.startsWith(`${sub}/`)) && manifest.finished_steps.includes(step)) return step;
  }
  return null;
}

/** A Ledger.commit guard: the one-line refusal for a frozen path, else null. */
export function frozenPathGuard(manifest: RoundManifest): (path: string) => string | null {
  return (path) => {
    const step = isFrozenPath(manifest, path);
    if (step === null) return null;
    const commit = manifest.commits[stepCommit(step)];
    return `${normalizePath(path)}: the ${step} step of round ${manifest.round} finished${commit ? ` in commit ${commit.slice(0, 12)}` : ""}; its files are immutable (open a new round to change them)`;
  };
}

/** a/./b//c → a/b/c; a leading ./ or / is dropped. `..` is kept, so it never matches a round directory. */
function normalizePath(path: string): string {
  return path
    .split("/")
    .filter((part) => part !== "" && part !== ".")
    .join("/");
}
