import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { rankToDir } from "../../src/io/rank.js";
import { InputError } from "../../src/core/errors.js";

/**
 * A pool, a labelled set and their descriptors as mace_eval_configs --return_descriptors leaves them: written by
 * ASE's extxyz writer (Debian's python3-ase), per-atom MACE_descriptors arrays (its default) or their means as an
 * info vector (--descriptor_aggregation_method mean). The eval files list the structures in another order, split
 * over two files, and some with positions 2e-6 A off the pool's (so their candidate_id differs: printed with fewer
 * digits). Beside them, the greedy selection NumPy makes from the same numbers (oracle.json).
 */
const WRITE = String.raw`
import json, sys
import numpy as np
from ase.build import bulk, molecule
from ase.io import read, write

out = sys.argv[1]
rng = np.random.default_rng(7)
W = rng.normal(size=(4, 12))

def structure(i):
    if i % 3 == 2:
        at = molecule("H2O")
    else:
        at = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
        at.set_chemical_symbols(["Cu"] * 7 + ["Ni"])
    at.rattle(0.08, seed=i)
    return at

def descriptors(at):
    x = np.hstack([at.positions, at.numbers[:, None] / 10.0])
    return np.tanh(x @ W)

def evaluated(at, shift, mode):
    a = at.copy()
    a.positions[0, 0] += shift
    a.info["MACE_energy"] = 0.0
    d = descriptors(at)
    if mode == "mean":
        a.info["MACE_descriptors"] = d.mean(0)
    elif mode == "elem":
        a.info["MACE_descriptors"] = {s: d[a.symbols == s].mean(0).tolist() for s in np.unique(a.symbols)}
    else:
        a.arrays["MACE_descriptors"] = d
    return a

pool = [structure(i) for i in range(30)]
labelled = [structure(i) for i in range(30, 35)] + [pool[4]]
write(out + "/pool.extxyz", pool, format="extxyz")
write(out + "/labelled.extxyz", labelled, format="extxyz")
for tag in ["atoms", "mean", "elem"]:
    shifted = lambda k: 2e-6 if k % 4 == 1 else 0.0
    write(out + f"/pool-a-{tag}.xyz", [evaluated(pool[k], shifted(k), tag) for k in range(14, -1, -1)], format="extxyz")
    extra = evaluated(structure(99), 0.0, tag)
    write(out + f"/pool-b-{tag}.xyz", [evaluated(pool[k], shifted(k), tag) for k in range(15, 30)] + [extra], format="extxyz")
    write(out + f"/labelled-{tag}.xyz", [evaluated(labelled[k], shifted(k), tag) for k in range(5)], format="extxyz")

SPECIES = ["Cu", "H", "Ni", "O"]

def row(a, per_element):
    d = a.info.get("MACE_descriptors")
    symbols = np.array(a.get_chemical_symbols())
    if not per_element:
        return d if d is not None else a.arrays["MACE_descriptors"].mean(0)
    # A block per element: its mean descriptor times its atom fraction, zeros where it is absent.
    blocks = []
    for s in SPECIES:
        if isinstance(d, dict):
            blocks.append(np.array(d[s]) * np.mean(symbols == s) if s in d else np.zeros(12))
        else:
            blocks.append(a.arrays["MACE_descriptors"][symbols == s].sum(0) / len(a))
    return np.concatenate(blocks)

def rows(file, per_element):
    return [row(a, per_element) for a in read(file, ":")]

# The oracle: features as read back (in pool order), float32, standard-scaled on the pool, FPS seeded by the
# labelled set, the labelled pool structure never picked, ties to the lowest index.
oracle = {}
for tag, per_element in [("atoms", False), ("mean", False), ("atoms", True), ("elem", True)]:
    a, b, lab = (rows(out + f"/{part}-{tag}.xyz", per_element) for part in ["pool-a", "pool-b", "labelled"])
    X = np.array(a[::-1] + b[:15], dtype=np.float32).astype(np.float64)
    L = np.array(lab + [X[4]], dtype=np.float32).astype(np.float64)
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1
    X, L = (X - mu) / sd, (L - mu) / sd
    nearest = np.min(np.linalg.norm(X[:, None, :] - L[None, :, :], axis=2), axis=1)
    taken = [4]
    picks, diversity = [], []
    for _ in range(6):
        masked = nearest.copy()
        masked[taken] = -np.inf
        p = int(np.argmax(masked))
        picks.append(p)
        diversity.append(float(nearest[p]))
        taken.append(p)
        nearest = np.minimum(nearest, np.linalg.norm(X - X[p], axis=1))
    oracle[tag + ("-per-element" if per_element else "")] = {"picks": picks, "diversity": diversity}
json.dump(oracle, open(out + "/oracle.json", "w"))
`;

