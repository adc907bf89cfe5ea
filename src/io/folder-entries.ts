/**
 * A folder's entries as a user sees them in a shell: symbolic links followed. Run directories are often linked in
 * from scratch space, and readdir's own file types would call those links neither files nor folders.
 */
import { readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";

export interface FolderEntry {
  name: string;
  path: string;
  /** "dangling": a link to nothing (listed only when asked for). */
  kind: "file" | "dir" | "dangling";
}

/**
 * Entries sorted by name, without dot-entries; links resolved, special files left out, and dangling links too unless
 * `dangling` asks for them.
 */
export async function folderEntries(dir: string, { dangling = false } = {}): Promise<FolderEntry[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const out: FolderEntry[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const full = path.join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const target = await stat(full).catch(() => null);
      isDir = target?.isDirectory() ?? false;
      isFile = target?.isFile() ?? false;
      if (!target && dangling) out.push({ name: e.name, path: full, kind: "dangling" });
    }
    if (isDir || isFile) out.push({ name: e.name, path: full, kind: isDir ? "dir" : "file" });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Guards a walk that follows links against cycles: true the first time a folder's real path is seen. */
export class VisitedFolders {
  private readonly seen = new Set<string>();

  async first(dir: string): Promise<boolean> {
    const real = await realpath(dir);
    if (this.seen.has(real)) return false;
    this.seen.add(real);
    return true;
  }
}
