/**
 * The fields of ranking.json (written by `relabel rank`, src/core/select/ranking.ts) that the App reads back from
 * the ledger: for the selection summary, the manifest and the matching of results to the selection. Unlisted
 * fields are allowed and ignored, so the artifact may grow without breaking the App.
 */
import { z } from "zod";

const finite = z.number().refine(Number.isFinite, "expected a finite number");

export const rankingJsonSchema = z.object({
  rule: z.string(),
  parameters: z.record(z.string(), z.unknown()),
  sources: z.array(z.object({ path: z.string(), sha256: z.string(), frames: z.int().nonnegative(), notes: z.array(z.string()).optional() })),
  skipped_sources: z.array(z.object({ path: z.string(), problem: z.string() })).optional(),
  unread_files: z.array(z.string()).optional(),
  committee: z.object({ size: z.int().nonnegative(), members: z.array(z.string()) }),
  selection_size: z.int().nonnegative(),
  labeled_size: z.int().nonnegative(),
  software: z.object({ name: z.string(), version: z.string() }),
  /** Candidates in the pool and how many could be picked, when the ranking recorded them. */
  pool_size: z.int().nonnegative().optional(),
  selectable: z.int().nonnegative().optional(),
  requested: z.int().nonnegative().optional(),
  selected: z.array(
    z.object({
      rank: z.int().min(1),
      candidate_id: z.string(),
      source: z.string(),
      /** 0-based frame index within the source. */
      frame: z.int().nonnegative(),
      natoms: z.int().nonnegative(),
      formula: z.string(),
      diversity: finite,
      /** null without a committee (rankings before 2026-11-28 wrote 0). */
      disagreement: finite.nullable(),
      score: finite,
    }),
  ),
});
export type RankingJson = z.output<typeof rankingJsonSchema>;

/** Parses ranking.json text; the reason names the file and the first bad field. */
export function parseRankingJson(text: string, file: string): { ok: true; ranking: RankingJson } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `${file}: not valid JSON (${(err as Error).message})` };
  }
  const result = rankingJsonSchema.safeParse(value);
  if (result.success) return { ok: true, ranking: result.data };
  const issue = result.error.issues[0];
  return { ok: false, problem: `${file}: ${issue.path.map(String).join(".") || "(top level)"}: ${issue.message.replace(/^Invalid input: /, "")}` };
}
