/**
 * Train/valid/test assignment by source run. A run never moves once assigned: runs listed in a previous
 * dataset keep their split, and a new run's split depends only on its id, the seed and the fractions, so adding
 * runs in any order leaves every other run where it was.
 */
import { createHash } from "node:crypto";

export type SplitName = "train" | "valid" | "test";

export const SPLITS: readonly SplitName[] = ["train", "valid", "test"];

export interface SplitFractions {
  train: number;
  valid: number;
  test: number;
}

/** The head every frame is tagged with by default: the validated fine-tune recipe's head (mh-1's omat_pbe). */
export const DEFAULT_HEAD = "omat_pbe";
export const DEFAULT_CONFIG_TYPE = "Default";

export const DEFAULT_FRACTIONS: SplitFractions = { train: 0.8, valid: 0.1, test: 0.1 };

/** Parses `0.8,0.1,0.1`: three non-negative numbers summing to 1 (within 1e-6), train above 0. Throws Error with the reason. */
export function parseFractions(text: string): SplitFractions {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length !== 3) throw new Error(`expected three comma-separated fractions train,valid,test (got "${text}")`);
  const values = parts.map(Number);
  if (parts.some((p) => p === "") || values.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new Error(`fractions must be non-negative numbers (got "${text}")`);
  }
  const sum = values[0] + values[1] + values[2];
  if (Math.abs(sum - 1) > 1e-6) throw new Error(`fractions must sum to 1 (got "${text}", sum ${Number(sum.toFixed(6))})`);
  if (values[0] === 0) throw new Error(`the train fraction must be above 0 (got "${text}")`);
  return { train: values[0], valid: values[1], test: values[2] };
}

/**
 * A run's draw: sha256 of the UTF-8 text `<run id>\n<seed>`, its first 52 bits read as an integer and divided
 * by 2^52, giving a number uniform in [0, 1) that only this run's id and the seed decide.
 */
export function splitDraw(runId: string, seed: number): number {
  const hex = createHash("sha256").update(`${runId}\n${seed}`).digest("hex").slice(0, 13);
  return parseInt(hex, 16) / 2 ** 52;
}

/**
 * The split a draw falls in: [0, train) is train, [train, train + valid) valid, the rest test.
 * With `noTest` (a frozen test set) a draw in the test interval is stretched over [0, train + valid) and
 * assigned again, so new runs go to train and valid in proportion while other draws keep their split.
 */
export function splitOfDraw(draw: number, fractions: SplitFractions, noTest = false): SplitName {
  const held = fractions.train + fractions.valid;
  let u = draw;
  if (noTest && u >= held) u = ((u - held) / fractions.test) * held;
  if (u < fractions.train) return "train";
  if (u < held || noTest) return "valid";
  return "test";
}

export interface RunAssignment {
  split: SplitName;
  /** "previous": kept from the previous dataset; "draw": assigned from the run id's draw. */
  origin: "previous" | "draw";
  /** The run's draw (also for kept runs, so a user can see where it would have gone). */
  draw: number;
}

/**
 * Splits for every run id: a previous assignment wins, otherwise the draw decides. With `testOpen` false (a
 * rebuild that keeps its test set frozen) new runs go to train and valid only.
 */
export function assignSplits(
  runIds: readonly string[],
  previous: ReadonlyMap<string, SplitName> | null,
  seed: number,
  fractions: SplitFractions,
  testOpen: boolean,
): Map<string, RunAssignment> {
  const out = new Map<string, RunAssignment>();
  for (const id of runIds) {
    const draw = splitDraw(id, seed);
    const kept = previous?.get(id);
    out.set(id, kept ? { split: kept, origin: "previous", draw } : { split: splitOfDraw(draw, fractions, !testOpen), origin: "draw", draw });
  }
  return out;
}

/** sha256 over the sorted ids of the test runs, one per line, each line ending in "\n". */
export function testMembershipFingerprint(runs: Readonly<Record<string, SplitName>>): string {
  const ids = Object.keys(runs)
    .filter((id) => runs[id] === "test")
    .sort();
  return createHash("sha256").update(ids.map((id) => `${id}\n`).join("")).digest("hex");
}
