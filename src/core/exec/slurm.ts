/**
 * Slurm: the sbatch script, submission with `sbatch --parsable`, one batched state query per poll (squeue, then
 * sacct for jobs squeue has forgotten) and scancel.
 */
import type { Resources } from "./config.js";
import { NOT_FOUND, type SchedulerStatus } from "./ledger.js";
import type { JobRef, JobScriptSpec, QueryResult, SchedulerScripts } from "./scheduler.js";
import { shq } from "./scripts.js";

function resourceOptions(r: Resources): string[] {
  const options: string[] = [];
  if (r.partition) options.push(`--partition=${r.partition}`);
  if (r.account) options.push(`--account=${r.account}`);
  if (r.qos) options.push(`--qos=${r.qos}`);
  if (r.gpus !== undefined) options.push(`--gres=gpu:${r.gpus}`);
  if (r.time) options.push(`--time=${r.time}`);
  if (r.cpus) options.push(`--cpus-per-task=${r.cpus}`);
  if (r.memory) options.push(`--mem=${r.memory}`);
  options.push(...(r.sbatch_options ?? []));
  return options;
}

/** Every option of a job, as #SBATCH lines and again on sbatch's command line. */
function sbatchOptions(spec: JobScriptSpec): string[] {
  const output = `${spec.dir}/logs/slurm-%j.out`;
  return [
    `--job-name=${spec.jobName}`,
    `--chdir=${spec.dir}`,
    `--output=${output}`,
    `--error=${output}`,
    "--nodes=1",
    "--ntasks=1",
    ...resourceOptions(spec.resources),
  ];
}

/**
 * The batch script: output inside the stage's logs/ (created before submission: Slurm fails the job when the
 * directory is missing), --chdir to the stage (a missing one would silently run in /tmp), then the environment
 * setup and run.sh. A login shell, so site `module` setups are available.
 */
export function renderSbatchScript(spec: JobScriptSpec): string {
  const options = sbatchOptions(spec);
  return [
    "#!/bin/bash -l",
    ...options.map((o) => `#SBATCH ${o}`),
    `# relabel-loop: attempt ${spec.attempt} of ${spec.jobName}`,
    "set -e",
    ...spec.setup,
    "set +e",
    `cd -- ${shq(spec.dir)}`,
    "bash run.sh",
    "",
  ].join("\n");
}

const QUERY_FIELDS = "jobid,state,exitcode";

/**
 * squeue -t all knows finished jobs for MinJobAge seconds; jobs it does not list are looked up with sacct (the
 * accounting database, or the job completion file with -c where there is no slurmdbd).
 */
export function slurmQueryScript(jobs: JobRef[]): string {
  const ids = jobs.map((j) => j.jobId);
  return [
    `q=$(squeue -h -t all -j ${shq(ids.join(","))} -o '%i|%T|%r' 2>&1); rc=$?`,
    `printf '@squeue %s\\n%s\\n' "$rc" "$q"`,
    "missing=",
    `for id in ${ids.map(shq).join(" ")}; do printf '%s\\n' "$q" | grep -q "^$id|" || missing="$missing,$id"; done`,
    `if [ -n "$missing" ]; then`,
    `  a=$(sacct -X -n -P -j "\${missing#,}" -o ${QUERY_FIELDS} 2>/dev/null) || a=$(sacct -c -n -P -j "\${missing#,}" -o ${QUERY_FIELDS} 2>&1)`,
    `  printf '@sacct\\n%s\\n' "$a"`,
    "fi",
  ].join("\n");
}

