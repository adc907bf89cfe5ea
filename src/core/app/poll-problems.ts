/**
 * What the App's poller tells a round's thread about problems it meets (a cluster host or scheduler that does
 * not answer). A problem is said at its second poll in a row: a single failed poll (a dropped connection that
 * the next poll does not meet) passes without a comment, so a flaky link does not fill the thread with pairs
 * of "problem" and "works again". Its end is said only when its start was. `/relabel status` shows the record
 * from the first poll on.
 */

/** The poller's record of a round's problems, kept beside its jobs file between polls. */
export interface PollProblems {
  since: string;
  at: string;
  problems: string[];
  /** Whether the thread was told. Absent in records written before this existed, which were told at once. */
  announced?: boolean;
}

export interface PollNotice {
  /** The record to keep; null: none (remove it). */
  record: PollProblems | null;
  /** What to tell the thread now, if anything. */
  say: "problems" | "recovered" | null;
}

/** After a poll that met `problems` (empty: none) at time `at`, given the record kept before it. */
export function nextPollNotice(before: PollProblems | null, problems: readonly string[], at: string): PollNotice {
  const told = before !== null && before.announced !== false;
  if (problems.length === 0) return { record: null, say: told ? "recovered" : null };
  if (before === null) return { record: { since: at, at, problems: [...problems], announced: false }, say: null };
  return { record: { since: before.since, at, problems: [...problems], announced: true }, say: told ? null : "problems" };
}
