/**
 * What the App writes on GitHub: the selection summary, the results check, job and status comments, the
 * benchmark comment, sticky comments found again by a hidden marker, and the splitting of long text into
 * comments GitHub accepts (65,536 characters; we stay under 60,000) with code fences and <details> balanced.
 */
import type { Gates } from "../dataset/summary.js";
import { SPLITS } from "../dataset/split.js";
import { isOpen, lastAttempt, SUBMITTING, type JobRecord, type Ledger as JobsFile } from "../exec/ledger.js";
import { DFT_OUTPUT_TOLERANCE } from "../select/near-match.js";
import { dryRunFailures, type DryRunResult, type MatchedRun } from "./dry-run.js";
import { roundPaths, type RoundManifest } from "./manifest.js";
import type { PollProblems } from "./poll-problems.js";
import type { RankingJson } from "./ranking-json.js";

export const COMMENT_LIMIT = 60_000;

/** The honest name of the ranking method, stated wherever a selection is shown. */
export const HEURISTIC_NAME =
  "baseline heuristic: diversity (farthest-point sampling in a structure-descriptor space) plus optional committee disagreement; not calibrated uncertainty";

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/** Inside a table cell: pipes escaped, line breaks as <br>. */
export function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, "<br>");
}

/** Text from files or tools as prose: "<calculation>" would otherwise vanish as an HTML tag on GitHub. */
export function plainText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r?\n/g, " ");
}

/** A code span that survives backticks in the text. */
export function inlineCode(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = "`".repeat(longest + 1);
  return longest === 0 ? `${ticks}${text}${ticks}` : `${ticks} ${text} ${ticks}`;
}

/** Counts with thousands separators: 12,345. */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
}

