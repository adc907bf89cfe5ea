/**
 * datasets/current with split files over the gzip threshold: committed gzipped, read back plain by every step that
 * uses them (the next rebuild's frozen split, the labelled set of a ranking), and plain again once small.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { defaultRelabelConfig } from "../../src/core/app/config.js";
import { roundPaths } from "../../src/core/app/manifest.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { CURRENT_DATASET, exportCurrentDataset, splitFileForLedger as splitFileFor } from "../../src/workflow/current-dataset.js";
import { buildRoundDataset, datasetFiles, rankSelection } from "../../src/workflow/engine.js";
import { SAMPLE_VASP } from "../helpers/app-harness.js";
import { initBare } from "../helpers/git-repo.js";

const roots: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-current-"));
  roots.push(dir);
  return dir;
};
afterAll(() => roots.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A ledger on a new bare repository holding `files`. */
async function ledgerWith(files: Array<{ path: string; content: string }> = []): Promise<Ledger> {
  const root = tmp();
  const ledger = await Ledger.open({ remote: initBare(path.join(root, "data.git")), workdir: path.join(root, "clone"), author: { name: "t", email: "t@example.invalid" } });
  if (files.length > 0) await ledger.commit({ message: "seed", files });
  return ledger;
}

describe("splitFileForLedger", () => {
  it("keeps a split plain up to the threshold and gzips it above, deleting the other form; never one that goes to Git LFS", async () => {
    const content = Buffer.from("2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 0 0 0.74\n".repeat(40));
    const ledger = await ledgerWith();
    const splitFileForLedger = (name: string, c: Buffer | null, above?: number) => splitFileFor(ledger, name, c, above);
    expect(await splitFileForLedger("train.extxyz", content, content.length)).toEqual([
      { path: "datasets/current/train.extxyz", content },
      { path: "datasets/current/train.extxyz.gz", content: null },
    ]);
    const [gzipped, deleted] = await splitFileForLedger("train.extxyz", content, content.length - 1);
    expect(gzipped.path).toBe("datasets/current/train.extxyz.gz");
    expect(gunzipSync(gzipped.content as Buffer)).toEqual(content);
    expect((gzipped.content as Buffer).length).toBeLessThan(content.length / 10);
    expect(deleted).toEqual({ path: "datasets/current/train.extxyz", content: null });
    // The same split, the same bytes.
    expect((await splitFileForLedger("train.extxyz", content, 0))[0].content).toEqual(gzipped.content);
    expect(await splitFileForLedger("valid.extxyz", null)).toEqual([
      { path: "datasets/current/valid.extxyz", content: null },
      { path: "datasets/current/valid.extxyz.gz", content: null },
    ]);
    // A repository that routes its datasets to Git LFS: plain, however large (the ledger stores it in LFS).
    const lfs = await ledgerWith([{ path: ".gitattributes", content: "datasets/** filter=lfs diff=lfs merge=lfs -text\n" }]);
    expect(await splitFileFor(lfs, "train.extxyz", content, 0)).toEqual([
      { path: "datasets/current/train.extxyz", content },
      { path: "datasets/current/train.extxyz.gz", content: null },
    ]);
  });
});

describe("a rebuild whose split files are gzipped in the ledger", () => {
  it("reads them back plain for the next rebuild and the labelled set, and stores them plain again once small", async () => {
    const root = tmp();
    const ledger = await Ledger.open({ remote: initBare(path.join(root, "data.git")), workdir: path.join(root, "clone"), author: { name: "t", email: "t@example.invalid" } });
    const runs = ["dpdata_h2o_md10", "dpdata_Ti-O-Ti_static_v630", "custodian_Si_relax_killed_v642", "dpdata_ch4_md_scf_unconverged"];
    const labels = runs.flatMap((run) => readdirSync(path.join(SAMPLE_VASP, run)).map((name) => ({ path: `${roundPaths(1).labels}/${run}/${name}`, content: readFileSync(path.join(SAMPLE_VASP, run, name)) })));
    await ledger.commit({ message: "labels", files: [...labels, { path: "pools/runs/.keep", content: "" }] });
    const config = defaultRelabelConfig();
    const inputs = { rounds: [1], labelsRef: () => "main", previousRef: null, dataset: { ...config.dataset, allow_mixed_settings: true, fractions: { train: 0.5, valid: 0.15, test: 0.35 } } };
    const first = await buildRoundDataset(ledger, path.join(root, "build-1"), inputs);
    expect(first.errors).toEqual([]);
    const splits = readdirSync(first.datasetDir).filter((name) => name.endsWith(".extxyz")).sort();
    expect(splits.length).toBeGreaterThan(1);

    // Every split over 100 bytes is gzipped.
    await ledger.commit({ message: "dataset", files: await datasetFiles(ledger, 1, first.datasetDir, first.summary, 100) });
    const stored = (await ledger.list(CURRENT_DATASET, "main")).map((e) => e.name).sort();
    expect(stored).toEqual([...splits.map((name) => `${name}.gz`), "split.json", "summary.json"].sort());
    const exported = await exportCurrentDataset(ledger, "main", path.join(root, "export"));
    for (const name of splits) expect(readFileSync(path.join(exported, name))).toEqual(readFileSync(path.join(first.datasetDir, name)));
    expect(readdirSync(exported).filter((name) => name.endsWith(".gz"))).toEqual([]);

    // The next rebuild keeps the frozen split of the gzipped dataset.
    const second = await buildRoundDataset(ledger, path.join(root, "build-2"), { ...inputs, previousRef: "main" });
    expect(second.errors).toEqual([]);
    expect(readFileSync(path.join(second.datasetDir, "split.json"), "utf8")).toBe(readFileSync(path.join(first.datasetDir, "split.json"), "utf8"));
    for (const name of splits) expect(readFileSync(path.join(second.datasetDir, name))).toEqual(readFileSync(path.join(first.datasetDir, name)));

    // A ranking counts the gzipped splits' structures as labelled.
    const poolFile = path.join(exported, splits[0]);
    await ledger.commit({ message: "pool", files: [{ path: "pools/labelled.extxyz", content: readFileSync(poolFile) }] });
    const selection = await rankSelection(ledger, path.join(root, "scratch"), {
      ref: "main", pool: ["pools/labelled.extxyz"], select: 1, weights: { div: 1, dis: 1 }, selection: config.selection,
      committeeRepoFiles: [], committeeLocalFiles: [], templates: config.vasp_templates,
      software: { name: "relabel-loop", version: "test" }, roundFor: async () => 2,
    });
    expect(selection.ranking.labeled_size).toBe(Object.values(first.summary.splits).reduce((n, s) => n + s.frames, 0));
    expect(selection.ranking.selectable).toBe(0);

    // Small again: plain files, the gzipped ones deleted.
    await ledger.commit({ message: "dataset again", files: await datasetFiles(ledger, 1, second.datasetDir, second.summary) });
    expect((await ledger.list(CURRENT_DATASET, "main")).map((e) => e.name).sort()).toEqual([...splits, "split.json", "summary.json"].sort());
  });
});
