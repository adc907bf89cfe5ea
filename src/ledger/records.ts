/**
 * The ledger's own files: the append-only event log `ledger/events.jsonl`, the round locks
 * `ledger/locks/NNNN.json` and the round directories `rounds/NNNN/`. Pure (strings in, strings out).
 */
import { LedgerError } from "./errors.js";

export const EVENTS_PATH = "ledger/events.jsonl";

/** One line of events.jsonl. `delivery` and `comment` are the dedupe keys that `seen` looks for. */
export interface LedgerEvent {
  /** ISO time; filled in by the ledger when absent. */
  time?: string;
  /** GitHub login (or "local") that caused the event. */
  actor: string;
  /** X-GitHub-Delivery id, or null for events without a delivery (polls, the demo). */
  delivery: string | null;
  /** Webhook event, e.g. "issues.opened", "issue_comment.created", "poll". */
  event: string;
  /** The /relabel command, when the event is one. */
  command?: string | null;
  /** What happened: "round-opened", "refused: read-only user", "duplicate", … */
  outcome: string;
  /** Commit the event produced or refers to. */
  commit?: string | null;
  /** Second dedupe key for comment commands, e.g. "comment:1234567". */
  comment?: string | null;
  /** Round number, when the event belongs to one. */
  round?: number | null;
}

/** One JSON line, keys in the documented order. */
export function formatEvent(event: LedgerEvent, time: string): string {
  const { time: given, actor, delivery, event: name, command, outcome, commit, comment, round } = event;
  const line = {
    time: given ?? time,
    actor,
    delivery,
    event: name,
    command: command ?? null,
    outcome,
    commit: commit ?? null,
    ...(comment == null ? {} : { comment }),
    ...(round == null ? {} : { round }),
  };
  return `${JSON.stringify(line)}\n`;
}

/** The dedupe keys (delivery ids and comment keys) recorded in events.jsonl text. */
export function eventKeys(text: string): Set<string> {
  const keys = new Set<string>();
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new LedgerError("invalid-record", `${EVENTS_PATH}:${i + 1}: not a JSON line`, [EVENTS_PATH]);
    }
    const record = parsed as Record<string, unknown>;
    for (const key of [record.delivery, record.comment]) {
      if (typeof key === "string" && key !== "") keys.add(key);
    }
  });
  return keys;
}

/** The keys of `event` that make it a duplicate when already recorded. */
export function dedupeKeys(event: LedgerEvent): string[] {
  return [event.delivery, event.comment].filter((k): k is string => typeof k === "string" && k !== "");
}

/** `rounds/0003`-style directory name of a round. */
export function roundDirName(round: number): string {
  if (!Number.isInteger(round) || round < 1 || round > 9999) {
    throw new LedgerError("invalid-path", `round number must be an integer from 1 to 9999, got ${round}`);
  }
  return String(round).padStart(4, "0");
}

/** The highest round number among the names under rounds/ (0 when there is none). */
export function highestRound(names: readonly string[]): number {
  let max = 0;
  for (const name of names) {
    if (/^\d{4}$/.test(name)) max = Math.max(max, Number(name));
  }
  return max;
}

export interface RoundLock {
  holder: string;
  reason: string;
  /** ISO time the lock was taken. */
  since: string;
  delivery: string | null;
  /** The App process that took it (see src/workflow/instance.ts); absent in locks taken otherwise. */
  instance?: string;
}

export function lockPath(round: number): string {
  return `ledger/locks/${roundDirName(round)}.json`;
}

export function formatLock(lock: RoundLock): string {
  const { holder, reason, since, delivery, instance } = lock;
  return `${JSON.stringify({ holder, reason, since, delivery, ...(instance === undefined ? {} : { instance }) })}\n`;
}

export function parseLock(text: string, path: string): RoundLock {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new LedgerError("invalid-record", `${path}: not JSON`, [path]);
  }
  const d = data as Record<string, unknown>;
  if (typeof d.holder !== "string" || typeof d.since !== "string") {
    throw new LedgerError("invalid-record", `${path}: expected {"holder","reason","since","delivery"}`, [path]);
  }
  return {
    holder: d.holder,
    reason: typeof d.reason === "string" ? d.reason : "",
    since: d.since,
    delivery: typeof d.delivery === "string" ? d.delivery : null,
    ...(typeof d.instance === "string" ? { instance: d.instance } : {}),
  };
}
