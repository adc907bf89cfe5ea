/**
 * Round-to-round comparison: which dataset a benchmark was computed on, whether two rounds are comparable, and the
 * change of each metric. Rounds are comparable only on the same frozen test set (membership and content), the same
 * energy policy and the same head.
 */
import { InputError } from "../errors.js";

/** The dataset block of metrics.json. */
export interface DatasetIdentity {
  /** Fingerprints of the frozen test set from the dataset's summary.json; null when unknown. */
  test_membership: string | null;
  test_content: string | null;
  /** Which DFT energy REF_energy holds: "free" or "sigma0" (null when unknown). */
  energy: string | null;
  head: string | null;
  /** Where test_membership, test_content, energy and head came from. */
  source: string | null;
  /** Hashes of the reference frames actually benchmarked (see labels.ts), known in every round. */
  ref_structures_sha256: string;
  ref_labels_sha256: string;
}

export interface DatasetSummaryInfo {
  test_membership: string | null;
  test_content: string | null;
  energy: string | null;
  head: string | null;
  /** sha256 of each split file as built (summary.json `sha256`), to notice files edited afterwards. */
  sha256: Record<string, string>;
}

/** Reads options.energy, options.head and fingerprint.test_membership / test_content from a dataset summary.json. */
export function datasetSummaryInfo(text: string, file: string): DatasetSummaryInfo {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError(file, undefined, `not valid JSON (${(err as Error).message.split("\n")[0]})`);
  }
  if (!isObject(json)) throw new InputError(file, undefined, "expected a JSON object (a dataset summary.json)");
  const options = isObject(json.options) ? json.options : {};
  const fingerprint = isObject(json.fingerprint) ? json.fingerprint : {};
  const sha256 = isObject(json.sha256) ? json.sha256 : {};
  return {
    test_membership: stringOrNull(fingerprint.test_membership),
    test_content: stringOrNull(fingerprint.test_content),
    energy: stringOrNull(options.energy),
    head: stringOrNull(options.head),
    sha256: Object.fromEntries(Object.entries(sha256).filter((e): e is [string, string] => typeof e[1] === "string")),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stringOrNull(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

export const METRICS_SCHEMA = "relabel-bench/1";

/** The parts of a previous round's metrics.json that the comparison reads. */
export interface PreviousBench {
  file: string;
  dataset: Partial<DatasetIdentity>;
  counts: Record<string, number>;
  overall: MetricBlockJson | null;
  per_config_type: Record<string, MetricBlockJson>;
}

export interface MetricBlockJson {
  frames: number;
  atoms: number;
  energy_per_atom: { frames: number; rmse: number; mae: number } | null;
  forces: { atoms: number; components: number; rmse: number; mae: number; rel_rmse_percent: number | null } | null;
  stress: { frames: number; components: number; rmse: number; mae: number } | null;
}

export function parsePreviousMetrics(text: string, file: string): PreviousBench {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError(file, undefined, `not valid JSON (${(err as Error).message.split("\n")[0]})`);
  }
  if (!isObject(json) || typeof json.schema !== "string" || !json.schema.startsWith("relabel-bench/")) {
    throw new InputError(file, undefined, `expected the metrics.json of a relabel bench run (with "schema": "${METRICS_SCHEMA}")`);
  }
  return {
    file,
    dataset: isObject(json.dataset) ? (json.dataset as Partial<DatasetIdentity>) : {},
    counts: isObject(json.counts) ? (json.counts as Record<string, number>) : {},
    overall: isObject(json.overall) ? (json.overall as unknown as MetricBlockJson) : null,
    per_config_type: isObject(json.per_config_type) ? (json.per_config_type as Record<string, MetricBlockJson>) : {},
  };
}

const IDENTITY_FIELDS: Array<["test_membership" | "test_content" | "energy" | "head", string]> = [
  ["test_membership", "test set membership"],
  ["test_content", "test set content"],
  ["energy", "energy policy"],
  ["head", "head"],
];

const HASH_FIELDS: Array<[keyof DatasetIdentity, string]> = [
  ["ref_structures_sha256", "reference structures"],
  ["ref_labels_sha256", "reference labels"],
];

function shown(v: string | null | undefined): string {
  return v === null || v === undefined ? "unknown" : `\`${v}\``;
}

/**
 * Why this round is not comparable with the previous one, one sentence per difference (old -> new). A field known in
 * only one round counts as a difference (it cannot be confirmed); unknown in both rounds is reported by identityNotes.
 */
export function comparabilityProblems(previous: Partial<DatasetIdentity>, current: DatasetIdentity): string[] {
  const problems: string[] = [];
  for (const [key, label] of IDENTITY_FIELDS) {
    const old = previous[key] ?? null;
    const now = current[key];
    if (old === now) continue;
    if (old !== null && now !== null) problems.push(`${label} changed: ${shown(old)} -> ${shown(now)}`);
    else problems.push(`${label} cannot be confirmed: ${shown(old)} -> ${shown(now)}`);
  }
  for (const [key, label] of HASH_FIELDS) {
    const old = previous[key];
    if (typeof old !== "string") continue;
    if (old !== current[key]) problems.push(`${label} differ: ${shown(old)} -> ${shown(current[key] as string)}`);
  }
  return problems;
}

/** Identity fields unknown in both rounds: comparability then rests on the reference hashes alone. */
export function unknownInBoth(previous: Partial<DatasetIdentity>, current: DatasetIdentity): string[] {
  return IDENTITY_FIELDS.filter(([key]) => (previous[key] ?? null) === null && current[key] === null).map(([, label]) => label);
}

export interface Delta {
  text: string;
  /** -1 the error went down, +1 up, 0 unchanged at the shown precision. */
  direction: -1 | 0 | 1;
}

/**
 * The change from `old` to `now` at `digits` decimals with its relative size: `-1.23 (-8.9%) ▼`.
 * Errors going down is good, so ▼ reads "better" for every error metric.
 */
export function delta(old: number | null | undefined, now: number | null | undefined, digits: number): Delta | null {
  if (old === null || old === undefined || now === null || now === undefined) return null;
  const d = now - old;
  const shownD = d.toFixed(digits);
  if (Number(shownD) === 0) return { text: `±${(0).toFixed(digits)} =`, direction: 0 };
  const rel = old !== 0 ? ` (${d > 0 ? "+" : ""}${((d / Math.abs(old)) * 100).toFixed(1)}%)` : "";
  return d < 0 ? { text: `${shownD}${rel} ▼`, direction: -1 } : { text: `+${shownD}${rel} ▲`, direction: 1 };
}
