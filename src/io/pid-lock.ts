/**
 * A lock file that holds its process's pid, made with O_EXCL. A lock whose process has ended (a command killed
 * halfway, or one still writing its pid) is taken over, so a crash never leaves a file locked for good.
 */
import { open, readFile, rm } from "node:fs/promises";

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `lockFile`, waiting up to `waitMs` for a live holder to let go; past that, throws `busy(holder pid)`.
 * Returns the release.
 */
export async function takePidLock(lockFile: string, waitMs: number, busy: (holder: number | null) => Error): Promise<() => Promise<void>> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const handle = await open(lockFile, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number(await readFile(lockFile, "utf8").catch(() => ""));
    if (Number.isInteger(holder) && holder > 0 && !processAlive(holder)) {
      await rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw busy(Number.isInteger(holder) && holder > 0 ? holder : null);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
