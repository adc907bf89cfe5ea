/**
 * Which App process this is, and which earlier ones ran on the same state directory. A round lock names the
 * process that took it; a lock taken by an earlier process is stale, because that process has stopped (a crash,
 * a restart or a deploy in the middle of a step) and nothing would ever release it. This holds as long as one
 * App process runs per state directory, as the README asks.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";

export interface ProcessInstance {
  id: string;
  /** Earlier processes on this state directory, newest last. */
  ended: ReadonlySet<string>;
}

/** How many ended processes are remembered: enough for locks to outlive many restarts. */
const REMEMBERED = 100;

/**
 * Starts this process's instance in `<stateDir>/instances.json`: the one recorded there as current has ended.
 * An unreadable file is started afresh (its locks then need `/relabel unlock`, as before this file existed).
 */
export async function startInstance(stateDir: string): Promise<ProcessInstance> {
  const file = path.join(stateDir, "instances.json");
  const recorded = await readFile(file, "utf8").then(parseInstances, () => ({ current: null, ended: [] }));
  const ended = [...recorded.ended, ...(recorded.current === null ? [] : [recorded.current])].slice(-REMEMBERED);
  const id = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  await mkdir(stateDir, { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify({ current: id, ended }, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  return { id, ended: new Set(ended) };
}

function parseInstances(text: string): { current: string | null; ended: string[] } {
  try {
    const data = JSON.parse(text) as { current?: unknown; ended?: unknown };
    return {
      current: typeof data.current === "string" ? data.current : null,
      ended: Array.isArray(data.ended) ? data.ended.filter((e): e is string => typeof e === "string") : [],
    };
  } catch {
    return { current: null, ended: [] };
  }
}