/** Parses "<id>|<STATE>|<reason>" (squeue) and "<id>|<STATE>[ by uid]|<exit>:<signal>" (sacct) lines. */
export function parseSlurmQuery(stdout: string, jobs: JobRef[]): QueryResult {
  const wanted = new Set(jobs.map((j) => j.jobId));
  const statuses = new Map<string, SchedulerStatus>();
  let section: "none" | "squeue" | "sacct" = "none";
  let squeueRc = 0;
  const squeueText: string[] = [];
  const sacctRows = new Map<string, string[]>();
  for (const line of stdout.split("\n")) {
    const header = /^@squeue (\d+)$/.exec(line);
    if (header) {
      section = "squeue";
      squeueRc = Number(header[1]);
      continue;
    }
    if (line === "@sacct") {
      section = "sacct";
      continue;
    }
    const parts = line.split("|");
    if (section === "squeue") squeueText.push(line);
    if (parts.length !== 3 || !wanted.has(parts[0])) continue;
    if (section === "squeue") {
      statuses.set(parts[0], { state: parts[1], reason: parts[2] === "" ? null : parts[2], exitCode: null });
    } else if (section === "sacct") {
      // A requeued job has several lines: the last one is current.
      sacctRows.set(parts[0], parts);
    }
  }
  if (squeueRc !== 0 && !/Invalid job id/i.test(squeueText.join("\n"))) {
    return { ok: false, problem: `squeue failed: ${squeueText.join(" ").trim() || `exit code ${squeueRc}`}` };
  }
  for (const [id, parts] of sacctRows) {
    if (statuses.has(id)) continue;
    statuses.set(id, { state: parts[1].split(" ")[0], reason: null, exitCode: sacctExitCode(parts[2]), fromAccounting: true });
  }
  for (const id of wanted) if (!statuses.has(id)) statuses.set(id, { state: NOT_FOUND, reason: "not listed by squeue or sacct", exitCode: null });
  return { ok: true, statuses };
}

/**
 * sacct's ExitCode "<code>:<signal>": a job killed by a signal reports code 0, which would read as success; it
 * becomes 128+signal, as a shell reports it.
 */
export function sacctExitCode(text: string): number | null {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) return null;
  const [code, signal] = [Number(m[1]), Number(m[2])];
  return code === 0 && signal !== 0 ? 128 + signal : code;
}

/** Real Slurm messages of a busy or unreachable controller, and of per-user submit limits that clear later. */
const TRANSIENT_SUBMIT =
  /temporarily unable|try again|Unable to contact slurm controller|Socket timed out|Zero Bytes were transmitted|Communication connection failure|backup controller in standby|MaxSubmitJob|Resource temporarily unavailable/i;

/** Lines sbatch prints without failing: warnings and notices. */
const NOT_AN_ERROR = /^(sbatch|srun|salloc): (warning|info|notice)\b/i;

/**
 * Why a submission was refused, from the launcher's stderr: sbatch prints the specific reason first ("invalid
 * partition specified: x"), then a generic line; warnings ("sbatch: Warning: ...") before them are not the reason.
 */
export function submitRefusal(stderr: string): { reason: string; transient: boolean } {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => /\berror:/i.test(l)) ?? lines.find((l) => !NOT_AN_ERROR.test(l)) ?? lines[0] ?? "";
  return { reason: line.replace(/^sbatch: error: /, ""), transient: TRANSIENT_SUBMIT.test(stderr) };
}

/**
 * sbatch --parsable, unless a job of this very attempt already exists: sbatch can time out ("Socket timed out on
 * send/recv operation") after the controller accepted the job, and submitting again would run the stage twice.
 * The job's command (squeue %o) is the attempt's script path, which no other attempt shares.
 *
 * The options go on the command line too: SBATCH_* variables of the login environment (a site's SBATCH_PARTITION,
 * SBATCH_TIMELIMIT) override #SBATCH lines, but not the command line. SBATCH_ARRAY_INX and SBATCH_WAIT, which no
 * option of ours undoes, would make an array job or a sbatch that waits for the job to end.
 */
export function slurmLaunch(spec: JobScriptSpec): string {
  const script = `${spec.dir}/.relabel/job-${spec.attempt}.sh`;
  // #SBATCH lines drop the double quotes around a value with spaces; the command line gets the value itself.
  const args = sbatchOptions(spec).map((o) => shq(o.replace(/"/g, "")));
  return (
    `{ squeue -h -t all -u "$(id -un)" -o '%i %o' 2>/dev/null | awk -v s=${shq(script)} '$2 == s { print $1; found = 1; exit } END { exit !found }'; } ` +
    `|| env -u SBATCH_ARRAY_INX -u SBATCH_WAIT sbatch --parsable ${args.join(" ")} ${shq(script)}`
  );
}

export function slurmCancelScript(jobs: JobRef[]): string {
  return `scancel ${jobs.map((j) => shq(j.jobId)).join(" ")}`;
}

export const slurmScripts: SchedulerScripts = {
  jobScript: renderSbatchScript,
  launch: slurmLaunch,
  outputFile: (jobId) => `logs/slurm-${jobId}.out`,
  queryScript: slurmQueryScript,
  parseQuery: parseSlurmQuery,
  cancelScript: slurmCancelScript,
};