const software = { name: "relabel-loop", version: "test" };
const dir = mkdtempSync(path.join(tmpdir(), "relabel-structure-features-"));
execFileSync("/usr/bin/python3", ["-c", WRITE, dir]);
const oracle = JSON.parse(readFileSync(path.join(dir, "oracle.json"), "utf8")) as Record<string, { picks: number[]; diversity: number[] }>;
const at = (name: string): string => path.join(dir, name);
let outs = 0;

/** The InputError a promise rejects with, checked: its file, where in it, and its detail (a string or a pattern). */
async function expectInputError(promise: Promise<unknown>, file: string, where: string, detail: string | RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(InputError);
  const { file: f, where: w, detail: d } = err as InputError;
  expect([f, w]).toEqual([file, where]);
  if (typeof detail === "string") expect(d).toBe(detail);
  else expect(d).toMatch(detail);
}

function rankWith(files: string[], o: { labeled?: string[]; key?: string; perElement?: boolean } = {}) {
  return rankToDir({
    pool: [at("pool.extxyz")],
    labeled: o.labeled ?? [at("labelled.extxyz")],
    select: 6,
    out: at(`out-${outs++}`),
    featuresFrom: { files, key: o.key ?? "MACE_descriptors", perElement: o.perElement },
    software,
  });
}

