/**
 * MACE's own training outputs (docs/mace.md section 2): the `results/<tag>_train.txt` JSON lines (eV units) and the
 * `<tag>.log` text log (per-evaluation lines and `+---+` error tables, meV units). Everything is returned in meV
 * (meV/atom, meV/A, meV/A^3) and percent. Unknown keys and columns are ignored or kept under their own names.
 */
import { InputError } from "../errors.js";

/** Metric names used for results records, log lines and error-table columns. */
export type TrainingMetric =
  | "rmse_e_per_atom"
  | "mae_e_per_atom"
  | "rmse_e"
  | "mae_e"
  | "rmse_f"
  | "mae_f"
  | "rel_rmse_f"
  | "rel_mae_f"
  | "rmse_stress"
  | "mae_stress";

/** results-file key -> (metric, factor to meV or 1 for percent). */
const RESULT_KEYS: Array<[string, TrainingMetric, number]> = [
  ["rmse_e_per_atom", "rmse_e_per_atom", 1000],
  ["mae_e_per_atom", "mae_e_per_atom", 1000],
  ["rmse_e", "rmse_e", 1000],
  ["mae_e", "mae_e", 1000],
  ["rmse_f", "rmse_f", 1000],
  ["mae_f", "mae_f", 1000],
  ["rel_rmse_f", "rel_rmse_f", 1],
  ["rel_mae_f", "rel_mae_f", 1],
  ["rmse_stress", "rmse_stress", 1000],
  ["mae_stress", "mae_stress", 1000],
];

export interface EvalPoint {
  /** 1-based line in its file. */
  line: number;
  /** null for the evaluation before training. */
  epoch: number | null;
  /** null when the record names no head (MACE 0.3.6). */
  head: string | null;
  loss: number | null;
  values: Partial<Record<TrainingMetric, number>>;
}

export interface MaceResults {
  file: string;
  evals: EvalPoint[];
  optRecords: number;
  /** Problems that did not stop parsing, e.g. a last line cut while MACE was writing it. */
  notes: string[];
}

export function parseMaceResults(text: string, file: string): MaceResults {
  const lines = text.split("\n");
  const evals: EvalPoint[] = [];
  const notes: string[] = [];
  let optRecords = 0;
  let records = 0;
  lines.forEach((raw, i) => {
    const line = i + 1;
    const s = raw.trim();
    if (s === "") return;
    let rec: unknown;
    try {
      rec = JSON.parse(s);
    } catch {
      const isLast = lines.slice(i + 1).every((l) => l.trim() === "");
      if (isLast && !text.endsWith("\n")) {
        notes.push(`${file}:${line}: last line is incomplete (training still running or killed); ignored`);
        return;
      }
      throw new InputError(file, line, `expected one JSON object per line (a MACE results file), found ${JSON.stringify(s.slice(0, 40))}`);
    }
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) throw new InputError(file, line, "expected a JSON object with a \"mode\" key");
    records++;
    const r = rec as Record<string, unknown>;
    if (r.mode === "opt") {
      optRecords++;
      return;
    }
    if (r.mode !== "eval") return;
    const epoch = r.epoch;
    if (epoch !== null && epoch !== undefined && !(typeof epoch === "number" && Number.isInteger(epoch))) {
      throw new InputError(file, line, `"epoch": expected an integer or null, found ${JSON.stringify(epoch)}`);
    }
    const values: Partial<Record<TrainingMetric, number>> = {};
    for (const [key, metric, factor] of RESULT_KEYS) {
      const v = r[key];
      if (typeof v === "number") values[metric] = v * factor;
    }
    evals.push({
      line,
      epoch: typeof epoch === "number" ? epoch : null,
      head: typeof r.head === "string" ? r.head : null,
      loss: typeof r.loss === "number" ? r.loss : null,
      values,
    });
  });
  if (records === 0) throw new InputError(file, undefined, "no JSON records (expected a MACE results file, results/<tag>_train.txt)");
  return { file, evals, optRecords, notes };
}

export interface ErrorTableRow {
  /** The config_type cell: `train`, `valid_Default`, `Default_Default`, ... */
  name: string;
  /** Metric (or the header text for unknown columns) -> value; null for cells that are not numbers. */
  values: Record<string, number | null>;
  /** The value cells as printed. */
  printed: string[];
}

