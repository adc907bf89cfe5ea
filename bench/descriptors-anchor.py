"""Anchor for the descriptor part of `npm run bench:rank`: the descriptors and candidate_id in
ASE + NumPy, on the frames of an extxyz file (reading is not timed).

Baseline, as documented in src/core/select/descriptors.ts: composition fractions (species sorted), volume
per atom, and the pair-distance histogram over every periodic image within r_max, from ASE's neighbour
list (ordered pairs: every pair twice, which the density normalisation cancels), 1e-8 < d < r_max, bin
floor(d * bins / r_max). candidate_id: sha256 of the canonical text of src/core/select/candidate-id.ts.

Element-pairs: the same histogram split by unordered species pair, normalised jointly.

usage: descriptors-anchor.py FRAMES.extxyz OUT-%s.npy FIRST  (%s: baseline, elementPairs; the first FIRST
frames only, as ASE's neighbour list takes tens of milliseconds per cell; prints JSON: seconds per part, the ids)
"""
import hashlib
import json
import math
import sys
import time

import ase.io
import numpy as np
from ase.neighborlist import neighbor_list

R_MAX = 6.0
BINS = 80


def describe(frames, species, pairs):
    """pairs=False: baseline; pairs=True: element-pairs (one histogram block per unordered species pair)."""
    S = len(species)
    block = np.zeros((S, S), dtype=np.int64)
    for k, (a, b) in enumerate((a, b) for a in range(S) for b in range(a, S)):
        block[a, b] = block[b, a] = k
    blocks = S * (S + 1) // 2 if pairs else 1
    out = np.zeros((len(frames), S + 1 + blocks * BINS))
    for row, atoms in enumerate(frames):
        n = len(atoms)
        classes = np.array([species.index(s) for s in atoms.get_chemical_symbols()])
        out[row, :S] = np.bincount(classes, minlength=S) / n
        if atoms.pbc.any() and atoms.cell.rank > 0:
            out[row, S] = abs(np.linalg.det(atoms.cell.array)) / n
        i, j, d = neighbor_list("ijd", atoms, R_MAX)
        keep = d > 1e-8
        bins = np.minimum((d[keep] * BINS / R_MAX).astype(np.int64), BINS - 1)
        if pairs:
            bins += BINS * block[classes[i[keep]], classes[j[keep]]]
        counts = np.bincount(bins, minlength=blocks * BINS)
        total = counts.sum()
        if total > 0:
            out[row, S + 1:] = counts * (BINS / (total * R_MAX))
    return out


def micro(values):
    # Math.round: halves go up; -0 is written as 0.
    return " ".join(str(int(math.floor(v * 1e6 + 0.5))) for v in values)


def candidate_id(atoms):
    pbc = "".join("T" if p else "F" for p in atoms.pbc)
    text = "relabel-candidate-v1\n%d\n%s\n%s\n%s\n%s" % (
        len(atoms), ",".join(atoms.get_chemical_symbols()), pbc,
        micro(atoms.cell.array.reshape(-1)), micro(atoms.positions.reshape(-1)))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def main():
    frames = ase.io.read(sys.argv[1], index=":%d" % int(sys.argv[3]), format="extxyz")
    species = sorted({s for atoms in frames for s in atoms.get_chemical_symbols()})
    seconds = {}
    for kind, pairs in (("baseline", False), ("elementPairs", True)):
        start = time.perf_counter()
        described = describe(frames, species, pairs)
        seconds[kind] = time.perf_counter() - start
        np.save(sys.argv[2] % kind, described)
    start = time.perf_counter()
    ids = [candidate_id(atoms) for atoms in frames]
    seconds["candidateId"] = time.perf_counter() - start
    print(json.dumps({"frames": len(frames), "seconds": seconds, "ids": ids}))


if __name__ == "__main__":
    main()
