/** The closest candidate to a mistyped name, or undefined when none is close enough to be a plausible typo. */
export function closestName(input: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/-/g, "_");
  const wanted = norm(input);
  const exact = candidates.find((c) => norm(c) === wanted);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(wanted, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // A third of the length (at least 1) separates typos from unrelated names.
  return bestDistance <= Math.max(1, Math.floor(wanted.length / 3)) ? best : undefined;
}

/** Edit distance counting insertions, deletions, substitutions and swaps of adjacent letters as one edit each. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      const swapped = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1];
      rows[i][j] = swapped ? Math.min(d, rows[i - 2][j - 2] + 1) : d;
    }
  }
  return rows[a.length][b.length];
}
