/**
 * The round issue: GitHub renders the issue form (templates/ISSUE_TEMPLATE/al-round.yml) as `### <label>`
 * sections, "_No response_" for an empty field. This reads those sections into a round request; a section left
 * empty (or an issue written by hand without the form) takes the default from .github/relabel.yml.
 */
import { committeeSchema, parseWeightsText, repoPathSchema, selectionConfigSchema, type Committee, type RelabelConfig, type Weights } from "./config.js";

/** The form's field labels, as the template names them; the template test checks they agree. */
export const ROUND_FORM_LABELS = {
  pool: "Pool paths",
  select: "Selection size",
  committee: "Committee",
  committeeFiles: "Committee prediction files",
  weights: "Weights",
} as const;

/** The dropdown's options, in template order. */
export const COMMITTEE_OPTIONS = {
  none: "none (diversity only)",
  files: "prediction files",
  previous: "previous round's committee",
} as const;

export interface RoundRequest {
  pool: string[];
  select: number;
  committee: Committee;
  weights: Weights;
}

export type RoundIssueResult =
  /** The issue lacks the round label: not ours to handle. */
  | { kind: "not-round" }
  | { kind: "request"; request: RoundRequest }
  | { kind: "problems"; problems: string[] };

const NO_RESPONSE = "_No response_";

/** Reads a round issue; `labels` as in the webhook payload (objects with a name) or plain names. */
export function parseRoundIssue(
  body: string | null,
  labels: readonly (string | { name?: string })[],
  config: Pick<RelabelConfig, "round_label" | "pool" | "selection" | "committee">,
): RoundIssueResult {
  const names = labels.map((l) => (typeof l === "string" ? l : (l.name ?? "")));
  if (!names.includes(config.round_label)) return { kind: "not-round" };
  const sections = formSections(body ?? "");
  const problems: string[] = [];
  const field = (key: keyof typeof ROUND_FORM_LABELS) => sections.get(ROUND_FORM_LABELS[key].toLowerCase()) ?? "";

  const poolText = listLines(field("pool"));
  const pool = poolText.length > 0 ? poolText : config.pool.paths;
  for (const path of poolText) {
    const checked = repoPathSchema.safeParse(path);
    if (!checked.success) problems.push(`${ROUND_FORM_LABELS.pool}: "${path}": ${checked.error.issues[0].message}`);
  }
  if (pool.length === 0) problems.push(`${ROUND_FORM_LABELS.pool}: none given, and \`pool.paths\` in .github/relabel.yml is empty: name at least one pool file or folder`);

  let select = config.selection.select;
  const selectText = field("select");
  if (selectText !== "") {
    const checked = selectionConfigSchema.shape.select.safeParse(/^\d+$/.test(selectText) ? Number(selectText) : NaN);
    if (checked.success) select = checked.data;
    else problems.push(`${ROUND_FORM_LABELS.select}: expected a whole number of at least 1 (got "${selectText}")`);
  }

  let committee: Committee = config.committee;
  const choice = field("committee").toLowerCase();
  const files = listLines(field("committeeFiles"));
  if (choice.startsWith("prediction")) {
    const checked = committeeSchema.safeParse({ files });
    if (checked.success) committee = checked.data;
    else problems.push(`${ROUND_FORM_LABELS.committeeFiles}: ${checked.error.issues.map((i) => (i.path.length > 1 ? `"${files[Number(i.path[1])]}": ${i.message}` : i.message)).join("; ")}`);
  } else if (choice.startsWith("previous")) {
    committee = "previous-round";
  } else if (choice.startsWith("none")) {
    committee = "none";
  } else if (choice !== "") {
    problems.push(`${ROUND_FORM_LABELS.committee}: expected one of ${Object.values(COMMITTEE_OPTIONS).map((o) => `"${o}"`).join(", ")} (got "${field("committee")}")`);
  }
  if (files.length > 0 && !choice.startsWith("prediction")) {
    problems.push(`${ROUND_FORM_LABELS.committeeFiles}: files are given but ${ROUND_FORM_LABELS.committee} is not "${COMMITTEE_OPTIONS.files}"`);
  }

  let weights = config.selection.weights;
  const weightsText = field("weights");
  if (weightsText !== "") {
    const parsed = parseWeightsText(weightsText);
    if (typeof parsed === "string") problems.push(`${ROUND_FORM_LABELS.weights}: ${parsed}`);
    else weights = parsed;
  }

  if (problems.length > 0) return { kind: "problems", problems };
  return { kind: "request", request: { pool, select, committee, weights } };
}

/** What a round issue asks for, as text; absent fields take the config's defaults. */
export interface RoundIssueFields {
  pool?: readonly string[];
  select?: number;
  committee?: "none" | "previous-round" | { files: readonly string[] };
  weights?: string;
}

/** A round issue's body as GitHub renders the issue form, for issues opened without GitHub (`relabel round open`). */
export function roundIssueBody(f: RoundIssueFields): string {
  const committee = f.committee === undefined ? "" : f.committee === "none" ? COMMITTEE_OPTIONS.none : f.committee === "previous-round" ? COMMITTEE_OPTIONS.previous : COMMITTEE_OPTIONS.files;
  const files = typeof f.committee === "object" ? f.committee.files.join("\n") : "";
  const sections: [string, string][] = [
    [ROUND_FORM_LABELS.pool, (f.pool ?? []).join("\n")],
    [ROUND_FORM_LABELS.select, f.select === undefined ? "" : String(f.select)],
    [ROUND_FORM_LABELS.committee, committee],
    [ROUND_FORM_LABELS.committeeFiles, files],
    [ROUND_FORM_LABELS.weights, f.weights ?? ""],
  ];
  return sections.map(([label, text]) => `### ${label}\n\n${text === "" ? NO_RESPONSE : text}\n`).join("\n");
}

/** The reply to a round issue that cannot start a round. */
export function roundIssueProblemsComment(problems: readonly string[]): string {
  return [
    "**This round cannot start yet.** Edit the issue and fix:",
    "",
    ...problems.map((p) => `- ${p}`),
    "",
    "Then comment `/relabel rank` to rank (the issue is read again).",
    "",
  ].join("\n");
}

/** `### Label` sections of a rendered issue form: lower-cased label → trimmed text ("" for _No response_). */
function formSections(body: string): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = body.replace(/\r\n/g, "\n").split(/^###[ \t]+(.+?)[ \t]*$/m);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const text = parts[i + 1].trim();
    sections.set(parts[i].trim().toLowerCase(), text === NO_RESPONSE ? "" : text);
  }
  return sections;
}

/** One entry per line; list bullets, code spans and fences around the entries are dropped. */
function listLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !/^(```|~~~)/.test(line))
    .map((line) => line.replace(/^[-*+][ \t]+/, "").replace(/^`(.*)`$/, "$1").trim())
    .filter((line) => line !== "");
}
