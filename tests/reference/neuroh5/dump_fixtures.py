"""Dump NeuroH5 files as neuroh5's own readers see them, as JSON (the expected values for miv's tests).

    python dump_fixtures.py OUT.json FILE.h5 [FILE.h5 ...]
    mpirun -n 2 python dump_fixtures.py OUT.json FILE.h5 ...

With one rank the file is read with `read_population_ranges`, `read_population_names`,
`read_projection_names`, `read_cell_attribute_info`, `read_cell_attributes`, `read_trees` (topology=False:
the stored `sections`, `src`, `dst`; validate=False, because neuroh5's tree validation rejects a tree with a
single section) and `read_graph`. With more ranks the cells, trees and edges are read with
`scatter_read_cell_attributes`, `scatter_read_trees` and `scatter_read_graph` and gathered on rank 0; the
document also records which rank each gid was given to (`owners`). Floats are float32 values widened to
float64 (Python's shortest repr reads back to the same double), integers are exact.

Document: {"files": {basename: {"population_ranges": {pop: [start, count]}, "population_names": [...],
"projection_names": [[src, dst], ...], "cell_attributes": {pop: {ns: {"dtypes": {attr: numpy name},
"cells": {gid: {attr: [values]}}}}}, "trees": {pop: {gid: {x, y, z, radius, layer, parent, swc_type,
sections, src, dst}}}, "tree_dtypes": {...}, "projections": {"SRC:DST": {"dtypes": {"ns/attr": name},
"edges": {dst_gid: {"sources": [...], "ns/attr": [...]}}}}, "owners": {...}}}}
"""
import json
import os
import sys

import numpy as np
from mpi4py import MPI

from neuroh5.io import (
    read_cell_attribute_info,
    read_cell_attributes,
    read_graph,
    read_population_names,
    read_population_ranges,
    read_projection_names,
    read_trees,
    scatter_read_cell_attributes,
    scatter_read_graph,
    scatter_read_trees,
)

EDGE_NAMESPACES = ["Synapses", "Connections"]
# Cell attribute namespaces not to read (crosscheck.py --skip).
SKIP_NAMESPACES = set()


def values(a):
    a = np.asarray(a)
    return [float(x) for x in a] if a.dtype.kind == "f" else [int(x) for x in a]


def merge(comm, part):
    """Gather per-rank {key: value} dicts on rank 0; also return {key: rank}."""
    parts = comm.gather(part, root=0)
    if comm.rank != 0:
        return None, None
    out, owner = {}, {}
    for r, p in enumerate(parts):
        for k, v in p.items():
            assert k not in out, f"gid {k} read by two ranks"
            out[k], owner[k] = v, r
    return out, owner


def dump(path, comm):
    size = comm.size
    doc = {"owners": {}}
    ranges, _ = read_population_ranges(path, comm=comm)
    doc["population_ranges"] = {p: [int(s), int(c)] for p, (s, c) in sorted(ranges.items())}
    doc["population_names"] = sorted(read_population_names(path, comm=comm))
    try:
        prjs = sorted(tuple(p) for p in read_projection_names(path, comm=comm))
    except RuntimeError:  # neuroh5 requires a /Projections group; a cells-only file has none
        prjs = []
    doc["projection_names"] = [list(p) for p in prjs]
    info = read_cell_attribute_info(path, sorted(ranges), comm=comm)
    doc["cell_attributes"], doc["trees"], doc["tree_dtypes"] = {}, {}, {}
    for pop in sorted(info):
        for ns in sorted(info[pop]):
            if ns in SKIP_NAMESPACES:
                continue
            if ns == "Trees":
                if size == 1:
                    it, _ = read_trees(path, pop, topology=False, validate=False, comm=comm)
                else:
                    it, _ = scatter_read_trees(path, pop, topology=False, validate=False, comm=comm)
                part = {int(g): {k: np.asarray(v) for k, v in t.items()} for g, t in it}
                trees, owner = merge(comm, part)
                if comm.rank == 0:
                    doc["trees"][pop] = {str(g): {k: values(v) for k, v in sorted(t.items())} for g, t in sorted(trees.items())}
                    doc["tree_dtypes"][pop] = {k: str(v.dtype) for t in trees.values() for k, v in t.items()}
                    doc["owners"][f"{pop}/Trees"] = {str(g): r for g, r in sorted(owner.items())}
                continue
            if size == 1:
                it = read_cell_attributes(path, pop, namespace=ns, comm=comm)
            else:
                it = scatter_read_cell_attributes(path, pop, namespaces=[ns], comm=comm)[ns]
            part = {int(g): {k: np.asarray(v) for k, v in a.items()} for g, a in it}
            cells, owner = merge(comm, part)
            if comm.rank == 0:
                dtypes = {k: str(v.dtype) for c in cells.values() for k, v in c.items()}
                doc["cell_attributes"].setdefault(pop, {})[ns] = {
                    "attributes": sorted(info[pop][ns]),
                    "dtypes": dict(sorted(dtypes.items())),
                    "cells": {str(g): {k: values(v) for k, v in sorted(c.items())} for g, c in sorted(cells.items())},
                }
                doc["owners"][f"{pop}/{ns}"] = {str(g): r for g, r in sorted(owner.items())}
    doc["projections"] = {}
    if not prjs:
        return doc
    if size == 1:
        graph, attr_info = read_graph(path, namespaces=EDGE_NAMESPACES, comm=comm)
    else:
        graph, attr_info = scatter_read_graph(path, namespaces=EDGE_NAMESPACES, comm=comm)
    for src, dst in prjs:
        index = attr_info[dst][src]
        part = {}
        for g, (srcs, attrs) in graph[dst][src]:
            e = {"sources": np.asarray(srcs)}
            for ns in EDGE_NAMESPACES:
                for name, i in index.get(ns, {}).items():
                    e[f"{ns}/{name}"] = np.asarray(attrs[ns][i])
            part[int(g)] = e
        edges, owner = merge(comm, part)
        if comm.rank == 0:
            dtypes = {k: str(v.dtype) for e in edges.values() for k, v in e.items()}
            doc["projections"][f"{src}:{dst}"] = {
                "dtypes": dict(sorted(dtypes.items())),
                "edges": {str(g): {k: values(v) for k, v in sorted(e.items())} for g, e in sorted(edges.items())},
            }
            doc["owners"][f"{src}:{dst}"] = {str(g): r for g, r in sorted(owner.items())}
    return doc


def main():
    comm = MPI.COMM_WORLD
    out, files = sys.argv[1], sys.argv[2:]
    docs = {os.path.basename(p): dump(p, comm) for p in files}
    if comm.rank == 0:
        if comm.size == 1:
            for d in docs.values():
                del d["owners"]
        with open(out, "w") as f:
            json.dump({"reader_ranks": comm.size, "files": docs}, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
