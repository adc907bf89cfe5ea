/** "1 frame", "2 frames": a count with its noun, for messages. */
export function counted(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Ranks for a one-line message: the first ten, then "...". */
export function rankList(ranks: readonly number[]): string {
  return ranks.length <= 10 ? ranks.join(", ") : `${ranks.slice(0, 10).join(", ")}, ...`;
}
