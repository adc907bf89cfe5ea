import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { renderManifest, stageHash } from "../../../src/core/stage/hash.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("stage hash", () => {
  it("is the sha256 of sha256sum-style lines sorted by path, whatever the input order", () => {
    const files = [
      { path: "run.sh", sha256: sha("b"), bytes: 1 },
      { path: "data/train.extxyz", sha256: sha("a"), bytes: 1 },
    ];
    const expected = sha(`${sha("a")}  data/train.extxyz\n${sha("b")}  run.sh\n`);
    expect(stageHash(files)).toBe(expected);
    expect(stageHash([...files].reverse())).toBe(expected);
  });

  it("changes with any file's content or name", () => {
    const base = [{ path: "a", sha256: sha("1"), bytes: 1 }];
    expect(stageHash([{ ...base[0], sha256: sha("2") }])).not.toBe(stageHash(base));
    expect(stageHash([{ ...base[0], path: "b" }])).not.toBe(stageHash(base));
  });

  it("lists every file with size and hash in the manifest, next to the stage hash", () => {
    const files = [{ path: "run.sh", sha256: sha("x"), bytes: 1 }];
    const manifest = JSON.parse(renderManifest("train", files));
    expect(manifest).toMatchObject({ kind: "train", sha256: stageHash(files), files: { "run.sh": { bytes: 1, sha256: sha("x") } } });
  });
});
