/**
 * Bash scripts the executors run on the execution host (over SSH, or locally), and parsers for what they print.
 * Every script is idempotent, so a command cut off by a dropped connection can simply run again.
 *
 * Stage directory layout on the execution host:
 *   <root>/<round>/<stage>-<hash12>/      the uploaded stage (run.sh, stage.json, inputs)
 *     .relabel/job-<n>.sh                 job script of attempt n (sbatch script or shell wrapper)
 *     .relabel/attempt-<n>.jobid          written once the scheduler accepted attempt n: makes submission idempotent
 *     logs/                               run.sh's logs and the scheduler's output file
 */

/** Quotes a string for bash. */
export function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Printed on stdout and stderr before a script's own output, so what the login environment prints (a .bashrc
 * that echoes, `module` or conda notices on stderr) can be cut off.
 */
export const SENTINEL = "@@relabel-output@@";

export function withSentinel(body: string): string {
  return `printf '%s\\n' '${SENTINEL}'; printf '%s\\n' '${SENTINEL}' >&2\n${body}\n`;
}

/** The script's own stdout: everything after the sentinel line. */
export function afterSentinel(stdout: string): string {
  const i = stdout.indexOf(`${SENTINEL}\n`);
  return i < 0 ? "" : stdout.slice(i + SENTINEL.length + 1);
}

/** The script's own stderr; all of it when the sentinel never came (the login shell itself failed: that is the message). */
export function stderrAfterSentinel(stderr: string): string {
  const i = stderr.indexOf(`${SENTINEL}\n`);
  return i < 0 ? stderr : stderr.slice(i + SENTINEL.length + 1);
}

export function stageDirName(stage: string, hash: string): string {
  return `${stage}-${hash.slice(0, 12)}`;
}

/** Prints the remote root with ~ and $VARS expanded (the config schema allows nothing else to expand). */
export function expandRootScript(root: string): string {
  const text = root.startsWith("~/") ? `$HOME/${root.slice(2)}` : root;
  return `printf '%s\\n' "${text}"`;
}

/**
 * Why an expanded remote root cannot be used, or null. For Slurm it ends up unquoted in #SBATCH lines, which sbatch
 * splits at whitespace, and in --output, where % starts a file name pattern (%j, %u, ...).
 */
export function remoteRootProblem(root: string, inSbatchLines: boolean): string | null {
  if (!root.startsWith("/")) return "not an absolute path";
  if (!inSbatchLines) return null;
  const bad = /[\s"'`\\%]/.exec(root);
  if (bad) return `contains ${bad[0] === "%" ? "%" : /\s/.test(bad[0]) ? "whitespace" : `the character ${bad[0]}`}, which #SBATCH lines cannot hold`;
  return null;
}

/** Creates the stage directory tree and prints the sha256 of those files that already exist there. */
export function prepareUploadScript(dir: string, subdirs: string[], files: string[]): string {
  const dirs = [dir, `${dir}/.relabel`, `${dir}/logs`, ...subdirs.map((d) => `${dir}/${d}`)];
  return [
    "set -e",
    `mkdir -p -- ${dirs.map(shq).join(" ")}`,
    `cd -- ${shq(dir)}`,
    files.length ? `printf '%s\\0' ${files.map(shq).join(" ")} | xargs -0 -r sha256sum -- 2>/dev/null || true` : "true",
  ].join("\n");
}

/** Parses sha256sum output (GNU escapes names containing \ or newline with a leading backslash). */
export function parseSha256sum(stdout: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const escaped = line.startsWith("\\");
    const m = /^([0-9a-f]{64}) [ *](.*)$/.exec(escaped ? line.slice(1) : line);
    if (!m) continue;
    const name = escaped ? m[2].replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\")) : m[2];
    sums.set(name.startsWith("./") ? name.slice(2) : name, m[1]);
  }
  return sums;
}

/**
 * Starts attempt n at most once: when .relabel/attempt-<n>.jobid exists the job id in it is reported ("adopted"),
 * otherwise `launch` runs, must print the job id, and the id is recorded before it is reported ("new").
 * With lookupOnly nothing is launched ("none" when there is no record).
 */
