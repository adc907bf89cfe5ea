"""NumPy anchors for bench/rank.mjs: the same greedy farthest-point selection (centroid start, the
first pick replaces `nearest`, then element-wise minimum, ties to the lowest index).

  straightforward: float64 copy, np.sqrt(((X - x)**2).sum(1)) per pick
  tuned:           float32, |a|^2 + |b|^2 - 2 a.b with one BLAS matrix-vector product per pick

usage: rank-anchor.py FEATURES.f32 N D K {straightforward|tuned} [PICKS_TO_RUN]
       rank-anchor.py --pipeline POOL.extxyz FEATURES.npy K OUT.extxyz
       rank-anchor.py --pipeline-features POOL.extxyz FEATURES.xyz K OUT.extxyz
       rank-anchor.py --estimate-descriptors POOL.extxyz K FIRST
Prints one JSON line: seconds for the picks run, picks, peak RSS. With PICKS_TO_RUN < K only that
many picks run (the caller extrapolates the time).

--pipeline is the reference workflow as one process, for the whole-process comparison: ASE reads every
frame of the pool, NumPy loads the features (.npy), the tuned selection runs, ASE writes the picks.

--pipeline-features is the same with the features read by ASE from an extxyz file of one MACE_descriptors vector
per structure in pool order (mace_eval_configs output): no matching, so the file must follow the pool.

--estimate-descriptors times the same workflow with its own baseline descriptors by parts (see
estimate_descriptors): ASE's neighbour list is too slow to describe 100,000 structures in a benchmark."""
import json
import os
import resource
import sys
import time

import numpy as np


def straightforward(X32, k):
    X = X32.astype(np.float64)
    nearest = np.sqrt(((X - X.mean(0)) ** 2).sum(1))
    selected = np.zeros(len(X), dtype=bool)
    picks = []
    for r in range(k):
        p = int(np.argmax(np.where(selected, -np.inf, nearest)))
        picks.append(p)
        selected[p] = True
        d = np.sqrt(((X - X[p]) ** 2).sum(1))
        nearest = d if r == 0 else np.minimum(nearest, d)
    return picks


def tuned(X, k):
    sq = np.einsum("ij,ij->i", X, X)
    c = X.mean(0, dtype=np.float64).astype(np.float32)
    nearest2 = sq + np.float32(c @ c) - 2 * (X @ c)
    d2 = np.empty_like(nearest2)
    masked = np.empty_like(nearest2)
    selected = np.zeros(len(X), dtype=bool)
    picks = []
    for r in range(k):
        np.copyto(masked, nearest2)
        masked[selected] = -np.inf
        p = int(np.argmax(masked))
        picks.append(p)
        selected[p] = True
        np.matmul(X, X[p], out=d2)
        d2 *= -2
        d2 += sq
        d2 += sq[p]
        if r == 0:
            np.copyto(nearest2, d2)
        else:
            np.minimum(nearest2, d2, out=nearest2)
    return picks


def pipeline(pool, features, k, out):
    from ase.io import read, write
    frames = read(pool, ":")
    X = np.load(features).astype(np.float32, copy=False)
    if len(frames) != len(X):
        raise SystemExit(f"{len(frames)} frames but {len(X)} feature rows")
    picks = tuned(X, k)
    write(out, [frames[p] for p in picks], format="extxyz")
    return picks


def pipeline_features(pool, features, k, out):
    from ase.io import read, write
    frames = read(pool, ":")
    X = np.array([atoms.info["MACE_descriptors"] for atoms in read(features, ":")], dtype=np.float32)
    if len(frames) != len(X):
        raise SystemExit(f"{len(frames)} frames but {len(X)} feature rows")
    picks = tuned(X, k)
    write(out, [frames[p] for p in picks], format="extxyz")
    return picks


def estimate_descriptors(pool, k, first):
    """The reference workflow with its own descriptors, by parts: ASE reads the whole pool (timed), the
    baseline descriptors of descriptors-anchor.py are timed on the first `first` structures and scaled to
    all, and the tuned selection is timed on a random matrix of the full shape (with nothing to prune,
    its cost does not depend on the values)."""
    import importlib.util
    from ase.io import read
    spec = importlib.util.spec_from_file_location("descriptors_anchor", os.path.join(os.path.dirname(__file__), "descriptors-anchor.py"))
    anchor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anchor)
    start = time.perf_counter()
    frames = read(pool, ":")
    read_seconds = time.perf_counter() - start
    species = sorted({s for atoms in frames for s in atoms.get_chemical_symbols()})
    start = time.perf_counter()
    X = anchor.describe(frames[:first], species, False)
    describe_seconds = (time.perf_counter() - start) * len(frames) / first
    Y = np.random.default_rng(0).random((len(frames), X.shape[1]), dtype=np.float32)
    start = time.perf_counter()
    tuned(Y, k)
    select_seconds = time.perf_counter() - start
    return {"read": read_seconds, "describe": describe_seconds, "select": select_seconds, "frames": len(frames), "described": first}


def main():
    if sys.argv[1] == "--estimate-descriptors":
        parts = estimate_descriptors(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps(parts))
        return
    if sys.argv[1] in ("--pipeline", "--pipeline-features"):
        run = pipeline if sys.argv[1] == "--pipeline" else pipeline_features
        picks = run(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        print(json.dumps({"picks": picks, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    path, n, d, k, variant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    run = int(sys.argv[6]) if len(sys.argv) > 6 else k
    X = np.fromfile(path, dtype=np.float32, count=n * d).reshape(n, d)
    start = time.perf_counter()
    picks = (straightforward if variant == "straightforward" else tuned)(X, run)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "variant": variant, "n": n, "d": d, "k": k, "picks_run": run, "seconds": seconds, "picks": picks,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
