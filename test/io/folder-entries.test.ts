import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { folderEntries, VisitedFolders } from "../../src/io/folder-entries.js";

describe("folderEntries", () => {
  it("follows links to folders and files, sorted by name, without dot-entries or dangling links", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-entries-"));
    const elsewhere = mkdtempSync(path.join(tmpdir(), "relabel-scratch-"));
    mkdirSync(path.join(elsewhere, "run-a"));
    writeFileSync(path.join(elsewhere, "POSCAR"), "");
    mkdirSync(path.join(dir, "b-plain"));
    writeFileSync(path.join(dir, "c.xyz"), "");
    writeFileSync(path.join(dir, ".hidden"), "");
    symlinkSync(path.join(elsewhere, "run-a"), path.join(dir, "a-linked-run"));
    symlinkSync(path.join(elsewhere, "POSCAR"), path.join(dir, "POSCAR"));
    symlinkSync(path.join(elsewhere, "gone"), path.join(dir, "dangling"));
    expect((await folderEntries(dir)).map((e) => [e.name, e.kind])).toEqual([
      ["POSCAR", "file"],
      ["a-linked-run", "dir"],
      ["b-plain", "dir"],
      ["c.xyz", "file"],
    ]);
  });
});

describe("VisitedFolders", () => {
  it("sees a folder once, by whichever link it is reached", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-visited-"));
    mkdirSync(path.join(dir, "runs"));
    symlinkSync(dir, path.join(dir, "runs", "back-to-top"));
    const visited = new VisitedFolders();
    expect(await visited.first(dir)).toBe(true);
    expect(await visited.first(path.join(dir, "runs"))).toBe(true);
    expect(await visited.first(path.join(dir, "runs", "back-to-top"))).toBe(false);
  });
});
