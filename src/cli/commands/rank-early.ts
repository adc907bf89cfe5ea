/**
 * What `relabel rank` starts before its own module loads: the selection's worker thread, when the options ask for a
 * selection that runs while the pool is read (a feature matrix, and nothing the selection needs from the pool; see
 * startEarlySelection). A wrong guess costs a thread that boots and is never used.
 */
import { bootSelectionWorker } from "../../exec/selection-worker-boot.js";

const NEEDS_THE_POOL_FIRST = ["--labeled", "--committee", "--committee-keys", "--force-trust", "--help", "-h"];

/** True when rank's arguments ask for a selection that may start before the pool is read (on a second thread). */
export function selectsWhileReading(argv: readonly string[]): boolean {
  const given = (option: string): boolean => argv.some((arg) => arg === option || arg.startsWith(`${option}=`));
  const oneThread = argv.some((arg, i) => arg === "--threads=1" || (arg === "--threads" && argv[i + 1] === "1"));
  return given("--features") && !NEEDS_THE_POOL_FIRST.some(given) && !oneThread;
}

export function bootRankSelection(argv: readonly string[]): void {
  if (selectsWhileReading(argv)) bootSelectionWorker();
}
