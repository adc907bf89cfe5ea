"""Anchor for `npm run bench:dataset`: the rebuild done the ASE way on RUNS evenly spaced run directories. Every
ionic step of each vasprun.xml is read with ase.io.read(format="vasp-xml"), runs are split 80/10/10 by a
hash of their path, and train/valid/test are written with ase.io.write(format="extxyz") (energy, forces
and stress from the calculator). No quality gates, duplicate checks or summaries: a lower bound on what
the reference workflow spends per byte.

usage: dataset-anchor.py RUNS_DIR OUT_DIR RUNS  (prints JSON: runs, bytes, frames, seconds, peak RSS)
"""
import hashlib
import json
import os
import resource
import sys
import time

import ase.io


def main():
    root, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    every = sorted(d for d, _, files in os.walk(root) if "vasprun.xml" in files)
    # Evenly spaced, so that the sample has the kinds of run in their proportions.
    runs = [every[i * len(every) // limit] for i in range(min(limit, len(every)))]
    start = time.perf_counter()
    splits = {"train": [], "valid": [], "test": []}
    size = 0
    for run in runs:
        path = os.path.join(run, "vasprun.xml")
        size += os.path.getsize(path)
        frames = ase.io.read(path, index=":", format="vasp-xml")
        u = int(hashlib.sha256(os.path.relpath(run, root).encode()).hexdigest()[:8], 16) / 2**32
        splits["train" if u < 0.8 else "valid" if u < 0.9 else "test"].extend(frames)
    os.makedirs(out, exist_ok=True)
    for name, frames in splits.items():
        ase.io.write(os.path.join(out, name + ".extxyz"), frames, format="extxyz")
    seconds = time.perf_counter() - start
    frames = sum(len(f) for f in splits.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"runs": len(runs), "bytes": size, "frames": frames, "seconds": seconds, "peak_rss_mb": rss_mb}))


main()
