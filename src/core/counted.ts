/** "1 frame", "2 frames": a count with its noun, for messages. */
export function counted(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
