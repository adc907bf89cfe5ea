"""ASE side of `npm run bench:io`: times one workload and prints a JSON line (seconds, frames, peak RSS)."""
import json
import os
import resource
import sys
import time

import ase.io
import numpy as np


def main() -> None:
    workload, path = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    if workload == "extxyz-read":
        frames = ase.io.read(path, index=":", format="extxyz")
        n = len(frames)
    elif workload == "extxyz-write":
        frames = ase.io.read(path, index=":", format="extxyz")
        start = time.perf_counter()
        ase.io.write(sys.argv[3], frames, format="extxyz")
        n = len(frames)
    elif workload == "traj-read":
        n = len(ase.io.read(path, index=":", format="traj"))
    elif workload == "traj-write":
        # Not timed: makes the ASE trajectory of the training set that both sides then read.
        ase.io.write(sys.argv[3], ase.io.read(path, index=":", format="extxyz"), format="traj")
        n = 0
    elif workload == "dump-read":
        n = len(ase.io.read(path, index=":", format="lammps-dump-text", specorder=["O", "Si"]))
    elif workload == "folder-read":
        n = 0
        for name in sorted(os.listdir(path)):
            n += len(ase.io.read(os.path.join(path, name), index=":", format="extxyz"))
    elif workload == "features-read":
        # Each structure's descriptor vector, as a matrix.
        frames = ase.io.read(path, index=":", format="extxyz")
        n = len(np.array([a.info["MACE_descriptors"] for a in frames]))
    elif workload == "vasprun-read":
        n = 0
        for _ in ase.io.iread(path, index=":", format="vasp-xml"):
            n += 1
    else:
        raise SystemExit(f"unknown workload {workload}")
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "frames": n, "peak_rss_mb": rss_mb}))


main()