/** Scores and distances with a fixed number of decimals, so columns line up; "–" for missing values. */
export function formatFixed(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  const text = x.toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** A GitHub table; `align` per column: "l" or "r" (numbers). */
export function table(headers: string[], rows: string[][], align: ("l" | "r")[] = []): string {
  const line = (cells: string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
  const rule = `|${headers.map((_, i) => (align[i] === "r" ? "---:" : "---")).join("|")}|`;
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

function shortSha(sha: string | undefined): string {
  return sha === undefined ? "–" : inlineCode(sha.slice(0, 12));
}

// ---------------------------------------------------------------------------------------------------------------
// Sticky comments

const MARKER_KIND = /^[a-z][a-z0-9-]*$/;
const MARKER_ID = /^[A-Za-z0-9._-]+$/;

/** The hidden marker that identifies the App's comment of one kind for one issue, PR or round. */
export function marker(kind: string, id: string | number): string {
  const text = String(id);
  if (!MARKER_KIND.test(kind) || !MARKER_ID.test(text)) throw new RangeError(`marker kind/id must be simple names (got "${kind}", "${text}")`);
  return `<!-- relabel-loop:${kind}:${text} -->`;
}

/** Where a sticky comment's folded earlier versions begin: the text before it is the current one. */
export const HISTORY_OPEN = "<!-- relabel-loop:history -->";
const VERSION_OPEN = "<!-- relabel-loop:version -->";
const VERSION_CLOSE = "<!-- relabel-loop:/version -->";
const LABEL_RE = /<!-- relabel-loop:label (.*?) -->/;

/**
 * The body of a sticky comment: the marker, the current text and, collapsed below it, the earlier versions taken
 * from `previous` (the comment's current body), newest first. Old versions are dropped (oldest first, at most
 * `keep` kept) until the whole fits in `limit`; a current text too long on its own is shortened with a note.
 */
export function stickyComment(opts: {
  kind: string;
  id: string | number;
  body: string;
  /** Names this version in the history, e.g. "commit 1a2b3c4 (2026-01-31 12:00 UTC)". */
  label: string;
  previous: string | null;
  keep?: number;
  limit?: number;
}): string {
  const limit = opts.limit ?? COMMENT_LIMIT;
  const head = `${marker(opts.kind, opts.id)}\n<!-- relabel-loop:label ${opts.label.replace(/--+>?/g, "-")} -->\n`;
  const history = opts.previous === null ? [] : [...archivedVersion(opts.previous), ...archivedHistory(opts.previous)].slice(0, opts.keep ?? 5);
  let body = opts.body.trimEnd();
  const room = limit - head.length - 1;
  if (body.length > room) {
    const note = "\n\n_(shortened to fit one comment; the full text is in the ledger)_";
    body = fitComment(body, room - note.length - 200)[0].trimEnd() + note;
  }
  for (let kept = history.length; kept >= 0; kept--) {
    const text = `${head}${body}\n${historyBlock(history.slice(0, kept))}`;
    if (text.length <= limit) return text;
  }
  return `${head}${body}\n`;
}

function historyBlock(versions: string[]): string {
  if (versions.length === 0) return "";
  return `\n${HISTORY_OPEN}\n<details><summary>Earlier versions (${versions.length})</summary>\n\n${versions.join("\n")}\n</details>\n`;
}

/** The current text of a sticky body, wrapped as one history entry. */
function archivedVersion(previous: string): string[] {
  const current = previous.split(HISTORY_OPEN)[0].replace(/^<!-- relabel-loop:[a-z0-9-]+:[A-Za-z0-9._-]+ -->\n?/, "");
  const label = LABEL_RE.exec(current)?.[1] ?? "previous version";
  const text = current.replace(LABEL_RE, "").trim();
  if (text === "") return [];
  return [`${VERSION_OPEN}\n<details><summary>${label}</summary>\n\n${text}\n\n</details>\n${VERSION_CLOSE}`];
}

function archivedHistory(previous: string): string[] {
  const at = previous.indexOf(HISTORY_OPEN);
  if (at < 0) return [];
  const entries: string[] = [];
  const re = new RegExp(`${escapeRegExp(VERSION_OPEN)}[\\s\\S]*?${escapeRegExp(VERSION_CLOSE)}`, "g");
  for (const m of previous.slice(at).matchAll(re)) entries.push(m[0]);
  return entries;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// ---------------------------------------------------------------------------------------------------------------
// Splitting long text

interface Fence {
  /** The opening line without its newline, repeated to reopen the block. */
  open: string;
  char: string;
  length: number;
}

interface BlockState {
  fence: Fence | null;
  /** Open <details> elements, outermost first: the opening tag and its summary text once seen. */
  details: { tag: string; summary: string | null }[];
}

const CONTINUATION_RESERVE = 80;

/**
 * Splits `body` into comments of at most `limit` characters. Cuts fall on line boundaries, preferably at a blank
 * line outside code and not inside a table; a code fence open at a cut is closed and reopened (same fence and info
 * string), and so is every open <details> (its summary marked "continued"). Parts after the first start with a
 * "part i of n" note. A single line longer than a part is cut at a space when it has one.
 */
export function fitComment(body: string, limit: number = COMMENT_LIMIT): string[] {
  if (body.length <= limit) return [body];
  const budget = limit - CONTINUATION_RESERVE;
  if (budget < 1000) throw new RangeError(`a comment limit of ${limit} characters is too small to split into`);
  const lines = splitLines(body.replace(/\r\n/g, "\n"), Math.floor(budget / 4));
  const states = blockStates(lines);
  const offset = [0];
  for (const line of lines) offset.push(offset[offset.length - 1] + line.length);
  const parts: string[] = [];
  let start = 0;
  while (start < lines.length) {
    const prefix = reopen(states[start]);
    let size = prefix.length;
    let end = start;
    while (end < lines.length && size + lines[end].length + close(states[end + 1]).length <= budget) size += lines[end++].length;
    if (end === lines.length) {
      parts.push(prefix + lines.slice(start).join(""));
      break;
    }
    if (end === start) end = start + 1; // cannot happen with lines at most budget/4 long and bounded nesting
    const fits = (cut: number) => prefix.length + offset[cut] - offset[start] + close(states[cut]).length <= budget;
    end = bestCut(lines, states, start, end, fits);
    const content = lines.slice(start, end).join("");
    parts.push(prefix + content + (content.endsWith("\n") ? "" : "\n") + close(states[end]));
    start = end;
  }
  return parts.map((part, i) => (i === 0 ? part : `_(continued from the previous comment: part ${i + 1} of ${parts.length})_\n\n${part}`));
}

/** Lines with their newline; lines longer than `max` are cut, at the last space of the window when there is one. */
function splitLines(text: string, max: number): string[] {
  const out: string[] = [];
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    let rest = line;
    while (rest.length > max) {
      let cut = rest.lastIndexOf(" ", max);
      if (cut < max / 2) cut = max;
      const code = rest.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut--; // keep surrogate pairs whole
      out.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    out.push(rest);
  }
  return out;
}

const FENCE_OPEN = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const TAG = /<details\b[^>]*>|<\/details\s*>|<summary\b[^>]*>([\s\S]*?)<\/summary\s*>/gi;

/** states[i] = the open blocks before line i (states[lines.length] after the last line). */
function blockStates(lines: string[]): BlockState[] {
  const states: BlockState[] = [];
  let state: BlockState = { fence: null, details: [] };
  for (const raw of lines) {
    states.push(state);
    const line = raw.replace(/\n$/, "");
    const details = state.details.map((d) => ({ ...d }));
    let fence = state.fence;
    const m = FENCE_OPEN.exec(line);
    if (fence) {
      if (m && m[2][0] === fence.char && m[2].length >= fence.length && m[3].trim() === "") fence = null;
    } else if (m && !(m[2][0] === "`" && m[3].includes("`"))) {
      fence = { open: line, char: m[2][0], length: m[2].length };
    } else {
      for (const tag of line.matchAll(TAG)) {
        const text = tag[0].toLowerCase();
        if (text.startsWith("</details")) details.pop();
        else if (text.startsWith("<details")) details.push({ tag: tag[0], summary: null });
        else if (details.length > 0 && details[details.length - 1].summary === null) details[details.length - 1].summary = tag[1];
      }
    }
    state = { fence, details };
  }
  states.push(state);
  return states;
}

function reopen(state: BlockState): string {
  const details = state.details.map((d) => `${d.tag}\n${d.summary === null ? "" : `<summary>${d.summary} (continued)</summary>\n`}\n`).join("");
  return details + (state.fence ? `${state.fence.open}\n` : "");
}

function close(state: BlockState | undefined): string {
  if (state === undefined) return "";
  return (state.fence ? `${state.fence.char.repeat(state.fence.length)}\n` : "") + state.details.map(() => "\n</details>\n").join("");
}

const isTableRow = (line: string | undefined) => line !== undefined && /^\s*\|/.test(line);

/**
 * The cut in (start, end]: the last blank line outside code in the second half, else a line outside a table;
 * an earlier cut may close more blocks, so it must still fit.
 */
function bestCut(lines: string[], states: BlockState[], start: number, end: number, fits: (cut: number) => boolean): number {
  const half = start + Math.max(1, Math.floor((end - start) / 2));
  for (let cut = end; cut >= half; cut--) {
    if (states[cut].fence === null && lines[cut - 1].trim() === "" && fits(cut)) return cut;
  }
  for (let cut = end; cut >= half; cut--) {
    if (!(isTableRow(lines[cut - 1]) && isTableRow(lines[cut])) && fits(cut)) return cut;
  }
  return end;
}

// ---------------------------------------------------------------------------------------------------------------
// Selection PR

/** The summary comment of a selection PR: sources with sha256, committee, sizes, the rule in words, the top picks. */
export function selectionSummary(
  ranking: RankingJson,
  opts: {
    round?: number; top?: number; boxed?: readonly number[]; vacuum?: number; rankingCsv?: string;
    perElementIncar?: readonly string[]; kpointsAdvice?: readonly string[]; potcarSymbols?: Readonly<Record<string, string>> | null;
    /** The most characters the text may have (a PR body or comment); picks beyond what fits are left to ranking.csv. */
    limit?: number;
  } = {},
): string {
  const top = opts.top ?? 20;
  const limit = opts.limit ?? COMMENT_LIMIT;
  const hasCommittee = ranking.committee.size >= 2;
  const out: string[] = [];
  const poolFrames = ranking.pool_size ?? ranking.sources.reduce((n, s) => n + s.frames, 0);
  out.push(`### ${opts.round === undefined ? "Selection" : `Round ${opts.round}: selection`}`, "");
  out.push(
    `**${plural(ranking.selection_size, "structure")} selected** for DFT labelling from ${plural(poolFrames, "candidate")} in ${plural(ranking.sources.length, "pool source")}` +
      (ranking.requested !== undefined && ranking.requested !== ranking.selection_size ? ` (${formatCount(ranking.requested)} requested; no more candidates could be picked)` : "") +
      ".",
    "",
  );
  out.push(`- **Ranking rule:** ${ranking.rule}`);
  out.push(`- **Method:** ${HEURISTIC_NAME}.`);
  out.push(
    `- **Committee:** ${
      ranking.committee.size === 0
        ? "none: no disagreement term, diversity only"
        : `${plural(ranking.committee.size, "model")}: ${ranking.committee.members.map(inlineCode).join(", ")}`
    }`,
  );
  out.push(`- **Selection size:** ${formatCount(ranking.selection_size)}`);
  out.push(`- **Already labelled:** ${plural(ranking.labeled_size, "structure")} (never picked; they count as covered)`);
  // Feature files get a line of their own: paths and hashes read badly as one JSON value.
  const featureFiles = ranking.parameters.features_files;
  const params = Object.entries(ranking.parameters)
    .filter(([k, v]) => v !== null && v !== undefined && k !== "features_files")
    .map(([k, v]) => inlineCode(`${k}=${typeof v === "string" ? v : JSON.stringify(v)}`));
  if (params.length > 0) out.push(`- **Parameters:** ${params.join(", ")}`);
  if (Array.isArray(featureFiles)) {
    const files = featureFiles.map((f: { path?: unknown; sha256?: unknown }) => `${inlineCode(String(f.path))} (sha256 ${inlineCode(String(f.sha256).slice(0, 12))}…)`);
    out.push(`- **Features:** ${inlineCode(String(ranking.parameters.features_key))} per structure from ${files.join(", ")}`);
  }
  if (opts.perElementIncar?.length) {
    out.push(`- **INCAR per pick:** ${opts.perElementIncar.join(" and ")} per element from \`vasp_templates\`, in the order of each POSCAR's species line`);
  }
  if (opts.potcarSymbols) {
    const named = Object.entries(opts.potcarSymbols).map(([element, symbol]) => `${element} ${inlineCode(symbol)}`);
    out.push(`- **POTCAR.spec per pick:** the potentials in the order of each POSCAR's species line (${[...named, "other elements by their symbol"].join(", ")}), for the cluster to assemble the POTCAR`);
  }
  out.push(`- **Software:** ${ranking.software.name} ${ranking.software.version}`, "");

  const boxed = opts.boxed ?? [];
  if (boxed.length > 0) {
    const ranks = boxed.length <= 10 ? boxed.join(", ") : `${boxed.slice(0, 10).join(", ")}, …`;
    out.push(
      "> [!NOTE]",
      `> ${plural(boxed.length, "pick has", "picks have")} no cell (rank ${ranks}): ${boxed.length === 1 ? "its POSCAR puts it" : "their POSCARs put them"} in a cubic box with at least ${opts.vacuum ?? "the configured"} Å of vacuum between periodic copies (\`vasp_templates.vacuum\`), positions unchanged, so the results check still finds ${boxed.length === 1 ? "it" : "them"}.`,
      "",
    );
  }
  if (opts.kpointsAdvice?.length) {
    out.push("> [!WARNING]", ...opts.kpointsAdvice.flatMap((advice, i) => [...(i > 0 ? [">"] : []), `> ${plainText(advice)}.`]), "");
  }
  const skipped = ranking.skipped_sources ?? [];
  if (skipped.length > 0) {
    out.push("> [!WARNING]", `> **${plural(skipped.length, "pool source")} could not be read and ${skipped.length === 1 ? "was" : "were"} left out of the ranking:**`);
    out.push(...skipped.map((s) => `> - ${plainText(s.problem)}`), "");
  }
  out.push("**Pool sources**", "");
  out.push(table(["source", "frames", "sha256"], ranking.sources.map((s) => [inlineCode(s.path), formatCount(s.frames), inlineCode(s.sha256)]), ["l", "r", "l"]), "");
  const sourceNotes = ranking.sources.flatMap((s) => (s.notes ?? []).map((note) => `> - ${inlineCode(s.path)}: ${plainText(note)}`));
  if (sourceNotes.length > 0) out.push("> [!NOTE]", "> **Run directories** (only their complete DFT steps are candidates):", ...sourceNotes, "");
  const unread = ranking.unread_files ?? [];
  if (unread.length > 0) {
    const listed = unread.slice(0, 10).map((file) => `> - ${inlineCode(file)}`);
    out.push("> [!NOTE]", `> **${plural(unread.length, "file")} in the pool's folders ${unread.length === 1 ? "is" : "are"} not a structure relabel reads** (convert other formats to extxyz: \`python3 -m ase convert FILE OUT.extxyz\`):`, ...listed);
    out.push(...(unread.length > 10 ? [`> - … ${formatCount(unread.length - 10)} more in ranking.json (\`unread_files\`)`] : []), "");
  }

  const header = ["rank", "candidate_id", "formula", "atoms", "source", "frame", "diversity", ...(hasCommittee ? ["disagreement"] : []), "score"];
  const align: ("l" | "r")[] = ["r", "l", "l", "r", "l", "r", "r", ...(hasCommittee ? (["r"] as const) : []), "r"];
  const row = (p: RankingJson["selected"][number]) => [
    String(p.rank),
    inlineCode(p.candidate_id),
    p.formula,
    formatCount(p.natoms),
    inlineCode(p.source),
    String(p.frame),
    formatFixed(p.diversity),
    ...(hasCommittee ? [p.disagreement === null ? "" : formatFixed(p.disagreement)] : []),
    formatFixed(p.score),
  ];
  const picks = [...ranking.selected].sort((a, b) => a.rank - b.rank);
  if (picks.length === 0) {
    out.push("**No structure was selected.**", "");
  } else {
    out.push(`**Top picks** (${Math.min(top, picks.length)} of ${formatCount(picks.length)})`, "");
    out.push(table(header, picks.slice(0, top).map(row), align), "");
    if (picks.length > top) out.push(REST_OF_PICKS);
    out.push(
      `_diversity: distance to the nearest structure already picked or labelled when the pick was made, in ${ranking.parameters.scaling === "none" ? "unscaled" : "standard-scaled"} ${ranking.parameters.descriptor === "features" ? "feature" : "descriptor"} units (the first pick without labelled structures: distance to the pool's centroid)${
        hasCommittee ? "; disagreement: committee disagreement normalised to [0, 1]" : ""
      }; score: the value the pick won with; frame: 0-based index in the source._`,
      "",
    );
  }
  if (opts.round !== undefined) {
    const paths = roundPaths(opts.round);
    out.push(
      `Files: ${inlineCode(paths.rankingJson)}, ${inlineCode(opts.rankingCsv ?? paths.rankingCsv)} (every candidate), ${inlineCode(paths.selectedExtxyz)} and ` +
        `${inlineCode(`${paths.poscars}/`)} (one folder per pick, ready for VASP). Merging this PR freezes the selection; until then ` +
        "`/relabel rank --select N --weights div=W,dis=W` ranks again.",
      "",
    );
  }
  const text = out.join("\n");
  if (picks.length <= top) return text;
  return text.replace(REST_OF_PICKS, restOfPicks(picks.slice(top).map((p) => p.rank), table(header, picks.slice(top).map(row), align), limit - text.length, opts.rankingCsv ?? (opts.round === undefined ? "ranking.csv" : roundPaths(opts.round).rankingCsv)));
}

/** Where the picks after the top ones go in selectionSummary, once the rest of the text is known. */
const REST_OF_PICKS = "\u0000rest-of-picks\u0000";

/**
 * The picks after the top ones, collapsed: as many table rows as `budget` characters hold (GitHub refuses longer PR
 * bodies and comments), the others named by their ranks and left to the ranking files.
 */
function restOfPicks(ranks: number[], rendered: string, budget: number, rankingCsv: string): string {
  const [head, rule, ...rows] = rendered.split("\n");
  const open = `<details><summary>Picks ${ranks[0]}–${ranks.at(-1)}</summary>\n\n${head}\n${rule}`;
  const close = "\n\n</details>\n";
  const cut = (kept: number) => `\n\n_Picks ${ranks[kept]}–${ranks.at(-1)} are in ${inlineCode(rankingCsv)} and \`ranking.json\`: GitHub caps the length of this text._`;
  let used = open.length + close.length + cut(0).length;
  let kept = 0;
  while (kept < rows.length && used + rows[kept].length + 1 <= budget) used += rows[kept++].length + 1;
  if (kept === rows.length) return `${open}\n${rows.join("\n")}${close}`;
  return `${open}${kept ? `\n${rows.slice(0, kept).join("\n")}` : ""}${cut(kept)}${close}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Results PR check (dry run of the rebuild)

const STATUS_TEXT: Record<MatchedRun["status"], string> = {
  matched: "matched",
  duplicate: "duplicate",
  mismatched: "**mismatched**",
  extra: "**extra**",
  unreadable: "**unreadable**",
};

/** The check run of a results PR: conclusion, title and Markdown summary (fitted to one comment/check output). */
export function dryRunReport(result: DryRunResult): { conclusion: "success" | "failure"; title: string; summary: string } {
  const failures = dryRunFailures(result);
  const runs = result.match.runs;
  const matched = runs.filter((r) => r.status === "matched").length;
  const selectedCount = matched + result.match.missing.length;
  const conclusion = failures.length === 0 ? "success" : "failure";
  const title =
    conclusion === "success"
      ? `Round ${result.round}: ${matched} of ${selectedCount} selected structures labelled; the rebuild would succeed`
      : `Round ${result.round}: the rebuild would fail (${failures.join("; ")})`;
  const out: string[] = [`### Round ${result.round}: dry run of the dataset rebuild`, ""];
  out.push(conclusion === "success" ? "**Result: the rebuild would succeed.** Nothing was written." : "**Result: the rebuild would fail.** Nothing was written.", "");
  if (failures.length > 0) out.push(...failures.map((f) => `- ${f}`), "");
  if (result.match.missing.length > 0) {
    out.push(`> [!NOTE]\n> ${plural(result.match.missing.length, "selected structure has", "selected structures have")} no run yet; the rebuild leaves them out.`, "");
  }
  for (const w of result.warnings) out.push(`- warning: ${plainText(w)}`);
  if (result.warnings.length > 0) out.push("");

  out.push(`**Runs** (${formatCount(runs.length)} folders under ${inlineCode(`${roundPaths(result.round).labels}/`)}; matched by the candidate_id of the initial structure, else by its geometry)`, "");
  if (runs.length === 0) out.push("No run folder was found.", "");
  else {
    const rows = runs.map((r) => [
      inlineCode(r.folder),
      STATUS_TEXT[r.status],
      r.rank === null ? "–" : String(r.rank),
      r.candidateId === null ? "–" : inlineCode(r.candidateId),
      formatCount(r.steps),
      r.converged === null ? "–" : r.converged ? "yes" : "**no**",
      runNote(r),
    ]);
    out.push(table(["run", "status", "rank", "candidate_id", "DFT steps", "SCF converged", "note"], rows, ["l", "l", "r", "l", "r", "l", "l"]), "");
  }
  if (result.match.missing.length > 0) {
    out.push("<details><summary>Selected structures without a run</summary>", "");
    out.push(table(["rank", "candidate_id", "formula"], result.match.missing.map((c) => [String(c.rank), inlineCode(c.candidate_id), c.formula]), ["r", "l", "l"]), "", "</details>", "");
  }
  if (result.dataset !== null) {
    const d = result.dataset;
    out.push("**Dataset the rebuild would write**", "");
    out.push(table(["split", "frames", "runs", "atoms"], SPLITS.map((s) => [s, formatCount(d.splits[s].frames), formatCount(d.splits[s].runs), formatCount(d.splits[s].atoms)]), ["l", "r", "r", "r"]), "");
    out.push(`Energy label: ${inlineCode(d.labels.energy)}; head ${inlineCode(d.labels.head)}; elements: ${d.elements.join(" ") || "none"}.`, "");
    out.push("**Quality gates**", "");
    out.push(table(["gate", "status", "action", "detail"], gateRows(d.gates), ["l", "l", "l", "l"]), "");
  }
  const parts = fitComment(out.join("\n"), COMMENT_LIMIT - 200);
  const summary = parts.length === 1 ? parts[0] : `${parts[0]}\n_(shortened: the full report would fill ${parts.length} check outputs; this is the first)_\n`;
  return { conclusion, title: title.length > 1000 ? `${title.slice(0, 997)}...` : title, summary };
}

function runNote(r: MatchedRun): string {
  if (r.status === "unreadable") return r.error === null ? "no initial structure" : plainText(r.error);
  if (r.status === "mismatched") return `folder name says ${inlineCode(r.claimedId ?? "")}${r.rank === null ? "; the structure is not in the selection" : `; the structure is rank ${r.rank}`}`;
  if (r.status === "extra") return "not one of the selected structures";
  if (r.status === "duplicate") return `rank ${r.rank} is already labelled by another run`;
  if (r.candidateId !== r.initialId) return `matched by geometry (within ${DFT_OUTPUT_TOLERANCE.toExponential()} Å up to lattice vectors: VASP prints fewer digits, and atoms may have been wrapped into the cell, so its own id is ${inlineCode(r.initialId ?? "")})`;
  return "";
}

/** One row per gate: status, what it does, and its numbers. */
function gateRows(gates: Gates): string[][] {
  const frames = (n: number) => plural(n, "frame");
  const detail: { [K in keyof Gates]: (g: Gates[K]) => string } = {
    scf_unconverged: (g) => frames(g.frames),
    missing_labels: (g) => frames(g.frames),
    force_outliers: (g) => `${frames(g.frames)} with an atom's force above ${g.max_force} eV/Å`,
    duplicates: (g) => frames(g.frames),
    label_conflicts: (g) => `${frames(g.frames)} with labels unlike the kept copy's`,
    energy_outliers: (g) => `${frames(g.frames)} with robust |z| > ${g.energy_z} of the energy per atom`,
    new_elements: (g) => (g.elements.length ? g.elements.join(", ") : "none"),
    mixed_settings: (g) => (g.mixed.length ? g.mixed.join(", ") : "none"),
    empty_splits: (g) => (g.empty.length ? g.empty.join(", ") : "none"),
  };
  return (Object.keys(gates) as (keyof Gates)[]).map((name) => {
    const gate = gates[name];
    const status = gate.status === "error" ? "**error**" : gate.status;
    return [name, status, gate.action, (detail[name] as (g: Gates[keyof Gates]) => string)(gate)];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Jobs and status

function jobsTable(jobs: readonly JobRecord[]): string {
  const rows = jobs.map((job) => {
    const a = lastAttempt(job);
    const state = a.outcome === null ? a.state : `${a.state} (${a.outcome}${a.exit_code === null ? "" : `, exit ${a.exit_code}`})`;
    return [
      inlineCode(job.stage),
      job.kind,
      `${job.executor} (${job.backend})`,
      a.job_id === null ? "–" : inlineCode(a.job_id),
      job.attempts.length > 1 ? `${state}, attempt ${a.number}` : state,
      inlineCode(`${job.host === null ? "" : `${job.host}:`}${job.remote_dir}`),
    ];
  });
  return table(["stage", "kind", "executor", "job id", "state", "remote directory"], rows);
}

/** The comment after submission: job ids and where to follow them. */
export function jobsComment(jobs: JobsFile, opts: { round: number }): string {
  const paths = roundPaths(opts.round);
  // A job the scheduler refused for a passing reason waits in SUBMITTING, with no id, for the next poll.
  const waiting = jobs.jobs.filter((j) => lastAttempt(j).job_id === null && lastAttempt(j).state === SUBMITTING).length;
  const title =
    waiting === 0
      ? `${plural(jobs.jobs.length, "job")} submitted`
      : waiting === jobs.jobs.length
        ? `${plural(jobs.jobs.length, "job")}, not yet taken by the scheduler`
        : `${plural(jobs.jobs.length, "job")} submitted, ${waiting} not yet taken by the scheduler`;
  const out = [`### Round ${opts.round}: ${title}`, ""];
  if (jobs.jobs.length === 0) {
    out.push("No job was submitted.", "");
    return out.join("\n");
  }
  out.push(jobsTable(jobs.jobs), "");
  out.push(
    `Follow them with \`/relabel status\` here, or \`relabel jobs --jobs ${paths.jobs}\` in a clone of this repository. ` +
      "Each job writes its logs under `logs/` of its remote directory. The App polls the jobs and runs the benchmark when all have finished; " +
      "`/relabel collect` checks at once.",
    "",
  );
  return out.join("\n");
}

const STEP_LABELS: Record<RoundManifest["finished_steps"][number], { label: string; commit: keyof RoundManifest["commits"] }> = {
  selection: { label: "selection frozen", commit: "frozen" },
  dataset: { label: "dataset rebuilt", commit: "dataset" },
  stages: { label: "stages rendered", commit: "stages" },
  jobs: { label: "jobs submitted", commit: "jobs" },
  benchmark: { label: "benchmark committed", commit: "benchmark" },
};

/** Said when the poller has met problems at two polls in a row (see poll-problems.ts). */
export function pollProblemsComment(round: number, problems: readonly string[]): string {
  return `**Round ${round}:** polling the jobs runs into a problem: ${problems.join("; ")}. The App keeps polling and carries on once it clears; \`/relabel status\` shows the latest.`;
}

/** Said once when they clear, if their start was said. */
export function pollRecoveredComment(round: number, since: string): string {
  return `**Round ${round}:** polling works again (it had problems since ${since}); the round carries on.`;
}

/** `/relabel status`: state, steps with their commits, PRs, the lock, the jobs, problems the poller met. */
export function statusComment(
  manifest: RoundManifest,
  jobs: JobsFile | null,
  lock: { holder: string; reason: string; since: string; stale?: boolean } | null = null,
  pollProblems: PollProblems | null = null,
): string {
  const out = [`### Round ${manifest.round}: ${inlineCode(manifest.state)}`, ""];
  if (manifest.failure !== null) out.push(`> [!CAUTION]\n> Stopped at ${inlineCode(manifest.failure.event)} (while ${manifest.failure.state}): ${plainText(manifest.failure.message)}`, "");
  // No @-mention: every status request would notify the round's author again.
  out.push(`- Opened by ${inlineCode(manifest.opened_by)} on issue #${manifest.issue} at ${manifest.timestamps.opened}`);
  out.push(`- Pool: ${manifest.pool.map((p) => `${inlineCode(p.path)} (sha256 ${inlineCode(p.sha256.slice(0, 12))}…)`).join(", ")}`);
  out.push(`- Selection: ${manifest.selection_size === null ? "not ranked yet" : `${formatCount(manifest.selection_size)} ${manifest.selection_size === 1 ? "structure" : "structures"}, ${manifest.committee_size ? `committee of ${manifest.committee_size}` : "no committee"}`}`);
  if (manifest.prs.selection !== undefined) out.push(`- Selection PR: #${manifest.prs.selection}${manifest.branches.selection ? ` (branch ${inlineCode(manifest.branches.selection)})` : ""}`);
  if (manifest.prs.results !== undefined) out.push(`- Results PR: #${manifest.prs.results}`);
  const release = lock?.stale ? "left by an App process that has stopped: the next step that needs it releases it" : "`/relabel unlock` releases it";
  out.push(`- Lock: ${lock === null ? "free" : `held by ${inlineCode(lock.holder)} since ${lock.since} (${lock.reason}); ${release}`}`);
  if (pollProblems !== null) out.push(`- Polling: problems since ${pollProblems.since}, last at ${pollProblems.at}: ${pollProblems.problems.join("; ")}`);
  out.push("");
  const steps = (Object.keys(STEP_LABELS) as (keyof typeof STEP_LABELS)[]).map((step) => {
    const done = manifest.finished_steps.includes(step);
    return [STEP_LABELS[step].label, done ? "done" : "–", done ? shortSha(manifest.commits[STEP_LABELS[step].commit]) : "–"];
  });
  out.push(table(["step", "status", "commit"], steps), "");
  if (jobs !== null && jobs.jobs.length > 0) {
    const open = jobs.jobs.filter(isOpen).length;
    out.push(`**Jobs** (${formatCount(open)} open of ${formatCount(jobs.jobs.length)})`, "", jobsTable(jobs.jobs), "");
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Benchmark and the round's outputs

export interface PlotLinkUrl {
  /** The file name report.md links to, e.g. parity_energy.svg. */
  file: string;
  /** Where it can be seen on GitHub, pinned to the benchmark commit. */
  url: string;
}

/**
 * The sticky benchmark comment: the comparability warnings first, then report.md with its headings demoted and
 * its plot links pointed at the commit, then the plot links.
 */
export function benchmarkComment(reportMd: string, warnings: readonly string[], plotLinks: readonly PlotLinkUrl[], opts: { round?: number; commit?: string } = {}): string {
  const out = [`### ${opts.round === undefined ? "Benchmark" : `Round ${opts.round}: benchmark`}${opts.commit ? ` (commit ${inlineCode(opts.commit.slice(0, 12))})` : ""}`, ""];
  if (warnings.length > 0) {
    out.push("> [!WARNING]", "> **Compare with care:**", ...warnings.map((w) => `> - ${plainText(w)}`), "");
  }
  let report = demoteHeadings(reportMd, 3);
  for (const link of plotLinks) report = report.split(`](${link.file})`).join(`](${link.url})`);
  out.push(report.trimEnd(), "");
  if (plotLinks.length > 0) out.push(`**Plots:** ${plotLinks.map((p) => `[${p.file}](${p.url})`).join(" · ")}`, "");
  return out.join("\n");
}

/** `#` headings outside code fences moved down `by` levels (at most ######), so a report sits under the comment title. */
function demoteHeadings(md: string, by: number): string {
  let fence: string | null = null;
  return md
    .split("\n")
    .map((line) => {
      const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (m) {
        if (fence === null) fence = m[1];
        else if (m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
        return line;
      }
      if (fence !== null) return line;
      const h = /^(#{1,6})(\s)/.exec(line);
      return h ? `${"#".repeat(Math.min(6, h[1].length + by))}${line.slice(h[1].length)}` : line;
    })
    .join("\n");
}

/**
 * The round's output contract for the round issue: where ranking, selection, dataset, stages, jobs and benchmark
 * live. `url` turns a repository path into a link (e.g. pinned to a commit); without it paths are shown as code.
 */
export function outputContract(manifest: RoundManifest, opts: { stages?: string[]; url?: (path: string) => string; rankingCsv?: string } = {}): string {
  const p = roundPaths(manifest.round);
  const show = (path: string) => (opts.url ? `[${inlineCode(path)}](${opts.url(path)})` : inlineCode(path));
  const finished = (step: RoundManifest["finished_steps"][number]) => manifest.finished_steps.includes(step);
  const rows: [string, string, boolean][] = [
    ["ranking (JSON)", show(p.rankingJson), finished("selection")],
    ["ranking (CSV, every candidate)", show(opts.rankingCsv ?? p.rankingCsv), finished("selection")],
    ["selected structures", `${show(p.selectedExtxyz)}, ${show(`${p.poscars}/`)}`, finished("selection")],
    ["DFT labels", show(`${p.labels}/`), finished("dataset")],
    ["dataset summary", `${show(p.datasetSummary)}, ${show(p.datasetSplit)}`, finished("dataset")],
    ...(opts.stages ?? []).map((stage): [string, string, boolean] => [`stage ${inlineCode(stage)}`, show(`${p.stages}/${stage}/`), finished("stages")]),
    ["jobs", show(p.jobs), finished("jobs")],
    ["benchmark", show(`${p.benchmark}/`), finished("benchmark")],
    ["round manifest", show(p.manifest), true],
  ];
  return [
    `**Round ${manifest.round} outputs**`,
    "",
    table(["output", "path", "recorded"], rows.map(([what, where, done]) => [what, where, done ? "yes" : "not yet"])),
    "",
  ].join("\n");
}
