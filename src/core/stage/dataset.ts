/** The part of a dataset's summary.json (written by `relabel dataset build`) that a stage depends on. */
import { z } from "zod";
import { InputError } from "../errors.js";
import { atomicNumber } from "../elements.js";
import { parseJsonFile } from "./json-error.js";

export const SPLIT_FILES = ["train.extxyz", "valid.extxyz", "test.extxyz"] as const;
export type SplitFile = (typeof SPLIT_FILES)[number];

const DatasetSummarySchema = z.looseObject({
  options: z.looseObject({ energy: z.enum(["free", "sigma0"]), head: z.string().min(1) }),
  fingerprint: z.looseObject({ test_membership: z.string().min(1), test_content: z.string().min(1) }),
  elements: z
    .array(z.string().refine((s) => atomicNumber(s) !== undefined, "not an element symbol"))
    .min(1, "expected at least one element")
    .refine((els) => new Set(els).size === els.length, "elements must be unique"),
  labels: z.looseObject({ stress_frames: z.int().nonnegative() }),
  files: z
    .array(z.enum(SPLIT_FILES))
    .refine((files) => files.includes("train.extxyz"), "train.extxyz must be listed")
    .refine((files) => new Set(files).size === files.length, "files must be unique"),
  sha256: z.record(z.string(), z.string()).optional(),
});

/** What a stage takes from summary.json; the dataset fingerprint is carried into params.json. */
export interface DatasetSummary {
  energy: "free" | "sigma0";
  head: string;
  testMembership: string;
  testContent: string;
  /** Element symbols as listed. */
  elements: string[];
  /** Sorted unique atomic numbers of every split: MACE's --atomic_numbers. */
  atomicNumbers: number[];
  stressFrames: number;
  /** The split files, in train, valid, test order. */
  files: SplitFile[];
  /** SHA-256 of split files as recorded at build time, when summary.json records them. */
  sha256: Partial<Record<SplitFile, string>>;
}

export function parseDatasetSummary(text: string, file: string): DatasetSummary {
  const result = DatasetSummarySchema.safeParse(parseJsonFile(text, file, "expected a dataset summary"));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.map(String).join(".") || "summary"}: ${i.message}`);
    throw new InputError(file, undefined, `not a dataset summary: ${problems.join("; ")}`);
  }
  const s = result.data;
  return {
    energy: s.options.energy,
    head: s.options.head,
    testMembership: s.fingerprint.test_membership,
    testContent: s.fingerprint.test_content,
    elements: s.elements,
    atomicNumbers: s.elements.map((e) => atomicNumber(e)!).sort((a, b) => a - b),
    stressFrames: s.labels.stress_frames,
    files: SPLIT_FILES.filter((f) => s.files.includes(f)),
    sha256: Object.fromEntries(SPLIT_FILES.filter((f) => s.sha256?.[f] !== undefined).map((f) => [f, s.sha256![f]])),
  };
}
