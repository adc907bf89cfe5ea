import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/core/errors.js";
import { readStageRef } from "../../src/exec/stage.js";
import { makeStage } from "../doubles/stage.js";

describe("readStageRef", () => {
  it("takes kind, hash and name from stage.json", async () => {
    const stage = makeStage({ kind: "eval", name: "eval-r2" });
    expect(await readStageRef(stage.dir)).toEqual({ dir: stage.dir, name: "eval-r2", kind: "eval", hash: stage.hash, round: null });
  });

  it("hashes the stage itself when stage.json has no sha256 or is missing, leaving stage.json out", async () => {
    // sha256 over the "<sha256>  <path>" lines of the files in byte order, computed with coreutils.
    const coreutilsHash = (dir: string) =>
      String(execFileSync("bash", ["-c", "find . -type f ! -path ./stage.json -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum | sha256sum"], { cwd: dir })).split(" ")[0];
    const bare = makeStage({ name: "bare", noStageJson: true });
    expect(await readStageRef(bare.dir, "train")).toMatchObject({ name: "bare", kind: "train", hash: coreutilsHash(bare.dir) });
    await expect(readStageRef(bare.dir)).rejects.toThrow(`${bare.dir}: no stage kind: expected "kind" in stage.json or --kind train|eval`);
    const partial = makeStage({ name: "partial" });
    writeFileSync(path.join(partial.dir, "stage.json"), JSON.stringify({ kind: "eval", round: 2 }));
    expect(await readStageRef(partial.dir)).toMatchObject({ kind: "eval", round: "2", hash: coreutilsHash(partial.dir) });
  });

  it("says a folder with neither stage.json nor run.sh (a dataset) is not a stage, and how to render one", async () => {
    const dataset = makeStage({ name: "dataset", noStageJson: true });
    rmSync(path.join(dataset.dir, "run.sh"));
    const expected = `${dataset.dir}: not a stage directory: no stage.json or run.sh (render one with 'relabel stage train|eval --dataset DIR -o STAGE')`;
    await expect(readStageRef(dataset.dir)).rejects.toThrow(expected);
    await expect(readStageRef(dataset.dir, "eval")).rejects.toThrow(expected);
  });

  it("reports a broken stage.json in one line naming the file", async () => {
    const stage = makeStage({ name: "broken" });
    const file = path.join(stage.dir, "stage.json");
    writeFileSync(file, "{ kind: train }");
    await expect(readStageRef(stage.dir)).rejects.toThrow(InputError);
    await expect(readStageRef(stage.dir)).rejects.toThrow(new RegExp(`^${file}: not valid JSON`));
    writeFileSync(file, JSON.stringify({ kind: "predict", sha256: stage.hash }));
    await expect(readStageRef(stage.dir)).rejects.toThrow(`${file}: kind: expected one of train, eval, got "predict"`);
    writeFileSync(file, JSON.stringify({ kind: "train", sha256: stage.hash }));
    await expect(readStageRef(stage.dir, "eval")).rejects.toThrow(`${file}: kind: stage.json says "train" but --kind says "eval"`);
    writeFileSync(file, JSON.stringify({ kind: "train", sha256: "not-a-hash" }));
    await expect(readStageRef(stage.dir)).rejects.toThrow(`${file}: sha256: expected the stage's hex content hash`);
    writeFileSync(file, JSON.stringify({ kind: "train", sha256: stage.hash, name: "a b" }));
    await expect(readStageRef(stage.dir)).rejects.toThrow(`${file}: name: stage name "a b" must be letters, digits, . _ - (it names the remote directory)`);
  });
});
