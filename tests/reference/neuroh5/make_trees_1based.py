"""Trees with 1-based `Section` node ids written by neuroh5 itself (append_cell_trees stores the ids it is
given), for `tests/io_neuroh5.rs`. Usage: python make_trees_1based.py OUT_DIR (writes nh5_trees_1based.h5 and
nh5_trees_1based.json: the stored arrays as neuroh5's read_trees(topology=False) returns them)."""
import json
import os
import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import CHUNKS, ranges, tree, write_h5types  # noqa: E402


def main():
    out = os.path.join(sys.argv[1], "nh5_trees_1based.h5")
    write_h5types(out)
    from neuroh5.io import append_cell_trees, read_trees

    rng = np.random.default_rng(16)
    start, count, _ = ranges()["OLM"]
    trees = {}
    for k, g in enumerate(range(start, start + count)):
        t = tree(rng, small=(k % 2 == 0))
        s = t["sections"].copy()
        # [n_sections, n_pts, ids.., n_pts, ids..]: shift the ids, not the counts.
        i = 1
        while i < len(s):
            n = int(s[i])
            s[i + 1 : i + 1 + n] += 1
            i += 1 + n
        t["sections"] = s
        trees[g] = t
    append_cell_trees(out, "OLM", trees, comm=MPI.COMM_WORLD, **CHUNKS)
    got = {}
    it, _ = read_trees(out, "OLM", topology=False)
    for g, t in it:
        got[str(g)] = {k: np.asarray(t[k]).tolist() for k in ("sections", "src", "dst", "parent")}
    with open(os.path.join(sys.argv[1], "nh5_trees_1based.json"), "w") as f:
        json.dump(got, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
