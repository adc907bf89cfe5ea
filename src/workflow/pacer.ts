/**
 * Spaces out content-creating calls (comments) per installation: GitHub's secondary rate limits punish bursts,
 * and Probot never retries them. The interval follows the repository's `comment_pacing_ms` once its config is read.
 */
export class Pacer {
  private next = 0;

  constructor(public intervalMs: number) {}

  /** Resolves when the caller may create the next piece of content. */
  async wait(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + this.intervalMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}