export function submitScript(dir: string, attempt: number, launch: string, lookupOnly = false): string {
  return [
    "set -e",
    `cd -- ${shq(dir)}`,
    `m=.relabel/attempt-${attempt}.jobid`,
    `if [ -s "$m" ]; then printf 'adopted %s\\n' "$(cat "$m")"; exit 0; fi`,
    lookupOnly ? "echo none; exit 0" : "",
    `out=$(${launch})`,
    // sbatch --parsable prints "id" or "id;cluster"; a site's sbatch wrapper may print more lines around it.
    `id=$(printf '%s\\n' "$out" | tr -d '\\r' | sed -n 's/^[[:space:]]*\\([0-9][0-9]*\\)\\(;[^[:space:]]*\\)\\{0,1\\}[[:space:]]*$/\\1/p' | tail -n 1)`,
    `[ -n "$id" ] || { printf 'the scheduler printed no job id: %s\\n' "$(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-200)" >&2; exit 1; }`,
    `printf '%s\\n' "$id" > "$m.tmp"`,
    `mv -f "$m.tmp" "$m"`,
    `printf 'new %s\\n' "$id"`,
  ]
    .filter(Boolean)
    .join("\n");
}

export function parseSubmitOutput(stdout: string): { jobId: string; adopted: boolean } | null {
  const m = /^(new|adopted) (\S+)$/m.exec(stdout);
  return m ? { jobId: m[2], adopted: m[1] === "adopted" } : null;
}

export interface InspectItem {
  dir: string;
  /** The scheduler's output file, relative to dir. */
  outputFile: string;
}

/** Bytes of logs kept for a failure report. */
export const TAIL_BYTES = 2000;

/** For each stage directory: FINISHED present, status.json, and the tails of stderr.log and the scheduler's output. */
export function inspectScript(items: InspectItem[]): string {
  return [
    `t() { if [ -f "$1" ]; then tail -c "$2" -- "$1" | base64 -w0; fi; }`,
    `r() { f=0; [ -f "$2/FINISHED" ] && f=1; printf '%s|%s|%s|%s|%s\\n' "$1" "$f" "$(t "$2/status.json" 65536)" "$(t "$2/logs/stderr.log" ${TAIL_BYTES})" "$(t "$2/$3" ${TAIL_BYTES})"; }`,
    ...items.map((item, i) => `r ${i} ${shq(item.dir)} ${shq(item.outputFile)}`),
  ].join("\n");
}

export interface InspectRow {
  finished: boolean;
  statusText: string;
  stderrTail: string;
  outputTail: string;
}

export function parseInspectOutput(stdout: string, count: number): (InspectRow | undefined)[] {
  const rows: (InspectRow | undefined)[] = new Array(count).fill(undefined);
  const text = (b64: string) => Buffer.from(b64, "base64").toString("utf8");
  for (const line of stdout.split("\n")) {
    const parts = line.split("|");
    if (parts.length !== 5 || !/^\d+$/.test(parts[0])) continue;
    const i = Number(parts[0]);
    if (i >= count) continue;
    rows[i] = { finished: parts[1] === "1", statusText: text(parts[2]), stderrTail: text(parts[3]), outputTail: text(parts[4]) };
  }
  return rows;
}

/** Lists regular files below dir as "<bytes> <relative path>\0", leaving out .relabel/ and partial uploads. */
export function listFilesScript(dir: string): string {
  return `cd -- ${shq(dir)} && find . -path ./.relabel -prune -o -type f ! -name '*.part' -printf '%s %P\\0'`;
}

export function parseFileList(stdout: string): { path: string; bytes: number }[] {
  return stdout
    .split("\0")
    .map((entry) => /^(\d+) (.+)$/s.exec(entry))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ path: m[2], bytes: Number(m[1]) }));
}

export function hashFilesScript(dir: string, files: string[]): string {
  return `cd -- ${shq(dir)} && printf '%s\\0' ${files.map(shq).join(" ")} | xargs -0 -r sha256sum --`;
}

/**
 * What collection does with a file of a finished stage: download what the benchmark and the report need, record
 * models by hash (they stay on the execution host), skip the rest (checkpoints, inputs). Models under models/ and
 * assets/ are inputs `relabel stage` copied in (the model an eval stage evaluates, a local foundation model), not
 * outputs: MACE writes its models into the stage's top directory or member-K/.
 */
export function collectRole(relPath: string): "download" | "model" | null {
  if (/^predictions\/.+\.extxyz$/.test(relPath)) return "download";
  if (/^results\/[^/]+_train\.txt$/.test(relPath)) return "download";
  if (relPath.startsWith("logs/")) return "download";
  if (relPath === "status.json" || relPath === "stage.json") return "download";
  if (/^metrics[^/]*\.json$/.test(relPath) || relPath.startsWith("metrics/")) return "download";
  if (relPath.endsWith(".model")) return relPath.startsWith("models/") || relPath.startsWith("assets/") ? null : "model";
  return null;
}