describe("rank with features per structure from extxyz files (mace_eval_configs --return_descriptors)", () => {
  for (const tag of ["atoms", "mean"]) {
    it(`selects as NumPy does on the same numbers, matching the structures in any order and digits (${tag === "atoms" ? "per-atom descriptors" : "mean vectors"})`, async () => {
      const outcome = await rankWith([at(`pool-a-${tag}.xyz`), at(`pool-b-${tag}.xyz`), at(`labelled-${tag}.xyz`)]);
      expect(outcome.result.picks.map((p) => p.index)).toEqual(oracle[tag].picks);
      outcome.result.picks.forEach((p, k) => expect(p.diversity).toBeCloseTo(oracle[tag].diversity[k], 4));
      // Eight pool structures and one labelled one are printed 2e-6 A off: found by geometry, and said so.
      expect(outcome.notes).toEqual([
        "--features: 1 structure(s) in the files are neither pool candidates nor labelled structures, and were not used",
        "--features: 9 structure(s) in the files were found by geometry within 1e-5 A, their ids differing (as when the files print fewer digits than the pool)",
      ]);
      const ranking = JSON.parse(readFileSync(path.join(outcome.dir, "ranking.json"), "utf8"));
      expect(ranking.parameters).toMatchObject({ descriptor: "features", features_file: null, features_key: "MACE_descriptors" });
      expect(ranking.parameters.features_files).toEqual(
        [`pool-a-${tag}.xyz`, `pool-b-${tag}.xyz`, `labelled-${tag}.xyz`].map((f) => ({ path: at(f), sha256: createHash("sha256").update(readFileSync(at(f))).digest("hex") })),
      );
      expect(ranking.rule).toBe(
        "diversity-first (no committee): greedy farthest-point sampling in the space of MACE_descriptors (one mean vector per structure); seeded by 6 labelled structures, which count as covered",
      );
    });
  }

  for (const tag of ["atoms", "elem"]) {
    it(`takes a block per element, each its mean descriptor times its atom fraction, as NumPy does (${tag === "atoms" ? "per-atom descriptors" : "per_element_mean dicts"})`, async () => {
      const outcome = await rankWith([at(`pool-a-${tag}.xyz`), at(`pool-b-${tag}.xyz`), at(`labelled-${tag}.xyz`)], { perElement: true });
      const expected = oracle[`${tag}-per-element`];
      expect(outcome.result.picks.map((p) => p.index)).toEqual(expected.picks);
      outcome.result.picks.forEach((p, k) => expect(p.diversity).toBeCloseTo(expected.diversity[k], 4));
      const ranking = JSON.parse(readFileSync(path.join(outcome.dir, "ranking.json"), "utf8"));
      expect(ranking.parameters.features_per_element).toEqual(["Cu", "H", "Ni", "O"]);
      expect(ranking.rule).toContain("in the space of MACE_descriptors (composition-weighted means per element: Cu, H, Ni, O)");
    });
  }

  it("refuses per-element features from mean vectors, and per-element dicts without --features-per-element", async () => {
    await expectInputError(
      rankWith([at("pool-a-mean.xyz")], { perElement: true }),
      at("pool-a-mean.xyz"),
      "frame 0",
      "MACE_descriptors is one vector per structure; per-element features need per-atom descriptors (mace_eval_configs' default) or --descriptor_aggregation_method per_element_mean",
    );
    await expectInputError(rankWith([at("pool-a-elem.xyz")]), at("pool-a-elem.xyz"), "frame 0", /^MACE_descriptors is given per element .*: rank it with --features-per-element/);
  });

  it("takes a structure given twice with the same features once, and refuses it with other features", async () => {
    const files = [at("pool-a-mean.xyz"), at("pool-b-mean.xyz"), at("labelled-mean.xyz")];
    const once = await rankWith(files);
    const twice = await rankWith([...files, at("pool-a-mean.xyz")]);
    expect(readFileSync(path.join(twice.dir, "ranking.csv"))).toEqual(readFileSync(path.join(once.dir, "ranking.csv")));
    // The first frame of pool-a (the pool's frame 14) again, with its first value changed.
    const text = readFileSync(at("pool-a-mean.xyz"), "utf8");
    const natoms = Number(text.split("\n")[0]);
    const frame = text.split("\n").slice(0, natoms + 2).join("\n").replace(/MACE_descriptors="-?[0-9.]+/, 'MACE_descriptors="0.75');
    const other = at("other.xyz");
    writeFileSync(other, `${frame}\n`);
    await expectInputError(
      rankWith([...files, other]),
      other,
      "frame 0",
      /^gives candidate [0-9a-f]{20} \(.*pool\.extxyz frame 14\) other MACE_descriptors than an earlier frame: each structure needs one feature vector$/,
    );
  });

  it("gives the same bytes on a rerun with the files in another order", async () => {
    const a = await rankWith([at("pool-a-atoms.xyz"), at("pool-b-atoms.xyz"), at("labelled-atoms.xyz")]);
    const b = await rankWith([at("labelled-atoms.xyz"), at("pool-b-atoms.xyz"), at("pool-a-atoms.xyz")]);
    expect(readFileSync(path.join(a.dir, "ranking.csv"))).toEqual(readFileSync(path.join(b.dir, "ranking.csv")));
    expect(readFileSync(path.join(a.dir, "selected.extxyz"))).toEqual(readFileSync(path.join(b.dir, "selected.extxyz")));
  });

  it("names the structure whose features are missing, or do not fit", async () => {
    await expectInputError(
      rankWith([at("pool-a-atoms.xyz"), at("labelled-atoms.xyz")]),
      at("pool.extxyz"),
      "frame 15",
      /^candidate [0-9a-f]{20} has no MACE_descriptors in .*pool-a-atoms\.xyz, .*labelled-atoms\.xyz: every pool structure needs its features \(run mace_eval_configs --return_descriptors on each pool file\)$/,
    );
    await expectInputError(
      rankWith([at("pool-a-atoms.xyz"), at("pool-b-atoms.xyz")]),
      at("labelled.extxyz"),
      "frame 0",
      /^labelled structure [0-9a-f]{20} has no MACE_descriptors in .*: the selection starts from the labelled set, so it needs their features too/,
    );
    const narrow = at("narrow.xyz");
    writeFileSync(narrow, readFileSync(at("labelled-mean.xyz"), "utf8").replace(/MACE_descriptors="(\S+) /, 'MACE_descriptors="'));
    await expectInputError(
      rankWith([at("pool-a-mean.xyz"), at("pool-b-mean.xyz"), narrow]),
      narrow,
      "frame 0",
      `MACE_descriptors has 11 values per structure, but ${at("pool-a-mean.xyz")} gave 12: the features must come from one model and the same layers`,
    );
    await expectInputError(
      rankWith([at("pool-a-atoms.xyz")], { key: "SOAP" }),
      at("pool-a-atoms.xyz"),
      "frame 0",
      "has no SOAP (per-atom array or info vector; mace_eval_configs writes it with --return_descriptors)",
    );
  });
});
