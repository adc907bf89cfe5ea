/**
 * The shell backends (ssh+shell on a workstation, local on the bot host): each attempt runs as a detached process
 * group (setsid) whose wrapper records run.sh's exit code in .relabel/attempt-<n>.rc. The job id is the wrapper's
 * pid, which is also its process group id; a pid only counts as the job while its command line names the wrapper.
 * A time limit is enforced by a timer that kills the group and leaves .relabel/attempt-<n>.timedout.
 */
import { slurmTimeSeconds } from "./config.js";
import { NOT_FOUND, type SchedulerStatus } from "./ledger.js";
import type { JobRef, JobScriptSpec, QueryResult, SchedulerScripts } from "./scheduler.js";
import { shq } from "./scripts.js";

/** The wrapper script; `login` marks it as run by a login shell (remote workstations: module setups live there). */
export function renderShellJob(spec: JobScriptSpec, login: boolean): string {
  const f = `.relabel/attempt-${spec.attempt}`;
  const limit = spec.resources.time ? slurmTimeSeconds(spec.resources.time) : null;
  return [
    login ? "#!/bin/bash -l" : "#!/bin/bash",
    `# relabel-loop: attempt ${spec.attempt} of ${spec.jobName}`,
    `cd -- ${shq(spec.dir)} || exit 1`,
    `trap 'rc=$?; printf "%s\\n" "$rc" > ${f}.rc.tmp && mv -f ${f}.rc.tmp ${f}.rc' EXIT`,
    "trap 'exit 143' TERM",
    "set -e",
    ...spec.setup,
    "set +e",
    "bash run.sh &",
    "run=$!",
    ...(limit
      ? [
          // Whichever ends first: run.sh, or the timer, which then takes the whole group down (TERM -> exit 143).
          `sleep ${limit} &`,
          "timer=$!",
          "wait -n",
          "rc=$?",
          `if kill -0 "$run" 2>/dev/null; then touch ${f}.timedout; kill -TERM -- -$$; fi`,
          'kill "$timer" 2>/dev/null',
          'exit "$rc"',
        ]
      : ['wait "$run"']),
    "",
  ].join("\n");
}

function wrapperPath(dir: string, attempt: number): string {
  return `${dir}/.relabel/job-${attempt}.sh`;
}

/** Shell function: is pid $1 the wrapper $2 (and not a zombie, whose command line is empty)? */
const IS_JOB = `isjob() { [ -r "/proc/$1/cmdline" ] && tr '\\0' ' ' < "/proc/$1/cmdline" | grep -qF -- "$2"; }`;

export function shellQueryScript(jobs: JobRef[]): string {
  return [
    IS_JOB,
    `flag() { [ -f "$1" ] && echo 1 || echo 0; }`,
    // Liveness first, then the rc file: the wrapper writes rc before it exits, so "gone without rc" is real.
    `s() { a=0; isjob "$1" "$3/.relabel/job-$2.sh" && a=1; f="$3/.relabel/attempt-$2"; ` +
      `if [ -f "$f.rc" ]; then printf '%s|rc|%s|%s|%s\\n' "$1" "$(cat "$f.rc")" "$(flag "$f.cancelled")" "$(flag "$f.timedout")"; ` +
      `elif [ $a = 1 ]; then printf '%s|running\\n' "$1"; ` +
      `else printf '%s|gone|%s\\n' "$1" "$(flag "$f.cancelled")"; fi; }`,
    ...jobs.map((j) => `s ${shq(j.jobId)} ${j.attempt} ${shq(j.dir)}`),
  ].join("\n");
}

export function parseShellQuery(stdout: string, jobs: JobRef[]): QueryResult {
  const wanted = new Set(jobs.map((j) => j.jobId));
  const statuses = new Map<string, SchedulerStatus>();
  for (const line of stdout.split("\n")) {
    const parts = line.split("|");
    if (!wanted.has(parts[0])) continue;
    statuses.set(parts[0], shellStatus(parts));
  }
  for (const id of wanted) if (!statuses.has(id)) return { ok: false, problem: `no answer about process ${id}` };
  return { ok: true, statuses };
}

function shellStatus(parts: string[]): SchedulerStatus {
  if (parts[1] === "running") return { state: "RUNNING", reason: null, exitCode: null };
  if (parts[1] === "gone") {
    return parts[2] === "1"
      ? { state: "CANCELLED", reason: "cancelled", exitCode: null }
      : { state: NOT_FOUND, reason: "process gone without an exit code", exitCode: null };
  }
  const rc = Number(parts[2]);
  if (rc === 0) return { state: "COMPLETED", reason: null, exitCode: 0 };
  if (parts[3] === "1") return { state: "CANCELLED", reason: "cancelled", exitCode: rc };
  if (parts[4] === "1") return { state: "TIMEOUT", reason: "TimeLimit", exitCode: rc };
  return { state: "FAILED", reason: "NonZeroExitCode", exitCode: rc };
}

/** Marks each attempt cancelled, then kills its process group (only if the pid still is that wrapper). */
export function shellCancelScript(jobs: JobRef[]): string {
  return [
    IS_JOB,
    `c() { touch "$3/.relabel/attempt-$2.cancelled"; if isjob "$1" "$3/.relabel/job-$2.sh"; then kill -TERM -- "-$1" 2>/dev/null || true; fi; }`,
    ...jobs.map((j) => `c ${shq(j.jobId)} ${j.attempt} ${shq(j.dir)}`),
  ].join("\n");
}

export function shellScripts(login: boolean): SchedulerScripts {
  return {
    jobScript: (spec) => renderShellJob(spec, login),
    // setsid makes the wrapper a session and process-group leader, so its pid doubles as the group id for cancel.
    // The pid is reported once it runs the wrapper (or the job already ended): a poll right after submission must
    // not mistake a process still starting for one that vanished.
    launch: ({ dir, attempt }) =>
      [
        IS_JOB,
        `setsid bash ${login ? "-l " : ""}${shq(wrapperPath(dir, attempt))} > ${shq(`${dir}/logs/shell-${attempt}.out`)} 2>&1 < /dev/null & id=$!`,
        `for i in $(seq 100); do isjob "$id" ${shq(wrapperPath(dir, attempt))} && break; [ -f ${shq(`${dir}/.relabel/attempt-${attempt}.rc`)} ] && break; sleep 0.05; done`,
        'echo "$id"',
      ].join("; "),
    outputFile: (_jobId, attempt) => `logs/shell-${attempt}.out`,
    queryScript: shellQueryScript,
    parseQuery: parseShellQuery,
    cancelScript: shellCancelScript,
  };
}