export interface ErrorTable {
  /** 1-based line of the table's top border. */
  line: number;
  /** `TRAIN and VALID`, `TEST`, ... from a preceding `Error-table on X:` line; null when untitled (MACE 0.3.6). */
  title: string | null;
  /** The checkpoint loaded before this table was printed, and its epoch, when the log says so. */
  checkpoint: string | null;
  epoch: number | null;
  /** Header cells after `config_type`, as printed. */
  headers: string[];
  /** Metric name per header (the header text itself when unknown). */
  metrics: string[];
  rows: ErrorTableRow[];
}

export interface MaceLog {
  file: string;
  version: string | null;
  /** Every error table in file order. */
  tables: ErrorTable[];
  /** The per-evaluation lines (`Epoch N: ...`, `Initial: ...`), values in meV as printed. */
  evals: EvalPoint[];
  /** Epoch after which stochastic weight averaging (stage two) starts, when the log announces it. */
  swaStart: number | null;
  notes: string[];
}

const HEADER_METRICS: Array<[RegExp, TrainingMetric]> = [
  [/^RMSE E \/ meV \/ atom$/, "rmse_e_per_atom"],
  [/^MAE E \/ meV \/ atom$/, "mae_e_per_atom"],
  [/^RMSE E \/ meV$/, "rmse_e"],
  [/^MAE E \/ meV$/, "mae_e"],
  [/^RMSE F \/ meV \/ A$/, "rmse_f"],
  [/^MAE F \/ meV \/ A$/, "mae_f"],
  [/^(?:relative|rel) F RMSE %$/, "rel_rmse_f"],
  [/^(?:relative|rel) F MAE %$/, "rel_mae_f"],
  [/^RMSE Stress(?: \(Virials\))? \/ meV \/ A/, "rmse_stress"],
  [/^MAE Stress(?: \(Virials\))? \/ meV \/ A/, "mae_stress"],
];

/** Log-line keys (lower-cased) -> metric. */
const LOG_KEYS: Record<string, TrainingMetric> = {
  rmse_e_per_atom: "rmse_e_per_atom",
  mae_e_per_atom: "mae_e_per_atom",
  rmse_e: "rmse_e",
  mae_e: "mae_e",
  rmse_f: "rmse_f",
  mae_f: "mae_f",
  rmse_stress: "rmse_stress",
  mae_stress: "mae_stress",
};

const BORDER_RE = /^\+(?:-+\+)+\s*$/;
const EVAL_LINE_RE = /(?:\bEpoch (None|\d+)|\bInitial):\s*(.*)$/;
const PAIR_RE = /([A-Za-z_]+)=\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))/g;

export function parseMaceLog(text: string, file: string): MaceLog {
  const lines = text.split(/\r?\n/);
  const tables: ErrorTable[] = [];
  const evals: EvalPoint[] = [];
  const notes: string[] = [];
  let version: string | null = null;
  let swaStart: number | null = null;
  let checkpoint: string | null = null;
  let epoch: number | null = null;

  for (let i = 0; i < lines.length; i++) {
    const s = lines[i];
    if (BORDER_RE.test(s) && lines[i + 1]?.startsWith("|")) {
      const headerCells = cells(lines[i + 1]);
      if (headerCells[0] !== "config_type") continue;
      const end = findTableEnd(lines, i);
      if (end < 0) {
        notes.push(`${file}:${i + 1}: error table cut off at the end of the log; ignored`);
        break;
      }
      tables.push(readTable(lines, i, end, file, titleBefore(lines, i), checkpoint, epoch));
      i = end;
      continue;
    }
    const v = /MACE version: (\S+)/.exec(s);
    if (v) version ??= v[1];
    const swa = /(?:stochastic weight averaging|stage two) \(after (\d+) epochs\)/i.exec(s);
    if (swa) swaStart = Number(swa[1]);
    const ckpt = /Loading checkpoint: (\S+)/.exec(s);
    if (ckpt) checkpoint = ckpt[1];
    const loaded = /Loaded model from epoch (\d+)/.exec(s);
    if (loaded) epoch = Number(loaded[1]);
    const ev = EVAL_LINE_RE.exec(s);
    if (ev && /=/.test(ev[2])) evals.push(evalLine(ev, i + 1));
  }
  return { file, version, tables, evals, swaStart, notes };
}

