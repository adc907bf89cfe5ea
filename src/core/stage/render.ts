/**
 * Text of the files a stage is made of: run.sh (bash) and deterministic JSON. The run.sh text is built here
 * rather than from a template file: its variable parts are lists (inputs, commands, arguments), the core stays
 * free of file reads, and the golden file under test/fixtures/stage pins the exact bytes.
 */

/** Quotes a word for bash: left bare when it holds only characters bash treats literally, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface RunScript {
  kind: "train" | "eval";
  /** Files the commands read, relative to the script's directory; checked before anything runs. */
  inputs: string[];
  /** Directories the commands write into besides logs/. */
  outputDirs: string[];
  /** Each command as argv; run in order, stopping at the first failure. */
  commands: string[][];
}

/** Bash helpers both scripts use to record status.json (needs $commands_json and $started). */
const STATUS_HELPERS = [
  "now() { date -u +%Y-%m-%dT%H:%M:%SZ; }",
  "",
  "# write_status STATE EXIT_CODE ENDED FAILED_COMMAND (the last three as JSON values)",
  "write_status() {",
  `  printf '{"commands": %s, "ended": %s, "exit_code": %s, "failed_command": %s, "started": "%s", "state": "%s"}\\n' \\`,
  '    "$commands_json" "$3" "$2" "$4" "$started" "$1" >status.json.partial',
  "  mv -f status.json.partial status.json",
  "}",
];

/** The logs run.sh writes under logs/: the commands' output, not MACE's own log of the run. */
export const RUN_SCRIPT_LOGS: readonly string[] = ["stdout.log", "stderr.log"];

/** A stage's run.sh: status.json, logs, FINISHED on success, the exit code of the failing command. */
export function renderRunScript(script: RunScript): string {
  const commandsJson = JSON.stringify(script.commands);
  const lines = [
    "#!/usr/bin/env bash",
    `# relabel-loop ${script.kind} stage, rendered by \`relabel stage ${script.kind}\`: re-render rather than edit.`,
    "# Runs from any directory. Writes status.json (state, exit code, UTC start and end, the commands),",
    "# appends the commands' output to logs/stdout.log and logs/stderr.log, writes FINISHED only when every",
    "# command succeeded, and exits with the exit code of the first failing command (66: missing input).",
    "set -euo pipefail",
    'cd "$(dirname "${BASH_SOURCE[0]}")"',
    "",
    "inputs=(",
    ...script.inputs.map((f) => `  ${shellQuote(f)}`),
    ")",
    `commands_json=${shellQuote(commandsJson)}`,
    "",
    ...STATUS_HELPERS,
    "",
    "# log_both MESSAGE: a marker line in both logs, so that reruns stay apart.",
    "log_both() {",
    '  echo "== $(now) $1" >>logs/stdout.log',
    '  echo "== $(now) $1" >>logs/stderr.log',
    "}",
    "",
    "# check_command INDEX EXIT_CODE: records a failure and exits with the command's exit code.",
    "check_command() {",
    '  if [ "$2" -ne 0 ]; then',
    '    log_both "command $1 failed with exit code $2"',
    '    write_status failed "$2" "\\"$(now)\\"" "$1"',
    '    exit "$2"',
    "  fi",
    "}",
    "",
    "started=$(now)",
    "rm -f FINISHED",
    `mkdir -p ${["logs", ...script.outputDirs].map(shellQuote).join(" ")}`,
    "write_status running null null null",
    "# With a trap, bash waits for the running command (which receives the signal too) and records its exit code.",
    `trap 'log_both "signal received"' TERM INT HUP`,
    "",
    'for input in "${inputs[@]}"; do',
    '  if [ ! -f "$input" ]; then',
    '    echo "run.sh: missing input $input: the stage directory is incomplete" >&2',
    '    log_both "missing input $input"',
    '    write_status failed 66 "\\"$(now)\\"" null',
    "    exit 66",
    "  fi",
    "done",
  ];
  script.commands.forEach((argv, index) => {
    const [program, ...args] = argv;
    lines.push(
      "",
      `log_both "command ${index}: ${program}"`,
      "code=0",
      `${shellQuote(program)} \\`,
      ...args.map((arg) => `  ${shellQuote(arg)} \\`),
      "  >>logs/stdout.log 2>>logs/stderr.log || code=$?",
      `check_command ${index} "$code"`,
    );
  });
  lines.push("", 'write_status succeeded 0 "\\"$(now)\\"" null', "now >FINISHED", "");
  return lines.join("\n");
}

/**
 * The run.sh at the root of a train committee: runs every member in turn and records the committee's own
 * status.json, logs and FINISHED (only when every member succeeded), so the stage as a whole is judged by the same
 * markers as a single run; exits with the first failure's code.
 */
export function renderCommitteeScript(members: string[]): string {
  const commandsJson = JSON.stringify(members.map((m) => ["bash", `${m}/run.sh`]));
  return [
    "#!/usr/bin/env bash",
    `# relabel-loop train committee of ${members.length} members, rendered by \`relabel stage train\`: re-render rather than edit.`,
    "# Runs each member's run.sh in turn (each records its own status.json, logs and FINISHED), carries on after",
    "# a failure, writes the committee's status.json and logs here, FINISHED only when every member succeeded,",
    "# and exits with the exit code of the first failing member.",
    "set -uo pipefail",
    'cd "$(dirname "${BASH_SOURCE[0]}")"',
    `commands_json=${shellQuote(commandsJson)}`,
    ...STATUS_HELPERS,
    "mkdir -p logs",
    "rm -f FINISHED",
    "started=$(now)",
    "write_status running null null null",
    "first_failure=0",
    "failed=null",
    "index=0",
    `for member in ${members.map(shellQuote).join(" ")}; do`,
    '  echo "== member $member ($(now))" | tee -a logs/stdout.log >>logs/stderr.log',
    "  code=0",
    '  bash "$member/run.sh" >>logs/stdout.log 2>>logs/stderr.log || code=$?',
    '  if [ "$code" -ne 0 ] && [ "$first_failure" -eq 0 ]; then',
    "    first_failure=$code",
    "    failed=$index",
    "  fi",
    "  index=$((index + 1))",
    "done",
    'if [ "$first_failure" -ne 0 ]; then',
    '  write_status failed "$first_failure" "\\"$(now)\\"" "$failed"',
    '  exit "$first_failure"',
    "fi",
    'write_status succeeded 0 "\\"$(now)\\"" null',
    "now >FINISHED",
    "",
  ].join("\n");
}
