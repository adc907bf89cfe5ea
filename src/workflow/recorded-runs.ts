/**
 * Recorded VASP runs as a candidate pool, for the demo (and its tests): each run's initial structure (its first
 * DFT ionic step: species, positions, cell) becomes one candidate, so selecting a candidate selects a real run
 * whose recorded outputs are that structure's labels. Nothing is computed: the labels step replays those files.
 */
import path from "node:path";
import { candidateId } from "../core/select/candidate-id.js";
import type { Frame } from "../core/structure.js";
import type { VaspStep } from "../core/vasp/types.js";
import { ExtxyzFileWriter } from "../io/extxyz.js";
import { discoverRuns, readRun } from "../io/rundir.js";

export interface RecordedRun {
  /** The run directory. */
  dir: string;
  /** Its folder name. */
  name: string;
  /** candidate_id of the initial structure. */
  candidateId: string;
  /** The initial structure, without labels. */
  frame: Frame;
}

/** Every run under `root` that has at least one complete DFT step, with its initial structure. */
export async function recordedRuns(root: string): Promise<RecordedRun[]> {
  const runs: RecordedRun[] = [];
  for (const dir of await discoverRuns(root)) {
    // Read to the end so that the readers close their files; only the first step is kept.
    let step: VaspStep | null = null;
    for await (const s of readRun(dir)) step ??= s;
    if (step === null) continue;
    const frame: Frame = {
      natoms: step.symbols.length,
      symbols: step.symbols,
      positions: step.positions,
      cell: step.cell,
      pbc: [true, true, true],
      info: new Map([["recorded_run", { kind: "string", value: path.basename(dir) }]]),
      arrays: new Map(),
    };
    runs.push({ dir, name: path.basename(dir), candidateId: candidateId(frame), frame });
  }
  return runs;
}

/** Writes the initial structures as an extxyz pool (one frame per run, in run order). */
export async function writeInitialStructurePool(runs: readonly RecordedRun[], file: string): Promise<void> {
  const writer = await ExtxyzFileWriter.open(file);
  for (const run of runs) await writer.write(run.frame);
  await writer.close();
}