function evalLine(m: RegExpExecArray, line: number): EvalPoint {
  let rest = m[2];
  let head: string | null = null;
  const h = /^head:\s*([^,]+),\s*/.exec(rest);
  if (h) {
    head = h[1].trim();
    rest = rest.slice(h[0].length);
  }
  const values: Partial<Record<TrainingMetric, number>> = {};
  let loss: number | null = null;
  for (const [, key, num] of rest.matchAll(PAIR_RE)) {
    const k = key.toLowerCase();
    if (k === "loss") loss = Number(num);
    else if (LOG_KEYS[k]) values[LOG_KEYS[k]] = Number(num);
  }
  const epoch = m[1] === undefined || m[1] === "None" ? null : Number(m[1]);
  return { line, epoch, head, loss, values };
}

function cells(row: string): string[] {
  const inner = row.trim().replace(/^\|/, "").replace(/\|$/, "");
  return inner.split("|").map((c) => c.trim());
}

/** Index of the bottom border of the table whose top border is at `start`, or -1 when the log ends first. */
function findTableEnd(lines: string[], start: number): number {
  // top border, header, border, rows..., border
  if (!BORDER_RE.test(lines[start + 2] ?? "")) return -1;
  for (let j = start + 3; j < lines.length; j++) {
    if (BORDER_RE.test(lines[j])) return j;
    if (!lines[j].startsWith("|")) return -1;
  }
  return -1;
}

function titleBefore(lines: string[], start: number): string | null {
  const m = /Error-table on (.+?):\s*$/.exec(lines[start - 1] ?? "");
  return m ? m[1].trim() : null;
}

function readTable(lines: string[], start: number, end: number, file: string, title: string | null, checkpoint: string | null, epoch: number | null): ErrorTable {
  const headers = cells(lines[start + 1]).slice(1);
  const metrics = headers.map((h) => HEADER_METRICS.find(([re]) => re.test(h))?.[1] ?? h);
  const rows: ErrorTableRow[] = [];
  for (let j = start + 3; j < end; j++) {
    const c = cells(lines[j]);
    if (c.length !== headers.length + 1) {
      throw new InputError(file, j + 1, `error-table row: expected ${headers.length + 1} cells like the header, found ${c.length}`);
    }
    const values: Record<string, number | null> = {};
    metrics.forEach((m, k) => {
      const x = Number(c[k + 1]);
      values[m] = c[k + 1] !== "" && Number.isFinite(x) ? x : null;
    });
    rows.push({ name: c[0], values, printed: c.slice(1) });
  }
  return { line: start + 1, title, checkpoint, epoch, headers, metrics, rows };
}

/** The tables of the final evaluation: for each title (and the untitled 0.3.6 tables), the last one printed. */
export function finalErrorTables(tables: readonly ErrorTable[]): ErrorTable[] {
  const last = new Map<string | null, ErrorTable>();
  for (const t of tables) last.set(t.title, t);
  return [...last.values()].sort((a, b) => a.line - b.line);
}

export interface CurvePoint {
  epoch: number;
  values: Partial<Record<TrainingMetric, number>>;
}

export interface ValidationCurve {
  /** Run tag, plus the head when the run evaluates several. */
  name: string;
  head: string | null;
  /** The evaluation before training (epoch null), when recorded. */
  initial: Partial<Record<TrainingMetric, number>> | null;
  points: CurvePoint[];
  source: "results" | "log";
}

/** Validation curves of one run, one per head: from the results file when there is one, else from the log lines. */
export function validationCurves(tag: string, results: MaceResults | null, log: MaceLog | null): ValidationCurve[] {
  const source = results && results.evals.length > 0 ? "results" : "log";
  const evals = source === "results" ? results!.evals : (log?.evals ?? []);
  const heads = [...new Set(evals.map((e) => e.head))];
  return heads.map((head) => {
    const mine = evals.filter((e) => e.head === head);
    const initial = mine.find((e) => e.epoch === null)?.values ?? null;
    const points = mine.filter((e) => e.epoch !== null).map((e) => ({ epoch: e.epoch!, values: e.values }));
    return { name: heads.length > 1 && head !== null ? `${tag} (${head})` : tag, head, initial, points, source };
  });
}
