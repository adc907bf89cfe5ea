/**
 * Per-key mutual exclusion inside one process: tasks with the same key run one after another, in call order.
 * Across processes the ledger relies on git itself (a push that is not a fast-forward is refused).
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const tail = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      // Drop the entry once nobody queued behind this task, so the map does not grow with every repo ever seen.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
